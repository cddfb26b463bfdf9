"""Every numeric flag of every script outside training refuses a value outside its range
(NaN and infinity included) with one line, `<script>: error: <message>`, and exit status 2;
sizes whose arrays cannot fit in memory say what they would need. Training's flags are
checked in test_train.py."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

import demo
import heatmap_scores
import heatmaps
import latent_arithmetic
import latent_walk
import make_phantoms
import prepare_faces
import prepare_folders
import prepare_xrays
from cganlib.storage import save_arrays, save_npz
from conftest import DATA, run_python
from helpers import one_error_line

HUGE = str(10**7)  # a side or count whose arrays need terabytes


@pytest.fixture
def folders(tmp_path):
    """Inputs good enough to reach the value checks: X-ray files, one CelebA photo and table,
    a models folder with a generator, latent points."""
    xrays = tmp_path / "xrays"
    xrays.mkdir()
    Image.new("L", (32, 32), 100).save(xrays / "person1_virus_1.jpeg")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32), (100, 90, 80)).save(photos / "000001.jpg")
    table = tmp_path / "list_attr_celeba.csv"
    table.write_text("image_id,Attractive,Male,High_Cheekbones,Big_Lips\n000001.jpg,1,-1,1,-1\n")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(os.path.join(DATA, "keras2_generator_c4_f8.h5"), models / "generator_model_200.h5")
    return {"tmp": tmp_path, "xrays": xrays, "photos": photos, "table": table, "models": models}


def xrays_argv(f, *extra):
    return ["--images", f["xrays"], "--out_dir", f["tmp"] / "out", *extra]


def folders_argv(f, *extra):
    return ["--images", f["photos"], "--out_dir", f["tmp"] / "out", *extra]


def faces_argv(f, *extra):
    return ["--images", f["photos"], "--attributes", f["table"], "--out_dir", f["tmp"] / "out", *extra]


def phantoms_argv(f, *extra):
    return ["--out_dir", f["tmp"] / "out", "--n", 1, "--size", 80, *extra]


def models_argv(f, *extra):
    return ["--dataset", "celeb", "--models_dir", f["models"], "--out_dir", f["tmp"] / "out", *extra]


def arithmetic_argv(f, *extra):
    return ["--models_dir", f["models"], "--out_dir", f["tmp"] / "out", *extra]


def demo_argv(f, *extra):
    return ["--out_dir", f["tmp"] / "out", *extra]


CASES = [
    # (script main, argv maker, extra flags, a piece of the message)
    (prepare_xrays.main, xrays_argv, ("--n", 0), "--n/--n_xrays: must be at least 1, got 0"),
    (prepare_xrays.main, xrays_argv, ("--n_xrays", -5), "must be at least 1, got -5"),
    (prepare_xrays.main, xrays_argv, ("--size", "1.5"), "--size: not a whole number: '1.5'"),
    (prepare_xrays.main, xrays_argv, ("--workers", 0), "--workers: must be at least 1"),
    (prepare_xrays.main, xrays_argv, ("--size", HUGE), "would need 300.0 TB of memory"),
    (prepare_faces.main, faces_argv, ("--n", -1), "--n/--n_faces: must be at least 1, got -1"),
    (prepare_faces.main, faces_argv, ("--batch_size", 0), "--batch_size/--batch: must be at least 1"),
    (prepare_faces.main, faces_argv, ("--size", HUGE), "would need 300.0 TB of memory"),
    (prepare_folders.main, folders_argv, ("--size", 64), "--size: training and the explaining scripts take 80x80 images only, got 64"),
    (make_phantoms.main, phantoms_argv, ("--seed", -1), "--seed: must be in [0, 4294967295], got -1"),
    (make_phantoms.main, phantoms_argv, ("--seed", 2**32), "got 4294967296"),
    (make_phantoms.main, phantoms_argv, ("--size", 79), "--size: must be at least 80, got 79"),
    (make_phantoms.main, phantoms_argv, ("--lesion_strength", "nan"), "--lesion_strength: must be in [0, 1], got nan"),
    (make_phantoms.main, phantoms_argv, ("--haze_strength", "-0.1"), "--haze_strength: must be in [0, 1]"),
    (make_phantoms.main, phantoms_argv, ("--size", HUGE, "--workers", 1), "--size 10000000 would need 9.6 PB"),
    (make_phantoms.main, phantoms_argv, ("--size", HUGE, "--workers", 2), "--size 10000000 in 2 workers would need 19.2 PB"),
    (make_phantoms.main, phantoms_argv, ("--workers", 0), "--workers: must be at least 1, got 0"),
    (heatmaps.main, models_argv, ("--seed", -3), "--seed: must be in [0, 4294967295], got -3"),
    (heatmaps.main, models_argv, ("--n_samples", 0), "--n_samples: must be at least 1, got 0"),
    (heatmaps.main, models_argv, ("--epochs", -1), "--epochs: must be at least 0, got -1"),
    (heatmaps.main, models_argv, ("--labels", 2, -1), "--labels: must be at least 0, got -1"),
    (heatmaps.main, models_argv, ("--n_samples", HUGE), "--n_samples 10000000 with 2 labels (200000000 images) would need"),
    (latent_walk.main, models_argv, ("--seed", 2**40), "--seed: must be in"),
    (latent_walk.main, models_argv, ("--n_samples", HUGE), "would need"),
    (latent_arithmetic.main, arithmetic_argv, ("--seed", -5), "--seed: must be in"),
    (latent_arithmetic.main, arithmetic_argv, ("--epoch", -1), "--epoch: must be at least 0, got -1"),
    (latent_arithmetic.main, arithmetic_argv, ("--neutral_man", 0, 1), "--neutral_man: must be at least 1, got 0"),
    (demo.main, demo_argv, ("--minutes", "nan"), "--minutes: must be above 0, got nan"),
    (demo.main, demo_argv, ("--minutes", "inf"), "--minutes: must be above 0, got inf"),
    (demo.main, demo_argv, ("--seed", -1), "--seed: must be in"),
    (demo.main, demo_argv, ("--d_lr", "nan"), "--d_lr: must be in (0, 1], got nan"),
    (demo.main, demo_argv, ("--g_lr", 0), "--g_lr: must be in (0, 1], got 0"),
    (demo.main, demo_argv, ("--d_lr", -0.001), "--d_lr: must be in (0, 1]"),
    (demo.main, demo_argv, ("--d_beta1", 1), "--d_beta1: must be in [0, 1), got 1"),
    (demo.main, demo_argv, ("--lesion_strength", 2), "--lesion_strength: must be in [0, 1], got 2"),
]


@pytest.mark.parametrize("main, argv, extra, message", CASES,
                         ids=[f"{main.__module__} {' '.join(map(str, extra))}" for main, _, extra, _ in CASES])
def test_out_of_range_values_are_one_line_errors(main, argv, extra, message, folders, capsys):
    line = one_error_line(main, argv(folders, *extra), capsys)
    assert message in line
    assert not (folders["tmp"] / "out").exists()


@pytest.mark.parametrize("content", ["", "202599\n"], ids=["empty", "count line only"])
def test_an_attribute_table_without_columns_is_refused(content, folders, capsys):
    folders["table"].write_text(content)
    line = one_error_line(prepare_faces.main, faces_argv(folders), capsys)
    assert "is not a CelebA attribute table: no column names" in line


def test_an_attribute_table_without_rows_is_refused(folders, capsys):
    folders["table"].write_text("image_id,Attractive,Male,High_Cheekbones,Big_Lips\n")
    assert "is not a CelebA attribute table: no rows" in one_error_line(prepare_faces.main, faces_argv(folders), capsys)


def test_the_scorer_refuses_labels_that_are_not_whole_numbers(tmp_path, capsys):
    heatmap, truth = tmp_path / "heatmap.npz", tmp_path / "truth.npz"
    save_arrays(heatmap, labels=np.array([0.0, 1.5, 2.0]), deltas=np.zeros((3, 3, 1, 80, 80), np.float32))
    save_arrays(truth, lesion=np.zeros((1, 80, 80), np.uint8), lungs=np.zeros((1, 80, 80), np.uint8))
    line = one_error_line(heatmap_scores.main, ["--heatmap", heatmap, "--ground_truth", truth], capsys)
    assert "labels must be whole numbers of shape (L,), got float64 (3,)" in line


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_latent_points_that_are_not_finite_are_refused(bad, folders, capsys):
    points = np.zeros((100, 100), np.float32)
    points[7, 3] = bad
    save_npz(folders["tmp"] / "points.npz", points)
    argv = arithmetic_argv(folders, "--points", folders["tmp"] / "points.npz")
    assert "points must be finite numbers" in one_error_line(latent_arithmetic.main, argv, capsys)


def test_scripts_that_need_no_model_do_not_load_tensorflow():
    """Preparing X-rays, drawing phantoms, scoring and the demo's own process use Pillow and
    NumPy only: importing them must not start TensorFlow (seconds and hundreds of MB)."""
    code = ("import sys; sys.path.insert(0, 'files'); import prepare_xrays, make_phantoms, heatmap_scores, demo; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
