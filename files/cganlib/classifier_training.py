"""train_classifier.py's work: the classifier trained on a stratified split of the prepared
images (of the X-rays' patients, where prepare_xrays.py named their files), evaluated on its
held-out part, and saved with the split as one set (flags.CLASSIFIER_SET).
"""

import os
import time

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np

from cganlib.classifier import (
    ARCHITECTURES,
    confusion_matrix,
    fit_classifier,
    predict_classes,
    stratified_split,
)
from cganlib.datasets import load_prepared
from cganlib.flags import CLASSIFIER_FILE, CLASSIFIER_SET, HELD_OUT_FILE
from cganlib.patients import NAMES_FILE, load_patients, patient_classes
from cganlib.storage import (
    InputError,
    load_arrays,
    npz_writer,
    save_file_set,
    writable_folder,
)

PARTS = ("training", "validation", "held-out")


def patient_split(labels, patients, held_out, validation, seed):
    """stratified_split of the patients (each counted in the class most of their images have),
    returned as the indices of their images: a patient's images all fall on one side."""
    patient_of_image, patient_labels = patient_classes(patients, labels)
    patient_parts = stratified_split(patient_labels, held_out, validation, seed)
    return tuple(np.flatnonzero(np.isin(patient_of_image, part)) for part in patient_parts)


def split(labels, args, patients=None):
    """The stratified split, by patient when their ids are given; InputError when a part would be empty."""
    if args.held_out + args.validation >= 1:
        raise InputError(f"--held_out {args.held_out:g} and --validation {args.validation:g} leave nothing to train on")
    if patients is None:
        parts = stratified_split(labels, args.held_out, args.validation, args.seed)
    else:
        parts = patient_split(labels, patients, args.held_out, args.validation, args.seed)
    unit = "images" if patients is None else "patients"
    for name, part in zip(PARTS, parts):
        if not len(part):
            raise InputError(f"{len(labels)} images leave the {name} set empty; use more {unit} (3 per class at least)")
    return parts


def split_from(path, labels):
    """The split of another train_classifier.py run, its held_out.npz's (train, validation,
    held_out); InputError unless they are whole numbers that hold each of these images once,
    leave no part empty, and the held-out images have the classes the file says (a file of
    other data would not)."""
    *parts, held_out_labels = load_arrays(path, ("train", "validation", "held_out", "labels"), "train_classifier.py")
    for name, part in zip(PARTS, parts):
        if part.ndim != 1 or part.dtype.kind not in "iu" or not len(part):
            raise InputError(f"{path}: its {name} indices must be a non-empty list of whole numbers, "
                             f"got {part.dtype} {part.shape}")
    every = np.concatenate(parts)
    if not np.array_equal(np.sort(every), np.arange(len(labels))):
        raise InputError(f"{path}: its {len(every)} indices do not hold each of the {len(labels)} images once: "
                         "the split of other data")
    if not np.array_equal(held_out_labels, labels[parts[2]]):
        raise InputError(f"{path}: its held-out images' classes differ from these images': the split of other data")
    return tuple(part.astype(np.int64) for part in parts)


def dataset_patients(args, n_images):
    """The X-rays' patient ids, or None: other data sets, and X-rays prepared before
    prepare_xrays.py wrote their file names, are split by image."""
    return load_patients(args.data_dir, n_images) if args.settings.name == "xray" else None


def print_split(parts, patients, args):
    images = ", ".join(f"{len(part)} {name}" for name, part in zip(PARTS, parts))
    share = "of each class" if patients is None else "of each class's patients"
    drawn = f"{args.held_out:g} and {args.validation:g} {share}, seed {args.seed}"
    print(f"{images} images ({f'the split of {args.split_from}' if args.split_from else drawn})", flush=True)
    if patients is not None:
        sides = ", ".join(f"{len(np.unique(patients[part]))} {name}" for name, part in zip(PARTS, parts))
        print(f"split by patient: {sides} patients", flush=True)
    elif args.settings.name == "xray":
        print(f"split by image: no {NAMES_FILE} beside the X-rays (prepare them again to split by patient)", flush=True)
    else:
        print("split by image", flush=True)


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
    patients = dataset_patients(args, len(labels))
    if args.split_from:
        train, validation, held_out = split_from(args.split_from, labels)
    else:
        train, validation, held_out = split(labels, args, patients)
    writable_folder(args.out_dir)
    print_split((train, validation, held_out), patients, args)
    keras.utils.set_random_seed(args.seed)
    start = time.time()
    model = ARCHITECTURES[args.architecture](args.settings.n_classes, (args.filters, 2 * args.filters, 4 * args.filters))
    history = fit_classifier(model, images, labels, train, validation, args.max_epochs, args.patience)
    seconds = time.time() - start

    predictions = predict_classes(model, images[held_out])
    confusion = confusion_matrix(labels[held_out], predictions, args.settings.n_classes)
    n_right = int(np.trace(confusion))
    accuracy = n_right / len(held_out)
    model_path = os.path.join(args.out_dir, CLASSIFIER_FILE)
    # one set: a model killed halfway beside the previous split would see held-out images in training
    save_file_set(args.out_dir, CLASSIFIER_SET, {
        CLASSIFIER_FILE: model.save,
        HELD_OUT_FILE: npz_writer(train=train, validation=validation, held_out=held_out, labels=labels[held_out],
                                  predictions=predictions, confusion=confusion, accuracy=accuracy,
                                  architecture=np.array(args.architecture)),
    }, suffixes={CLASSIFIER_FILE: ".keras"})
    print(f"trained {len(history.history['loss'])} epochs in {seconds:.1f} s")
    print_evaluation(accuracy, n_right, len(held_out), confusion, args.settings.class_names)
    print(f"wrote {model_path} and {os.path.join(args.out_dir, HELD_OUT_FILE)}")
