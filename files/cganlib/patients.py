"""Which patient each prepared chest X-ray shows, so that a held-out split keeps a patient's
images on one side: a patient's other X-ray on the training side would leak into the held-out
score. Kermany et al.'s file names say it: `person<N>_virus_<M>.jpeg` and
`person<N>_bacteria_<M>.jpeg` are pneumonia patient N; `IM-<N>-<M>.jpeg` and
`NORMAL2-IM-<N>-<M>.jpeg` are normal patient N (both forms counted as one patient: merging two
patients costs a little balance, splitting one would leak). Any other file is its own patient.

prepare_xrays.py writes every kept row's file name into NAMES_FILE beside the arrays, one a
line, relative to its --images folder. NumPy only.
"""

import os
import re

import numpy as np

from cganlib.storage import InputError, open_regular

NAMES_FILE = "names.txt"  # beside img_align_xray.npz: row i's source file
PNEUMONIA_PATIENT = re.compile(r"person(\d+)_")
NORMAL_PATIENT = re.compile(r"(?:NORMAL2-)?IM-(\d+)-")


def patient_id(name):
    """`person<N>` or `IM-<N>` (N without leading zeros) from a Kermany file name; any other name
    is its own patient."""
    base = os.path.basename(name)
    for pattern, prefix in ((PNEUMONIA_PATIENT, "person"), (NORMAL_PATIENT, "IM-")):
        found = pattern.match(base)
        if found:
            return f"{prefix}{int(found.group(1))}"
    return name


def names_writer(names):
    """write(path): one name a line (storage.save_file_set's writers' form)."""

    def write(path):
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"{name}\n" for name in names)

    return write


def load_patients(data_dir, n_images):
    """Each prepared image's patient id (n_images,) from data_dir's NAMES_FILE; None when there is
    no such file (arrays prepared before prepare_xrays.py wrote it). InputError when it names
    another number of files than there are images."""
    path = os.path.join(data_dir, NAMES_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open_regular(path, encoding="utf-8") as f:
            names = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}): prepare the X-rays again") from e
    if len(names) != n_images:
        raise InputError(f"{path} names {len(names)} files for {n_images} images: prepare the X-rays again")
    return np.array([patient_id(name) for name in names])


def patient_classes(patients, labels):
    """(each image's patient number (N,), each patient's class (P,)): patients numbered in the
    order they first appear; a patient's class is the one most of their images have (the lowest
    on a tie). With one image per patient the numbers are the image indices."""
    _, first, inverse = np.unique(patients, return_index=True, return_inverse=True)
    renumber = np.empty(len(first), np.int64)
    renumber[np.argsort(first)] = np.arange(len(first))
    patient_of_image = renumber[inverse.ravel()]
    counts = np.zeros((len(first), int(np.max(labels, initial=0)) + 1), np.int64)
    np.add.at(counts, (patient_of_image, np.asarray(labels)), 1)
    return patient_of_image, counts.argmax(axis=1)
