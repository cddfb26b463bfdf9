"""Score delta heatmaps against the phantoms' ground truth: do they point at the finding?

Reads a heatmap `.npz` written by heatmaps.py on the X-ray setting (arrays `labels` (L,),
`deltas` (L, L, S, 80, 80), deltas[a, b] = signed RGB sum of images[a] - images[b]) and the
`ground_truth.npz` written by make_phantoms.py (arrays `lesion` and `lungs`, (N, 80, 80)).

A pixel is painted in the delta of a against b where it exceeds 0.2, the heatmap's lowest
colour threshold: where image a is brighter than image b.
  bacterial_in_lesion: of the pixels painted in "bacterial (2) brighter than healthy (0)", over
      all samples, the share inside the lesion region, the union of every image's lesion mask;
  lesion_area:         that region's share of the image, what painting at random would score;
  viral_in_lungs:      of the pixels painted in "viral (1) brighter than healthy (0)", the share
      inside the lung fields, the union of every image's lung mask;
  lung_area:           the lung fields' share of the image.
A share is 0.0 when nothing is painted; bacterial_painted and viral_painted count the pixels.

    python files/heatmap_scores.py --heatmap X.npz --ground_truth Y.npz   # prints them
(the scoring itself is scoring.py's, which the demo uses too)
"""

import cli
from scoring import score_heatmap
from storage import InputError, fail


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--heatmap", required=True, help="a heatmap .npz from heatmaps.py (X-ray setting)")
    p.add_argument("--ground_truth", required=True, help="ground_truth.npz from make_phantoms.py")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
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
