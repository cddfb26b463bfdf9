"""Untrusted inputs, second round (issue 33, items 8-15): epoch files swapped between epochs,
epochs a restart took out of the history, generators of another dataset, odd image folders,
bad ground truth, deeply nested JSON, files that are not what they claim, and signals. Each
bad input ends in one line and exit status 2 (130, 143 for signals) before anything is written."""

import json
import os
import shlex
import shutil
import signal
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image

import demo
import evaluate
import explain_image
import heatmap_scores
import heatmaps
import latent_walk
import prepare_folders
import prepare_xrays
import saliency
import train_cgan
import train_classifier
from cganlib import cli, run_folder, storage
from helpers import (
    bad_input,
    make_xray_data,
    one_error_line,
    save_generator,
    train_argv,
    xray_argv,
)

DEEP_JSON = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit when parsed


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """(data, results) of a three-epoch run of train_argv's settings."""
    folder = tmp_path_factory.mktemp("trained_run")
    data = make_xray_data(folder / "data", n=32)
    assert train_cgan.main(train_argv(data, folder / "results", "--epochs_goal", 3, "--seed", 0)) == 0
    return data, folder / "results"


def copied_run(trained_run, results):
    data, run = trained_run
    shutil.copytree(run, results)
    return data


# ---------------------------------------------------------------- item 8: an epoch's files swapped


@pytest.mark.parametrize("name, message", [
    ("generator_model_{:03d}.h5", "generator_model_003.h5 is not the file epoch 3 saved: its SHA-256 differs"),
    ("generator_model_dis{:03d}.h5", "generator_model_dis003.h5 is not the file epoch 3 saved: its SHA-256 differs"),
    ("train_state_{:03d}.npz", "train_state_003.npz holds the training state of epoch 2, not of epoch 3"),
])
def test_a_restart_refuses_an_epoch_file_replaced_by_another_epochs_copy(tmp_path, capsys, trained_run, name,
                                                                         message):
    results = tmp_path / "results"
    data = copied_run(trained_run, results)
    shutil.copy(results / name.format(2), results / name.format(3))
    err = bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart", "--epochs_goal", 4))
    assert message in err and "resume from an earlier epoch with --epochs_done" in err


# ---------------------------------------------------------------- item 9: epochs the history dropped


def test_readers_skip_the_epochs_a_restart_from_an_earlier_epoch_took_out_of_the_history(tmp_path, capsys,
                                                                                        trained_run):
    results = tmp_path / "results"
    data = copied_run(trained_run, results)
    assert train_cgan.main(train_argv(data, results, "--qRestart", "--epochs_done", 1, "--epochs_goal", 2)) == 0
    assert run_folder.complete_epochs(str(results)) == [1, 2] and (results / "generator_model_003.h5").exists()
    heatmaps.main(["--dataset", "xray", "--models_dir", str(results), "--out_dir", str(tmp_path / "maps")])
    assert sorted(os.listdir(tmp_path / "maps")) == [f"generator_model_00{k}.h5.{ext}" for k in (1, 2)
                                                     for ext in ("npz", "png")]
    line = one_error_line(latent_walk.main, ["--dataset", "xray", "--models_dir", results, "--out_dir",
                                             tmp_path / "walk", "--epochs", 3], capsys)
    assert line.endswith(f"no generators for epochs 3 in {results}; epochs found: 1, 2")


# ---------------------------------------------------------------- item 10: a generator of another dataset


def folder_dataset(folder, names=("cat", "dog")):
    """A prepared folder dataset's classes.json (all the explaining scripts read before the models)."""
    os.makedirs(folder, exist_ok=True)
    (folder / "classes.json").write_text(json.dumps({"classes": list(names), "counts": [1] * len(names)}))
    return folder


@pytest.mark.parametrize("main", [heatmaps.main, evaluate.main, latent_walk.main])
def test_a_generator_whose_classes_are_not_the_datasets_is_refused_before_any_work(tmp_path, capsys, main):
    data, models, out = folder_dataset(tmp_path / "data"), tmp_path / "models", tmp_path / "out"
    models.mkdir()
    save_generator(models / "generator_model_001.h5", 3)
    line = one_error_line(main, ["--dataset", "folder", "--data_dir", data, "--models_dir", models, "--out_dir", out],
                          capsys)
    assert line.endswith(f"error: {models / 'generator_model_001.h5'} has 3 classes, --dataset folder has 2")
    assert not out.exists()


# ---------------------------------------------------------------- item 11: --latent_dim 1


def test_a_latent_of_size_1_is_refused_up_front(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    assert bad_input(tmp_path, capsys, xray_argv(data, "--latent_dim", 1)).endswith(
        "error: --latent_dim: must be at least 2, got 1")


# ---------------------------------------------------------------- item 12: image folders


def picture(path, value, size=(100, 90)):
    os.makedirs(path.parent, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def prepared(images, out, capsys):
    """prepare_folders.py on images: (classes.json's table, the images, the labels, its stdout)."""
    prepare_folders.main(["--images", str(images), "--out_dir", str(out), "--workers", "2"])
    with open(out / "classes.json") as f:
        table = json.load(f)
    return (table, storage.load_npz(out / "img_align_folder.npz"), storage.load_npz(out / "labels_align_folder.npz"),
            capsys.readouterr().out)


def test_hidden_folders_and_files_are_not_read(tmp_path, capsys):
    images = tmp_path / "images"
    picture(images / "cat" / "c.png", 40)
    picture(images / "dog" / "d.png", 200)
    picture(images / ".ipynb_checkpoints" / "c-checkpoint.png", 40)  # would be class 0
    picture(images / "cat" / ".c.png", 40)
    picture(images / "dog" / ".cache" / "d.png", 200)
    table, _, labels, out = prepared(images, tmp_path / "out", capsys)
    assert table == {"classes": ["cat", "dog"], "counts": [1, 1]} and labels.tolist() == [0, 1]
    assert "skipped, hidden files and folders (names starting with a dot), not read: 3" in out


def test_links_up_the_tree_or_into_another_class_are_not_followed(tmp_path, capsys):
    images = tmp_path / "images"
    picture(images / "cat" / "c.png", 40)
    for k in range(2):
        picture(images / "dog" / f"d{k}.png", 200)
    os.symlink("..", images / "cat" / "up")  # a loop: every dog would be a cat too
    os.symlink(os.path.join("..", "dog", "d0.png"), images / "cat" / "d0.png")  # a dog's file in the cats
    os.symlink(".", images / "all")  # the folder itself as a class
    table, pictures, labels, out = prepared(images, tmp_path / "out", capsys)
    assert table == {"classes": ["cat", "dog"], "counts": [1, 2]} and labels.tolist() == [0, 1, 1]
    assert (pictures[0] < 100).all() and (pictures[1:] > 150).all()
    assert "skipped, links into another class's folder or up the tree, not followed: 3" in out


def test_a_photo_is_turned_upright_as_its_exif_orientation_says(tmp_path, capsys):
    images = tmp_path / "images"
    pixels = np.full((80, 80, 3), 20, np.uint8)
    pixels[:40, :40] = 230  # the top-left quadrant as stored; upright, the top-right (orientation 6: turn 90 clockwise)
    exif = Image.Exif()
    exif[0x0112] = 6  # the Orientation tag
    os.makedirs(images / "photo")
    Image.fromarray(pixels).save(images / "photo" / "p.jpg", quality=95, exif=exif)
    picture(images / "plain" / "p.png", 20)
    _, pictures, _, _ = prepared(images, tmp_path / "out", capsys)
    upright = pictures[0]
    assert upright[5:35, 45:75].mean() > 200 and upright[5:35, 5:35].mean() < 50


def test_a_float_tiff_with_a_nan_pixel_is_skipped_as_damaged(tmp_path, capsys):
    images = tmp_path / "images"
    picture(images / "a" / "good.png", 60)
    picture(images / "b" / "good.png", 120)
    values = np.linspace(0, 1, 80 * 80, dtype=np.float32).reshape(80, 80)
    values[40, 40] = np.nan
    Image.fromarray(values, "F").save(images / "a" / "float.tif")
    table, _, _, out = prepared(images, tmp_path / "out", capsys)
    assert table["counts"] == [1, 1]
    assert "kept 2 images of 3 files" in out and "skipped, damaged, NaN or infinite pixels: 1" in out


# ---------------------------------------------------------------- items 13, 14: ground truth


def scores_argv(tmp_path, lesion, names=None, labels=None):
    """heatmap_scores.py's arguments for a heatmap and a saliency file scored against a ground
    truth of three phantoms with these lesion masks (names and labels: one per phantom unless given)."""
    lungs = np.zeros((3, 80, 80), np.uint8)
    lungs[:, 15:65, 8:35] = 1
    names = np.array(["train/a1.png", "train/a2.png", "train/a3.png"]) if names is None else names
    labels = np.array([0, 2, 2]) if labels is None else labels
    storage.save_arrays(tmp_path / "truth.npz", names=names, labels=labels, lesion=lesion, lungs=lungs)
    storage.save_arrays(tmp_path / "heatmap.npz", labels=np.arange(3), deltas=np.zeros((3, 3, 2, 80, 80), np.float32))
    maps = np.zeros((2, 80, 80), np.float32)
    storage.save_arrays(tmp_path / "saliency_2.npz", gradcam=maps, cam=maps, ig=maps, indices=np.array([1, 2]),
                        labels=np.array([2, 2]), target=np.array(2))
    return ["--ground_truth", tmp_path / "truth.npz", "--heatmap", tmp_path / "heatmap.npz",
            "--saliency", tmp_path / "saliency_2.npz"]


def lesions(dtype=np.uint8, value=1):
    masks = np.zeros((3, 80, 80), dtype)
    masks[1:, 50:60, 10:20] = value
    return masks


def with_nan():
    masks = lesions(np.float32)
    masks[0, 0, 0] = np.nan  # as a bool, NaN is True: an "inside" pixel
    return masks


@pytest.mark.parametrize("arrays, message", [
    ({"lesion": with_nan()}, "truth.npz: lesion holds NaN or infinite values"),
    ({"lesion": lesions().astype(str)}, "truth.npz: lesion must be masks of numbers (N, height, width), got <U"),
    ({"labels": np.array([0, 2])}, "its arrays must have a row per phantom each, got names 3, labels 2, lesion 3, lungs 3"),
    ({"names": np.array(["train/a1.png", "train/a2.png"])}, "got names 2, labels 3"),
], ids=["NaN masks", "text masks", "labels short", "names short"])
def test_ground_truth_that_is_not_masks_of_numbers_one_per_phantom_is_refused(tmp_path, capsys, arrays, message):
    argv = scores_argv(tmp_path, **{"lesion": lesions(), **arrays})
    assert message in one_error_line(heatmap_scores.main, argv, capsys)


# ---------------------------------------------------------------- item 13: two generators of one epoch


def test_two_generators_of_one_epoch_are_refused(tmp_path, capsys):
    models, out = tmp_path / "models", tmp_path / "walk"
    models.mkdir()
    save_generator(models / "generator_model_002.h5", 3)
    save_generator(models / "generator_model_002_copy.h5", 3)
    line = one_error_line(latent_walk.main, ["--dataset", "xray", "--models_dir", models, "--out_dir", out], capsys)
    assert line.endswith(f"generator_model_002.h5 and generator_model_002_copy.h5 in {models} are both epoch 2 (the "
                         "first number in the name): keep one of them there")
    assert not out.exists()


# ---------------------------------------------------------------- items 13, 15: demo.py refuses at the start


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "0.01"], "--minutes 0.01 cannot be met: the steps besides training take about 2.83333 minutes"),
    (["--n", 1, "--n_batch", 2], "--n: must be at least 8, got 1"),
])
def test_demo_refuses_what_it_cannot_do_before_any_step(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setattr(demo, "run_demo", lambda *args: pytest.fail("the demo's steps ran"))
    assert message in one_error_line(demo.main, ["--out_dir", tmp_path / "demo", *argv], capsys)
    assert not (tmp_path / "demo").exists()


# ---------------------------------------------------------------- items 14, 15: classifiers


def save_classifier(path, shape=(80, 80, 3)):
    import keras

    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3)(x)).save(path)
    return path


def classifier_argv(main, tmp_path, classifier):
    """The arguments of evaluate.py or saliency.py reading this classifier (evaluate: a generator too)."""
    argv = ["--dataset", "xray", "--data_dir", tmp_path / "data", "--classifier", classifier, "--out_dir", tmp_path / "out"]
    if main is evaluate.main:
        os.makedirs(tmp_path / "models")
        save_generator(tmp_path / "models" / "generator_model_001.h5", 3)
        argv += ["--models_dir", tmp_path / "models"]
    return argv


@pytest.mark.parametrize("main", [evaluate.main, saliency.main])
def test_a_classifier_of_other_images_is_refused_in_one_line(tmp_path, capsys, main):
    classifier = save_classifier(tmp_path / "classifier.keras", (64, 64, 1))
    line = one_error_line(main, classifier_argv(main, tmp_path, classifier), capsys)
    assert line.endswith(f"{classifier}: built for input [None, 64, 64, 1], not 80x80 RGB images [None, 80, 80, 3]")


def test_a_keras_refusal_that_spans_lines_is_printed_on_one(tmp_path, capsys):
    path = save_classifier(tmp_path / "fine.keras")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1].update(module="os", class_name="system")  # a layer Keras refuses to look up
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "classifier.keras", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    line = one_error_line(saliency.main, classifier_argv(saliency.main, tmp_path, tmp_path / "classifier.keras"), capsys)
    assert "classifier.keras: a layer of kind" in line  # refused by the archive's check, before Keras


# ---------------------------------------------------------------- item 14: deeply nested JSON


def nested_classes(tmp_path):
    data = folder_dataset(tmp_path / "data")
    (data / "classes.json").write_text(DEEP_JSON)
    return heatmaps.main, ["--dataset", "folder", "--data_dir", data], "classes.json: not a classes table (ValueError"


def nested_run_config(tmp_path):
    data = make_xray_data(tmp_path / "data", n=32)
    os.makedirs(tmp_path / "results")
    (tmp_path / "results" / run_folder.RUN_CONFIG).write_text(DEEP_JSON)
    return train_cgan.main, train_argv(data, tmp_path / "results", "--qRestart"), "run_config.json: not a readable run config"


def nested_manifest(tmp_path):
    data = folder_dataset(tmp_path / "data")
    storage.save_npz(data / "img_align_folder.npz", np.zeros((4, 80, 80, 3), np.uint8))
    storage.save_npz(data / "labels_align_folder.npz", np.array([0, 1, 0, 1]))
    (data / "prepared_folder.json").write_text(DEEP_JSON)
    return (train_classifier.main, ["--dataset", "folder", "--data_dir", data, "--out_dir", tmp_path / "out"],
            "prepared_folder.json: not a manifest of prepared files (ValueError")


def nested_model_config(tmp_path):
    model = tmp_path / "generator_model_001.h5"
    save_generator(model, 3)
    with h5py.File(model, "r+") as f:
        f.attrs["model_config"] = DEEP_JSON
    image = picture(tmp_path / "scan.png", 100)
    return (explain_image.main, ["--model", model, "--image", image, "--label", 1, "--out_dir", tmp_path / "out"],
            "generator_model_001.h5: not a readable Keras .h5 model (ValueError")


@pytest.mark.parametrize("case", [nested_classes, nested_run_config, nested_manifest, nested_model_config])
def test_json_nested_past_the_parsers_limit_is_refused_in_one_line(tmp_path, capsys, case):
    main, argv, message = case(tmp_path)
    line = one_error_line(main, argv, capsys, unchanged=tmp_path)
    assert message in line and "JSON nested too deeply to read" in line


# ---------------------------------------------------------------- item 14: names.txt, Ctrl-C


def test_a_names_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    (data / "names.txt").write_bytes(b"person1_virus_1.jpeg\n" + b"\xff\xfe.jpeg\n" * 31)
    line = one_error_line(train_classifier.main, ["--dataset", "xray", "--data_dir", data], capsys, unchanged=tmp_path)
    assert line.endswith(f"{data / 'names.txt'} is not UTF-8 text (invalid start byte at byte 21): prepare the X-rays "
                         "again")


def test_ctrl_c_in_prepare_xrays_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    picture(tmp_path / "xrays" / "person1_virus_1.png", 100)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_xrays, "load_xrays", interrupted)
    line = one_error_line(prepare_xrays.main, ["--images", tmp_path / "xrays", "--out_dir", tmp_path / "out"], capsys,
                          status=cli.EXIT_INTERRUPTED)
    assert line.endswith(": error: interrupted")
    assert os.listdir(tmp_path / "out") == []


# ---------------------------------------------------------------- item 15: SIGTERM, a dash, a projector folder


def test_sigterm_in_training_prints_a_resume_command_that_works_for_an_out_dir_with_a_dash(tmp_path, capsys,
                                                                                        monkeypatch):
    data = make_xray_data(tmp_path / "data", n=32)
    monkeypatch.chdir(tmp_path)
    write_history = run_folder.write_history

    def killed_after_the_first_epoch(*args):
        write_history(*args)
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill` would: epoch 1 is complete

    monkeypatch.setattr(run_folder, "write_history", killed_after_the_first_epoch)
    argv = ["--dataset", "xray", "--data_dir", str(data), "--out_dir=-dashrun", "--summary_dir", str(data / "cgan"),
            "--filters", "4", "--n_batch", "16", "--real_plots", "0", "--epochs_goal", "2"]
    assert train_cgan.main(argv) == cli.EXIT_TERMINATED
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    err = capsys.readouterr().err
    command = err.split("terminated; resume with:\n")[1].strip()
    assert command == "python files/train_cgan.py --dataset xray --out_dir=-dashrun --qRestart --epochs_goal 2"
    assert train_cgan.main(shlex.split(command)[2:]) == 0
    assert run_folder.complete_epochs(str(tmp_path / "-dashrun")) == [1, 2]


def test_a_file_where_the_projector_folder_goes_is_refused_before_the_evaluation(tmp_path, capsys):
    models, out = tmp_path / "models", tmp_path / "out"
    models.mkdir()
    save_generator(models / "generator_model_002.h5", 3)
    out.mkdir()
    (out / "projector_e002").write_text("someone's notes")
    line = one_error_line(evaluate.main, ["--dataset", "xray", "--data_dir", tmp_path / "data", "--models_dir", models,
                                          "--out_dir", out, "--embedding"], capsys, unchanged=tmp_path)
    assert line.endswith(f"{out / 'projector_e002'} is there and is not a folder; --embedding writes the projector "
                         "files into a folder of that name: move it, or pick another --out_dir")
