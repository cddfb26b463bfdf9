"""explain_image.py's measures that need no masks, asked of a classifier (train_classifier.py's):

  composition   the reconstructions' MSE and SSIM against the given images, and recon_agree:
                the share of reconstructions the classifier gives the image's own label. The
                delta explains the reconstruction; one the classifier reads differently
                explains nothing about the image.
  validity      flip_rate: the share of relabelled images the classifier gives the label they
                were switched to.
  faithfulness  deletion and insertion AUCs (faithfulness.py) of the given image for its own
                class, its pixels ranked by each map: the delta (the size of the change each
                other label makes, averaged over them), Grad-CAM and Integrated Gradients of the
                image's class, the class-mean difference (own class's mean image minus each
                other label's, its size averaged; from every labelled row of --npz) and a random
                map, the floor.

The curves ask the classifier, so they favour maps made from its own gradients; the delta comes
from the generator, and scores well only where the generator's idea of the label and the
classifier's agree. A judge (explain_image.py --judge: another classifier of the same classes,
from which no map is made) is asked the same: recon_agree, flip_rate and every map's curves,
its arrays and scores named judge_<name>, so that no map is scored by its own source.
"""

from typing import NamedTuple

import numpy as np

from cganlib.classifier import grad_cam, integrated_gradients, predict_classes
from cganlib.faithfulness import BLUR_SIGMA, area_under, deletion_insertion_curves
from cganlib.scoring import (
    CURVE_MAPS,
    JUDGE,
    class_mean_difference,
    other_targets,
    saved_scores,
)
from cganlib.storage import InputError

MAP_NAMES = {"delta": "delta", "gradcam": "Grad-CAM", "ig": "IG", "mean_diff": "class-mean difference",
             "random": "random"}


def classifier_pixels(images01):
    """Images in [0, 1] as the classifier takes them: 0..255 floats."""
    return np.asarray(images01, np.float32) * 255.0


def check_targets(labels, targets):
    """InputError unless every image has a label to switch to besides its own."""
    alone = [int(label) for label in np.unique(labels) if set(np.asarray(targets).tolist()) <= {int(label)}]
    if alone:
        raise InputError(f"--classifier measures the switch to another label: give --to a label besides {alone[0]}")


# ---------------------------------------------------------------- composition and validity


def reconstruction_classes(model, result):
    """The class the classifier gives each reconstruction (N,): composition's recon_agree counts them."""
    return predict_classes(model, classifier_pixels(result["reconstructions"]))


def relabelled_classes(model, result):
    """The class it gives each relabelled image (N, T): validity's flip_rate counts them."""
    relabelled = result["relabelled"]
    classes = predict_classes(model, classifier_pixels(relabelled.reshape(-1, *relabelled.shape[2:])))
    return classes.reshape(relabelled.shape[:2])


# ---------------------------------------------------------------- the maps


def delta_maps(result):
    """Per image, the size of the delta to each other label, averaged over them: (N, H, W). The
    size, since a label may make a finding darker as well as brighter."""
    others = other_targets(result["labels"], result["targets"])
    sizes = np.abs(result["deltas"]) * others[:, :, None, None]
    return sizes.sum(axis=1) / others.sum(axis=1)[:, None, None]


def own_class_maps(method, model, pixels, labels):
    """method(model, images, target)'s map of each image for its own class: (N, H, W)."""
    maps = np.zeros(pixels.shape[:3], np.float32)
    for label in np.unique(labels):
        mine = labels == label
        maps[mine] = method(model, pixels[mine], int(label))
    return maps


def class_means(images, labels, chunk=1000):
    """{label: the mean of its rows (H, W, C)}, summed a chunk at a time: a float64 copy of a
    large --npz at once would not fit in memory."""
    means = {}
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        total = sum(images[rows[start : start + chunk]].sum(axis=0, dtype=np.float64)
                    for start in range(0, len(rows), chunk))
        means[int(label)] = total / len(rows)
    return means


def mean_difference(means, label, other):
    """The size of scoring.class_mean_difference(label, other) from the class means, each passed
    as its class's only row."""
    for wanted in (label, other):
        if wanted not in means:
            raise InputError(f"no row of class {wanted} in --npz")
    pair = np.stack([means[label], means[other]])
    return np.abs(class_mean_difference(pair, np.array([label, other]), label, other))


def mean_difference_maps(rows, result):
    """Per image, the size of its class's mean image minus each other label's, averaged over them:
    (N, H, W). rows: (images 0..255, labels) of every labelled row the class means come from."""
    means = class_means(*rows)
    maps = []
    for label, others in zip(result["labels"], other_targets(result["labels"], result["targets"])):
        targets = np.asarray(result["targets"])[others]
        maps.append(np.mean([mean_difference(means, int(label), int(j)) for j in targets], axis=0))
    return np.stack(maps).astype(np.float32)


def explanation_maps(model, result, rows, rng):
    """{name: (N, H, W)} of CURVE_MAPS; without labelled rows, or without images of a class, the
    class-mean difference is left out, and the reason given: ({name: maps}, reason or None)."""
    pixels = classifier_pixels(result["images"])
    labels = np.asarray(result["labels"])
    maps = {"delta": delta_maps(result),
            "gradcam": own_class_maps(grad_cam, model, pixels, labels),
            "ig": own_class_maps(integrated_gradients, model, pixels, labels)}
    reason = "it needs --npz with labels for every row (its `labels` array or --labels_npz)"
    if rows is not None:
        try:
            maps["mean_diff"], reason = mean_difference_maps(rows, result), None
        except InputError as e:
            reason = str(e)
    maps["random"] = rng.random(pixels.shape[:3]).astype(np.float32)
    return maps, reason


# ---------------------------------------------------------------- all together


class Measures(NamedTuple):
    scores: dict  # the RESULT line's
    arrays: dict  # what explain_<name>.npz adds: the classes given, the maps, their curves and areas
    note: str | None  # why the class-mean difference was left out


def verdicts(model, result, maps, steps, seed, prefix=""):
    """What one classifier says of the result and of the maps (N, M, H, W): the classes it gives
    the reconstructions and the relabelled images, and the maps' deletion and insertion curves
    and areas; the arrays' names prefixed with prefix."""
    deletion, insertion = deletion_insertion_curves(
        model, classifier_pixels(result["images"]), np.asarray(result["labels"]), maps, steps, seed)
    arrays = {"recon_classes": reconstruction_classes(model, result),
              "relabelled_classes": relabelled_classes(model, result),
              "deletion_curves": deletion, "insertion_curves": insertion,
              "deletion_auc": area_under(deletion), "insertion_auc": area_under(insertion)}
    return {f"{prefix}{key}": value for key, value in arrays.items()}


def measure(model, result, rows, steps, seed, judge=None):
    """The Measures of explained()'s result; rows as mean_difference_maps takes them, or None.
    The maps are model's; a judge (another classifier, or None) is asked of them too."""
    rng = np.random.default_rng(seed)
    maps, note = explanation_maps(model, result, rows, rng)
    names = list(maps)
    stacked = np.stack([maps[name] for name in names], axis=1).astype(np.float32)
    arrays = {"curve_maps": np.array(names), "maps": stacked, **verdicts(model, result, stacked, steps, seed)}
    if judge is not None:
        arrays.update(verdicts(judge, result, stacked, steps, seed, JUDGE))
    return Measures(saved_scores({**result, **arrays}), arrays, note)


def area_table(scores, prefix=""):
    """The lines of a table of each map's mean deletion and insertion AUC, as the classifier whose
    scores carry prefix says."""
    lines = [f"  {'map':<22}{'deletion AUC (lower better)':>30}{'insertion AUC (higher better)':>32}"]
    for name in CURVE_MAPS:
        if f"{prefix}deletion_auc_{name}" in scores:
            lines.append(f"  {MAP_NAMES[name]:<22}{scores[f'{prefix}deletion_auc_{name}']:>30.3f}"
                         f"{scores[f'{prefix}insertion_auc_{name}']:>32.3f}")
    return lines


def report_lines(measures, n_images, n_pairs, steps):
    """What explain_image.py prints: the measures in words, a table of the areas (and with a
    judge, its verdicts and table after), the RESULT line."""
    scores = measures.scores
    composed = (f"composition: reconstruction MSE {scores['recon_mse']:.5f}, SSIM {scores['recon_ssim']:.3f}; the "
                f"classifier gives {scores['recon_agree']:.3f} of {n_images} reconstructions the image's label (recon_agree)")
    valid = f"validity: it gives {scores['flip_rate']:.3f} of {n_pairs} relabelled images their new label (flip_rate)"
    faithful = (f"faithfulness (Petsiuk et al. 2018): the probability of the image's class as its pixels, in each "
                f"map's order, are replaced by a blurred copy (sigma {BLUR_SIGMA:g} pixels) in {steps} steps; "
                f"mean of {n_images} images:")
    lines = [composed, valid, faithful, *area_table(scores)]
    if measures.note:
        lines.append(f"  (class-mean difference left out: {measures.note})")
    if f"{JUDGE}recon_agree" in scores:
        judged = (f"the judge (a classifier no map comes from) gives {scores[f'{JUDGE}recon_agree']:.3f} of "
                  f"{n_images} reconstructions the image's label ({JUDGE}recon_agree) and "
                  f"{scores[f'{JUDGE}flip_rate']:.3f} of {n_pairs} relabelled images their new label "
                  f"({JUDGE}flip_rate); its curves, as above:")
        lines += [judged, *area_table(scores, JUDGE)]
    lines.append(" ".join(["RESULT", *(f"{key}={value:.5f}" for key, value in scores.items()),
                           f"n_images={n_images}", f"n_relabelled={n_pairs}"]))
    return lines
