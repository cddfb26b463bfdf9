"""Train the classifier the delta heatmaps are compared with: a small CNN (classifier.py) on the
same prepared images the GAN trains on, so that its saliency maps (saliency.py) can be scored
against the same ground truth.

Reads   <data_dir>/img_align_xray.npz + labels_align_xray.npz (X-rays, 3 classes), or
        <data_dir>/img_align_celeba_attractive.npz + ids_align_celeba_attractive.npz and the
        attribute table (faces, 4 classes), as train_cgan.py does
Writes  <out_dir>/classifier.keras  the model (default out_dir <data_dir>/classifier)
        <out_dir>/held_out.npz      the split and the held-out evaluation:
            train, validation, held_out  (n,) int64, indices into the prepared arrays
            labels, predictions          (n_held_out,) the held-out images' classes, true and predicted
            confusion                    (classes, classes) int64, confusion[true, predicted]
            accuracy                     the held-out accuracy
            architecture                 the network, "cam" or "vgg" (also the model's name:
                                         "classifier" or "classifier_vgg")
        <out_dir>/classifier_files.json  the two files' sizes and SHA-256, written as one set: the
            scripts that read them refuse a model beside another training's split

From every class --held_out of the images are set aside for the evaluation (and for saliency.py)
and --validation for early stopping, drawn with --seed; training stops when the validation loss
has not fallen by 0.01 for --patience epochs (or after --max_epochs) and keeps the best epoch.
X-rays are split by patient, where prepare_xrays.py wrote their file names (names.txt beside
the arrays): the shares are of each class's patients (a patient counts in the class most of
their images have) and all of a patient's images fall on one side, so none of the held-out
patients was seen in training. Prints the split, the held-out accuracy and the confusion matrix.

--architecture cam (the default) is the network the saliency maps are read from (a last
convolution, global average pooling, one dense layer: CAM's). --architecture vgg is another,
blocks of 3x3 convolutions and max pooling ending in the same pooling and dense layer, for a
judge: a second classifier that scores the maps (explain_image.py --judge) but makes none. A
judge is trained on the first one's split, --split_from its held_out.npz (its train, validation
and held_out arrays must together hold every image once, and its labels be the held-out
images'), with another --seed:

    python files/train_classifier.py --dataset xray --data_dir demo_run
    python files/train_classifier.py --dataset xray --data_dir demo_run --architecture vgg \
        --seed 1 --split_from demo_run/classifier/held_out.npz --out_dir demo_run/judge
"""

import os

from cganlib import cli, flags

FILTERS = 8  # the first convolution's width, classifier.FILTERS[0]; each next one doubles it
ARCHITECTURES = ("cam", "vgg")  # classifier.ARCHITECTURES' names, written out so the flags parse before TensorFlow loads


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    flags.add_dataset_flags(p)
    p.add_argument("--out_dir", help=f"where the model and the evaluation go (default: <data_dir>/{flags.CLASSIFIER_DIR})")
    flags.add_attributes_flag(p)
    p.add_argument("--held_out", type=cli.number(0, 1, low_open=True, high_open=True), default=0.2,
                   help="share of each class held out for the evaluation")
    p.add_argument("--validation", type=cli.number(0, 1, low_open=True, high_open=True), default=0.1,
                   help="share of each class for early stopping")
    p.add_argument("--max_epochs", type=cli.POSITIVE, default=15, help="at most this many epochs")
    p.add_argument("--patience", type=cli.POSITIVE, default=3,
                   help="stop after this many epochs without a lower validation loss")
    p.add_argument("--filters", type=cli.POSITIVE, default=FILTERS,
                   help="width of the first convolution; each next one doubles it")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the split and the training")
    p.add_argument("--architecture", choices=ARCHITECTURES, default="cam",
                   help="cam: the network the saliency maps are read from; vgg: another, for a judge")
    p.add_argument("--split_from",
                   help="another run's held_out.npz: take its train, validation and held-out images "
                        "(instead of --held_out, --validation and --seed's split)")
    args = flags.parse_dataset_args(p, argv)
    args.out_dir = args.out_dir or os.path.join(args.data_dir, flags.CLASSIFIER_DIR)
    return args


def main(argv=None):
    args = parse_args(argv)
    # TensorFlow loads here, after the arguments are checked
    from cganlib import classifier_training

    with cli.exit_on_bad_input():
        classifier_training.train_and_evaluate(args)


if __name__ == "__main__":
    main()
