"""Score heatmaps against the phantoms' ground truth: do they point at the finding?

Reads the `ground_truth.npz` written by make_phantoms.py (arrays `names`, `labels`, `lesion` and
`lungs`, (N, 80, 80)) and any of:
  --heatmap   a heatmaps.py `.npz` on the X-ray setting (arrays `labels` (L,), `deltas`
              (L, L, S, 80, 80), deltas[a, b] = signed RGB sum of images[a] - images[b])
  --average   heatmaps.py --average files (`mean`, `share_above`); several are pooled (their mean)
  --saliency  saliency.py files of class 2 (bacterial) or 1 (viral) (`gradcam`, `cam`, `ig`)

The interpolation heatmap (--heatmap), today's score. A pixel is painted in the delta of a
against b where it exceeds 0.2, the heatmap's lowest colour threshold: where a is brighter.
  bacterial_in_lesion: of the pixels painted in "bacterial (2) brighter than healthy (0)", over
      all samples, the share inside the lesion region, the union of every image's lesion mask;
  lesion_area:         that region's share of the image, what painting at random would score;
  viral_in_lungs:      of the pixels painted in "viral (1) brighter than healthy (0)", the share
      inside the lung fields, the union of every image's lung mask;
  lung_area:           the lung fields' share of the image.
A share is 0.0 when nothing is painted; bacterial_painted and viral_painted count the pixels.

Every other map, scored the same way against a mask (the lesion for "bacterial vs healthy"
maps, the lung fields for "viral vs healthy"):
  ROC-AUC      pixel ROC-AUC of the map against the mask, threshold-free: the chance that a pixel
               inside outscores one outside (1 perfect, 0.5 chance, 0 inverted);
  energy in    the share of the map's positive mass inside the mask (chance: the mask's area);
  pointing     whether the map's maximum lies inside the mask (chance: the mask's area);
  painted@0.2  averaged deltas only: of the pixels painted over all latents, the share inside.
The averaged delta and the mean of each saliency map (each image's map divided by its largest
absolute value first) are scored against the union region; each image's saliency maps also
against that image's own mask, averaged over the images.

    python files/heatmap_scores.py --ground_truth Y.npz --heatmap X.npz    # today's two shares
    python files/heatmap_scores.py --ground_truth Y.npz --average X.h5.average.npz \
                                   --saliency saliency/saliency_1.npz saliency/saliency_2.npz
(the scoring itself is scoring.py's, which the demo uses too)
"""

from cganlib import cli
from cganlib.scoring import score_averages, score_heatmap, score_saliency, score_table

METHOD_NAMES = {"gradcam": "Grad-CAM", "cam": "CAM", "ig": "IG"}


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--ground_truth", required=True, help="ground_truth.npz from make_phantoms.py")
    p.add_argument("--heatmap", help="a heatmap .npz from heatmaps.py (X-ray setting)")
    p.add_argument("--average", nargs="+", metavar="FILE", help="heatmaps.py --average files, pooled")
    p.add_argument("--saliency", nargs="+", metavar="FILE", help="saliency.py files of class 1 or 2")
    args = p.parse_args(argv)
    if not (args.heatmap or args.average or args.saliency):
        p.error("give --heatmap, --average or --saliency (or several)")
    return args


def print_heatmap_scores(scores):
    print(
        f"bacterial: {scores['bacterial_in_lesion']:.3f} of {scores['bacterial_painted']} painted pixels "
        f"in the lesion region (random painting: {scores['lesion_area']:.3f})"
    )
    print(
        f"viral:     {scores['viral_in_lungs']:.3f} of {scores['viral_painted']} painted pixels "
        f"in the lung fields (random painting: {scores['lung_area']:.3f})"
    )


def map_rows(args):
    """Table rows for the averaged deltas and saliency maps, and the chance areas seen."""
    rows, areas = [], {}
    if args.average:
        for finding, scores in score_averages(args.average, args.ground_truth).items():
            rows.append(("delta", finding, f"mean of {len(args.average)} file(s)", scores))
            areas[f"{finding} region"] = scores["area"]
    for path in args.saliency or ():
        finding, scores = score_saliency(path, args.ground_truth)
        for method, levels in scores.items():
            rows.append((METHOD_NAMES[method], finding, "class mean", levels["class"]))
            rows.append((METHOD_NAMES[method], finding, f"per image (n={levels['image']['n']})", levels["image"]))
        areas[f"{finding} region"] = scores["gradcam"]["class"]["area"]
        areas[f"{finding} per image"] = scores["gradcam"]["image"]["area"]
    return rows, areas


def main(argv=None):
    args = parse_args(argv)
    with cli.exit_on_bad_input():
        heatmap_scores = score_heatmap(args.heatmap, args.ground_truth) if args.heatmap else None
        rows, areas = map_rows(args)
    if heatmap_scores:
        print_heatmap_scores(heatmap_scores)
    if rows:
        print("\n".join(score_table(rows)))
        print("chance: ROC-AUC 0.5; energy, pointing and painted share score the mask's area: "
              + ", ".join(f"{name} {area:.3f}" for name, area in areas.items()))


if __name__ == "__main__":
    main()
