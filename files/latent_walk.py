"""Walk the latent space (the original's "vectorize" script): for each saved
generator, the heatmaps' interpolated latents (10 steps between two latent points per sample)
generated with every class label, so a row shows one label's images along the walk.

Reads   <models_dir>/*.h5 generators, chosen as heatmaps.py does (default <data_dir>/results)
Writes  <out_dir>/latent_walk_NNN.png per model (default out_dir <data_dir>/latent_walk):
        rows grouped by sample, one row of 10 images per label, each named by its label

    python files/latent_walk.py --dataset celeb --epochs 205
"""

import os

from cganlib import cgan, cli, plots
from cganlib.saved_generators import (
    add_model_flags,
    check_image_memory,
    for_each_model,
    label_images,
    latents_for,
    parse_model_args,
)
from cganlib.storage import InputError, fail, save_figure

OUT_NAME = "latent_walk"
N_SAMPLES = 3


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    add_model_flags(p, OUT_NAME, "labels to walk with (default: every class)",
                    f"latent pairs to walk between (default {N_SAMPLES})")
    args = parse_model_args(p, argv, OUT_NAME)
    args.labels = tuple(args.labels if args.labels is not None else range(args.settings.n_classes))
    args.n_samples = args.n_samples or N_SAMPLES
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
    try:
        check_image_memory(len(args.labels), args.n_samples)

        def draw(epoch, path, generator):
            images = label_images(generator, args.labels, latents_for(generator, args.seed, args.n_samples))
            fig = walk_figure(images, args.labels, args.settings.class_names, os.path.basename(path))
            save_figure(fig, os.path.join(args.out_dir, f"latent_walk_{epoch:03d}.png"), dpi=plots.DPI)
            plots.show_or_close(fig, args.show)

        for_each_model(args, draw, desc="latent walk", minimum_labels=1)
    except InputError as e:
        fail(str(e))
    print(f"figures in {args.out_dir}")


if __name__ == "__main__":
    main()
