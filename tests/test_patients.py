"""Held out by patient: the patient of a Kermany file name, the names file prepare_xrays.py
writes beside the arrays (phantoms made here), and train_classifier.py's split, which keeps a
patient's images on one side for X-rays and splits other data sets by image as before."""

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

import prepare_xrays
import train_classifier
from cganlib.classifier import stratified_split
from cganlib.classifier_training import dataset_patients, patient_split
from cganlib.datasets import DATASETS
from cganlib.patients import NAMES_FILE, load_patients, patient_classes, patient_id
from cganlib.phantoms import file_names
from cganlib.scoring import prepared_order
from cganlib.storage import load_arrays, save_npz
from helpers import make_phantom_set


@pytest.mark.parametrize("name, patient", [
    ("train/PNEUMONIA/person12_bacteria_51.jpeg", "person12"),
    ("person12_virus_7.jpeg", "person12"),  # the same patient's other finding
    ("train/NORMAL/IM-0115-0001.jpeg", "IM-115"),
    ("test/NORMAL/IM-0115-0002.jpeg", "IM-115"),
    ("train/NORMAL/NORMAL2-IM-0115-0001.jpeg", "IM-115"),  # counted as the same normal patient
    ("train/NORMAL/IM-0116-0001.jpeg", "IM-116"),
    ("discs/d0.png", "discs/d0.png"),  # not a Kermany name: its own patient
    ("train/PNEUMONIA/xperson12_virus_7.jpeg", "train/PNEUMONIA/xperson12_virus_7.jpeg"),
])
def test_patient_id_reads_kermanys_file_names(name, patient):
    assert patient_id(name) == patient


def kermany_like(n_patients, seed):
    """(labels, patient ids) of images in shuffled order: normal patients with 1-4 images, and
    pneumonia patients, some with both a viral and a bacterial image."""
    rng = np.random.default_rng(seed)
    labels, ids = [], []
    for k in range(n_patients):
        n_images = int(rng.integers(1, 5))
        if k % 3 == 0:
            labels += [0] * n_images
            ids += [f"IM-{k}"] * n_images
        else:
            labels += [1 + k % 2] * n_images + ([2] if k % 7 == 1 else [])  # a few with both findings
            ids += [f"person{k}"] * (n_images + (k % 7 == 1))
    order = rng.permutation(len(labels))
    return np.array(labels)[order], np.array(ids)[order]


def test_patient_classes_number_patients_by_first_image_and_take_their_commonest_class():
    ids = np.array(["b", "a", "b", "c", "a", "a"])
    labels = np.array([2, 1, 2, 0, 2, 1])
    patient_of_image, classes = patient_classes(ids, labels)
    assert patient_of_image.tolist() == [0, 1, 0, 2, 1, 1]
    assert classes.tolist() == [2, 1, 0]
    tie = patient_classes(np.array(["x", "x"]), np.array([2, 1]))[1]
    assert tie.tolist() == [1]  # a tie goes to the lower class


def test_patient_split_keeps_every_patient_on_one_side_and_holds_out_each_class_by_its_share():
    labels, ids = kermany_like(90, seed=0)
    parts = patient_split(labels, ids, 0.2, 0.1, seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
    sides = [set(ids[part]) for part in parts]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    patient_of_image, classes = patient_classes(ids, labels)
    held_out_patients = np.unique(patient_of_image[parts[2]])
    assert np.bincount(classes[held_out_patients], minlength=3).tolist() == [round(0.2 * n) for n in np.bincount(classes)]
    assert all(np.array_equal(a, b) for a, b in zip(parts, patient_split(labels, ids, 0.2, 0.1, seed=3)))
    assert not np.array_equal(parts[2], patient_split(labels, ids, 0.2, 0.1, seed=4)[2])
    # split by image instead, some patient would sit on both sides: the test can tell
    by_image = stratified_split(labels, 0.2, 0.1, seed=3)
    assert set(ids[by_image[0]]) & set(ids[by_image[2]])


def test_with_one_image_per_patient_the_patient_split_is_the_image_split():
    """The phantoms' case: make_phantoms.py names one image per patient."""
    names = sorted(name for group in file_names(7).values() for name in group)
    ids = np.array([patient_id(name) for name in names])
    labels = np.array([2 if "bacteria" in n else 1 if "virus" in n else 0 for n in names])
    assert len(set(ids)) == len(names)
    for by_patient, by_image in zip(patient_split(labels, ids, 0.2, 0.1, 5), stratified_split(labels, 0.2, 0.1, 5)):
        assert np.array_equal(by_patient, by_image)


def test_prepare_xrays_writes_each_rows_file_name_beside_the_arrays(tmp_path):
    truth = make_phantom_set(tmp_path, 3, 80)
    prepare_xrays.main(["--images", str(tmp_path / "chest_xray"), "--out_dir", str(tmp_path / "prepared"),
                        "--workers", "1"])
    names = (tmp_path / "prepared" / NAMES_FILE).read_text().splitlines()
    assert names == [truth["names"][row] for row in prepared_order(truth["names"])]
    (labels,) = load_arrays(tmp_path / "prepared" / "labels_align_xray.npz", ("arr_0",))
    ids = load_patients(tmp_path / "prepared", len(labels))
    assert ids.tolist() == [patient_id(name) for name in names] and len(set(ids)) == 9


# ---------------------------------------------------------------- train_classifier.py


@pytest.fixture(scope="module")
def prepared_xrays(tmp_path_factory):
    """Prepared X-ray arrays of noise (the split, not the accuracy, is under test) and the names
    of their files, normal and pneumonia patients with several images each."""
    folder = tmp_path_factory.mktemp("xrays")
    labels, ids = kermany_like(30, seed=1)
    names = [f"train/NORMAL/{i}-{k:04d}.jpeg" if i.startswith("IM") else f"train/PNEUMONIA/{i}_{'virus' if label == 1 else 'bacteria'}_{k}.jpeg"
             for k, (i, label) in enumerate(zip(ids, labels))]
    rng = np.random.default_rng(0)
    save_npz(folder / "img_align_xray.npz", rng.integers(0, 256, (len(labels), 80, 80, 3), dtype=np.uint8))
    save_npz(folder / "labels_align_xray.npz", labels.astype(np.int64))
    (folder / NAMES_FILE).write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return SimpleNamespace(folder=folder, labels=labels, ids=ids)


def train(folder, out_dir):
    train_classifier.main(["--dataset", "xray", "--data_dir", str(folder), "--out_dir", str(out_dir),
                           "--filters", "2", "--max_epochs", "1"])
    return load_arrays(out_dir / "held_out.npz", ("train", "validation", "held_out"))


def test_train_classifier_holds_out_whole_patients_and_says_how_many(prepared_xrays, tmp_path, capsys):
    parts = train(prepared_xrays.folder, tmp_path / "c")
    printed = capsys.readouterr().out
    sides = [set(prepared_xrays.ids[part]) for part in parts]
    assert not (sides[0] & sides[2] or sides[1] & sides[2] or sides[0] & sides[1])
    assert (f"split by patient: {len(sides[0])} training, {len(sides[1])} validation, {len(sides[2])} held-out "
            "patients") in printed
    assert f"{len(parts[2])} held-out images (0.2 and 0.1 of each class's patients, seed 0)" in printed

    # without the names (arrays prepared before prepare_xrays.py wrote them) the images are split as before
    unnamed = train(arrays_without_names(prepared_xrays.folder, tmp_path / "unnamed"), tmp_path / "c2")
    assert "split by image: no names.txt beside the X-rays" in capsys.readouterr().out
    for got, expected in zip(unnamed, stratified_split(prepared_xrays.labels, 0.2, 0.1, 0)):
        assert np.array_equal(got, expected)


def arrays_without_names(folder, copy):
    copy.mkdir()
    for name in ("img_align_xray.npz", "labels_align_xray.npz"):
        shutil.copy(folder / name, copy / name)
    return copy


def test_other_data_sets_are_split_by_image_even_beside_a_names_file(prepared_xrays):
    for name in ("celeb", "xray"):
        args = SimpleNamespace(settings=DATASETS[name], data_dir=prepared_xrays.folder)
        found = dataset_patients(args, len(prepared_xrays.labels))
        assert (found is None) == (name == "celeb")


def test_a_names_file_of_other_images_is_one_line(prepared_xrays, tmp_path, capsys):
    folder = arrays_without_names(prepared_xrays.folder, tmp_path / "data")
    (folder / NAMES_FILE).write_text("train/NORMAL/IM-0001-0001.jpeg\n")
    with pytest.raises(SystemExit) as stopped:
        train_classifier.main(["--dataset", "xray", "--data_dir", str(folder), "--out_dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(err) == 1
    assert f"names 1 files for {len(prepared_xrays.labels)} images: prepare the X-rays again" in err[0]
