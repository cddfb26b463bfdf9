"""latent_walk.py's and latent_arithmetic.py's work: a generator's latent space walked (the
heatmaps' interpolated latents under every label) and added up (the averages of chosen latent
points, one group minus another plus a third).
"""

import os

import numpy as np

from cganlib import cgan, plots
from cganlib.saved_generators import (
    check_image_memory,
    check_labels,
    chosen_generators,
    for_each_model,
    label_images,
    latents_for,
)
from cganlib.storage import (
    InputError,
    load_npz,
    save_arrays,
    save_figure,
    save_npz,
    writable_folder,
)

N_POINTS = 100
GRID_LABELS = (1, 2)  # 1 male, 2 female with high cheekbones: the labels the arithmetic uses
RESULT_LABEL = 2
RESULT_NAME = "neutral man\n\u2212 smiling man\n+ smiling woman"


# ---------------------------------------------------------------- the walk


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


def draw_walks(args):
    """latent_walk.py's work, once its flags are parsed: every chosen generator's walk."""
    check_image_memory(len(args.labels), args.n_samples)

    def draw(epoch, path, generator):
        images = label_images(generator, args.labels, latents_for(generator, args.seed, args.n_samples))
        fig = walk_figure(images, args.labels, args.settings.class_names, os.path.basename(path))
        save_figure(fig, os.path.join(args.out_dir, f"latent_walk_{epoch:03d}.png"), dpi=plots.DPI)
        plots.show_or_close(fig, args.show)

    for_each_model(args, draw, desc="latent walk", minimum_labels=1)


# ---------------------------------------------------------------- the arithmetic, step 1: numbered points


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
    """Step 1: N_POINTS latent points, saved with their numbered grid under random labels."""
    rng = np.random.default_rng(args.seed)
    points = draw_points(rng, generator.inputs[0].shape[1])
    labels = rng.choice(GRID_LABELS, size=len(points))
    save_npz(args.points, points)
    fig = points_figure(cgan.generate(generator, points, labels), labels,
                        f"{model_name}: latent points (label 1 male, 2 female)")
    save_figure(fig, os.path.splitext(args.points)[0] + ".png", dpi=plots.DPI)
    plots.show_or_close(fig, args.show)


# ---------------------------------------------------------------- the arithmetic, step 2: the sum


def load_points(path, latent_dim):
    points = load_npz(path, made_by="latent_arithmetic.py --save_points")
    if points.ndim != 2 or points.shape[1] != latent_dim:
        raise InputError(f"{path}: points must be (n, {latent_dim}) for this generator, got {points.shape}")
    if not np.issubdtype(points.dtype, np.number) or not np.isfinite(points).all():
        raise InputError(f"{path}: points must be finite numbers (found NaN, infinity or non-numbers)")
    return points


def arithmetic_latents(points, groups):
    """For groups of (1-based numbers, label): each group's points then their average, and
    last the first average - the second + the third. Returns (latents, float32 as the generator
    takes them; labels; row lengths)."""
    points = np.asarray(points, np.float64)  # the original averaged its float64 points in float64
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
    """One row per group of (name, 1-based numbers, label) (its images, then their average) and
    a last row with the result."""
    rows, captions, start = [], [], 0
    for (_, numbers, _), length in zip(groups, lengths):
        rows.append(images[start : start + length])
        captions.append([f"{k}" for k in numbers] + ["average"])
        start += length
    rows.append(images[start:])
    captions.append(["result"])
    names = [f"{name}\n(label {label})" for name, _, label in groups] + [RESULT_NAME]
    return plots.image_rows(rows, names, title=title, captions=captions)


def arithmetic(args, generator, model_name):
    """Step 2: args.groups' averages added up, drawn and saved with their latents."""
    points = load_points(args.points, generator.inputs[0].shape[1])
    latents, labels, lengths = arithmetic_latents(points, [(numbers, label) for _, numbers, label in args.groups])
    images = cgan.generate(generator, latents, labels)
    base = os.path.join(args.out_dir, f"latent_arithmetic_{args.epoch:03d}")
    save_arrays(base + ".npz", latents=latents, labels=labels, images=images)
    fig = arithmetic_figure(images, args.groups, lengths, f"{model_name}: latent arithmetic")
    save_figure(fig, base + ".png", dpi=plots.DPI)
    plots.show_or_close(fig, args.show)


def points_or_arithmetic(args):
    """latent_arithmetic.py's work, once its flags are parsed: step 1 with --save_points, else step 2."""
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
