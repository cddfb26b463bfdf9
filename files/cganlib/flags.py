"""The flags several scripts share, and the defaults they fill in once parsed: the dataset and
its folder, the classifier train_classifier.py writes, the faces' attribute table, and the
flags of the scripts that explain saved generators (heatmaps.py, latent_walk.py, evaluate.py).
Without TensorFlow: a script parses and checks its flags before it loads anything heavy.
"""

import os

from cganlib import cli
from cganlib.datasets import DATASET_NAMES, dataset_settings, default_data_dir
from cganlib.storage import InputError, check_file_set

CLASSIFIER_DIR = "classifier"  # train_classifier.py's default out_dir, under the data folder
CLASSIFIER_FILE = "classifier.keras"
HELD_OUT_FILE = "held_out.npz"  # beside the classifier: its split and held-out evaluation
CLASSIFIER_SET = "classifier_files.json"  # the manifest of the two, written as one set (storage.save_file_set)


def check_classifier_set(path):
    """InputError unless the classifier.keras and held_out.npz in path's folder (path: either of
    them) are the set train_classifier.py wrote together: a model beside another training's split
    would take images it trained on for held out. Folders without the manifest pass as they are."""
    check_file_set(os.path.dirname(path), CLASSIFIER_SET, (CLASSIFIER_FILE, HELD_OUT_FILE), "files/train_classifier.py")


def add_dataset_flags(parser):
    """--dataset and --data_dir; parse_dataset_args fills in the folder and the settings."""
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES,
                        help="celeb, xray, or folder (your own classes, named by <data_dir>/classes.json)")
    parser.add_argument("--data_dir", help="the dataset's folder (default: files/<dataset>)")


def add_attributes_flag(parser):
    parser.add_argument("--attributes",
                        help="faces only: attribute table (default: <data_dir>/list_attr_celeba.csv, or .txt)")


def add_classifier_flag(parser):
    parser.add_argument("--classifier", help=f"a train_classifier.py model (default: <data_dir>/{CLASSIFIER_DIR}/"
                                             f"{CLASSIFIER_FILE})")


def parse_dataset_args(parser, argv):
    """Parse the flags; fill in the dataset's folder, args.settings (the dataset's settings; for
    a folder dataset, its classes.json's classes) and, where the parser has the flag, the
    classifier's path."""
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir or default_data_dir(args.dataset)
    try:
        args.settings = dataset_settings(args.dataset, args.data_dir)
    except InputError as e:
        parser.error(str(e))
    if "classifier" in args:
        args.classifier = args.classifier or os.path.join(args.data_dir, CLASSIFIER_DIR, CLASSIFIER_FILE)
    return args


def add_model_flags(parser, out_name, labels_help, n_samples_help=None):
    """The flags every script that explains saved generators takes (--n_samples where
    n_samples_help is given); parse them with parse_model_args."""
    add_dataset_flags(parser)
    parser.add_argument("--models_dir", help="folder of generator .h5 files (default: <data_dir>/results)")
    parser.add_argument("--out_dir", help=f"where the outputs go (default: <data_dir>/{out_name})")
    parser.add_argument("--epochs", type=cli.integer(0), nargs="+", metavar="N",
                        help="epochs to draw (default: every saved one)")
    parser.add_argument("--labels", type=cli.integer(0), nargs="+", metavar="LABEL", help=labels_help)
    if n_samples_help:
        parser.add_argument("--n_samples", type=cli.POSITIVE, help=n_samples_help)
    parser.add_argument("--seed", type=cli.SEED, default=0, help="seed of the latents, the same for every model")
    parser.add_argument("--show", action="store_true", help="also open each figure in a window")


def parse_model_args(parser, argv, out_name):
    """parse_dataset_args, and the folders' defaults: models under <data_dir>/results, outputs
    under <data_dir>/<out_name>."""
    args = parse_dataset_args(parser, argv)
    args.models_dir = args.models_dir or os.path.join(args.data_dir, "results")
    args.out_dir = args.out_dir or os.path.join(args.data_dir, out_name)
    return args
