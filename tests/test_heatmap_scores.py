"""heatmap_scores.py on hand-made heatmaps whose answer is known, on an ideal generator's
heatmap of real phantoms, and through its CLI."""

import os

import numpy as np
import pytest
from PIL import Image

from cganlib.scoring import (
    PAINT_THRESHOLD,
    class_mean_difference,
    score_arrays,
    score_explained,
    score_heatmap,
    score_map,
)
from cganlib.storage import InputError
from helpers import make_phantom_set

SAMPLES = 10


def ground_truth():
    """Two images' lesions (overlapping squares) and lungs (two rectangles), 80x80."""
    lesion = np.zeros((3, 80, 80), np.uint8)
    lesion[1, 50:60, 10:20] = 1
    lesion[2, 55:65, 15:25] = 1
    lungs = np.zeros((3, 80, 80), np.uint8)
    lungs[:, 15:65, 8:35] = 1
    lungs[:, 15:65, 45:72] = 1
    return lesion, lungs


def empty_deltas(n_labels=3):
    return np.zeros((n_labels, n_labels, SAMPLES, 80, 80), np.float32)


def test_all_painted_inside_scores_one():
    lesion, lungs = ground_truth()
    deltas = empty_deltas()
    deltas[2, 0][:, lesion.any(axis=0)] = 0.5
    deltas[1, 0][:, lungs[0].astype(bool)] = 1.5
    scores = score_arrays([0, 1, 2], deltas, lesion, lungs)
    assert scores["bacterial_in_lesion"] == 1.0 and scores["viral_in_lungs"] == 1.0
    assert scores["lesion_area"] == pytest.approx((100 + 100 - 25) / 6400)
    assert scores["lung_area"] == pytest.approx(2 * 50 * 27 / 6400)
    assert scores["bacterial_painted"] == SAMPLES * 175
    assert scores["viral_painted"] == SAMPLES * 2 * 50 * 27


def test_random_painting_scores_about_the_area():
    lesion, lungs = ground_truth()
    rng = np.random.default_rng(0)
    deltas = rng.uniform(-1, 1, empty_deltas().shape).astype(np.float32)
    scores = score_arrays([0, 1, 2], deltas, lesion, lungs)
    assert scores["bacterial_in_lesion"] == pytest.approx(scores["lesion_area"], abs=0.01)
    assert scores["viral_in_lungs"] == pytest.approx(scores["lung_area"], abs=0.01)


def test_only_the_brighter_than_healthy_deltas_count_and_labels_are_found_by_value():
    lesion, lungs = ground_truth()
    labels = [2, 0, 1]  # bacterial, healthy, viral at positions 0, 1, 2
    deltas = empty_deltas()
    deltas[0, 1][:, 50:60, 10:20] = 1.0  # bacterial brighter than healthy, inside the lesion
    deltas[0, 1][:, 0:5, 0:5] = 1.0  # ... and 25 pixels outside it
    deltas[1, 0][:, 0:40, 40:80] = 1.0  # healthy brighter than bacterial: ignored
    deltas[2, 1][:, 0:15, :] = 1.0  # viral brighter than healthy, all above the lungs
    deltas[2, 1][:, 20, 10] = PAINT_THRESHOLD  # not above the threshold: not painted
    scores = score_arrays(labels, deltas, lesion, lungs)
    assert scores["bacterial_in_lesion"] == pytest.approx(100 / 125)
    assert scores["viral_in_lungs"] == 0.0 and scores["viral_painted"] == SAMPLES * 15 * 80


def test_nothing_painted_scores_zero():
    lesion, lungs = ground_truth()
    scores = score_arrays([0, 1, 2], -np.ones_like(empty_deltas()), lesion, lungs)
    assert scores["bacterial_in_lesion"] == 0.0 and scores["bacterial_painted"] == 0
    assert scores["viral_in_lungs"] == 0.0 and scores["viral_painted"] == 0


@pytest.mark.parametrize(
    "labels, deltas, masks_size, message",
    [
        ([0, 1], empty_deltas(2), 80, "no label 2"),
        ([0, 1, 2], np.zeros((3, 3, 80, 80)), 80, "deltas has shape"),
        ([0, 1, 2], empty_deltas(), 40, "do not match"),
    ],
)
def test_mismatched_input_is_an_input_error(labels, deltas, masks_size, message):
    masks = np.zeros((2, masks_size, masks_size), np.uint8)
    with pytest.raises(InputError, match=message):
        score_arrays(labels, deltas, masks, masks)


def test_an_ideal_generator_of_the_phantoms_points_at_the_findings(tmp_path):
    """Class-mean phantoms at 80x80 stand in for a generator that learnt each class perfectly:
    its deltas must land on the ground truth far above the chance areas."""
    truth = make_phantom_set(tmp_path, 100, 96, seed=1)  # enough to average out exposure
    grey = np.stack([
        np.asarray(Image.open(tmp_path / "chest_xray" / name).resize((80, 80)), np.float32) / 255
        for name in truth["names"]
    ])
    means = np.stack([grey[truth["labels"] == label].mean(axis=0) for label in (0, 1, 2)])
    images = np.repeat(means[:, None, :, :, None], 3, axis=-1)  # (L, 1 sample, 80, 80, RGB)
    deltas = (images[:, None] - images[None]).sum(axis=-1)
    scores = score_arrays([0, 1, 2], deltas, truth["lesion"], truth["lungs"])
    assert scores["lesion_area"] < 0.1 and scores["bacterial_in_lesion"] > 0.9
    assert scores["lung_area"] < 0.4 and scores["viral_in_lungs"] > 0.9


def write_files(folder, labels=(0, 1, 2)):
    lesion, lungs = ground_truth()
    deltas = empty_deltas(len(labels))
    deltas[labels.index(2), labels.index(0)][:, 50:60, 10:20] = 1.0
    heatmap, truth = os.path.join(folder, "generator_model_005.h5.npz"), os.path.join(folder, "ground_truth.npz")
    np.savez_compressed(heatmap, labels=np.array(labels), latents=np.zeros((SAMPLES, 100)), deltas=deltas)
    np.savez_compressed(truth, names=np.array(["a", "b", "c"]), lesion=lesion, lungs=lungs)
    return heatmap, truth


def test_score_heatmap_reads_the_files(tmp_path):
    scores = score_heatmap(*write_files(tmp_path))
    assert scores["bacterial_in_lesion"] == 1.0 and scores["viral_painted"] == 0


def test_cli_prints_the_scores(run, tmp_path):
    heatmap, truth = write_files(tmp_path)
    result = run("heatmap_scores.py", "--heatmap", heatmap, "--ground_truth", truth)
    assert result.returncode == 0, result.stderr
    assert "bacterial: 1.000 of 1000 painted pixels" in result.stdout
    assert "viral:     0.000 of 0 painted pixels" in result.stdout


def test_cli_bad_input_is_one_line(run, tmp_path):
    heatmap, truth = write_files(tmp_path, labels=[0, 2])
    missing = run("heatmap_scores.py", "--heatmap", tmp_path / "none.npz", "--ground_truth", truth)
    no_viral = run("heatmap_scores.py", "--heatmap", heatmap, "--ground_truth", truth)
    swapped = run("heatmap_scores.py", "--heatmap", truth, "--ground_truth", heatmap)
    (tmp_path / "junk.npz").write_text("not an archive")
    junk = run("heatmap_scores.py", "--heatmap", tmp_path / "junk.npz", "--ground_truth", truth)
    for result, message in ((missing, "not found"), (no_viral, "no label 1"), (swapped, "has no array"),
                            (junk, "not a readable .npz")):
        assert result.returncode == 2
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_class_mean_difference_finds_what_the_class_adds_on_average():
    rng = np.random.default_rng(0)
    images = rng.integers(60, 120, (40, 80, 80, 3)).astype(np.uint8)
    labels = np.arange(40) % 3
    images[labels == 2, 20:30, 10:20] += 100  # bacterial: brighter in one square
    images[labels == 1, 30:60, 40:70] += 30  # viral: a wider, fainter patch
    square, patch = np.zeros((80, 80), bool), np.zeros((80, 80), bool)
    square[20:30, 10:20], patch[30:60, 40:70] = True, True
    bacterial = class_mean_difference(images, labels, 2)
    assert bacterial.shape == (80, 80) and np.isclose(bacterial[square].mean(), 3 * 100 / 255, atol=0.1)
    assert score_map(bacterial, square)["auc"] == 1.0 and score_map(bacterial, patch)["auc"] < 0.6
    assert score_map(class_mean_difference(images, labels, 1), patch)["auc"] == 1.0
    with pytest.raises(InputError, match="no image of class 2"):
        class_mean_difference(images[labels != 2], labels[labels != 2], 2)


def test_explained_deltas_are_scored_against_each_images_own_mask(tmp_path):
    # ground truth listed as drawn (bacterial first); prepared order is by name: healthy, then pneumonia
    names = np.array(["train/PNEUMONIA/person1_bacteria_1.jpeg", "train/PNEUMONIA/person3_bacteria_2.jpeg",
                      "train/NORMAL/IM-0001-0001.jpeg"])
    lesion = np.zeros((3, 80, 80), np.uint8)
    lesion[0, 10:20, 10:20] = 1
    lesion[1, 50:60, 50:60] = 1
    np.savez(tmp_path / "truth.npz", names=names, labels=np.array([2, 2, 0]), lesion=lesion,
             lungs=np.ones((3, 80, 80), np.uint8))
    # prepared rows: 0 healthy, 1 person1, 2 person3; explained: rows 2 and 1, each delta on its own lesion
    deltas = np.zeros((2, 1, 80, 80), np.float32)
    deltas[0, 0, 50:60, 50:60] = 1.0
    deltas[1, 0, 10:20, 10:20] = 1.0
    np.savez(tmp_path / "explained.npz", indices=np.array([2, 1]), labels=np.array([2, 2]), targets=np.array([0]),
             deltas=deltas)
    finding, scores = score_explained(tmp_path / "explained.npz", tmp_path / "truth.npz")
    assert finding == "lesion" and (scores["auc"], scores["energy"], scores["n"]) == (1.0, 1.0, 2)
    swapped = deltas[::-1].copy()  # each delta on the other image's lesion
    np.savez(tmp_path / "explained.npz", indices=np.array([2, 1]), labels=np.array([2, 2]), targets=np.array([0]),
             deltas=swapped)
    assert score_explained(tmp_path / "explained.npz", tmp_path / "truth.npz")[1]["energy"] == 0.0
