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

--average N (N = 1000 when not given) adds the delta as a statistic: over N latents drawn as
in training (a batch of 64 at a time), the same for every model, for each pair of labels
        <out_dir>/generator_model_NNN.h5.average.npz
            labels      (L,)                 the compared labels
            mean        (L, L, 80, 80)       float32, the mean of deltas[a, b] over the N latents
            share_above (L, L, 3, 80, 80)    float32, per pixel the share of the latents whose
                                             deltas[a, b] exceeds each threshold of `thresholds`
            thresholds  (3,)                 1.0, 0.6, 0.2 (yellow, green, magenta)
            n_latents, randomized
        <out_dir>/generator_model_NNN.h5.average.png  one panel per pair: the mean delta of the
            second label against the first, red where the second is brighter, with a colour bar
--randomized_weights re-initializes each generator's weights (seed --seed) before drawing: the
model-randomization sanity check of Adebayo et al. 2018, whose deltas must point at nothing.

    python files/heatmaps.py --dataset xray --epochs 345 365 380
    python files/heatmaps.py --dataset xray --epochs 380 --average        # plus 1,000 latents' statistics
    python files/heatmaps.py --dataset celeb --models_dir files/celeb/label_results --labels 2 1 3
"""

import itertools
import os

import numpy as np
from tqdm import tqdm

from cganlib import cgan, cli, plots
from cganlib.datasets import IMAGE_SIDE
from cganlib.delta import LEVELS, exact_delta_sums, levels_exceeded, paint_levels
from cganlib.saved_generators import (
    add_model_flags,
    check_image_memory,
    for_each_model,
    label_images,
    latents_for,
    parse_model_args,
)
from cganlib.storage import InputError, fail, save_arrays, save_figure

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
AVERAGE_LATENTS = 1000  # --average without a number


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    add_model_flags(p, OUT_NAME, "labels to compare, at least two (default: faces 2 1, X-rays 0 1 2, folder: every class)",
                    "latent pairs to interpolate (default: faces 3, X-rays and folder 1)")
    p.add_argument("--average", type=cli.POSITIVE, nargs="?", const=AVERAGE_LATENTS, metavar="N",
                   help=f"also the mean delta and threshold shares over N latents drawn as in training (N {AVERAGE_LATENTS} if not given)")
    p.add_argument("--randomized_weights", action="store_true",
                   help="re-initialize each generator's weights first (sanity check); seeded by --seed")
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
    """images (L, n, 80, 80, 3) from label_images; deltas (L, L, n, 80, 80) float64:
    deltas[a, b] = summed RGB of images[a] - images[b], as the original compared it with the
    thresholds (the .npz keeps it rounded to float32)."""
    images = label_images(generator, labels, latents)
    deltas = np.stack([exact_delta_sums(images[a], images) for a in range(len(labels))])
    return images, deltas


def heatmap_rows(images, deltas, steps=cgan.INTERPOLATION_STEPS):
    """Rows of the figure, per sample: each label's images, then for each pair (i, j) the
    images of i painted where j's are brighter, and those of j painted where i's are. The
    paint comes from heatmap_arrays' float64 deltas, the numbers saved beside the figure
    before their rounding to float32."""
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


def averaged_deltas(generator, labels, n_latents, rng, batch_size=64):
    """(mean, share_above): over n_latents latents drawn as training draws them (a batch at a
    time), mean (L, L, 80, 80) of deltas[a, b], and share_above (L, L, len(LEVELS), 80, 80), per
    pixel the share of the latents whose deltas[a, b] exceeds each level's threshold."""
    n_labels = len(labels)
    total = np.zeros((n_labels, n_labels, IMAGE_SIDE, IMAGE_SIDE), np.float64)
    above = np.zeros((n_labels, n_labels, len(LEVELS), IMAGE_SIDE, IMAGE_SIDE), np.int64)
    latent_dim = generator.inputs[0].shape[1]
    for start in tqdm(range(0, n_latents, batch_size), desc="average", unit="batch", leave=False):
        latents = cgan.training_latents(rng, min(batch_size, n_latents - start), latent_dim)
        _, deltas = heatmap_arrays(generator, labels, latents)
        total += deltas.sum(axis=2)
        above += levels_exceeded(deltas).sum(axis=2)
    return (total / n_latents).astype(np.float32), (above / n_latents).astype(np.float32)


def render_average_figure(mean, labels, n_latents, title, path, settings):
    """One panel per pair (i, j) of labels: the mean delta of j against i on one colour scale;
    saved to path and returned."""
    names = [settings.class_names[label] for label in labels]
    pairs = list(itertools.combinations(range(len(labels)), 2))
    fig = plots.signed_maps([mean[j, i] for i, j in pairs], [f"{names[j]} \u2212 {names[i]}" for i, j in pairs],
                            title=f"{title}: mean delta over {n_latents} latents (red: the first-named is brighter)",
                            colorbar_label="mean s, the summed RGB difference")
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
            if args.randomized_weights:
                generator = cgan.reinitialized(generator, args.seed)
            title = os.path.basename(path) + (" (re-initialized weights)" if args.randomized_weights else "")
            latents = latents_for(generator, args.seed, args.n_samples)
            images, deltas = heatmap_arrays(generator, args.labels, latents)
            out = os.path.join(args.out_dir, os.path.basename(path))
            save_arrays(out + ".npz", labels=np.asarray(args.labels), latents=latents, images=images,
                        deltas=deltas.astype(np.float32))
            fig = render_figure(images, deltas, args.labels, title, out + ".png", args.settings)
            plots.show_or_close(fig, args.show)
            if args.average:
                rng = np.random.default_rng(args.seed)  # every model gets the same latents
                mean, share_above = averaged_deltas(generator, args.labels, args.average, rng)
                save_arrays(out + ".average.npz", labels=np.asarray(args.labels), mean=mean, share_above=share_above,
                            thresholds=np.array([threshold for threshold, _, _ in LEVELS]), n_latents=args.average,
                            randomized=args.randomized_weights)
                fig = render_average_figure(mean, args.labels, args.average, title, out + ".average.png", args.settings)
                plots.show_or_close(fig, args.show)

        for_each_model(args, draw, desc="heatmaps")
    except InputError as e:
        fail(str(e))
    print(f"figures and .npz files in {args.out_dir}")


if __name__ == "__main__":
    main()
