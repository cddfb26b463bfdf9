"""Delta heatmaps from saved generators (SPEC.md section 8): where does switching only the
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

import argparse
import itertools
import os
import re
import sys

import numpy as np
from tqdm import tqdm

import cgan
import plots
from delta import LEVELS, delta_sums, paint_levels
from storage import InputError, fail, save_arrays, save_figure, writable_folder

# The original's row names for its default labels: image rows, then each pair's two delta rows.
ORIGINAL_ROW_NAMES = {
    "celeb": (("fem", "mal"), (("delta_fem", "delta_mal"),)),
    "xray": (
        ("healthy", "viral", "bacter"),
        (("health vs viral", "viral vs health"), ("health vs bacter", "bacter vs health"),
         ("viral vs bacter", "bacter vs viral")),
    ),
}
LEGEND_TITLE = "delta rows: the image painted where the other label's image is brighter by s (summed RGB difference)"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(cgan.DATASETS))
    p.add_argument("--data_dir", help="the dataset's folder (default files/<dataset>)")
    p.add_argument("--models_dir", help="folder of generator .h5 files (default <data_dir>/results)")
    p.add_argument("--out_dir", help="where figures and .npz files go (default <data_dir>/heatmaps)")
    p.add_argument("--epochs", type=int, nargs="+", metavar="N", help="epochs to draw (default: every saved one)")
    p.add_argument("--labels", type=int, nargs="+", metavar="LABEL",
                   help="labels to compare, at least two (default: faces 2 1, X-rays 0 1 2)")
    p.add_argument("--n_samples", type=int, help="latent pairs to interpolate (default: faces 3, X-rays 1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the latents, the same for every model (default 1)")
    p.add_argument("--show", action="store_true", help="also open each figure in a window")
    args = p.parse_args(argv)
    settings = cgan.DATASETS[args.dataset]
    args.data_dir = args.data_dir or os.path.join("files", args.dataset)
    args.models_dir = args.models_dir or os.path.join(args.data_dir, "results")
    args.out_dir = args.out_dir or os.path.join(args.data_dir, "heatmaps")
    args.labels = tuple(args.labels or settings.heatmap_labels)
    args.n_samples = settings.heatmap_samples if args.n_samples is None else args.n_samples
    return args


# ---------------------------------------------------------------- inputs


def find_models(models_dir, epochs=None):
    """(epoch, path) of the generators in models_dir, by epoch, those in epochs only if given."""
    if not os.path.isdir(models_dir):
        raise InputError(f"models folder {models_dir} not found")
    found = []
    for name in os.listdir(models_dir):
        number = re.search(r"\d+", name.removesuffix(".h5"))  # not the 5 of ".h5"
        # hidden names include the temporary files of writes still in progress
        if name.endswith(".h5") and "_gan" not in name and "_dis" not in name and not name.startswith(".") and number:
            found.append((int(number.group()), os.path.join(models_dir, name)))
    found.sort()
    if not found:
        raise InputError(f"no generator .h5 files in {models_dir}")
    chosen = [(epoch, path) for epoch, path in found if epochs is None or epoch in epochs]
    if not chosen:
        have = ", ".join(str(epoch) for epoch in sorted({epoch for epoch, _ in found}))
        raise InputError(f"no generators for epochs {' '.join(map(str, epochs))} in {models_dir}; epochs found: {have}")
    return chosen


def check_labels(labels, n_classes, what, minimum=2):
    """InputError unless labels are at least `minimum` different classes of n_classes."""
    if len(labels) < minimum:
        raise InputError(f"need at least {minimum} labels, got {' '.join(map(str, labels)) or 'none'}")
    if len(set(labels)) != len(labels):
        raise InputError(f"labels must differ, got {' '.join(map(str, labels))}")
    outside = [label for label in labels if not 0 <= label < n_classes]
    if outside:
        raise InputError(f"label {outside[0]} outside {what}'s {n_classes} classes (0-{n_classes - 1})")


def row_names(settings, labels):
    """Names of the image rows and of each pair's two delta rows: the original's for the
    default labels, '<a> vs <b>' (a painted where b is brighter) from the class names otherwise."""
    if labels == settings.heatmap_labels:
        return ORIGINAL_ROW_NAMES[settings.name]
    names = [settings.class_names[label] for label in labels]
    pairs = [(f"{a} vs {b}", f"{b} vs {a}") for a, b in itertools.combinations(names, 2)]
    return names, pairs


def latents_for(generator, seed, n_samples):
    """The heatmap latents for this generator's latent size; the same seed gives every model
    the same latents, so epochs can be compared."""
    return cgan.heatmap_latents(np.random.default_rng(seed), n_samples, generator.inputs[0].shape[1])


# ---------------------------------------------------------------- heatmaps


def label_images(generator, labels, latents):
    """(L, n, 80, 80, 3) in [0, 1]: the n latents generated with each of the L labels."""
    n = len(latents)
    images = cgan.generate(generator, np.tile(latents, (len(labels), 1)), np.repeat(np.asarray(labels), n))
    return images.reshape(len(labels), n, *cgan.IMAGE_SHAPE)


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


def for_each_model(models, work, desc):
    """Load each (epoch, path) generator and call work(epoch, path, generator); a file that
    cannot be used is reported and skipped, and the run ends in an error naming them all."""
    failed = []
    for epoch, path in tqdm(models, desc=desc, unit="model"):
        try:
            work(epoch, path, cgan.load_generator(path))
        except (cgan.ModelFileError, InputError) as e:
            tqdm.write(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
            failed.append(os.path.basename(path))
    if failed:
        raise InputError(f"{len(failed)} of {len(models)} model files could not be used: {', '.join(failed)}")


def main(argv=None):
    args = parse_args(argv)
    settings = cgan.DATASETS[args.dataset]
    try:
        if args.n_samples < 1:
            raise InputError(f"--n_samples must be at least 1, got {args.n_samples}")
        check_labels(args.labels, settings.n_classes, args.dataset)
        models = find_models(args.models_dir, args.epochs)
        writable_folder(args.out_dir)

        def draw(epoch, path, generator):
            check_labels(args.labels, cgan.n_classes_of(generator), os.path.basename(path))
            latents = latents_for(generator, args.seed, args.n_samples)
            images, deltas = heatmap_arrays(generator, args.labels, latents)
            out = os.path.join(args.out_dir, os.path.basename(path))
            save_arrays(out + ".npz", labels=np.asarray(args.labels), latents=latents, images=images, deltas=deltas)
            fig = render_figure(images, deltas, args.labels, os.path.basename(path), out + ".png", settings)
            plots.show_or_close(fig, args.show)

        for_each_model(models, draw, desc="heatmaps")
    except InputError as e:
        fail(str(e))
    print(f"figures and .npz files in {args.out_dir}")


if __name__ == "__main__":
    main()
