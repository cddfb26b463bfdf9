"""latent_walk.py and latent_arithmetic.py: Keras 2
generators reproduced, figures and points on disk, bad input, through the real CLI."""

import os
import shutil

import keras
import numpy as np
import pytest

import latent_arithmetic
import latent_walk
from cganlib import cgan, latent_space, saved_generators
from cganlib.storage import save_npz
from helpers import assert_figure_fits, data_file, one_error_line, save_generator

# 1-based numbers of the fixture latents drawn with label 1 and label 2 (fixture labels 0 1 2 3 0 1 2 3)
C4_LABEL_1, C4_LABEL_2 = [2, 6], [3, 7]


def expected_of(name):
    with np.load(data_file(name + "_expected.npz")) as data:
        return {key: data[key] for key in data}


def arithmetic_argv(folder, out, *extra):
    return ["--models_dir", str(folder), "--out_dir", str(out), *map(str, extra)]


# ---------------------------------------------------------------- in process


def test_walk_images_reproduce_keras2():
    expected = expected_of("keras2_generator_c4_f8")
    generator = cgan.load_generator(data_file("keras2_generator_c4_f8.h5"))
    images = saved_generators.label_images(generator, (0, 1, 2, 3), expected["latents"])
    produced = images[expected["labels"], np.arange(len(expected["labels"]))]
    assert np.abs(produced * 2 - 1 - expected["images"]).max() <= 1e-5


def test_arithmetic_images_reproduce_keras2():
    expected = expected_of("keras2_generator_c4_f8")
    generator = cgan.load_generator(data_file("keras2_generator_c4_f8.h5"))
    groups = [(C4_LABEL_1, 1), (C4_LABEL_1[::-1], 1), (C4_LABEL_2, 2)]
    latents, labels, lengths = latent_space.arithmetic_latents(expected["latents"], groups)
    images = cgan.generate(generator, latents, labels)
    assert lengths == [3, 3, 3, 1] and labels.tolist() == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    for row, number in zip((0, 1, 3, 4, 6, 7), (*C4_LABEL_1, *C4_LABEL_1[::-1], *C4_LABEL_2)):
        assert np.abs(images[row] * 2 - 1 - expected["images"][number - 1]).max() <= 1e-5


def test_arithmetic_averages_and_result():
    points = np.random.default_rng(0).standard_normal((6, 100)).astype(np.float32)
    latents, _, _ = latent_space.arithmetic_latents(points, [([1, 2], 1), ([3], 1), ([4, 5, 6], 2)])
    neutral_man, smiling_man, smiling_woman = points[:2].mean(0), points[2], points[3:].mean(0)
    np.testing.assert_allclose(latents[2], neutral_man, atol=1e-6)
    np.testing.assert_allclose(latents[-1], neutral_man - smiling_man + smiling_woman, atol=1e-6)


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    """A 4-class generator of our own at width 8, saved as generator_model_200.h5."""
    keras.utils.set_random_seed(1)
    folder = tmp_path_factory.mktemp("arithmetic") / "results"
    folder.mkdir()
    save_generator(folder / "generator_model_200.h5", 4)
    return folder


def test_arithmetic_averages_the_points_in_float64_as_the_original(own_model, tmp_path, capsys):
    points = np.random.default_rng(2).standard_normal((100, 100))  # float64, as the original's file
    save_npz(tmp_path / "points.npz", points)
    latent_arithmetic.main(arithmetic_argv(own_model, tmp_path / "out", "--points", tmp_path / "points.npz"))
    with np.load(tmp_path / "out" / "latent_arithmetic_200.npz") as data:
        latents = data["latents"]
    averages = [points[np.array(group) - 1].mean(0) for group in ([2, 18, 21, 26], [32, 44, 45, 47], [3, 55, 62, 80])]
    # float32 sums would differ in the last bit of some of the 100 values
    np.testing.assert_array_equal(latents[[4, 9, 14]], np.float32(averages))
    np.testing.assert_array_equal(latents[15], np.float32(averages[0] - averages[1] + averages[2]))


@pytest.mark.parametrize("extra, message", [
    ([], "latent_points_200.npz not found (make it with latent_arithmetic.py --save_points)"),
    (["--points", "{points}", "--smiling_woman", 3, 101], "point number 101 outside 1-100"),
    (["--points", "{bad_points}"], "points must be (n, 100) for this generator, got (100, 7)"),
    (["--epoch", 150], "no generators for epochs 150 in {folder}; epochs found: 200"),
])
def test_arithmetic_bad_input_is_one_line(own_model, tmp_path, capsys, extra, message):
    paths = {"points": tmp_path / "p.npz", "bad_points": tmp_path / "bad.npz", "folder": own_model}
    save_npz(paths["points"], np.zeros((100, 100), np.float32))
    save_npz(paths["bad_points"], np.zeros((100, 7), np.float32))
    argv = arithmetic_argv(own_model, tmp_path / "out", *[str(e).format(**paths) for e in extra])
    assert message.format(**paths) in one_error_line(latent_arithmetic.main, argv, capsys)


def test_walk_bad_label_is_one_line(own_model, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        latent_walk.main(["--dataset", "celeb", "--models_dir", str(own_model), "--out_dir", str(tmp_path),
                          "--labels", "1", "4"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith("error: label 4 outside celeb's 4 classes (0-3)\n")


# ---------------------------------------------------------------- the real CLI


@pytest.mark.slow
def test_walk_cli_on_keras2_and_own_files(tmp_path, run):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(data_file("keras2_generator_c4_f8.h5"), models / "generator_model_010.h5")
    keras.utils.set_random_seed(2)
    save_generator(models / "generator_model_011.h5", 4, filters=16)
    (models / "generator_model_012.h5").write_bytes(b"\x89HDF\r\n")
    r = run("latent_walk.py", "--dataset", "celeb", "--models_dir", models, "--out_dir", tmp_path / "walk")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "generator_model_012.h5: not a readable Keras .h5 model" in r.stderr
    assert sorted(os.listdir(tmp_path / "walk")) == ["latent_walk_010.png", "latent_walk_011.png"]
    for name in ("latent_walk_010.png", "latent_walk_011.png"):
        assert_figure_fits(tmp_path / "walk" / name, n_rows=3 * 4)  # 3 samples x 4 labels


@pytest.mark.slow
def test_arithmetic_cli_save_points_then_arithmetic(own_model, tmp_path, run):
    out = tmp_path / "arithmetic"
    r = run("latent_arithmetic.py", *arithmetic_argv(own_model, out, "--save_points"))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["latent_points_200.npz", "latent_points_200.png"]
    with np.load(out / "latent_points_200.npz") as data:
        assert list(data) == ["arr_0"]
        points = data["arr_0"]
    assert points.shape == (100, 100) and points.dtype == np.float32
    assert abs(points.mean()) < 0.05 and 0.95 < points.std() < 1.05  # a standard normal draw
    assert_figure_fits(out / "latent_points_200.png", n_rows=10)

    r = run("latent_arithmetic.py", *arithmetic_argv(own_model, out))
    assert r.returncode == 0, r.stderr
    assert_figure_fits(out / "latent_arithmetic_200.png", n_rows=4, n_columns=5)
    with np.load(out / "latent_arithmetic_200.npz") as data:
        latents, labels, images = data["latents"], data["labels"], data["images"]
    assert labels.tolist() == [1] * 10 + [2] * 6
    assert images.shape == (16, 80, 80, 3) and 0 <= images.min() and images.max() <= 1
    # the original's default groups (1-based): 2 18 21 26, 32 44 45 47, 3 55 62 80
    averages = [points[np.array(group) - 1].mean(0) for group in ([2, 18, 21, 26], [32, 44, 45, 47], [3, 55, 62, 80])]
    np.testing.assert_array_equal(latents[0], points[1])
    np.testing.assert_allclose(latents[[4, 9, 14]], averages, atol=1e-6)
    np.testing.assert_allclose(latents[15], averages[0] - averages[1] + averages[2], atol=1e-5)


@pytest.mark.slow
def test_arithmetic_cli_on_keras2_file(tmp_path, run):
    expected = expected_of("keras2_generator_c4_f8")
    models = tmp_path / "results"
    models.mkdir()
    shutil.copy(data_file("keras2_generator_c4_f8.h5"), models / "generator_model_200.h5")
    save_npz(tmp_path / "points.npz", expected["latents"])
    r = run("latent_arithmetic.py", *arithmetic_argv(models, tmp_path / "out", "--points", tmp_path / "points.npz",
            "--neutral_man", *C4_LABEL_1, "--smiling_man", *C4_LABEL_1, "--smiling_woman", *C4_LABEL_2))
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out" / "latent_arithmetic_200.npz") as data:
        images = data["images"]
    for row, number in zip((0, 1, 3, 4, 6, 7), (*C4_LABEL_1, *C4_LABEL_1, *C4_LABEL_2)):
        assert np.abs(images[row] * 2 - 1 - expected["images"][number - 1]).max() <= 1e-5
