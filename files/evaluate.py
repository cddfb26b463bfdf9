"""Is the generator any good? Measures of saved generators against the real images, per epoch
and class, on the project's own classifier (gan_metrics.py says what each measure is).

Reads   <models_dir>/*.h5 generators, as heatmaps.py finds them (default <data_dir>/results),
        the prepared images and labels in --data_dir, --classifier (default
        <data_dir>/classifier/classifier.keras) and the held_out.npz train_classifier.py wrote beside it
Writes  <out_dir>/evaluation.csv  (default out_dir <data_dir>/evaluation) one row per epoch and class:
            epoch, label, n, label_accuracy, diversity_gen, diversity_real, fd, kid, precision,
            recall, nn_ssim, nn_psnr
            label `all`: every evaluated class together; epoch `real`: the real-against-real floor
            (each class's real images in two random halves, one taking the generated images' place)
        <out_dir>/evaluation.png  each measure over the epochs, a line per class and `all`, the
            floor dashed in the class's colour
--embedding adds, for the last evaluated epoch NNN, real and generated images in 2-D:
        <out_dir>/embedding_eNNN.png  PCA and t-SNE of the raw pixels and of the classifier's
            features, coloured real / generated, marked by class
        <out_dir>/projector_eNNN/     the same points for TensorBoard's Embedding Projector:
            features.tsv, pixels.tsv  one point a row, tab-separated (pixels: the first 50
                                      principal components of the raw pixels)
            metadata.tsv              a header, then source (real / generated) and class per point
            sprite.png                the points' images, 40x40 each, row by row
            projector_config.pbtxt    the two embeddings (open with tensorboard --logdir <that folder>)

For each class k, --n images are generated with label k from latents drawn as in training, the
same latents for every epoch (--seed), against every real image of class k. label_accuracy is
the share the classifier assigns to k; its accuracy on its own held-out real images is printed
as the reference. A warning names each epoch and class whose generated images are much less
varied than the real ones (gan_metrics.COLLAPSE_SHARE).

    python files/evaluate.py --dataset xray --data_dir demo_run --epochs 10 20 30
    python files/evaluate.py --dataset xray --data_dir demo_run --epochs 30 --embedding
"""

from cganlib import cli, flags

OUT_NAME = "evaluation"
# evaluation.MIN_REAL_PER_CLASS, 2 * (gan_metrics.KNN_K + 1): the measures' floor splits a class's
# images in halves that need more than k neighbours each; written out so --n is checked before
# the measures' libraries load
MIN_PER_CLASS = 8


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    flags.add_model_flags(p, OUT_NAME, "classes to evaluate (default: every class)")
    flags.add_classifier_flag(p)
    flags.add_attributes_flag(p)
    p.add_argument("--n", type=cli.integer(MIN_PER_CLASS), default=500, help="images generated per class and epoch")
    p.add_argument("--embedding", action="store_true",
                   help="also draw real and generated images in 2-D (PCA, t-SNE) and write TensorBoard projector files, "
                        "for the last evaluated epoch")
    args = flags.parse_model_args(p, argv, OUT_NAME)
    args.labels = tuple(args.labels or range(args.settings.n_classes))
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import evaluation

    with cli.exit_on_bad_input():
        evaluation.run(args)


if __name__ == "__main__":
    main()
