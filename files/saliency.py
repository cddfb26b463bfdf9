"""Saliency maps of a classifier trained by train_classifier.py, on its held-out images:
CAM (Zhou et al. 2016), Grad-CAM (Selvaraju et al. 2017) and Integrated Gradients (Sundararajan
et al. 2017, black baseline, 32 steps), the maps researchers read off a classifier, to hold
beside the delta heatmaps (heatmap_scores.py scores both against the phantoms' ground truth).

Reads   --classifier (default <data_dir>/classifier/classifier.keras) and held_out.npz beside it
        (which images were held out), the prepared images in --data_dir
Writes  <out_dir>/saliency_<label>.npz for each of --labels (default out_dir <data_dir>/saliency):
            gradcam, cam, ig  (N, 80, 80) float32, one map per held-out image of that class: Grad-CAM
                              (at least 0), CAM and IG (signed; IG summed over RGB)
            indices           (N,) int64, the images' indices in the prepared arrays
            labels            (N,) the images' classes
            target            the class whose score is explained (default: the images' own class)
            randomized        whether the classifier's weights were re-initialized

--randomized_weights explains a classifier of the same architecture with freshly drawn weights
(seed --seed) instead: the model-randomization sanity check of Adebayo et al. 2018. Maps that
explain what the classifier learnt must stop pointing at the findings.

    python files/saliency.py --dataset xray --data_dir demo_run --labels 1 2
"""

import os

from cganlib import cli, flags


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    flags.add_dataset_flags(p)
    flags.add_classifier_flag(p)
    p.add_argument("--out_dir", help="where the maps go (default: <data_dir>/saliency)")
    flags.add_attributes_flag(p)
    p.add_argument("--labels", type=cli.integer(0), nargs="+", metavar="LABEL",
                   help="classes whose held-out images are explained (default: every class)")
    p.add_argument("--target", type=cli.integer(0), help="explain this class's score (default: each image's own class)")
    p.add_argument("--randomized_weights", action="store_true",
                   help="explain a classifier of the same architecture with re-initialized weights (sanity check)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the re-initialized weights")
    args = flags.parse_dataset_args(p, argv)
    args.out_dir = args.out_dir or os.path.join(args.data_dir, "saliency")
    args.labels = args.labels or list(range(args.settings.n_classes))
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import held_out_saliency

    with cli.exit_on_bad_input():
        held_out_saliency.explain_held_out(args)


if __name__ == "__main__":
    main()
