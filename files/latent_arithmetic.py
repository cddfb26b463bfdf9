"""Latent-vector arithmetic on faces: the average latent point of a
neutral man, minus that of a smiling man, plus that of a smiling woman, generated as a
woman (label 2) gives a neutral woman.

Step 1, with --save_points: draw 100 latent points from a standard normal and save them with
a numbered 10x10 grid of their images (labels 1 male or 2 female at random, as the original),
so you can pick which numbers look like a neutral man, a smiling man, a smiling woman.
Step 2, without it: load the points, average each group of (1-based) numbers, and draw.

Reads   <models_dir>/generator_model_NNN.h5 for --epoch NNN (default 200, models_dir <data_dir>/results)
        <out_dir>/latent_points_NNN.npz (step 2; default out_dir <data_dir>/arithmetic)
Writes  step 1: <out_dir>/latent_points_NNN.npz (arr_0: 100 x latent size) and latent_points_NNN.png
        step 2: <out_dir>/latent_arithmetic_NNN.png, each group's images and their average
                (labels 1, 1, 2) and the result (label 2), and latent_arithmetic_NNN.npz with
                its latents, labels and images (float32 in [0, 1]) in the figure's order

    python files/latent_arithmetic.py --save_points
    python files/latent_arithmetic.py --neutral_man 2 18 21 26 --smiling_man 32 44 45 47 --smiling_woman 3 55 62 80
"""

import os

import numpy as np

from cganlib import cgan, cli, plots
from cganlib.saved_generators import check_labels, chosen_generators
from cganlib.storage import (
    InputError,
    fail,
    load_npz,
    save_arrays,
    save_figure,
    save_npz,
    writable_folder,
)

N_POINTS = 100
GRID_LABELS = (1, 2)  # 1 male, 2 female with high cheekbones: the labels this script uses
# (name, option, default 1-based point numbers, label)
GROUPS = (
    ("neutral man", "neutral_man", (2, 18, 21, 26), 1),
    ("smiling man", "smiling_man", (32, 44, 45, 47), 1),
    ("smiling woman", "smiling_woman", (3, 55, 62, 80), 2),
)
RESULT_LABEL = 2
RESULT_NAME = "neutral man\n\u2212 smiling man\n+ smiling woman"


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--data_dir", default=os.path.join("files", "celeb"), help="the faces' folder (default files/celeb)")
    p.add_argument("--models_dir", help="folder of generator .h5 files (default <data_dir>/results)")
    p.add_argument("--epoch", type=cli.integer(0), default=200, help="which saved generator to use (default 200)")
    p.add_argument("--out_dir", help="where points and figures go (default <data_dir>/arithmetic)")
    p.add_argument("--points", help="the latent points file (default <out_dir>/latent_points_NNN.npz)")
    p.add_argument("--save_points", action="store_true", help="step 1: draw, save and show numbered points")
    p.add_argument("--seed", type=cli.SEED, default=1, help="seed of the points and of the grid's labels (default 1)")
    for name, option, default, label in GROUPS:
        p.add_argument(f"--{option}", type=cli.POSITIVE, nargs="+", default=list(default), metavar="K",
                       help=f"numbers of {name} points, from 1 (label {label}; default {' '.join(map(str, default))})")
    p.add_argument("--show", action="store_true", help="also open the figure in a window")
    args = p.parse_args(argv)
    args.models_dir = args.models_dir or os.path.join(args.data_dir, "results")
    args.out_dir = args.out_dir or os.path.join(args.data_dir, "arithmetic")
    args.points = args.points or os.path.join(args.out_dir, f"latent_points_{args.epoch:03d}.npz")
    return args


# ---------------------------------------------------------------- step 1: numbered points


def draw_points(rng, latent_dim, n=N_POINTS):
    return rng.standard_normal((n, latent_dim)).astype(np.float32)


def points_figure(images, labels, title, columns=10):
    """The points' images in rows of `columns`, each marked with its number (from 1) and label."""
    rows, names, captions = [], [], []
    for start in range(0, len(images), columns):
        stop = min(start + columns, len(images))
        rows.append(images[start:stop])
        names.append(f"{start + 1}-{stop}")
        captions.append([f"{k + 1} ({labels[k]})" for k in range(start, stop)])
    return plots.image_rows(rows, names, title=title, captions=captions)


def save_points(args, generator, model_name):
    rng = np.random.default_rng(args.seed)
    points = draw_points(rng, generator.inputs[0].shape[1])
    labels = rng.choice(GRID_LABELS, size=len(points))
    save_npz(args.points, points)
    fig = points_figure(cgan.generate(generator, points, labels), labels,
                        f"{model_name}: latent points (label 1 male, 2 female)")
    save_figure(fig, os.path.splitext(args.points)[0] + ".png", dpi=plots.DPI)
    plots.show_or_close(fig, args.show)


# ---------------------------------------------------------------- step 2: arithmetic


def load_points(path, latent_dim):
    points = load_npz(path, made_by="latent_arithmetic.py --save_points")
    if points.ndim != 2 or points.shape[1] != latent_dim:
        raise InputError(f"{path}: points must be (n, {latent_dim}) for this generator, got {points.shape}")
    if not np.issubdtype(points.dtype, np.number) or not np.isfinite(points).all():
        raise InputError(f"{path}: points must be finite numbers (found NaN, infinity or non-numbers)")
    return points.astype(np.float32)


def arithmetic_latents(points, groups):
    """For groups of (1-based numbers, label): each group's points then their average, and
    last the first average - the second + the third. Returns (latents, labels, row lengths)."""
    latents, labels, lengths, averages = [], [], [], []
    for numbers, label in groups:
        outside = [k for k in numbers if not 1 <= k <= len(points)]
        if outside:
            raise InputError(f"point number {outside[0]} outside 1-{len(points)}")
        group = points[np.asarray(numbers) - 1]
        averages.append(group.mean(axis=0))
        latents.extend([*group, averages[-1]])
        labels.extend([label] * (len(group) + 1))
        lengths.append(len(group) + 1)
    latents.append(averages[0] - averages[1] + averages[2])
    labels.append(RESULT_LABEL)
    lengths.append(1)
    return np.asarray(latents, dtype=np.float32), np.asarray(labels), lengths


def arithmetic_figure(images, groups, lengths, title):
    """One row per group (its images, then their average) and a last row with the result."""
    rows, captions, start = [], [], 0
    for (numbers, _), length in zip(groups, lengths):
        rows.append(images[start : start + length])
        captions.append([f"{k}" for k in numbers] + ["average"])
        start += length
    rows.append(images[start:])
    captions.append(["result"])
    names = [f"{name}\n(label {label})" for name, _, _, label in GROUPS] + [RESULT_NAME]
    return plots.image_rows(rows, names, title=title, captions=captions)


def arithmetic(args, generator, model_name):
    points = load_points(args.points, generator.inputs[0].shape[1])
    groups = [(getattr(args, option), label) for _, option, _, label in GROUPS]
    latents, labels, lengths = arithmetic_latents(points, groups)
    images = cgan.generate(generator, latents, labels)
    base = os.path.join(args.out_dir, f"latent_arithmetic_{args.epoch:03d}")
    save_arrays(base + ".npz", latents=latents, labels=labels, images=images)
    fig = arithmetic_figure(images, groups, lengths, f"{model_name}: latent arithmetic")
    save_figure(fig, base + ".png", dpi=plots.DPI)
    plots.show_or_close(fig, args.show)


def main(argv=None):
    args = parse_args(argv)
    try:
        _, path = chosen_generators(args.models_dir, [args.epoch])[0]
        writable_folder(args.out_dir)
        writable_folder(os.path.dirname(args.points) or ".")
        try:
            generator = cgan.load_generator(path)
        except cgan.ModelFileError as e:
            raise InputError(str(e)) from e
        check_labels(GRID_LABELS, cgan.n_classes_of(generator), os.path.basename(path))
        if args.save_points:
            save_points(args, generator, os.path.basename(path))
        else:
            arithmetic(args, generator, os.path.basename(path))
    except InputError as e:
        fail(str(e))
    print(f"written to {args.out_dir}")


if __name__ == "__main__":
    main()
