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

import numpy as np
from tqdm import tqdm

from cganlib import cli
from cganlib.cgan import reinitialized
from cganlib.classifier import METHODS, ClassifierFileError, load_classifier_for
from cganlib.datasets import DATASET_NAMES, dataset_settings, load_prepared
from cganlib.saved_generators import check_labels
from cganlib.storage import InputError, fail, load_arrays, save_arrays, writable_folder

HELD_OUT_FILE = "held_out.npz"  # train_classifier.py's


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--data_dir", help="folder of the prepared .npz files (default files/<dataset>)")
    p.add_argument("--classifier", help="a train_classifier.py model (default <data_dir>/classifier/classifier.keras)")
    p.add_argument("--out_dir", help="where the maps go (default <data_dir>/saliency)")
    p.add_argument("--attributes", help="faces only: attribute table (default <data_dir>/list_attr_celeba.csv, or .txt)")
    p.add_argument("--labels", type=cli.integer(0), nargs="+", metavar="LABEL",
                   help="classes whose held-out images are explained (default: every class)")
    p.add_argument("--target", type=cli.integer(0), help="explain this class's score (default: each image's own class)")
    p.add_argument("--randomized_weights", action="store_true",
                   help="explain a classifier of the same architecture with re-initialized weights (sanity check)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the re-initialized weights (default %(default)s)")
    args = p.parse_args(argv)
    args.data_dir = args.data_dir or os.path.join("files", args.dataset)
    try:
        args.settings = dataset_settings(args.dataset, args.data_dir)  # folder: the classes of its classes.json
    except InputError as e:
        p.error(str(e))
    args.classifier = args.classifier or os.path.join(args.data_dir, "classifier", "classifier.keras")
    args.out_dir = args.out_dir or os.path.join(args.data_dir, "saliency")
    args.labels = args.labels or list(range(args.settings.n_classes))
    return args


def held_out_indices(classifier_path, n_images):
    """The held-out indices train_classifier.py saved beside the model, checked against the data."""
    path = os.path.join(os.path.dirname(classifier_path), HELD_OUT_FILE)
    (held_out,) = load_arrays(path, ("held_out",), "train_classifier.py")
    if held_out.ndim != 1 or not np.issubdtype(held_out.dtype, np.integer) or (held_out.size and (
            held_out.min() < 0 or held_out.max() >= n_images)):
        raise InputError(f"{path}: held-out indices do not fit the {n_images} prepared images (another data set?)")
    return held_out


def load_inputs(args):
    """(model, images, labels, held-out indices), all checked."""
    check_labels(args.labels, args.settings.n_classes, args.dataset, minimum=1)
    if args.target is not None:
        check_labels([args.target], args.settings.n_classes, args.dataset, minimum=1)
    try:
        model = load_classifier_for(args.classifier, args.settings.n_classes, args.dataset)
    except ClassifierFileError as e:
        raise InputError(str(e)) from e
    images, labels = load_prepared(args.settings, args.data_dir, args.attributes)
    held_out = held_out_indices(args.classifier, len(images))
    empty = [label for label in args.labels if not np.any(labels[held_out] == label)]
    if empty:
        raise InputError(f"no held-out images of class {empty[0]} ({args.settings.class_names[empty[0]]})")
    return model, images, labels, held_out


def main(argv=None):
    args = parse_args(argv)
    try:
        model, images, labels, held_out = load_inputs(args)
        writable_folder(args.out_dir)
    except InputError as e:
        fail(str(e))
    if args.randomized_weights:
        model = reinitialized(model, args.seed)
    for label in tqdm(args.labels, desc="saliency", unit="class"):
        indices = held_out[labels[held_out] == label]
        target = label if args.target is None else args.target
        maps = {name: method(model, images[indices], target) for name, method in METHODS.items()}
        path = os.path.join(args.out_dir, f"saliency_{label}.npz")
        save_arrays(path, **maps, indices=indices, labels=labels[indices], target=target,
                    randomized=args.randomized_weights)
        tqdm.write(f"{path}: {', '.join(METHODS)} of {len(indices)} held-out images of class {label} "
                   f"({args.settings.class_names[label]}), explaining class {target}")


if __name__ == "__main__":
    main()
