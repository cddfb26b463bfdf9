"""explain_image.py's work: given images projected into a generator's latent space, generated
again under other labels, and the deltas between the reconstruction and each relabelled image,
drawn and saved; with ground-truth masks, each image's delta scored against its own mask; with
a classifier, the measures that need no masks (explanation_measures.py).
"""

import os
from functools import partial

import numpy as np

from cganlib import cgan, cli, explanation_measures, plots, projection
from cganlib.classifier import ClassifierFileError, load_classifier_for
from cganlib.datasets import load_square_image
from cganlib.delta import delta_sums, paint_levels
from cganlib.explainer import REDRAWING, switch
from cganlib.explainer_training import load_explainer
from cganlib.flags import check_classifier_set
from cganlib.saved_generators import check_classes, check_labels
from cganlib.scoring import (
    PAINT_THRESHOLD,
    load_ground_truth,
    other_targets,
    outside_change,
    prepared_order,
    score_per_image,
)
from cganlib.ssim import ssim
from cganlib.storage import (
    InputError,
    load_arrays,
    npz_keys,
    save_arrays,
    save_figure,
    writable_folder,
)

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
    images = checked_images(load_arrays(args.npz, (key,), check=partial(image_header, args.npz))[0], args.npz)
    indices = np.arange(len(images))
    if args.indices:
        indices = np.asarray(args.indices)
    elif args.indices_from:
        indices_name = indices_key(args.indices_from)
        if indices_name == "held_out":  # train_classifier.py's split: the one saved with its model
            check_classifier_set(args.indices_from)
        indices = whole_numbers(load_arrays(args.indices_from, (indices_name,))[0], args.indices_from,
                                indices_name).ravel()
    elif "indices" in keys:
        indices = whole_numbers(load_arrays(args.npz, ("indices",))[0], args.npz, "indices").ravel()
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(images):
        raise InputError(f"indices must lie in 0..{len(images) - 1}")
    if "labels" in keys:
        labels = row_labels(load_arrays(args.npz, ("labels",))[0], len(images), args.npz)[indices]
    elif args.labels_npz:
        labels = row_labels(load_arrays(args.labels_npz, ("arr_0",))[0], len(images), args.labels_npz)[indices]
    elif args.label is not None:
        labels = np.full(len(indices), args.label)
    else:
        raise InputError(f"{args.npz} has no labels array: give --labels_npz or --label")
    images = images[indices]
    images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    return images, labels.astype(np.int64), indices, os.path.splitext(os.path.basename(args.npz))[0]


def image_header(path, key, shape, dtype):
    """Refuse, from its header, an images array that is not (N, 80, 80, 3) numbers."""
    if len(shape) != 4 or shape[1:] != cgan.IMAGE_SHAPE or dtype.kind not in "fiu":
        raise InputError(f"{path}: images must be (N, 80, 80, 3), got {dtype} {shape}")


def checked_images(images, path):
    """uint8 images in 0..255, or others in [0, 1]: a float image in 0..255 would be taken for
    one 255 times brighter, a NaN would make every score NaN."""
    if images.dtype != np.uint8 and images.size and not (np.all(np.isfinite(images)) and 0 <= images.min()
                                                          and images.max() <= 1):
        raise InputError(f"{path}: images must be uint8 in 0..255 or lie in [0, 1], got {images.dtype} "
                         f"{images.min():g}..{images.max():g}")
    return images


def whole_numbers(array, path, name):
    if array.dtype.kind not in "iu":
        raise InputError(f"{path}: {name} must be whole numbers, got {array.dtype}")
    return array.astype(np.int64)


def row_labels(labels, n_images, path):
    """Labels with one whole number per image row, checked."""
    if labels.ndim != 1 or len(labels) != n_images:
        raise InputError(f"{path}: labels must be one per image row, ({n_images},), got {labels.shape}")
    return whole_numbers(labels, path, "labels")


def indices_key(path):
    """The array of row indices in an .npz: `indices`, or in train_classifier.py's held_out.npz `held_out`."""
    keys = npz_keys(path)
    return "held_out" if "indices" not in keys and "held_out" in keys else "indices"


def labelled_rows(args):
    """(images as 0..255 values, labels) of every row of --npz, which the class-mean difference
    is made of; None for --image, or when the rows have no labels of their own."""
    if not args.npz:
        return None
    keys = npz_keys(args.npz)
    if "labels" in keys:
        labels = load_arrays(args.npz, ("labels",))[0]
    elif args.labels_npz:
        labels = load_arrays(args.labels_npz, ("arr_0",))[0]
    else:
        return None
    images = load_arrays(args.npz, ("images" if "images" in keys else "arr_0",))[0]
    if len(labels) != len(images):
        raise InputError(f"{len(labels)} labels for the {len(images)} rows of {args.npz}")
    return (images if images.dtype == np.uint8 else images * 255.0), labels


# ---------------------------------------------------------------- explaining


def relabelled_images(generator, latents, labels, targets, exaggerate=0.0):
    """(N, T, 80, 80, 3): each latent generated under each target label (pushed `exaggerate` past
    it, away from the latent's own label: cgan.generate_exaggerated)."""
    return np.stack([cgan.generate_exaggerated(generator, latents, labels, target, exaggerate) for target in targets], 1)


def explanation_figure(result, class_names, rows, title, gradcam=None):
    """One row per image: given, reconstruction, then per target its image and both deltas;
    with gradcam (N, H, W), last the given image under its classifier's Grad-CAM."""
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
        if gradcam is not None:
            row.append(plots.heat_overlay(result["images"][i], gradcam[i]))
            caption.append(f"Grad-CAM {class_names[k]}")
        image_rows.append(row)
        captions.append(caption)
        names.append(f"#{result['indices'][i]}\nMSE {result['mse'][i]:.4f}\nSSIM {result['ssim'][i]:.3f}")
    return plots.image_rows(image_rows, names, title=title, captions=captions)


def ground_truth_masks(path, mask, indices, labels):
    """The masks of an .npz, one row per row of the prepared arrays. make_phantoms.py's
    ground_truth.npz (it has `names`) lists the phantoms in the order they were drawn, so its
    rows are put in prepare_xrays.py's order, and its labels must agree with the images'."""
    phantoms = {"names", "labels"} <= npz_keys(path)
    *truth, masks = load_ground_truth(path, ("names", "labels", mask) if phantoms else (mask,))
    if masks.shape[1:] != cgan.IMAGE_SHAPE[:2] or indices.max() >= len(masks):
        raise InputError(f"{path}: {mask} must be (N, 80, 80) with a row for every index")
    if phantoms:
        names, truth_labels = truth
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
    over the "n_painted" images with any painted; "outside": the mean absolute change of the
    image (grey levels in [0, 1], channels averaged) outside the mask, averaged over the images."""
    region = masks[result["indices"]].astype(bool)
    scores = []
    for t in range(len(result["targets"])):
        deltas = result["deltas"][:, t]
        painted = deltas > PAINT_THRESHOLD
        counts = painted.sum(axis=(1, 2))
        inside = (painted & region).sum(axis=(1, 2))
        used = counts > 0
        share = float(np.mean(inside[used] / counts[used])) if used.any() else 0.0
        scores.append({**score_per_image(deltas, region), "painted": share, "n_painted": int(used.sum()),
                       **({"outside": outside_change(result["images"], result["relabelled"][:, t], region)}
                          if "images" in result else {})})
    return scores


# ---------------------------------------------------------------- the run


def chosen_targets(to, labels, n_classes, model_name):
    """--to's labels, checked; by default every label the images do not have (every label if
    they have all)."""
    check_labels(sorted(set(labels.tolist())), n_classes, model_name, minimum=1)
    others = [j for j in range(n_classes) if j not in set(labels.tolist())]
    targets = to or others or list(range(n_classes))
    check_labels(targets, n_classes, model_name, minimum=1)
    return np.asarray(targets)


def explained(generator, images, labels, indices, targets, args, initial=None):
    """The arrays explain_<name>.npz holds: the images' projections (from initial's latents, an
    inversion explainer's, if given), reconstructions, relabelled images and deltas (with
    --tune_steps, the tuned copies' drawings)."""
    latents, reconstructions, mse, ssim = projection.project(
        generator, images, labels, args.steps, args.starts, args.lr, args.ssim_weight, args.seed, args.batch_size,
        initial=initial)
    if args.tune_steps:
        reconstructions, relabelled, mse, ssim = projection.pivotal_tuning(
            generator, latents, labels, images, targets, args.tune_steps, args.tune_lr, args.ssim_weight, args.exaggerate)
    else:
        relabelled = relabelled_images(generator, latents, labels, targets, args.exaggerate)
    return {
        "indices": indices, "labels": labels, "targets": targets, "latents": latents, "images": images,
        "reconstructions": reconstructions, "relabelled": relabelled,
        "deltas": delta_sums(reconstructions[:, None], relabelled), "mse": mse, "ssim": ssim,
    }


def explained_by_switch(explainer, n_classes, images, labels, indices, targets):
    """explained()'s arrays for a train_explainer.py explainer: each image switched itself (no
    latent), its "reconstruction" the image returned under its own label, the deltas the given
    image minus each switched one; an encoder-decoder's, which redraws every pixel, the
    reconstruction minus each switched one (the original's delta: one code, only the label switched)."""
    unit = images * 2.0 - 1.0  # the explainer's [-1, 1]
    own, _ = switch(explainer, unit, labels, n_classes)
    n, t = len(images), len(targets)
    switched, _ = switch(explainer, np.repeat(unit, t, axis=0), np.tile(targets, n), n_classes)
    reconstructions = (own + 1.0) / 2.0
    relabelled = ((switched + 1.0) / 2.0).reshape(n, t, *images.shape[1:])
    return {
        "indices": indices, "labels": labels, "targets": targets, "images": images,
        "reconstructions": reconstructions, "relabelled": relabelled,
        "deltas": delta_sums((reconstructions if explainer.name in REDRAWING else images)[:, None], relabelled),
        "mse": np.mean((reconstructions - images) ** 2, axis=(1, 2, 3)), "ssim": ssim(reconstructions, images).numpy(),
    }


def print_mask_scores(result, masks, mask_name):
    for j, scores in zip(result["targets"], own_mask_scores(result, masks)):
        print(f"own label brighter than label {j}, against each image's own {mask_name} mask (mean of "
              f"{scores['n']} images; chance: area {scores['area']:.3f}, ROC-AUC 0.5): ROC-AUC {scores['auc']:.3f}, "
              f"energy in {scores['energy']:.3f}, pointing {scores['pointing']:.3f}, painted@0.2 "
              f"{scores['painted']:.3f} ({scores['n_painted']} images painted), change outside {scores['outside']:.4f}")


def checked_classifier(path, n_classes, model_name):
    """--classifier's (or --judge's) model, which must know the generator's classes."""
    try:
        return load_classifier_for(path, n_classes, model_name)
    except ClassifierFileError as e:
        raise InputError(str(e)) from e


def print_measures(measures, result, steps):
    n_pairs = int(other_targets(result["labels"], result["targets"]).sum())
    for line in explanation_measures.report_lines(measures, len(result["labels"]), n_pairs, steps):
        print(line)


def explain(args):
    """explain_image.py's work, once its flags are parsed: check the inputs, explain, draw, save."""
    if args.explainer:
        explainer, run_classes, epoch = load_explainer(args.explainer)
        n_classes, model_name = len(run_classes), f"{os.path.basename(os.path.normpath(args.explainer))} (epoch {epoch})"
        args.class_names = args.class_names or run_classes
        generator = explainer.get_layer("generator") if explainer.name == "inversion" else None
        if (args.tune_steps or args.exaggerate) and generator is None:
            raise InputError(f"--tune_steps and --exaggerate act on a generator: {args.explainer} holds a switch, "
                             "not an inversion")
    else:
        try:
            generator = cgan.load_generator(args.model)
        except cgan.ModelFileError as e:
            raise InputError(str(e)) from e
        n_classes, model_name = cgan.n_classes_of(generator), os.path.basename(args.model)
    if args.class_names is not None:
        check_classes(model_name, n_classes, args.dataset, len(args.class_names))
    classifier = checked_classifier(args.classifier, n_classes, model_name) if args.classifier else None
    judge = checked_classifier(args.judge, n_classes, model_name) if args.judge else None
    images, labels, indices, name = read_one_image(args) if args.image else read_many_images(args)
    targets = chosen_targets(args.to, labels, n_classes, model_name)
    if classifier is not None:
        explanation_measures.check_targets(labels, targets)
        rows = labelled_rows(args)
    masks = ground_truth_masks(args.ground_truth, args.mask, indices, labels) if args.ground_truth else None
    cli.check_memory(len(images) * (1 + 2 * len(targets)) * images[0].nbytes, f"{len(images)} images")
    writable_folder(args.out_dir)

    if args.explainer and generator is None:
        result = explained_by_switch(explainer, n_classes, images, labels, indices, targets)
    elif args.explainer:  # an inversion's encoder gives the projection its start
        initial = explainer.get_layer("encoder").predict(images * 2.0 - 1.0, verbose=0)
        result = explained(generator, images, labels, indices, targets, args, initial)
    else:
        result = explained(generator, images, labels, indices, targets, args)
    measures = None
    if classifier is not None:
        measures = explanation_measures.measure(classifier, result, rows, args.curve_steps, args.seed, judge)
    base = os.path.join(args.out_dir, f"explain_{name}")
    save_arrays(base + ".npz", **result, **(measures.arrays if measures else {}))
    class_names = args.class_names or [str(k) for k in range(n_classes)]
    gradcam = measures.arrays["maps"][:, list(measures.arrays["curve_maps"]).index("gradcam")] if measures else None
    fig = explanation_figure(result, class_names, args.rows, f"{model_name}: {name}", gradcam)
    save_figure(fig, base + ".png", dpi=plots.DPI)
    plots.show_or_close(fig, False)
    mse, ssim = result["mse"], result["ssim"]
    print(f"reconstruction: MSE {mse.mean():.5f} (worst {mse.max():.5f}), SSIM {ssim.mean():.3f} "
          f"(worst {ssim.min():.3f}) over {len(images)} images")
    if masks is not None:
        print_mask_scores(result, masks, args.mask)
    print(f"wrote {base}.png and {base}.npz")
    if measures:
        print_measures(measures, result, args.curve_steps)
