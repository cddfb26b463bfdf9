"""Scoring delta heatmaps against ground-truth masks: do they point at the finding?

The heatmap is a heatmaps.py `.npz` on the X-ray setting (arrays `labels` (L,), `deltas`
(L, L, S, 80, 80), deltas[a, b] = signed RGB sum of images[a] - images[b]); the truth is the
`ground_truth.npz` make_phantoms.py writes (arrays `lesion` and `lungs`, (N, 80, 80)).

A pixel is painted in the delta of a against b where it exceeds 0.2, the heatmap's lowest
colour threshold: where image a is brighter than image b.
  bacterial_in_lesion: of the pixels painted in "bacterial (2) brighter than healthy (0)", over
      all samples, the share inside the lesion region, the union of every image's lesion mask;
  lesion_area:         that region's share of the image, what painting at random would score;
  viral_in_lungs:      of the pixels painted in "viral (1) brighter than healthy (0)", the share
      inside the lung fields, the union of every image's lung mask;
  lung_area:           the lung fields' share of the image.
A share is 0.0 when nothing is painted; bacterial_painted and viral_painted count the pixels.
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
