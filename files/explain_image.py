"""Explain a given image: find the latent whose image under the image's label is closest to it
(projection into the latent space), generate that latent under each other label, and paint the
delta heatmaps between the reconstruction and each relabelled image, with heatmaps.py's colours
and thresholds (summed RGB difference above 1.0 yellow, 0.6 green, 0.2 magenta).

Projection: Adam moves the latent from --starts starting points for --steps steps, minimizing
the mean squared error plus --ssim_weight x (1 - SSIM); the best start is kept. A small
generator may not reach every image: the reconstruction's error is printed and saved.

Reads   --model, a generator .h5 (ours or the original's Keras 2 files)
        --image, one picture (any format; centre-cropped to a square, or --pad, and resized to
        80x80; --grey and --equalize as prepare_folders.py), with its --label; or
        --npz, many images at once: a prepared images .npz (array arr_0) or one with arrays
        `images` and, optionally, `labels` and `indices`; rows chosen by --indices or by the
        `indices` array of --indices_from (e.g. a held-out split); labels from its `labels`, from
        --labels_npz (a prepared labels file, rows as the images'), or --label for all
Writes  <out_dir>/explain_<name>.png  per image (the first --rows): the given image, its
            reconstruction, then per other label its image, "<k> vs <j>" (the reconstruction
            painted where label j's image is brighter) and "<j> vs <k>" (the reverse)
        <out_dir>/explain_<name>.npz  indices (N,), labels (N,), targets (T,), latents (N, d),
            images, reconstructions (N, 80, 80, 3), relabelled (N, T, 80, 80, 3) in [0, 1],
            deltas (N, T, 80, 80) = summed RGB of reconstruction - relabelled image (positive
            where the image's own label makes it brighter), mse (N,), ssim (N,)
With --ground_truth (arrays of masks (N, 80, 80), rows as --indices; or make_phantoms.py's
ground_truth.npz, with --mask lesion or lungs, whose rows are matched to the prepared arrays),
it also scores each image's delta ("own label brighter") against that image's own mask as
heatmap_scores.py scores any map: pixel ROC-AUC, the share of its positive mass inside the mask,
the pointing game, and of the pixels painted at 0.2 the share inside; averaged over the images
and printed beside the masks' mean area (chance).

    python files/explain_image.py --model files/xray/results/generator_model_100.h5 \\
        --image scan.png --label 2 --to 0 --grey --equalize
"""

import os

import numpy as np

from cganlib import cgan, cli, plots, projection
from cganlib.datasets import DATASET_NAMES, dataset_settings, load_square_image
from cganlib.delta import delta_sums, paint_levels
from cganlib.saved_generators import check_labels
from cganlib.scoring import PAINT_THRESHOLD, prepared_order, score_per_image
from cganlib.storage import (
    InputError,
    fail,
    load_arrays,
    npz_keys,
    save_arrays,
    save_figure,
    writable_folder,
)


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--model", required=True, help="a generator .h5")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="name the classes as this dataset does (default: by number)")
    p.add_argument("--data_dir", help="with --dataset folder: the prepared folder dataset (its classes.json)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="one image file to explain")
    source.add_argument("--npz", help="an .npz of images to explain (arr_0, or images [+ labels, indices])")
    p.add_argument("--indices", type=cli.integer(0), nargs="+", help="with --npz: the rows to explain")
    p.add_argument("--indices_from", help="with --npz: an .npz whose `indices` array gives the rows")
    p.add_argument("--labels_npz", help="with --npz: a prepared labels .npz (arr_0), rows as the images'")
    p.add_argument("--label", type=cli.integer(0), help="the image's label (for --npz: of every image)")
    p.add_argument("--to", type=cli.integer(0), nargs="+", metavar="J", help="labels to switch to (default: every label the images do not have; every label if they have all)")
    p.add_argument("--out_dir", default="explained", help="where the figure and .npz go (default %(default)s)")
    p.add_argument("--pad", action="store_true", help="--image: pad to a square instead of cropping the centre")
    p.add_argument("--grey", action="store_true", help="--image: grey levels in 3 equal channels")
    p.add_argument("--equalize", action="store_true", help="--image with --grey: equalize its histogram")
    p.add_argument("--steps", type=cli.POSITIVE, default=projection.STEPS, help="Adam steps (default %(default)s)")
    p.add_argument("--starts", type=cli.POSITIVE, default=projection.STARTS,
                   help="starting points per image (default %(default)s)")
    p.add_argument("--lr", type=cli.RATE, default=projection.LEARNING_RATE, help="Adam's learning rate (default %(default)s)")
    p.add_argument("--ssim_weight", type=cli.number(0), default=projection.SSIM_WEIGHT,
                   help="weight of the SSIM term (default %(default)s)")
    p.add_argument("--batch_size", type=cli.POSITIVE, default=32, help="images projected together (default %(default)s)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the starting points (default %(default)s)")
    p.add_argument("--rows", type=cli.POSITIVE, default=8, help="images drawn in the figure (default %(default)s)")
    p.add_argument("--ground_truth", help="an .npz of masks to score each image's delta against (rows as --indices)")
    p.add_argument("--mask", default="lesion", help="with --ground_truth: the masks' array (default %(default)s)")
    args = p.parse_args(argv)
    if args.equalize and not args.grey:
        p.error("--equalize works on grey levels: add --grey")
    if args.image and (args.indices or args.indices_from or args.labels_npz):
        p.error("--indices, --indices_from and --labels_npz go with --npz")
    if args.image and args.label is None:
        p.error("--image needs its --label")
    return args


# ---------------------------------------------------------------- inputs


def read_one_image(args):
    """(images (1, 80, 80, 3) in [0, 1], labels (1,), indices (1,), name)."""
    pixels, reason = load_square_image(args.image, cgan.IMAGE_SHAPE[0], args.pad, args.grey, args.equalize)
    if pixels is None:
        raise InputError(f"{args.image}: {reason}")
    name = os.path.splitext(os.path.basename(args.image))[0]
    return pixels[None].astype(np.float32) / 255.0, np.array([args.label]), np.array([0]), name


def read_many_images(args):
    """(images (N, 80, 80, 3) in [0, 1], labels (N,), indices (N,), name) from --npz."""
    keys = npz_keys(args.npz)
    key = "images" if "images" in keys else "arr_0"
    images = load_arrays(args.npz, (key,))[0]
    if images.ndim != 4 or images.shape[1:] != cgan.IMAGE_SHAPE:
        raise InputError(f"{args.npz}: images must be (N, 80, 80, 3), got {images.shape}")
    indices = np.arange(len(images))
    if args.indices:
        indices = np.asarray(args.indices)
    elif args.indices_from:
        indices = load_arrays(args.indices_from, ("indices",))[0].astype(np.int64).ravel()
    elif "indices" in keys:
        indices = load_arrays(args.npz, ("indices",))[0].astype(np.int64).ravel()
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(images):
        raise InputError(f"indices must lie in 0..{len(images) - 1}")
    if "labels" in keys:
        labels = load_arrays(args.npz, ("labels",))[0][indices]
    elif args.labels_npz:
        labels = load_arrays(args.labels_npz, ("arr_0",))[0][indices]
    elif args.label is not None:
        labels = np.full(len(indices), args.label)
    else:
        raise InputError(f"{args.npz} has no labels array: give --labels_npz or --label")
    images = images[indices]
    images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    return images, labels.astype(np.int64), indices, os.path.splitext(os.path.basename(args.npz))[0]


# ---------------------------------------------------------------- explaining


def relabelled_images(generator, latents, targets):
    """(N, T, 80, 80, 3): each latent generated under each target label."""
    n = len(latents)
    images = cgan.generate(generator, np.repeat(latents, len(targets), axis=0), np.tile(targets, n))
    return images.reshape(n, len(targets), *cgan.IMAGE_SHAPE)


def explanation_figure(result, class_names, rows, title):
    """One row per image: given, reconstruction, then per target its image and both deltas."""
    image_rows, names, captions = [], [], []
    for i in range(min(rows, len(result["images"]))):
        k = int(result["labels"][i])
        row = [result["images"][i], result["reconstructions"][i]]
        caption = ["given", f"as {class_names[k]}"]
        for t, j in enumerate(result["targets"]):
            relabelled, own_brighter = result["relabelled"][i, t], result["deltas"][i, t]
            row += [relabelled, paint_levels(result["reconstructions"][i], -own_brighter),
                    paint_levels(relabelled, own_brighter)]
            caption += [f"as {class_names[j]}", f"{class_names[k]} vs {class_names[j]}",
                        f"{class_names[j]} vs {class_names[k]}"]
        image_rows.append(row)
        captions.append(caption)
        names.append(f"#{result['indices'][i]}\nMSE {result['mse'][i]:.4f}\nSSIM {result['ssim'][i]:.3f}")
    return plots.image_rows(image_rows, names, title=title, captions=captions)


def ground_truth_masks(path, mask, indices, labels):
    """The masks of an .npz, one row per row of the prepared arrays. make_phantoms.py's
    ground_truth.npz (it has `names`) lists the phantoms in the order they were drawn, so its
    rows are put in prepare_xrays.py's order, and its labels must agree with the images'."""
    keys = npz_keys(path)
    masks = load_arrays(path, (mask,))[0]
    if masks.ndim != 3 or masks.shape[1:] != cgan.IMAGE_SHAPE[:2] or indices.max() >= len(masks):
        raise InputError(f"{path}: {mask} must be (N, 80, 80) with a row for every index")
    if {"names", "labels"} <= keys:
        names, truth_labels = load_arrays(path, ("names", "labels"))
        rows = prepared_order(names)
        if not np.array_equal(truth_labels[rows][indices], labels):
            raise InputError(f"{path}: its classes differ from the images': not the phantoms these were prepared from")
        masks = masks[rows]
    return masks


def own_mask_scores(result, masks):
    """Per target: each image's delta ("own label brighter", the positive values) scored against
    that image's own mask as the heatmap scores score any map (scoring.score_per_image: ROC-AUC,
    energy inside, pointing, and "area", the masks' mean share, which the last two score by
    chance), plus "painted": of the pixels above the 0.2 threshold, the share inside, averaged
    over the "n_painted" images with any painted."""
    region = masks[result["indices"]].astype(bool)
    scores = []
    for t in range(len(result["targets"])):
        deltas = result["deltas"][:, t]
        painted = deltas > PAINT_THRESHOLD
        counts = painted.sum(axis=(1, 2))
        inside = (painted & region).sum(axis=(1, 2))
        used = counts > 0
        share = float(np.mean(inside[used] / counts[used])) if used.any() else 0.0
        scores.append({**score_per_image(deltas, region), "painted": share, "n_painted": int(used.sum())})
    return scores


def main(argv=None):
    args = parse_args(argv)
    try:
        try:
            generator = cgan.load_generator(args.model)
        except cgan.ModelFileError as e:
            raise InputError(str(e)) from e
        n_classes = cgan.n_classes_of(generator)
        class_names = None
        if args.dataset:
            class_names = dataset_settings(args.dataset, args.data_dir or os.path.join("files", args.dataset)).class_names
            if len(class_names) != n_classes:
                raise InputError(f"{args.model} has {n_classes} classes, --dataset {args.dataset} has {len(class_names)}")
        images, labels, indices, name = read_one_image(args) if args.image else read_many_images(args)
        check_labels(sorted(set(labels.tolist())), n_classes, os.path.basename(args.model), minimum=1)
        others = [j for j in range(n_classes) if j not in set(labels.tolist())]
        targets = args.to or others or list(range(n_classes))
        check_labels(targets, n_classes, os.path.basename(args.model), minimum=1)
        masks = ground_truth_masks(args.ground_truth, args.mask, indices, labels) if args.ground_truth else None
        cli.check_memory(len(images) * (1 + 2 * len(targets)) * images[0].nbytes, f"{len(images)} images")
        writable_folder(args.out_dir)
    except InputError as e:
        fail(str(e))
    latents, reconstructions, mse, ssim = projection.project(
        generator, images, labels, args.steps, args.starts, args.lr, args.ssim_weight, args.seed, args.batch_size)
    relabelled = relabelled_images(generator, latents, np.asarray(targets))
    result = {
        "indices": indices, "labels": labels, "targets": np.asarray(targets), "latents": latents, "images": images,
        "reconstructions": reconstructions, "relabelled": relabelled,
        "deltas": delta_sums(reconstructions[:, None], relabelled), "mse": mse, "ssim": ssim,
    }
    base = os.path.join(args.out_dir, f"explain_{name}")
    save_arrays(base + ".npz", **result)
    class_names = list(map(str, range(n_classes))) if class_names is None else class_names
    fig = explanation_figure(result, class_names, args.rows, f"{os.path.basename(args.model)}: {name}")
    save_figure(fig, base + ".png", dpi=plots.DPI)
    plots.show_or_close(fig, False)
    print(f"reconstruction: MSE {mse.mean():.5f} (worst {mse.max():.5f}), SSIM {ssim.mean():.3f} "
          f"(worst {ssim.min():.3f}) over {len(images)} images")
    if masks is not None:
        for j, scores in zip(targets, own_mask_scores(result, masks)):
            print(f"own label brighter than label {j}, against each image's own {args.mask} mask (mean of "
                  f"{scores['n']} images; chance: area {scores['area']:.3f}, ROC-AUC 0.5): ROC-AUC {scores['auc']:.3f}, "
                  f"energy in {scores['energy']:.3f}, pointing {scores['pointing']:.3f}, painted@0.2 "
                  f"{scores['painted']:.3f} ({scores['n_painted']} images painted)")
    print(f"wrote {base}.png and {base}.npz")


if __name__ == "__main__":
    main()
