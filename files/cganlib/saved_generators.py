"""What the scripts that explain saved generators share (heatmaps.py, latent_walk.py,
latent_arithmetic.py, evaluate.py), once their flags are parsed (flags.py): the labels check,
the loop over the chosen model files, and generating the same latents under each label.
"""

import os
import sys
from itertools import pairwise

import numpy as np
from tqdm import tqdm

from cganlib import cgan, cli, run_folder
from cganlib.datasets import IMAGE_SIDE
from cganlib.storage import InputError, one_line, writable_folder

FLOAT_BYTES = 4


def check_labels(labels, n_classes, what, minimum=2):
    """InputError unless labels are at least `minimum` different classes of n_classes."""
    if len(labels) < minimum:
        raise InputError(f"need at least {minimum} labels, got {' '.join(map(str, labels)) or 'none'}")
    if len(set(labels)) != len(labels):
        raise InputError(f"labels must differ, got {' '.join(map(str, labels))}")
    outside = [label for label in labels if not 0 <= label < n_classes]
    if outside:
        raise InputError(f"label {outside[0]} outside {what}'s {n_classes} classes (0-{n_classes - 1})")


def check_image_memory(n_labels, n_samples, per_image=1):
    """InputError when the images (and `per_image` more arrays of their size) of n_samples
    interpolations under n_labels labels cannot fit in memory."""
    n_images = n_labels * n_samples * cgan.INTERPOLATION_STEPS
    cli.check_memory(n_images * IMAGE_SIDE**2 * 3 * FLOAT_BYTES * (1 + per_image),
                     f"--n_samples {n_samples} with {n_labels} labels ({n_images} images)")


def chosen_generators(models_dir, epochs=None):
    """(epoch, path) of the generators in models_dir, those of `epochs` only if given. Two files
    of one epoch are refused: the outputs named by epoch (latent_walk_NNN.png, the evaluation's
    rows) would hold only one of them."""
    found = run_folder.generator_files(models_dir)
    chosen = [(epoch, path) for epoch, path in found if epochs is None or epoch in epochs]
    if not chosen:
        have = ", ".join(str(epoch) for epoch in sorted({epoch for epoch, _ in found}))
        raise InputError(f"no generators for epochs {' '.join(map(str, epochs))} in {models_dir}; epochs found: {have}")
    for (epoch, path), (next_epoch, next_path) in pairwise(chosen):
        if epoch == next_epoch:
            raise InputError(f"{os.path.basename(path)} and {os.path.basename(next_path)} in {models_dir} are both epoch "
                             f"{epoch} (the first number in the name): keep one of them there")
    return chosen


def check_classes(path, n_classes, dataset, dataset_classes):
    """InputError when a generator's classes are not the dataset's: its images would be drawn and
    named as classes they are not."""
    if n_classes != dataset_classes:
        raise InputError(f"{path} has {n_classes} classes, --dataset {dataset} has {dataset_classes}")


def check_generators_fit(models, settings):
    """check_classes of every chosen generator, read from its config before any work; a file
    whose config cannot be read is left to the loading, which names what is wrong."""
    for _, path in models:
        n_classes = cgan.saved_classes(path)
        if n_classes is not None:
            check_classes(path, n_classes, settings.name, settings.n_classes)


def for_each_model(args, work, desc, minimum_labels=2):
    """Check args.labels against the dataset, find the chosen generators, check that they are the
    dataset's and make the output folder; then load each generator and call
    work(epoch, path, generator). A file that cannot be used is reported and skipped, and the
    run ends in an error naming them all."""
    check_labels(args.labels, args.settings.n_classes, args.dataset, minimum_labels)
    models = chosen_generators(args.models_dir, args.epochs)
    check_generators_fit(models, args.settings)
    writable_folder(args.out_dir)
    failed = []
    for epoch, path in tqdm(models, desc=desc, unit="model"):
        try:
            work(epoch, path, cgan.load_generator(path))
        except (cgan.ModelFileError, InputError) as e:
            tqdm.write(f"{os.path.basename(sys.argv[0])}: error: {one_line(e)}", file=sys.stderr)
            failed.append(os.path.basename(path))
    if failed:
        raise InputError(f"{len(failed)} of {len(models)} model files could not be used: {', '.join(failed)}")


def latents_for(generator, seed, n_samples):
    """The heatmap latents for this generator's latent size; the same seed gives every model
    the same latents, so epochs can be compared."""
    return cgan.heatmap_latents(np.random.default_rng(seed), n_samples, generator.inputs[0].shape[1])


def label_images(generator, labels, latents):
    """(L, n, 80, 80, 3) in [0, 1]: the n latents generated with each of the L labels."""
    n = len(latents)
    images = cgan.generate(generator, np.tile(latents, (len(labels), 1)), np.repeat(np.asarray(labels), n))
    return images.reshape(len(labels), n, *cgan.IMAGE_SHAPE)
