"""heatmaps.py's work: the delta heatmaps of saved generators. For each generator, the same
interpolated latents generated with every compared label (heatmap_arrays), each pair's deltas
painted into figure rows (heatmap_rows, render_figure), and with --average the delta as a
statistic over many latents (averaged_deltas, render_average_figure).
"""

import itertools
import os

import numpy as np
from tqdm import tqdm

from cganlib import cgan, cli, plots
from cganlib.datasets import IMAGE_SIDE
from cganlib.delta import LEVELS, exact_delta_sums, levels_exceeded, paint_levels
from cganlib.saved_generators import (
    check_image_memory,
    for_each_model,
    label_images,
    latents_for,
)
from cganlib.scoring import PAINT_THRESHOLD
from cganlib.storage import save_arrays, save_figure

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
GENERATION_BATCH = 64  # latents generated at a time for the averaged delta


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


def averaged_deltas(generator, labels, n_latents, rng, batch_size=GENERATION_BATCH):
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


# ---------------------------------------------------------------- per model file


def unpainted_warning(deltas, figure_path):
    """The warning line for a heatmap that paints nothing (no pixel's delta above the lowest
    threshold, as paint_levels compares), or None."""
    largest = float(deltas.max())  # deltas[a, b] = -deltas[b, a]: the largest of either direction
    if largest > PAINT_THRESHOLD:
        return None
    return (f"warning: {figure_path} paints nothing: the largest delta (summed RGB difference) is {largest:.3g}, not "
            f"above the lowest threshold {PAINT_THRESHOLD}; the generator draws the same image for every label - "
            "train it longer")


def draw_average(args, generator, title, out):
    """The delta over args.average latents drawn as in training: out.average.npz and .png."""
    rng = np.random.default_rng(args.seed)  # every model gets the same latents
    mean, share_above = averaged_deltas(generator, args.labels, args.average, rng)
    save_arrays(out + ".average.npz", labels=np.asarray(args.labels), mean=mean, share_above=share_above,
                thresholds=np.array([threshold for threshold, _, _ in LEVELS]), n_latents=args.average,
                randomized=args.randomized_weights)
    fig = render_average_figure(mean, args.labels, args.average, title, out + ".average.png", args.settings)
    plots.show_or_close(fig, args.show)


def draw_model(args, path, generator):
    """One generator's heatmap, its numbers, and with --average its averaged delta, in args.out_dir."""
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
    warning = unpainted_warning(deltas, out + ".png")
    if warning:
        cli.print_beside_bars(warning)
    if args.average:
        draw_average(args, generator, title, out)


def draw_every_model(args):
    """heatmaps.py's work, once its flags are parsed: every chosen generator's heatmaps."""
    # the images, the deltas (L per image) and the painted figure rows
    check_image_memory(len(args.labels), args.n_samples, per_image=len(args.labels))
    for_each_model(args, lambda epoch, path, generator: draw_model(args, path, generator), desc="heatmaps")
