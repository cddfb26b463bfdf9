"""saliency.py's work: the saliency maps of a classifier trained by train_classifier.py on its
held-out images, one file per class.
"""

import os

import numpy as np
from tqdm import tqdm

from cganlib import cli
from cganlib.cgan import reinitialized
from cganlib.classifier import (
    METHODS,
    ClassifierFileError,
    integrated_gradients_from,
    load_classifier_for,
)
from cganlib.datasets import load_prepared
from cganlib.flags import HELD_OUT_FILE
from cganlib.saved_generators import check_labels
from cganlib.storage import InputError, load_arrays, save_arrays, writable_folder

REFERENCE_CLASS = 0  # IG's class-mean baseline: healthy for X-rays (what a finding adds), the first class otherwise


def held_out_indices(classifier_path, n_images):
    """The held-out indices train_classifier.py saved beside the model, checked against the data."""
    path = os.path.join(os.path.dirname(classifier_path), HELD_OUT_FILE)
    (held_out,) = load_arrays(path, ("held_out",), "train_classifier.py")
    if held_out.ndim != 1 or not np.issubdtype(held_out.dtype, np.integer) or (held_out.size and (
            held_out.min() < 0 or held_out.max() >= n_images)):
        raise InputError(f"{path}: held-out indices do not fit the {n_images} prepared images (another data set?)")
    return held_out


def load_inputs(args):
    """(model, images, labels, held-out indices), all checked."""
    check_labels(args.labels, args.settings.n_classes, args.dataset, minimum=1)
    if args.target is not None:
        check_labels([args.target], args.settings.n_classes, args.dataset, minimum=1)
    try:
        model = load_classifier_for(args.classifier, args.settings.n_classes, args.dataset)
    except ClassifierFileError as e:
        raise InputError(str(e)) from e
    images, labels = load_prepared(args.settings, args.data_dir, args.attributes)
    held_out = held_out_indices(args.classifier, len(images))
    empty = [label for label in args.labels if not np.any(labels[held_out] == label)]
    if empty:
        raise InputError(f"no held-out images of class {empty[0]} ({args.settings.class_names[empty[0]]})")
    return model, images, labels, held_out


def explain_held_out(args):
    """saliency.py's work, once its flags are parsed: for each class, its held-out images' maps,
    IG also from a blurred copy and from the mean training image of class REFERENCE_CLASS."""
    model, images, labels, held_out = load_inputs(args)
    writable_folder(args.out_dir)
    training_side = np.setdiff1d(np.arange(len(images)), held_out)
    reference = training_side[labels[training_side] == REFERENCE_CLASS]
    if not len(reference):
        raise InputError(f"no training image of class {REFERENCE_CLASS} for IG's reference baseline")
    reference_mean = images[reference].mean(axis=0)
    if args.randomized_weights:
        model = reinitialized(model, args.seed)
    for label in tqdm(args.labels, desc="saliency", unit="class"):
        indices = held_out[labels[held_out] == label]
        target = label if args.target is None else args.target
        maps = {name: method(model, images[indices], target) for name, method in METHODS.items()}
        maps.update(integrated_gradients_from(model, images[indices], target, reference_mean))
        path = os.path.join(args.out_dir, f"saliency_{label}.npz")
        save_arrays(path, **maps, indices=indices, labels=labels[indices], target=target,
                    randomized=args.randomized_weights)
        cli.print_beside_bars(f"{path}: {', '.join(maps)} of {len(indices)} held-out images of class {label} "
                              f"({args.settings.class_names[label]}), explaining class {target}")
