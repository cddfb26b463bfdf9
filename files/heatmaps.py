"""Delta heatmaps from saved generators: where does switching only the
label change the image? For each generator, the same interpolated latents are generated with
every compared label, and for every pair of labels each image is painted where the other
label's image is brighter (yellow / green / magenta: summed RGB difference above 1.0 / 0.6 / 0.2).

Reads   <models_dir>/*.h5 generators, epoch = first number in the name, skipping `_gan` and
        `_dis` files (default models_dir <data_dir>/results, where training writes them; the
        original's hand-filled label_results folder works too). Keras 2 files load as well.
Writes  <out_dir>/generator_model_NNN.h5.png  the figure (default out_dir <data_dir>/heatmaps)
        <out_dir>/generator_model_NNN.h5.npz  the numbers behind it:
            labels  (L,)                          the compared labels, in order
            latents (n_samples*10, 100) float32   the interpolated latents, in row order
            images  (L, n_samples*10, 80, 80, 3)  float32 in [0, 1], generated with each label
            deltas  (L, L, n_samples*10, 80, 80)  float32, deltas[a, b] = RGB sum of images[a] - images[b]

    python files/heatmaps.py --dataset xray --epochs 345 365 380
    python files/heatmaps.py --dataset celeb --models_dir files/celeb/label_results --labels 2 1 3
"""

import itertools
import os

import numpy as np

import cgan
import cli
import plots
from delta import LEVELS, delta_sums, paint_levels
from saved_generators import (
    add_model_flags,
    check_image_memory,
    for_each_model,
    label_images,
    latents_for,
    parse_model_args,
)
from storage import InputError, fail, save_arrays, save_figure

OUT_NAME = "heatmaps"
# The original's row names for its default labels, its spelling kept: image rows, then each
# pair's two delta rows.
ORIGINAL_ROW_NAMES = {
    "celeb": (("fem", "mal"), (("delta_fem", "delta_mal"),)),
    "xray": (
        ("healthy", "viral", "bacter"),
        (("health vs viral", "viral vs health"), ("health vs bact", "bact vs health"),
         ("viral vs bact", "bact_vs viral")),
    ),
}
LEGEND_TITLE = "delta rows: the image painted where the other label's image is brighter by s (summed RGB difference)"


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    add_model_flags(p, OUT_NAME, "labels to compare, at least two (default: faces 2 1, X-rays 0 1 2, folder: every class)",
                    "latent pairs to interpolate (default: faces 3, X-rays and folder 1)")
    args = parse_model_args(p, argv, OUT_NAME)
    args.labels = tuple(args.labels or args.settings.heatmap_labels)
    args.n_samples = args.n_samples or args.settings.heatmap_samples
    return args


# ---------------------------------------------------------------- heatmaps


def row_names(settings, labels):
    """Names of the image rows and of each pair's two delta rows: the original's for the
    default labels, '<a> vs <b>' (a painted where b is brighter) from the class names otherwise."""
    if settings.name in ORIGINAL_ROW_NAMES and labels == settings.heatmap_labels:
        return ORIGINAL_ROW_NAMES[settings.name]
    names = [settings.class_names[label] for label in labels]
    pairs = [(f"{a} vs {b}", f"{b} vs {a}") for a, b in itertools.combinations(names, 2)]
    return names, pairs


def heatmap_arrays(generator, labels, latents):
    """images (L, n, 80, 80, 3) from label_images; deltas (L, L, n, 80, 80):
    deltas[a, b] = summed RGB of images[a] - images[b]."""
    images = label_images(generator, labels, latents)
    deltas = np.stack([delta_sums(images[a], images) for a in range(len(labels))])
    return images, deltas


def heatmap_rows(images, deltas, steps=cgan.INTERPOLATION_STEPS):
    """Rows of the figure, per sample: each label's images, then for each pair (i, j) the
    images of i painted where j's are brighter, and those of j painted where i's are. The
    paint comes from the deltas saved beside the figure, so figure and numbers agree."""
    rows = []
    for start in range(0, images.shape[1], steps):
        window = slice(start, start + steps)
        rows.extend(images[:, window])
        for i, j in itertools.combinations(range(len(images)), 2):
            rows.append(paint_levels(images[i, window], deltas[j, i, window]))
            rows.append(paint_levels(images[j, window], deltas[i, j, window]))
    return rows


def render_figure(images, deltas, labels, title, path, settings, steps=cgan.INTERPOLATION_STEPS):
    """Draw the heatmap of heatmap_arrays' images and deltas for these labels, save it to
    path and return it: rows named at the left, grouped by sample, a colour legend, the title."""
    image_names, pair_names = row_names(settings, tuple(labels))
    per_sample = list(image_names) + [name for pair in pair_names for name in pair]
    n_samples = images.shape[1] // steps
    fig = plots.image_rows(heatmap_rows(images, deltas, steps), per_sample * n_samples, title=title,
                           legend=legend_entries(), legend_title=LEGEND_TITLE, group_size=len(per_sample))
    save_figure(fig, path, dpi=plots.DPI)
    return fig


def legend_entries():
    """(text, colour) per level: 's > 1.0', '0.6 < s <= 1.0', '0.2 < s <= 0.6'."""
    (top, colour, _), *lower = LEVELS
    entries = [(f"s > {top}", colour)]
    for (threshold, colour, _), (above, _, _) in zip(lower, LEVELS):
        entries.append((f"{threshold} < s \u2264 {above}", colour))
    return entries


# ---------------------------------------------------------------- main


def main(argv=None):
    args = parse_args(argv)
    try:
        # the images, the deltas (L per image) and the painted figure rows
        check_image_memory(len(args.labels), args.n_samples, per_image=len(args.labels))

        def draw(epoch, path, generator):
            latents = latents_for(generator, args.seed, args.n_samples)
            images, deltas = heatmap_arrays(generator, args.labels, latents)
            out = os.path.join(args.out_dir, os.path.basename(path))
            save_arrays(out + ".npz", labels=np.asarray(args.labels), latents=latents, images=images, deltas=deltas)
            fig = render_figure(images, deltas, args.labels, os.path.basename(path), out + ".png", args.settings)
            plots.show_or_close(fig, args.show)

        for_each_model(args, draw, desc="heatmaps")
    except InputError as e:
        fail(str(e))
    print(f"figures and .npz files in {args.out_dir}")


if __name__ == "__main__":
    main()
