"""Score delta heatmaps against the phantoms' ground truth: do they point at the finding?

Reads a heatmap `.npz` written by heatmaps.py on the X-ray setting (arrays `labels` (L,),
`deltas` (L, L, S, 80, 80), deltas[a, b] = signed RGB sum of images[a] - images[b]) and the
`ground_truth.npz` written by make_phantoms.py (arrays `lesion` and `lungs`, (N, 80, 80)).

A pixel is painted in the delta of a against b where it exceeds 0.2, the heatmap's lowest
colour threshold (../shared/SPEC.md section 8): where image a is brighter than image b.
  bacterial_in_lesion: of the pixels painted in "bacterial (2) brighter than healthy (0)", over
      all samples, the share inside the lesion region, the union of every image's lesion mask;
  lesion_area:         that region's share of the image, what painting at random would score;
  viral_in_lungs:      of the pixels painted in "viral (1) brighter than healthy (0)", the share
      inside the lung fields, the union of every image's lung mask;
  lung_area:           the lung fields' share of the image.
A share is 0.0 when nothing is painted; bacterial_painted and viral_painted count the pixels.

As a script: `python files/heatmap_scores.py --heatmap X.npz --ground_truth Y.npz` prints them.
"""

import argparse
import os

import numpy as np

from delta import LEVELS
from storage import InputError, fail

PAINT_THRESHOLD = min(threshold for threshold, _, _ in LEVELS)  # magenta, the faintest colour
HEALTHY, VIRAL, BACTERIAL = 0, 1, 2


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heatmap", required=True, help="a heatmap .npz from heatmaps.py (X-ray setting)")
    p.add_argument("--ground_truth", required=True, help="ground_truth.npz from make_phantoms.py")
    return p.parse_args()


def load_arrays(path, keys, made_by):
    """The named arrays of a .npz; InputError naming the file when it is unreadable or lacks one."""
    if not os.path.exists(path):
        raise InputError(f"{path} not found (make it with {made_by})")
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in keys if key in data}
    except Exception as e:
        raise InputError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from e
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise InputError(f"{path} has no array {', '.join(missing)} (is it made by {made_by}?)")
    return [arrays[key] for key in keys]


def painted_share(deltas, region, threshold=PAINT_THRESHOLD):
    """(share of the painted pixels inside region, number painted) over all samples' deltas."""
    painted = deltas > threshold
    count = int(painted.sum())
    inside = int((painted & region).sum())
    return (inside / count if count else 0.0), count


def score_arrays(labels, deltas, lesion, lungs, threshold=PAINT_THRESHOLD):
    """The scores (see the module's docstring) from the arrays themselves."""
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


def main():
    args = parse_args()
    try:
        scores = score_heatmap(args.heatmap, args.ground_truth)
    except InputError as e:
        fail(str(e))
    print(
        f"bacterial: {scores['bacterial_in_lesion']:.3f} of {scores['bacterial_painted']} painted pixels "
        f"in the lesion region (random painting: {scores['lesion_area']:.3f})"
    )
    print(
        f"viral:     {scores['viral_in_lungs']:.3f} of {scores['viral_painted']} painted pixels "
        f"in the lung fields (random painting: {scores['lung_area']:.3f})"
    )


if __name__ == "__main__":
    main()
