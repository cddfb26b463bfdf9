"""Scoring heatmaps against ground-truth masks, what heatmap_scores.py prints and the demo
reports (heatmap_scores.py's help says what each score means), with NumPy only.

Any map, a mean delta, a mean CAM, a Grad-CAM of one image, is scored the same way by
score_map: pixel ROC-AUC against the mask, the share of its positive mass inside the mask,
and the pointing game. Delta heatmaps also get today's painted share at the 0.2 threshold.
Inputs: heatmaps.py's `.npz` files (the interpolation heatmaps, `labels` (L,) and `deltas`
(L, L, S, 80, 80), and the averaged deltas), saliency.py's `.npz` files, and make_phantoms.py's
`ground_truth.npz` (`names`, `labels`, `lesion`, `lungs`, (N, 80, 80)).
"""

import numpy as np

from cganlib.datasets import BACTERIAL, HEALTHY, VIRAL
from cganlib.delta import LEVELS
from cganlib.storage import InputError, load_arrays, npz_keys

PAINT_THRESHOLD = min(threshold for threshold, _, _ in LEVELS)  # magenta, the faintest colour
# The finding that sets each class apart from healthy, the mask it is scored against, and the
# pair of labels whose delta shows it ("bacterial brighter than healthy").
FINDINGS = {BACTERIAL: "lesion", VIRAL: "lungs"}
SCORES = ("auc", "energy", "pointing", "painted")


# ---------------------------------------------------------------- one map against one mask


def pixel_auc(saliency, mask):
    """ROC-AUC of the map's values as a detector of the mask's pixels, threshold-free: the chance
    that a pixel inside outscores one outside, ties counting half (1 perfect, 0.5 chance, 0
    inverted). NaN when the mask is empty or covers everything."""
    values = np.asarray(saliency, np.float64).ravel()
    inside = np.asarray(mask, bool).ravel()
    n_inside = int(inside.sum())
    n_outside = inside.size - n_inside
    if not n_inside or not n_outside:
        return float("nan")
    _, which, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[which]  # tied values share their mean rank
    return float((ranks[inside].sum() - n_inside * (n_inside + 1) / 2) / (n_inside * n_outside))


def energy_inside(saliency, mask):
    """The share of the map's positive mass inside the mask (Score-CAM's energy-based pointing
    game); 0.0 for a map with no positive value. A map spread at random scores the mask's area."""
    positive = np.clip(np.asarray(saliency, np.float64), 0.0, None)
    total = positive.sum()
    return float(positive[np.asarray(mask, bool)].sum() / total) if total > 0 else 0.0


def pointing_hit(saliency, mask):
    """The pointing game: 1.0 when the map's maximum lies inside the mask, else 0.0; when several
    pixels share the maximum, the share of them inside (the hit rate of a random tie-break)."""
    saliency = np.asarray(saliency)
    top = saliency == saliency.max()
    return float((top & np.asarray(mask, bool)).sum() / top.sum())


def score_map(saliency, mask):
    """{"auc", "energy", "pointing"} of one (80, 80) map against one mask."""
    return {"auc": pixel_auc(saliency, mask), "energy": energy_inside(saliency, mask),
            "pointing": pointing_hit(saliency, mask)}


def score_per_image(maps, masks):
    """score_map of each map against its own mask, averaged over the images (the AUC over those
    whose mask is neither empty nor full); "n" is the number of images, "area" the masks' mean
    share of the image (what energy and pointing score by chance)."""
    if not len(maps):
        return {"auc": float("nan"), "energy": float("nan"), "pointing": float("nan"), "n": 0, "area": float("nan")}
    scores = [score_map(saliency, mask) for saliency, mask in zip(maps, masks)]
    mean = {key: float(np.nanmean([s[key] for s in scores])) for key in ("auc", "energy", "pointing")}
    return {**mean, "n": len(scores), "area": float(np.mean(masks))}


def class_map(maps):
    """One class-level map from per-image maps: their mean, each first divided by its largest
    absolute value, so that no single image's scale dominates."""
    maps = np.asarray(maps, np.float64)
    scale = np.abs(maps).max(axis=(1, 2), keepdims=True)
    return (maps / np.where(scale > 0, scale, 1.0)).mean(axis=0)


def union_regions(lesion, lungs):
    """The class-level masks: every image's lesion, and every image's lung field, united;
    InputError when one is empty (every score against it would be 0 or undefined)."""
    regions = {"lesion": np.asarray(lesion).astype(bool).any(axis=0), "lungs": np.asarray(lungs).astype(bool).any(axis=0)}
    for name, region in regions.items():
        if not region.any():
            raise InputError(f"the ground truth's {name} masks are all empty: nothing to score against")
    return regions


def check_finite(array, what):
    """InputError when an array to score holds NaN or infinity (its scores would be NaN, or wrong)."""
    if not np.all(np.isfinite(array)):
        raise InputError(f"{what} holds NaN or infinite values")


GROUND_TRUTH_KEYS = ("names", "labels", "lesion", "lungs")
ROW_KEYS = ("names", "labels")  # one per phantom, as the masks' rows


def load_ground_truth(path, keys=GROUND_TRUTH_KEYS):
    """The arrays of keys from a ground-truth .npz (make_phantoms.py's), checked: every mask array
    numbers (N, height, width), finite (NaN would count as inside: bool(nan) is True), and the
    names, labels and masks one row per phantom."""
    arrays = dict(zip(keys, load_arrays(path, keys, "make_phantoms.py")))
    for key, array in arrays.items():
        if key in ROW_KEYS:
            if array.ndim != 1:
                raise InputError(f"{path}: {key} must be one per phantom, (N,), got {array.shape}")
        elif array.dtype.kind not in "biuf" or array.ndim != 3:
            raise InputError(f"{path}: {key} must be masks of numbers (N, height, width), got {array.dtype} {array.shape}")
        else:
            check_finite(array, f"{path}: {key}")
    rows = {key: len(array) for key, array in arrays.items()}
    if len(set(rows.values())) > 1:
        raise InputError(f"{path}: its arrays must have a row per phantom each, got "
                         + ", ".join(f"{key} {n}" for key, n in rows.items()))
    return [arrays[key] for key in keys]


# ---------------------------------------------------------------- today's painted share


def painted_share(deltas, region, threshold=PAINT_THRESHOLD):
    """(share of the painted pixels inside region, number painted) over all samples' deltas."""
    painted = deltas > threshold
    count = int(painted.sum())
    inside = int((painted & region).sum())
    return (inside / count if count else 0.0), count


def score_arrays(labels, deltas, lesion, lungs, threshold=PAINT_THRESHOLD):
    """The scores (see the module's docstring) from the arrays themselves."""
    at = label_positions(labels, "the heatmap")
    n = len(labels)
    if deltas.ndim != 5 or deltas.shape[:2] != (n, n):
        raise InputError(f"deltas has shape {deltas.shape}, expected ({n}, {n}, samples, height, width)")
    if lesion.shape[1:] != deltas.shape[3:] or lungs.shape[1:] != deltas.shape[3:]:
        raise InputError(
            f"ground-truth masks {lesion.shape[1:]} and {lungs.shape[1:]} do not match the heatmap's {deltas.shape[3:]}"
        )
    if not deltas.shape[2]:
        raise InputError("the heatmap holds no samples")
    check_finite(deltas, "the heatmap's deltas")
    regions = union_regions(lesion, lungs)
    lesion_region, lung_region = regions["lesion"], regions["lungs"]
    healthy, viral, bacterial = (at[label] for label in (HEALTHY, VIRAL, BACTERIAL))
    bacterial_share, bacterial_count = painted_share(deltas[bacterial, healthy], lesion_region, threshold)
    viral_share, viral_count = painted_share(deltas[viral, healthy], lung_region, threshold)
    return {
        "bacterial_in_lesion": bacterial_share,
        "lesion_area": float(lesion_region.mean()),
        "viral_in_lungs": viral_share,
        "lung_area": float(lung_region.mean()),
        "bacterial_painted": bacterial_count,
        "viral_painted": viral_count,
    }


def score_heatmap(heatmap_path, ground_truth_path, threshold=PAINT_THRESHOLD):
    """The scores of one heatmap .npz against make_phantoms.py's ground_truth.npz."""
    labels, deltas = load_arrays(heatmap_path, ("labels", "deltas"), "heatmaps.py")
    lesion, lungs = load_ground_truth(ground_truth_path, ("lesion", "lungs"))
    return score_arrays(labels, deltas, lesion, lungs, threshold)


# ---------------------------------------------------------------- averaged deltas


def label_positions(labels, what):
    """{label: its position in labels} for healthy, viral and bacterial; InputError if one is missing."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{what}'s labels must be whole numbers of shape (L,), got {labels.dtype} {labels.shape}")
    labels = [int(label) for label in labels]
    for label, name in ((HEALTHY, "healthy"), (VIRAL, "viral"), (BACTERIAL, "bacterial")):
        if label not in labels:
            raise InputError(f"{what} has no label {label} ({name}); its labels are {labels}")
    return {label: labels.index(label) for label in (HEALTHY, VIRAL, BACTERIAL)}


def load_average(path):
    """(labels, mean, share_above) of a heatmaps.py --average file, shapes checked."""
    labels, mean, share, thresholds = load_arrays(
        path, ("labels", "mean", "share_above", "thresholds"), "heatmaps.py --average")
    n = len(labels)
    if mean.ndim != 4 or mean.shape[:2] != (n, n) or share.shape != (n, n, len(LEVELS), *mean.shape[2:]):
        raise InputError(f"{path}: mean {mean.shape} and share_above {share.shape} do not fit {n} labels")
    if not np.allclose(thresholds, [threshold for threshold, _, _ in LEVELS]):
        raise InputError(f"{path}: thresholds {thresholds.tolist()} are not the heatmap's colour levels")
    return labels, mean, share


def score_average_arrays(labels, mean, share_above, lesion, lungs):
    """{finding: scores} of averaged deltas: for the lesion the mean delta "bacterial brighter
    than healthy", for the lungs "viral brighter than healthy", each scored by score_map against
    the union region, plus "painted": of the pixels painted over all latents (s above 0.2), the
    share inside the region, today's score. Also "area", the region's share of the image."""
    at = label_positions(labels, "the averaged delta")
    check_finite(mean, "the averaged delta")
    check_finite(share_above, "the averaged delta's painted shares")
    regions = union_regions(lesion, lungs)
    if mean.shape[2:] != regions["lesion"].shape:
        raise InputError(f"ground-truth masks {regions['lesion'].shape} do not match the deltas' {mean.shape[2:]}")
    faintest = [threshold for threshold, _, _ in LEVELS].index(PAINT_THRESHOLD)
    scores = {}
    for label, finding in FINDINGS.items():
        a, b = at[label], at[HEALTHY]
        scores[finding] = {**score_map(mean[a, b], regions[finding]),
                           "painted": energy_inside(share_above[a, b, faintest], regions[finding]),
                           "area": float(regions[finding].mean())}
    return scores


def pooled_average(paths):
    """(labels, mean, share_above) of several heatmaps.py --average files (e.g. several epochs'
    generators) pooled: the mean of their means and of their shares."""
    loaded = [load_average(path) for path in paths]
    labels = loaded[0][0]
    if any(not np.array_equal(other[0], labels) or other[1].shape != loaded[0][1].shape for other in loaded):
        raise InputError("the averaged delta files to pool compare different labels")
    return labels, np.mean([m for _, m, _ in loaded], axis=0), np.mean([s for _, _, s in loaded], axis=0)


def score_averages(paths, ground_truth_path):
    """score_average_arrays of pooled_average(paths) against ground_truth.npz."""
    lesion, lungs = load_ground_truth(ground_truth_path, ("lesion", "lungs"))
    return score_average_arrays(*pooled_average(paths), lesion, lungs)


# ---------------------------------------------------------------- saliency maps


def prepared_order(names):
    """The rows of ground_truth.npz in the order of prepare_xrays.py's arrays: it reads the files
    in sorted order, folder by folder, which for make_phantoms.py's files (all one folder deep)
    is the order of their path components."""
    return np.array(sorted(range(len(names)), key=lambda row: str(names[row]).split("/")), dtype=np.int64)


def score_saliency_arrays(maps, indices, labels, target, names, truth_labels, lesion, lungs):
    """(finding, {method: {"class": scores, "image": scores}}) of saliency.py's maps of class
    `target`: the class-level map (class_map) against the union region, and every image's map
    against that image's own mask (score_per_image). The images are found in the ground truth
    by their index in the prepared arrays; InputError when their classes do not match it."""
    target = int(target)
    if target not in FINDINGS:
        raise InputError(f"maps of class {target} have no finding to score against "
                         f"(class {BACTERIAL}: the lesion, class {VIRAL}: the lungs)")
    finding = FINDINGS[target]
    rows = prepared_order(names)
    indices = np.asarray(indices)
    if not indices.size:
        raise InputError("the saliency file holds no images")
    if indices.size and (indices.min() < 0 or indices.max() >= len(rows)):
        raise InputError(f"image indices up to {indices.max()} for a ground truth of {len(rows)} images")
    rows = rows[indices]
    if not np.array_equal(np.asarray(truth_labels)[rows], labels):
        raise InputError("the images' classes differ from the ground truth's: not the phantoms the classifier's data was prepared from")
    masks = {"lesion": lesion, "lungs": lungs}[finding]
    region = union_regions(lesion, lungs)[finding]
    scores = {}
    for method, method_maps in maps.items():
        if method_maps.shape != (len(indices), *region.shape):
            raise InputError(f"{method} maps {method_maps.shape} do not fit {len(indices)} images of {region.shape}")
        check_finite(method_maps, f"the {method} maps")
        scores[method] = {"class": {**score_map(class_map(method_maps), region), "area": float(region.mean())},
                          "image": score_per_image(method_maps, masks[rows].astype(bool))}
    return finding, scores


def score_saliency(path, ground_truth_path, methods=("gradcam", "cam", "ig"), same_maps=None):
    """score_saliency_arrays of one saliency.py file against ground_truth.npz; same_maps
    ({name: (80, 80) map}) are scored beside them as if each image had that map."""
    *maps, indices, labels, target = load_arrays(path, (*methods, "indices", "labels", "target"), "saliency.py")
    truth = load_ground_truth(ground_truth_path)
    maps = dict(zip(methods, maps))
    for name, one_map in (same_maps or {}).items():
        maps[name] = np.repeat(np.asarray(one_map)[None], len(indices), axis=0)
    return score_saliency_arrays(maps, indices, labels, target, *truth)


def outside_change(images, switched, region):
    """The mean absolute change from images to switched (N, H, W, C) in [0, 1], channels
    averaged, over the pixels outside each image's region (N, H, W): what a minimal switch leaves
    alone, averaged over the images."""
    change = np.abs(np.asarray(images, np.float32) - np.asarray(switched, np.float32)).mean(axis=-1)
    return float(np.mean([c[~r].mean() for c, r in zip(change, region) if (~r).any()]))


def score_explained(path, ground_truth_path):
    """(finding, scores) of explain_image.py's per-image deltas "own label brighter than healthy"
    (its --to 0 run on phantoms of one class) against each image's own mask (score_per_image),
    and the change outside it (outside_change), the images found in the ground truth by their
    index in the prepared arrays."""
    indices, labels, targets, deltas = load_arrays(path, ("indices", "labels", "targets", "deltas"), "explain_image.py")
    names, truth_labels, lesion, lungs = load_ground_truth(ground_truth_path)
    kinds = set(np.asarray(labels).tolist())
    if len(kinds) != 1 or next(iter(kinds)) not in FINDINGS or HEALTHY not in np.asarray(targets).tolist():
        raise InputError(f"{path}: not one finding's images switched to healthy (labels {sorted(kinds)}, "
                         f"targets {np.asarray(targets).tolist()})")
    rows = prepared_order(names)[np.asarray(indices)]
    if not np.array_equal(np.asarray(truth_labels)[rows], labels):
        raise InputError(f"{path}: its images' classes differ from {ground_truth_path}'s")
    finding = FINDINGS[next(iter(kinds))]
    masks = {"lesion": lesion, "lungs": lungs}[finding][rows].astype(bool)
    healthy = list(targets).index(HEALTHY)
    scores = score_per_image(deltas[:, healthy], masks)
    if {"images", "relabelled"} <= npz_keys(path):  # explain_image.py's own files have both
        images, relabelled = load_arrays(path, ("images", "relabelled"), "explain_image.py")
        scores["outside"] = outside_change(images, relabelled[:, healthy], masks)
    return finding, scores


def class_mean_difference(images, labels, label, reference=HEALTHY):
    """The baseline that needs no model: the mean real image of class `label` minus the mean of
    class `reference`, summed over the channels (grey levels in [0, 1]), (H, W). Positive where
    the class is brighter on average, as the delta "label brighter than healthy" is."""
    images, labels = np.asarray(images, np.float64) / 255.0, np.asarray(labels)
    for wanted in (label, reference):
        if not (labels == wanted).any():
            raise InputError(f"no image of class {wanted} for the class-mean difference")
    return (images[labels == label].mean(axis=0) - images[labels == reference].mean(axis=0)).sum(axis=-1)


# ---------------------------------------------------------------- explain_image.py --classifier's measures


CURVE_MAPS = ("delta", "gradcam", "ig", "mean_diff", "random")  # the maps of the deletion and insertion curves
JUDGE = "judge_"  # the prefix of the judge's arrays and scores (explain_image.py --judge)


def other_targets(labels, targets):
    """(N, T) bool: target t is another label than image i's own."""
    return np.asarray(targets)[None, :] != np.asarray(labels)[:, None]


def agreement(result, recon_classes):
    """recon_agree: the share of reconstructions a classifier gives the image's label."""
    return float(np.mean(np.asarray(recon_classes) == np.asarray(result["labels"])))


def composition_scores(result, recon_classes):
    """The reconstructions' mean MSE and SSIM, and recon_agree: the share the classifier gives the image's label."""
    return {"recon_mse": float(np.mean(result["mse"])), "recon_ssim": float(np.mean(result["ssim"])),
            "recon_agree": agreement(result, recon_classes)}


def validity_scores(result, relabelled_classes):
    """flip_rate: the share of the (image, other label) pairs whose relabelled image the classifier gives that label."""
    flipped = np.asarray(relabelled_classes) == np.asarray(result["targets"])[None, :]
    return {"flip_rate": float(flipped[other_targets(result["labels"], result["targets"])].mean())}


def classifier_scores(arrays, prefix=""):
    """flip_rate (validity) and each curve map's mean deletion and insertion AUC, as one classifier
    says: from its arrays, named with prefix ("": the classifier the maps come from, JUDGE: the
    judge), under keys prefixed alike."""
    scores = validity_scores(arrays, arrays[f"{prefix}relabelled_classes"])
    for m, name in enumerate(np.asarray(arrays["curve_maps"]).tolist()):
        scores[f"deletion_auc_{name}"] = float(np.mean(arrays[f"{prefix}deletion_auc"][:, m]))
        scores[f"insertion_auc_{name}"] = float(np.mean(arrays[f"{prefix}insertion_auc"][:, m]))
    return {f"{prefix}{key}": value for key, value in scores.items()}


def saved_scores(arrays):
    """explain_image.py --classifier's RESULT scores, from the arrays its .npz holds: composition,
    validity, and each curve map's mean deletion and insertion AUC; with --judge, the judge's
    recon_agree, flip_rate and AUCs after them, named judge_<score>."""
    scores = composition_scores(arrays, arrays["recon_classes"])
    scores.update(classifier_scores(arrays))
    if f"{JUDGE}recon_classes" in arrays:
        scores[f"{JUDGE}recon_agree"] = agreement(arrays, arrays[f"{JUDGE}recon_classes"])
        scores.update(classifier_scores(arrays, JUDGE))
    return scores


MEASURE_ARRAYS = ("labels", "targets", "mse", "ssim", "recon_classes", "relabelled_classes", "curve_maps",
                  "deletion_auc", "insertion_auc")
JUDGE_ARRAYS = tuple(f"{JUDGE}{key}" for key in ("recon_classes", "relabelled_classes", "deletion_auc", "insertion_auc"))


def explained_measures(path):
    """saved_scores of an explain_image.py --classifier .npz (with --judge, the judge's too)."""
    made_by = "explain_image.py --classifier"
    arrays = dict(zip(MEASURE_ARRAYS, load_arrays(path, MEASURE_ARRAYS, made_by)))
    if JUDGE_ARRAYS[0] in npz_keys(path):
        arrays.update(zip(JUDGE_ARRAYS, load_arrays(path, JUDGE_ARRAYS, made_by)))
    return saved_scores(arrays)


# ---------------------------------------------------------------- the table


def format_score(value):
    return "-" if value is None or np.isnan(value) else f"{value:.3f}"


def score_table(rows):
    """Lines of a table, one row per (method, finding, map, scores) with the SCORES columns
    ("-" where a score does not apply)."""
    header = ("method", "finding", "map", "ROC-AUC", "energy in", "pointing", "painted@0.2")
    cells = [header] + [(method, finding, what, *(format_score(scores.get(key)) for key in SCORES))
                        for method, finding, what, scores in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(width) if k < 3 else cell.rjust(width) for k, (cell, width) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    return lines
