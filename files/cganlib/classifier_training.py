"""train_classifier.py's work: the classifier trained on a stratified split of the prepared
images, evaluated on its held-out part, and saved with the split.
"""

import os
import time

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np

from cganlib.classifier import (
    build_classifier,
    confusion_matrix,
    fit_classifier,
    predict_classes,
    stratified_split,
)
from cganlib.datasets import load_prepared
from cganlib.flags import CLASSIFIER_FILE, HELD_OUT_FILE
from cganlib.storage import InputError, atomic_write, save_arrays, writable_folder


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


def train_and_evaluate(args):
    """train_classifier.py's work, once its flags are parsed: split, train, evaluate, save."""
    images, labels = load_prepared(args.settings, args.data_dir, args.attributes)
    train, validation, held_out = split(labels, args)
    writable_folder(args.out_dir)
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
    model_path = os.path.join(args.out_dir, CLASSIFIER_FILE)
    atomic_write(model_path, model.save, suffix=".keras")
    save_arrays(os.path.join(args.out_dir, HELD_OUT_FILE), train=train, validation=validation, held_out=held_out,
                labels=labels[held_out], predictions=predictions, confusion=confusion, accuracy=accuracy)
    print(f"trained {len(history.history['loss'])} epochs in {seconds:.1f} s")
    print_evaluation(accuracy, n_right, len(held_out), confusion, args.settings.class_names)
    print(f"wrote {model_path} and {os.path.join(args.out_dir, HELD_OUT_FILE)}")
