"""Walk the latent space (SPEC.md section 9, the original "vectorize" script): for each saved
generator, the heatmaps' interpolated latents (10 steps between two latent points per sample)
generated with every class label, so a row shows one label's images along the walk.

Reads   <models_dir>/*.h5 generators, chosen as heatmaps.py does (default <data_dir>/results)
Writes  <out_dir>/latent_walk_NNN.png per model (default out_dir <data_dir>/latent_walk):
        rows grouped by sample, one row of 10 images per label, each named by its label

    python files/latent_walk.py --dataset celeb --epochs 205
"""

import argparse
import os

import cgan
import plots
from heatmaps import (
    check_labels,
    find_models,
    for_each_model,
    label_images,
    latents_for,
)
from storage import InputError, fail, save_figure, writable_folder

N_SAMPLES = 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(cgan.DATASETS))
    p.add_argument("--data_dir", help="the dataset's folder (default files/<dataset>)")
    p.add_argument("--models_dir", help="folder of generator .h5 files (default <data_dir>/results)")
    p.add_argument("--out_dir", help="where the figures go (default <data_dir>/latent_walk)")
    p.add_argument("--epochs", type=int, nargs="+", metavar="N", help="epochs to draw (default: every saved one)")
    p.add_argument("--labels", type=int, nargs="+", metavar="LABEL", help="labels to walk with (default: every class)")
    p.add_argument("--n_samples", type=int, default=N_SAMPLES, help=f"latent pairs to walk between (default {N_SAMPLES})")
    p.add_argument("--seed", type=int, default=1, help="seed of the latents, the same for every model (default 1)")
    p.add_argument("--show", action="store_true", help="also open each figure in a window")
    args = p.parse_args(argv)
    args.data_dir = args.data_dir or os.path.join("files", args.dataset)
    args.models_dir = args.models_dir or os.path.join(args.data_dir, "results")
    args.out_dir = args.out_dir or os.path.join(args.data_dir, "latent_walk")
    args.labels = tuple(args.labels if args.labels is not None else range(cgan.DATASETS[args.dataset].n_classes))
    return args


def walk_figure(images, labels, class_names, title, steps=cgan.INTERPOLATION_STEPS):
    """images (L, n_samples*steps, 80, 80, 3) as rows of `steps`, grouped by sample, each row
    named by its label and each image marked with its label digit."""
    rows, names, captions = [], [], []
    for sample, start in enumerate(range(0, images.shape[1], steps)):
        for k, label in enumerate(labels):
            rows.append(images[k, start : start + steps])
            names.append((f"sample {sample + 1}\n" if k == 0 else "") + f"{label} {class_names[label]}")
            captions.append([str(label)] * steps)
    return plots.image_rows(rows, names, title=title, captions=captions, group_size=len(labels))


def main(argv=None):
    args = parse_args(argv)
    settings = cgan.DATASETS[args.dataset]
    try:
        if args.n_samples < 1:
            raise InputError(f"--n_samples must be at least 1, got {args.n_samples}")
        check_labels(args.labels, settings.n_classes, args.dataset, minimum=1)
        models = find_models(args.models_dir, args.epochs)
        writable_folder(args.out_dir)

        def draw(epoch, path, generator):
            check_labels(args.labels, cgan.n_classes_of(generator), os.path.basename(path), minimum=1)
            images = label_images(generator, args.labels, latents_for(generator, args.seed, args.n_samples))
            fig = walk_figure(images, args.labels, settings.class_names, os.path.basename(path))
            save_figure(fig, os.path.join(args.out_dir, f"latent_walk_{epoch:03d}.png"), dpi=plots.DPI)
            plots.show_or_close(fig, args.show)

        for_each_model(models, draw, desc="latent walk")
    except InputError as e:
        fail(str(e))
    print(f"figures in {args.out_dir}")


if __name__ == "__main__":
    main()
