"""Scoring delta heatmaps against ground-truth masks: the shares of painted pixels inside the
lesion and lung regions that heatmap_scores.py prints and the demo reports (heatmap_scores.py's
help says what each score means). Inputs: a heatmaps.py `.npz` (`labels` (L,), `deltas`
(L, L, S, 80, 80)) and make_phantoms.py's `ground_truth.npz` (`lesion`, `lungs`, (N, 80, 80)).
"""

import numpy as np

from datasets import BACTERIAL, HEALTHY, VIRAL
from delta import LEVELS
from storage import InputError, load_arrays

PAINT_THRESHOLD = min(threshold for threshold, _, _ in LEVELS)  # magenta, the faintest colour


def painted_share(deltas, region, threshold=PAINT_THRESHOLD):
    """(share of the painted pixels inside region, number painted) over all samples' deltas."""
    painted = deltas > threshold
    count = int(painted.sum())
    inside = int((painted & region).sum())
    return (inside / count if count else 0.0), count


def score_arrays(labels, deltas, lesion, lungs, threshold=PAINT_THRESHOLD):
    """The scores (see the module's docstring) from the arrays themselves."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"the heatmap's labels must be whole numbers of shape (L,), got {labels.dtype} {labels.shape}")
    labels = [int(label) for label in labels]
    for label, name in ((HEALTHY, "healthy"), (VIRAL, "viral"), (BACTERIAL, "bacterial")):
        if label not in labels:
            raise InputError(f"the heatmap has no label {label} ({name}); its labels are {labels}")
    n = len(labels)
    if deltas.ndim != 5 or deltas.shape[:2] != (n, n):
        raise InputError(f"deltas has shape {deltas.shape}, expected ({n}, {n}, samples, height, width)")
    if lesion.shape[1:] != deltas.shape[3:] or lungs.shape[1:] != deltas.shape[3:]:
        raise InputError(
            f"ground-truth masks {lesion.shape[1:]} and {lungs.shape[1:]} do not match the heatmap's {deltas.shape[3:]}"
        )
    lesion_region, lung_region = lesion.astype(bool).any(axis=0), lungs.astype(bool).any(axis=0)
    healthy, viral, bacterial = (labels.index(label) for label in (HEALTHY, VIRAL, BACTERIAL))
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
    lesion, lungs = load_arrays(ground_truth_path, ("lesion", "lungs"), "make_phantoms.py")
    return score_arrays(labels, deltas, lesion, lungs, threshold)
