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

From every class --held_out of the images are set aside for the evaluation (and for saliency.py)
and --validation for early stopping, drawn with --seed; training stops when the validation loss
has not fallen by 0.01 for --patience epochs (or after --max_epochs) and keeps the best epoch.
Prints the held-out accuracy and the confusion matrix.

    python files/train_classifier.py --dataset xray --data_dir demo_run
"""

import os
import time

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np

from cganlib import cli
from cganlib.classifier import (
    FILTERS,
    build_classifier,
    confusion_matrix,
    fit_classifier,
    predict_classes,
    stratified_split,
)
from cganlib.datasets import DATASET_NAMES, dataset_settings, load_prepared
from cganlib.storage import InputError, atomic_write, fail, save_arrays, writable_folder

MODEL_FILE = "classifier.keras"
HELD_OUT_FILE = "held_out.npz"


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    p.add_argument("--data_dir", help="folder of the prepared .npz files (default files/<dataset>)")
    p.add_argument("--out_dir", help="where the model and the evaluation go (default <data_dir>/classifier)")
    p.add_argument("--attributes", help="faces only: attribute table (default <data_dir>/list_attr_celeba.csv, or .txt)")
    p.add_argument("--held_out", type=cli.number(0, 1, low_open=True, high_open=True), default=0.2,
                   help="share of each class held out for the evaluation (default %(default)s)")
    p.add_argument("--validation", type=cli.number(0, 1, low_open=True, high_open=True), default=0.1,
                   help="share of each class for early stopping (default %(default)s)")
    p.add_argument("--max_epochs", type=cli.POSITIVE, default=15, help="at most this many epochs (default %(default)s)")
    p.add_argument("--patience", type=cli.POSITIVE, default=3,
                   help="stop after this many epochs without a lower validation loss (default %(default)s)")
    p.add_argument("--filters", type=cli.POSITIVE, default=FILTERS[0],
                   help="width of the first convolution; each next one doubles it (default %(default)s)")
    p.add_argument("--seed", type=cli.SEED, default=0, help="seed of the split and the training (default %(default)s)")
    args = p.parse_args(argv)
    args.data_dir = args.data_dir or os.path.join("files", args.dataset)
    try:
        args.settings = dataset_settings(args.dataset, args.data_dir)  # folder: the classes of its classes.json
    except InputError as e:
        p.error(str(e))
    args.out_dir = args.out_dir or os.path.join(args.data_dir, "classifier")
    return args


def split(labels, args):
    """The stratified split; InputError when a part would be empty."""
    if args.held_out + args.validation >= 1:
        raise InputError(f"--held_out {args.held_out:g} and --validation {args.validation:g} leave nothing to train on")
    parts = stratified_split(labels, args.held_out, args.validation, args.seed)
    for name, part in zip(("training", "validation", "held-out"), parts):
        if not len(part):
            raise InputError(f"{len(labels)} images leave the {name} set empty; use more images (3 per class at least)")
    return parts


def print_evaluation(accuracy, n_right, n, confusion, class_names):
    print(f"held-out accuracy: {accuracy:.4f} ({n_right} of {n})")
    width = max(8, *(len(name) + 1 for name in class_names))
    print("confusion matrix (rows: true class, columns: predicted):")
    print(" " * width + "".join(f"{name:>{width}}" for name in class_names))
    for name, row in zip(class_names, confusion):
        print(f"{name:>{width}}" + "".join(f"{count:>{width}}" for count in row))


def main(argv=None):
    args = parse_args(argv)
    try:
        images, labels = load_prepared(args.settings, args.data_dir, args.attributes)
        train, validation, held_out = split(labels, args)
        writable_folder(args.out_dir)
    except InputError as e:
        fail(str(e))
    print(f"{len(train)} training, {len(validation)} validation and {len(held_out)} held-out images "
          f"({args.held_out:g} and {args.validation:g} of each class, seed {args.seed})", flush=True)
    keras.utils.set_random_seed(args.seed)
    start = time.time()
    model = build_classifier(args.settings.n_classes, (args.filters, 2 * args.filters, 4 * args.filters))
    history = fit_classifier(model, images, labels, train, validation, args.max_epochs, args.patience)
    seconds = time.time() - start

    predictions = predict_classes(model, images[held_out])
    confusion = confusion_matrix(labels[held_out], predictions, args.settings.n_classes)
    n_right = int(np.trace(confusion))
    accuracy = n_right / len(held_out)
    model_path = os.path.join(args.out_dir, MODEL_FILE)
    atomic_write(model_path, model.save, suffix=".keras")
    save_arrays(os.path.join(args.out_dir, HELD_OUT_FILE), train=train, validation=validation, held_out=held_out,
                labels=labels[held_out], predictions=predictions, confusion=confusion, accuracy=accuracy)
    print(f"trained {len(history.history['loss'])} epochs in {seconds:.1f} s")
    print_evaluation(accuracy, n_right, len(held_out), confusion, args.settings.class_names)
    print(f"wrote {model_path} and {os.path.join(args.out_dir, HELD_OUT_FILE)}")


if __name__ == "__main__":
    main()
