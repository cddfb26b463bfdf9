"""Delta heatmaps from saved generators: where does switching only the
label change the image? For each generator, the same interpolated latents are generated with
every compared label, and for every pair of labels each image is painted where the other
label's image is brighter (yellow / green / magenta: summed RGB difference above 1.0 / 0.6 / 0.2).

Reads   <models_dir>/*.h5 generators, epoch = first number in the name, skipping `_gan` and
        `_dis` files (default models_dir <data_dir>/results, where training writes them; the
        original's hand-filled label_results folder works too). Keras 2 files load as well.
Writes  <out_dir>/generator_model_NNN.h5.png  the figure (default out_dir <data_dir>/heatmaps)
        <out_dir>/generator_model_NNN.h5.npz  the numbers behind it:
            labels  (L,)                          the compared labels, in order
            latents (n_samples*10, 100) float32   the interpolated latents, in row order
            images  (L, n_samples*10, 80, 80, 3)  float32 in [0, 1], generated with each label
            deltas  (L, L, n_samples*10, 80, 80)  float32, deltas[a, b] = RGB sum of images[a] - images[b]
A heatmap that paints nothing (no delta above 0.2) is named in a warning with its largest
delta: the generator draws the same image for every label, so it needs more training.

--average N (N = 1000 when not given) adds the delta as a statistic: over N latents drawn as
in training (a batch of 64 at a time), the same for every model, for each pair of labels
        <out_dir>/generator_model_NNN.h5.average.npz
            labels      (L,)                 the compared labels
            mean        (L, L, 80, 80)       float32, the mean of deltas[a, b] over the N latents
            share_above (L, L, 3, 80, 80)    float32, per pixel the share of the latents whose
                                             deltas[a, b] exceeds each threshold of `thresholds`
            thresholds  (3,)                 1.0, 0.6, 0.2 (yellow, green, magenta)
            n_latents, randomized
        <out_dir>/generator_model_NNN.h5.average.png  one panel per pair: the mean delta of the
            second label against the first, red where the second is brighter, with a colour bar
--randomized_weights re-initializes each generator's weights (seed --seed) before drawing: the
model-randomization sanity check of Adebayo et al. 2018, whose deltas must point at nothing.

    python files/heatmaps.py --dataset xray --epochs 345 365 380
    python files/heatmaps.py --dataset xray --epochs 380 --average        # plus 1,000 latents' statistics
    python files/heatmaps.py --dataset celeb --models_dir files/celeb/label_results --labels 2 1 3
"""

from cganlib import cli, flags

OUT_NAME = "heatmaps"
AVERAGE_LATENTS = 1000  # --average without a number


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    flags.add_model_flags(p, OUT_NAME, "labels to compare, at least two (default: faces 2 1, X-rays 0 1 2, folder: every class)",
                    "latent pairs to interpolate (default: faces 3, X-rays and folder 1)")
    p.add_argument("--average", type=cli.POSITIVE, nargs="?", const=AVERAGE_LATENTS, metavar="N",
                   help=f"also the mean delta and threshold shares over N latents drawn as in training (N {AVERAGE_LATENTS} "
                        "if not given; default: off)")
    p.add_argument("--randomized_weights", action="store_true",
                   help="re-initialize each generator's weights first (sanity check); seeded by --seed")
    args = flags.parse_model_args(p, argv, OUT_NAME)
    args.labels = tuple(args.labels or args.settings.heatmap_labels)
    args.n_samples = args.n_samples or args.settings.heatmap_samples
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import delta_heatmaps

    with cli.exit_on_bad_input():
        delta_heatmaps.draw_every_model(args)
    print(f"figures and .npz files in {args.out_dir}")


if __name__ == "__main__":
    main()
