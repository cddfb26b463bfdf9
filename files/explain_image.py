"""Explain a given image: find the latent whose image under the image's label is closest to it
(projection into the latent space), generate that latent under each other label, and paint the
delta heatmaps between the reconstruction and each relabelled image, with heatmaps.py's colours
and thresholds (summed RGB difference above 1.0 yellow, 0.6 green, 0.2 magenta).

Projection: Adam moves the latent from --starts starting points for --steps steps, minimizing
the mean squared error plus --ssim_weight x (1 - SSIM); the best start is kept. A small
generator may not reach every image: the reconstruction's error is printed and saved.

With --tune_steps N the projection is followed by pivotal tuning (Roich et al. 2022): per image,
a copy of the generator is tuned N Adam steps (--tune_lr) at the projected latent until it draws
the image itself, and that copy draws the reconstruction and the relabelled images. With
--exaggerate A each target is drawn from its label embedding pushed past it, away from the image's
own: e_target + A (e_target - e_own), a step of Singla et al.'s (2020) progressive exaggeration
(the generator's own direction between the two labels, no classifier in it).

With --explainer (a train_explainer.py run) the image itself is switched instead: no projection,
the explainer's change keeps the patient's anatomy; "reconstruction" is then the image the
explainer returns under its own label (its SSIM against the image is the explainer's fidelity),
and the deltas are the given image minus each switched one.

Reads   --model, a generator .h5 (ours or the original's Keras 2 files), or --explainer
        --image, one picture (any format; centre-cropped to a square, or --pad, and resized to
        80x80; --grey and --equalize as prepare_folders.py), with its --label; or
        --npz, many images at once: a prepared images .npz (array arr_0) or one with arrays
        `images` and, optionally, `labels` and `indices`; rows chosen by --indices or by the
        `indices` array of --indices_from (or the `held_out` array of train_classifier.py's
        held_out.npz: the held-out patients' images); labels from its `labels`, from
        --labels_npz (a prepared labels file, rows as the images'), or --label for all
Writes  <out_dir>/explain_<name>.png  per image (the first --rows): the given image, its
            reconstruction, then per other label its image, "<k> vs <j>" (the reconstruction
            painted where label j's image is brighter) and "<j> vs <k>" (the reverse); with
            --classifier, last, the given image under the classifier's Grad-CAM of its label
        <out_dir>/explain_<name>.npz  indices (N,), labels (N,), targets (T,), latents (N, d),
            images, reconstructions (N, 80, 80, 3), relabelled (N, T, 80, 80, 3) in [0, 1],
            deltas (N, T, 80, 80) = summed RGB of reconstruction - relabelled image (positive
            where the image's own label makes it brighter; --explainer: given - relabelled image),
            mse (N,), ssim (N,) of the reconstruction against the given image
With --ground_truth (arrays of masks (N, 80, 80), rows as --indices; or make_phantoms.py's
ground_truth.npz, with --mask lesion or lungs, whose rows are matched to the prepared arrays),
it also scores each image's delta ("own label brighter") against that image's own mask as
heatmap_scores.py scores any map: pixel ROC-AUC, the share of its positive mass inside the mask,
the pointing game, and of the pixels painted at 0.2 the share inside; averaged over the images
and printed beside the masks' mean area (chance); and the mean absolute change outside the mask
(grey levels in [0, 1], channels averaged: what a minimal switch leaves alone).

With --classifier (a train_classifier.py model of the same classes) it prints the measures that
need no masks (explanation_measures.py), closing with a RESULT line:
  composition   recon_mse, recon_ssim: the reconstructions against the given images;
                recon_agree: the share of reconstructions the classifier gives the image's label
  validity      flip_rate: the share of relabelled images it gives their new label
  faithfulness  deletion_auc_<map>, insertion_auc_<map> (Petsiuk et al. 2018): the classifier's
                probability of the image's class as its pixels, in the map's order, are replaced
                by a blurred copy (deletion: lower is better) or put back into it (insertion:
                higher is better), --curve_steps steps; maps: delta, gradcam, ig, mean_diff (the
                class-mean difference of the labelled rows of --npz), random (the floor)
and adds to the .npz: recon_classes (N,), relabelled_classes (N, T), curve_maps (M,) the maps'
names, maps (N, M, 80, 80) the maps themselves, deletion_curves and insertion_curves
(N, M, curve_steps + 1), deletion_auc and insertion_auc (N, M). The curves ask the classifier,
so they favour its own gradients' maps (Grad-CAM, IG); the delta comes from the generator.

With --judge (and --classifier) a second classifier of the same classes, from which no map is
made (train_classifier.py --architecture vgg --seed 1 --split_from <the first's held_out.npz>),
is asked the same of the same maps, so that Grad-CAM and IG are not scored by their own source:
it prints a second table, the RESULT line gains judge_recon_agree, judge_flip_rate,
judge_deletion_auc_<map> and judge_insertion_auc_<map>, and the .npz judge_recon_classes (N,),
judge_relabelled_classes (N, T), judge_deletion_curves and judge_insertion_curves
(N, M, curve_steps + 1), judge_deletion_auc and judge_insertion_auc (N, M).

    python files/explain_image.py --model files/xray/results/generator_model_100.h5 \\
        --image scan.png --label 2 --to 0 --grey --equalize
"""

import os

from cganlib import cli
from cganlib.datasets import DATASET_NAMES, dataset_settings, default_data_dir
from cganlib.storage import InputError

# the projection's defaults
STEPS, STARTS, LEARNING_RATE, SSIM_WEIGHT = 300, 8, 0.05, 0.2
TUNE_LR = 0.0003  # pivotal tuning's Adam rate (Roich et al. 2022: 3e-4)
CURVE_STEPS = 20  # faithfulness.CURVE_STEPS, written out so the flags parse before TensorFlow loads


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="a generator .h5: project the image into it")
    model.add_argument("--explainer", help="a train_explainer.py run folder (its newest epoch) or explainer_NNN.weights.h5: "
                                           "switch the image itself")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="name the classes as this dataset does (default: by number)")
    p.add_argument("--data_dir",
                   help="with --dataset folder: the prepared folder dataset, its classes.json (default: files/<dataset>)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="one image file to explain")
    source.add_argument("--npz", help="an .npz of images to explain (arr_0, or images [+ labels, indices])")
    p.add_argument("--indices", type=cli.integer(0), nargs="+",
                   help="with --npz: the rows to explain (default: its `indices` array, or every row)")
    p.add_argument("--indices_from", help="with --npz: an .npz whose `indices` array gives the rows")
    p.add_argument("--labels_npz", help="with --npz: a prepared labels .npz (arr_0), rows as the images'")
    p.add_argument("--label", type=cli.integer(0), help="the image's label (for --npz: of every image)")
    p.add_argument("--to", type=cli.integer(0), nargs="+", metavar="J",
                   help="labels to switch to (default: every label the images do not have; every label if they have all)")
    p.add_argument("--out_dir", default="explained", help="where the figure and .npz go")
    p.add_argument("--pad", action="store_true", help="--image: pad to a square instead of cropping the centre")
    p.add_argument("--grey", action="store_true", help="--image: grey levels in 3 equal channels")
    p.add_argument("--equalize", action="store_true", help="--image with --grey: equalize its histogram")
    p.add_argument("--steps", type=cli.integer(0), default=STEPS,
                   help="the projection's Adam steps (0: the best start, or an inversion's latent, as it is)")
    p.add_argument("--starts", type=cli.POSITIVE, default=STARTS,
                   help="starting points per image (an inversion's --explainer: its encoder's latent, one)")
    p.add_argument("--lr", type=cli.RATE, default=LEARNING_RATE, help="Adam's learning rate")
    p.add_argument("--ssim_weight", type=cli.number(0), default=SSIM_WEIGHT, help="weight of the SSIM term")
    p.add_argument("--tune_steps", type=cli.integer(0), default=0,
                   help="pivotal tuning (--model, or an inversion's --explainer): Adam steps on a copy of the "
                        "generator per image after the projection, the latent held, so that it draws the image (0: off)")
    p.add_argument("--tune_lr", type=cli.RATE, default=TUNE_LR, help="pivotal tuning's Adam rate")
    p.add_argument("--exaggerate", type=cli.number(0), default=0.0,
                   help="draw each target with its label embedding pushed this far past it, away from the "
                        "image's own label (Singla et al. 2020; 0: the original's switch)")
    p.add_argument("--batch_size", type=cli.POSITIVE, default=32, help="images projected together")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the starting points")
    p.add_argument("--rows", type=cli.POSITIVE, default=8, help="images drawn in the figure")
    p.add_argument("--ground_truth", help="an .npz of masks to score each image's delta against (rows as --indices)")
    p.add_argument("--mask", default="lesion", help="with --ground_truth: the masks' array")
    p.add_argument("--classifier", help="a train_classifier.py model: also print the measures that need no masks")
    p.add_argument("--judge", help="with --classifier: another classifier .keras of the same classes, which "
                                   "also judges the maps (no map is made from it)")
    p.add_argument("--curve_steps", type=cli.POSITIVE, default=CURVE_STEPS,
                   help="with --classifier: steps of the deletion and insertion curves")
    args = p.parse_args(argv)
    if args.equalize and not args.grey:
        p.error("--equalize works on grey levels: add --grey")
    if args.image and (args.indices or args.indices_from or args.labels_npz):
        p.error("--indices, --indices_from and --labels_npz go with --npz")
    if args.image and args.label is None:
        p.error("--image needs its --label")
    if args.judge and not args.classifier:
        p.error("--judge goes with --classifier: the maps are made from that one")
    if args.judge and os.path.realpath(args.judge) == os.path.realpath(args.classifier):
        p.error("--judge must be another classifier than --classifier, the maps' source")
    args.class_names = None
    if args.dataset:
        data_dir = args.data_dir or default_data_dir(args.dataset)
        try:
            args.class_names = dataset_settings(args.dataset, data_dir).class_names  # folder: from its classes.json
        except InputError as e:
            p.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import explanation

    with cli.exit_on_bad_input():
        explanation.explain(args)


if __name__ == "__main__":
    main()
