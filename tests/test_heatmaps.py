"""heatmaps.py: Keras 2 generators reproduced, the .npz contents, the
figure's rows and size, model discovery and bad input, through the real CLI."""

import os
import shutil

import keras
import numpy as np
import pytest

import heatmaps
from cganlib import cgan, datasets, delta_heatmaps, run_folder, saved_generators
from cganlib.delta import delta_overlay, delta_sums, exact_delta_sums, paint_levels
from cganlib.storage import save_model
from helpers import assert_figure_fits, data_file, one_error_line, save_generator

NPZ_KEYS = {"labels", "latents", "images", "deltas"}


def load_heatmap(path):
    with np.load(path) as data:
        return {key: data[key] for key in data}


# ---------------------------------------------------------------- in process


@pytest.mark.parametrize("name", ["keras2_generator_c3_f8", "keras2_generator_c4_f8"])
def test_reproduces_keras2_images(name):
    expected = np.load(data_file(name + "_expected.npz"))
    generator = cgan.load_generator(data_file(name + ".h5"))
    labels = tuple(range(cgan.n_classes_of(generator)))
    images, deltas = delta_heatmaps.heatmap_arrays(generator, labels, expected["latents"])
    produced = images[expected["labels"], np.arange(len(expected["labels"]))]
    assert np.abs(produced * 2 - 1 - expected["images"]).max() <= 1e-5
    assert deltas.dtype == np.float64
    np.testing.assert_array_equal(deltas[2, 0], exact_delta_sums(images[2], images[0]))


# Pixels of the label-1 image (the label-0 image is black) whose summed RGB s lies within a
# float32 step of a threshold: (unit RGB, the original's colour: s compared in float64).
# Generated pixels are multiples of 2**-25 ((x + 1) / 2 of float32 x in [-1, 1]), so are
# their sums; the first two round to float32 across their threshold.
STEP = 2.0**-25
YELLOW, GREEN, MAGENTA = (1.0, 1.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 1.0)
EDGE_PIXELS = [
    ((0.5, 0.0625, 1258291 * STEP), MAGENTA),  # s = 0.59999999404 < 0.6; float32(s) = 0.60000002 > 0.6
    ((0.5, 0.25, 0.25 + STEP), YELLOW),  # s = 1.0000000298 > 1.0; float32(s) = 1.0
    ((0.5, 0.0625, 1258292 * STEP), GREEN),  # s = 0.60000002 > 0.6
    ((0.5, 0.25, 0.25 - STEP), GREEN),  # s = 0.99999997 < 1.0
    ((0.125, 0.0625, 419430 * STEP), None),  # s = 0.19999999 < 0.2: not painted
    ((0.125, 0.0625, 419431 * STEP), MAGENTA),  # s = 0.20000002 > 0.2
]


def edge_generator():
    """A generator that ignores its latent and draws a black image for label 0 and, for
    label 1, a black image with EDGE_PIXELS along its first row."""
    latent, label = keras.Input((cgan.LATENT_DIM,)), keras.Input((1,))
    size = 80 * 80 * 3
    zero = keras.layers.Dense(size, kernel_initializer="zeros")(latent)  # adds 0 to every pixel
    drawn = keras.layers.Flatten()(keras.layers.Embedding(2, size)(label))
    model = keras.Model([latent, label], keras.layers.Reshape((80, 80, 3))(keras.layers.Add()([drawn, zero])))
    unit = np.zeros((2, 80, 80, 3), np.float64)
    unit[1, 0, : len(EDGE_PIXELS)] = [rgb for rgb, _ in EDGE_PIXELS]
    embedding = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))
    embedding.set_weights([(2 * unit - 1).reshape(2, size).astype(np.float32)])  # in the generator's [-1, 1]
    return model


def test_the_figure_paints_sums_at_a_threshold_as_the_original_compared_them():
    latents = cgan.heatmap_latents(np.random.default_rng(0), 1)
    images, deltas = delta_heatmaps.heatmap_arrays(edge_generator(), (0, 1), latents)
    n = len(EDGE_PIXELS)
    np.testing.assert_array_equal(images[1, :, 0, :n], np.broadcast_to([rgb for rgb, _ in EDGE_PIXELS], (10, n, 3)))
    assert not images[0].any()
    painted = delta_heatmaps.heatmap_rows(images, deltas)[2]  # label 0's images, painted where label 1's are brighter
    expected = np.array([colour or (0.0, 0.0, 0.0) for _, colour in EDGE_PIXELS], np.float32)
    np.testing.assert_array_equal(painted[:, 0, :n], np.broadcast_to(expected, (10, n, 3)))
    # the same sums rounded to float32 (as the .npz saves them) would paint the first two green
    rounded = paint_levels(images[0], deltas[1, 0].astype(np.float32))[:, 0, :2]
    assert np.all(rounded == GREEN)


def test_rows_per_sample_and_pair_for_several_samples():
    rng = np.random.default_rng(0)
    images = rng.random((3, 20, 80, 80, 3), dtype=np.float32)  # 3 labels, 2 samples of 10
    deltas = np.stack([delta_sums(images[a], images) for a in range(3)])
    rows = delta_heatmaps.heatmap_rows(images, deltas)
    assert len(rows) == 2 * (3 + 6)
    second = 9  # the second sample's rows start after the first's 3 image + 6 delta rows
    np.testing.assert_array_equal(rows[second + 1], images[1, 10:])
    # pair (0, 1): label 0's images painted where label 1's are brighter, then the reverse
    np.testing.assert_array_equal(rows[second + 3], delta_overlay(images[1, 10:], images[0, 10:]))
    np.testing.assert_array_equal(rows[second + 4], delta_overlay(images[0, 10:], images[1, 10:]))
    np.testing.assert_array_equal(rows[second + 8], delta_overlay(images[1, 10:], images[2, 10:]))
    # the painted pixels are those the saved deltas put above the lowest threshold
    painted = np.any(rows[second + 3] != images[0, 10:], axis=-1)
    np.testing.assert_array_equal(painted, deltas[1, 0, 10:] > 0.2)


def test_row_names_are_the_originals_for_default_labels():
    celeb, xray = datasets.DATASETS["celeb"], datasets.DATASETS["xray"]
    assert delta_heatmaps.row_names(celeb, (2, 1)) == (("fem", "mal"), (("delta_fem", "delta_mal"),))
    images, pairs = delta_heatmaps.row_names(xray, (0, 1, 2))
    assert images == ("healthy", "viral", "bacter")
    # the original's spelling, "bact_vs viral" included
    assert pairs == (("health vs viral", "viral vs health"), ("health vs bact", "bact vs health"),
                     ("viral vs bact", "bact_vs viral"))
    assert delta_heatmaps.row_names(celeb, (0, 3)) == (["fem", "fem_lips"], [("fem vs fem_lips", "fem_lips vs fem")])


def test_find_models_skips_gan_dis_hidden_and_other_files(tmp_path):
    for name in ("generator_model_010.h5", "generator_model_gan010.h5", "generator_model_dis010.h5",
                 "generator_model_002.h5", ".tmp-generator_model_011.h5.x1.h5", "notes.txt", "g.h5"):
        (tmp_path / name).write_bytes(b"")
    found = run_folder.generator_files(str(tmp_path))
    assert [(epoch, os.path.basename(path)) for epoch, path in found] == [
        (2, "generator_model_002.h5"), (10, "generator_model_010.h5")]
    assert [epoch for epoch, _ in saved_generators.chosen_generators(str(tmp_path), [10, 99])] == [10]


@pytest.mark.parametrize("args, message", [
    (["--labels", "1"], "need at least 2 labels, got 1"),
    (["--labels", "2", "2"], "labels must differ, got 2 2"),
    (["--dataset", "xray", "--labels", "0", "3"], "label 3 outside xray's 3 classes (0-2)"),
    (["--epochs", "7", "9"], "no generators for epochs 7 9 in {models}; epochs found: 2, 10"),
    (["--models_dir", "{empty}"], "no generator .h5 files in {empty}"),
    (["--models_dir", "{missing}"], "models folder {missing} not found"),
    (["--n_samples", "0"], "--n_samples: must be at least 1, got 0"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    folders = {"models": tmp_path / "models", "empty": tmp_path / "empty", "missing": tmp_path / "missing"}
    for folder in ("models", "empty"):
        folders[folder].mkdir()
    for name in ("generator_model_002.h5", "generator_model_010.h5"):
        (folders["models"] / name).write_bytes(b"")
    defaults = ["--dataset", "celeb", "--models_dir", str(folders["models"]), "--out_dir", str(tmp_path / "out")]
    argv = defaults + [a.format(**folders) for a in args]  # the last of a repeated option wins
    assert one_error_line(heatmaps.main, argv, capsys).endswith(f"error: {message.format(**folders)}")


def test_a_heatmap_that_paints_nothing_is_named(tmp_path, capsys):
    """An untrained generator draws the same image for every label: nothing to paint, and a
    warning says so, with the largest delta it found."""
    models = tmp_path / "models"
    models.mkdir()
    keras.utils.set_random_seed(0)
    save_generator(models / "generator_model_001.h5", 3)
    heatmaps.main(["--dataset", "xray", "--models_dir", str(models), "--out_dir", str(tmp_path / "out")])
    largest = load_heatmap(tmp_path / "out" / "generator_model_001.h5.npz")["deltas"].max()
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")]
    expected = (f"warning: {tmp_path / 'out' / 'generator_model_001.h5.png'} paints nothing: the largest delta "
                f"(summed RGB difference) is {largest:.3g}, not above the lowest threshold 0.2; the generator draws "
                "the same image for every label - train it longer")
    assert warnings == [expected]


# ---------------------------------------------------------------- the real CLI


@pytest.mark.slow
def test_cli_on_keras2_file_with_default_folders(tmp_path, run):
    data = tmp_path / "xray"
    results = data / "results"
    results.mkdir(parents=True)
    shutil.copy(data_file("keras2_generator_c3_f8.h5"), results / "generator_model_380.h5")
    shutil.copy(data_file("keras2_generator_c3_f8.h5"), results / "generator_model_395.h5")  # not asked for
    for decoy in ("generator_model_gan380.h5", "generator_model_dis380.h5", ".tmp-generator_model_380.h5.a1.h5"):
        (results / decoy).write_bytes(b"not a model")
    r = run("heatmaps.py", "--dataset", "xray", "--data_dir", data, "--epochs", 380)
    assert r.returncode == 0, r.stderr
    out = data / "heatmaps"
    assert sorted(os.listdir(out)) == ["generator_model_380.h5.npz", "generator_model_380.h5.png"]
    arrays = load_heatmap(out / "generator_model_380.h5.npz")
    assert set(arrays) == NPZ_KEYS
    assert arrays["labels"].tolist() == [0, 1, 2]
    latents = cgan.heatmap_latents(np.random.default_rng(0), 1)  # the default --seed
    assert arrays["latents"].dtype == np.float32
    np.testing.assert_array_equal(arrays["latents"], latents)
    images = arrays["images"]
    assert images.shape == (3, 10, 80, 80, 3) and images.dtype == np.float32
    assert arrays["deltas"].shape == (3, 3, 10, 80, 80) and arrays["deltas"].dtype == np.float32
    # the script's images are those of the loader that test_reproduces_keras2_images checks against Keras 2
    generator = cgan.load_generator(data_file("keras2_generator_c3_f8.h5"))
    for k in range(3):
        assert np.abs(images[k] - cgan.generate(generator, latents, [k] * 10)).max() <= 1e-5
    np.testing.assert_array_equal(arrays["deltas"][0, 2], delta_sums(images[0], images[2]))
    assert_figure_fits(out / "generator_model_380.h5.png", n_rows=9)


@pytest.fixture(scope="module")
def faces_run(tmp_path_factory):
    """Our own generators in a `label_results` folder: a 4-class one at width 8 whose labels
    matter, a label-blind one, a truncated file, an untrained one at width 16 and a
    discriminator; heatmaps.py run once over them with the faces defaults."""
    from conftest import run_script

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("faces") / "label_results"
    folder.mkdir()
    save_generator(folder / "generator_model_001.h5", 4, scale=3.0)
    save_generator(folder / "generator_model_002.h5", 4, label_blind=True)
    whole = (folder / "generator_model_001.h5").read_bytes()
    (folder / "generator_model_003.h5").write_bytes(whole[: len(whole) // 2])
    save_generator(folder / "generator_model_005.h5", 4, filters=16)
    save_model(cgan.build_discriminator(4, 8, lr=0.0001), str(folder / "generator_model_006.h5"))
    out = folder.parent / "out"
    result = run_script("heatmaps.py", "--dataset", "celeb", "--models_dir", folder, "--out_dir", out)
    return folder, out, result


@pytest.mark.slow
def test_cli_goes_on_past_bad_files_and_names_them(faces_run):
    _, out, r = faces_run
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "heatmaps.py: error:" in line]
    assert len(errors) == 3
    assert "generator_model_003.h5: not a readable Keras .h5 model" in errors[0]
    assert "generator_model_006.h5: not a generator" in errors[1]
    assert errors[2].endswith("2 of 5 model files could not be used: generator_model_003.h5, generator_model_006.h5")
    assert sorted(os.listdir(out)) == [f"generator_model_00{k}.h5.{ext}" for k in (1, 2, 5) for ext in ("npz", "png")]


@pytest.mark.slow
def test_cli_warns_of_the_generators_whose_labels_change_nothing(faces_run):
    """The label-blind generator (002) and the untrained one (005) paint nothing; 001's labels matter."""
    _, out, r = faces_run
    warnings = [line.split(" paints nothing")[0] for line in r.stdout.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: {out / f'generator_model_00{k}.h5.png'}" for k in (2, 5)]


@pytest.mark.slow
def test_cli_npz_and_figure_for_faces(faces_run):
    _, out, _ = faces_run
    runs = {k: load_heatmap(out / f"generator_model_00{k}.h5.npz") for k in (1, 2, 5)}
    for arrays in runs.values():
        assert set(arrays) == NPZ_KEYS and arrays["labels"].tolist() == [2, 1]
        assert arrays["images"].shape == (2, 30, 80, 80, 3) and arrays["deltas"].shape == (2, 2, 30, 80, 80)
        assert 0.0 <= arrays["images"].min() and arrays["images"].max() <= 1.0
        assert not arrays["deltas"][0, 0].any() and not arrays["deltas"][1, 1].any()
        # the same latents for every model, so epochs can be compared
        np.testing.assert_array_equal(arrays["latents"], runs[1]["latents"])
    # the label-blind generator draws the same image for both labels: nothing to paint
    blind = runs[2]
    np.testing.assert_allclose(blind["images"][0], blind["images"][1], atol=1e-6)
    assert np.abs(blind["deltas"]).max() < 1e-5
    # the other paints in both directions
    assert (runs[1]["deltas"][0, 1] > 0.2).any() and (runs[1]["deltas"][1, 0] > 0.2).any()
    assert_figure_fits(out / "generator_model_001.h5.png", n_rows=3 * 4)


@pytest.mark.slow
def test_cli_swapping_labels_swaps_the_painted_sets(faces_run, run):
    folder, out, _ = faces_run
    swapped_out = folder.parent / "swapped"
    r = run("heatmaps.py", "--dataset", "celeb", "--models_dir", folder, "--out_dir", swapped_out,
            "--labels", 1, 2, "--epochs", 1)
    assert r.returncode == 0, r.stderr
    first = load_heatmap(out / "generator_model_001.h5.npz")
    swapped = load_heatmap(swapped_out / "generator_model_001.h5.npz")
    assert swapped["labels"].tolist() == [1, 2]
    np.testing.assert_array_equal(swapped["images"], first["images"][::-1])
    for threshold in (1.0, 0.6, 0.2):
        np.testing.assert_array_equal(swapped["deltas"][0, 1] > threshold, first["deltas"][1, 0] > threshold)
        np.testing.assert_array_equal(swapped["deltas"][1, 0] > threshold, first["deltas"][0, 1] > threshold)
