"""Untrusted files, second round (issue 33): the demo removes only what it wrote; two trainings
started on one folder; `.h5` files that would read other files; a classifier whose config
declares more than its file holds; FIFOs where a model, a run's file or names.txt belongs;
SIGTERM to make_phantoms.py's workers; the classifier and its held-out split as one set. Each
ends with nothing lost, nothing read that should not be, no hang, and bad input in one line
with exit status 2."""

import io
import json
import os
import signal
import time
import zipfile

import h5py
import numpy as np
import psutil
import pytest
from PIL import Image

import demo
import explain_image
import heatmaps
import make_phantoms
import saliency
import train_cgan
import train_classifier
from cganlib import cgan, classifier, cli, run_folder, storage, training
from cganlib.storage import InputError
from conftest import DATA, finish, start_logged
from helpers import (
    bad_input,
    dead_pid,
    epoch_files,
    history,
    make_xray_data,
    one_error_line,
    save_generator,
    train_argv,
    xray_argv,
)


def tree(folder):
    """{relative path: bytes} of every file under folder."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# ---------------------------------------------------------------- the demo's folder


def test_the_demo_refuses_a_users_folder_that_holds_a_ground_truth_and_removes_nothing(tmp_path, capsys):
    mywork = tmp_path / "mywork"
    for name in ("ground_truth.npz", "results/generator_model_400.h5", "classifier/notes.txt"):
        (mywork / name).parent.mkdir(parents=True, exist_ok=True)
        (mywork / name).write_bytes(b"the user's")
    line = one_error_line(demo.main, ["--out_dir", mywork, "--n", 8, "--n_batch", 4, "--epochs", 1, "--filters", 8],
                          capsys, unchanged=tmp_path)
    assert "holds no demo run (demo_files.json)" in line
    assert set(tree(mywork).values()) == {b"the user's"}


def test_the_demo_removes_the_files_it_listed_and_refuses_a_folder_that_holds_any_other(tmp_path, capsys):
    work, elsewhere = tmp_path / "demo", tmp_path / "elsewhere"
    demo.prepare_work_dir(str(work))  # a new folder: its manifest, listing nothing yet
    for name in ("ground_truth.npz", "results/generator_model_001.h5", "results/real_plots/real_plot_e001.png"):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(b"the demo's")
    demo.record_files(str(work))  # as after each step
    elsewhere.mkdir()
    (elsewhere / "model.h5").write_bytes(b"the user's")
    for stranger in ("results/generator_model_400.h5", "results/mine"):  # a file put in later; a linked folder
        if stranger.endswith("mine"):
            os.symlink(elsewhere, work / stranger)
        else:
            (work / stranger).write_bytes(b"the user's")
        line = one_error_line(demo.main, ["--out_dir", work, "--epochs", 1], capsys, unchanged=tmp_path)
        assert f"{work / stranger}: not listed in demo_files.json" in line
        os.remove(work / stranger)
    assert tree(elsewhere) == {"model.h5": b"the user's"}
    (work / "kept").mkdir()  # a folder of the user's stays; those the removal empties go
    demo.prepare_work_dir(str(work))
    assert sorted(os.listdir(work)) == ["demo_files.json", "kept"]
    assert json.loads((work / "demo_files.json").read_text()) == {"files": []}


# ---------------------------------------------------------------- two trainings on one folder


def another_run_meanwhile(monkeypatch, write):
    """While the training reads its data (before it takes the folder's lock), write(another
    run's files); the training itself is not run (training.start returns at once)."""
    load_dataset = training.load_dataset

    def load_while_another_run_writes(run):
        write()
        return load_dataset(run)

    monkeypatch.setattr(training, "load_dataset", load_while_another_run_writes)
    monkeypatch.setattr(training, "start", lambda *args: 0)


def test_a_folder_another_run_took_while_this_one_read_its_data_is_refused_under_the_lock(tmp_path, capsys, monkeypatch):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    written = {}

    def first_run():
        os.makedirs(results)
        run_folder.write_config(str(results), {"flags": {"seed": 1}})
        epoch_files(results, 1)
        history(results, [1])
        written.update(tree(results))

    another_run_meanwhile(monkeypatch, first_run)
    line = one_error_line(train_cgan.main, train_argv(data, results, "--epochs_goal", 2), capsys)
    assert f"{results} already holds a training run (complete epoch 1); use --qRestart" in line
    assert tree(results) == written | {".lock": f"{os.getpid()}\n".encode()}  # the lock it took to check


def test_a_restart_whose_folder_another_run_extended_meanwhile_is_refused_under_the_lock(tmp_path, capsys,
                                                                                         monkeypatch):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    os.makedirs(results)
    run_folder.write_config(str(results), {"flags": {}})
    paths = run_folder.model_paths(str(results), 1)
    storage.save_model(cgan.build_generator(3, filters=4), paths["generator"])
    storage.save_model(cgan.build_discriminator(3, filters=4, lr=4e-5), paths["discriminator"])
    history(results, [1])
    written = {}

    def epoch_2():
        epoch_files(results, 2)
        history(results, [1, 2])
        written.update(tree(results))

    another_run_meanwhile(monkeypatch, epoch_2)
    line = one_error_line(train_cgan.main, train_argv(data, results, "--qRestart", "--epochs_goal", 3), capsys)
    assert f"another run wrote {results} while this one started (resuming from epoch 1); run the command again" in line
    assert tree(results) == written | {".lock": f"{os.getpid()}\n".encode()}  # epoch 2 still listed, its files there


# ---------------------------------------------------------------- .h5 files that read other files

SECRET = np.arange(64, dtype=np.float32).tobytes()  # a local file's bytes a model file could load as weights


def borrowing(h5, name, kind, folder):
    """Replace dataset `name` of an open .h5 by one of the same shape and type whose data lies
    in another file: external storage, a virtual dataset, or an external link."""
    shape, dtype = h5[name].shape, h5[name].dtype
    del h5[name]
    secret = folder / "secret.bin"
    n_bytes = int(np.prod(shape)) * dtype.itemsize
    secret.write_bytes((SECRET * (n_bytes // len(SECRET) + 1))[:n_bytes])
    if kind == "external":
        h5.create_dataset(name, shape, dtype, external=[(str(secret), 0, n_bytes)])
        return
    with h5py.File(folder / "other.h5", "w") as other:
        other["w"] = np.frombuffer(secret.read_bytes(), dtype).reshape(shape)
    if kind == "virtual":
        layout = h5py.VirtualLayout(shape, dtype)
        layout[...] = h5py.VirtualSource(str(folder / "other.h5"), "w", shape)
        h5.create_virtual_dataset(name, layout)
    else:
        h5[name] = h5py.ExternalLink(str(folder / "other.h5"), "/w")


def first_kernel(h5):
    names = []
    h5.visititems(lambda name, member: names.append(name) if isinstance(member, h5py.Dataset) and "kernel" in name
                  else None)
    return names[0]


KINDS = {"external": "is stored in external files", "virtual": "is a virtual dataset, mapped from other files",
         "link": "links to another file"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_generator_whose_weights_lie_in_another_file_is_refused_by_every_reader(tmp_path, capsys, kind):
    models, out = tmp_path / "models", tmp_path / "out"
    models.mkdir()
    save_generator(models / "generator_model_001.h5", 3, filters=4)
    with h5py.File(models / "generator_model_001.h5", "r+") as h5:
        borrowing(h5, first_kernel(h5), kind, tmp_path)
    with pytest.raises(InputError, match=KINDS[kind]):
        cgan.load_generator(str(models / "generator_model_001.h5"))
    with pytest.raises(SystemExit) as stop:
        heatmaps.main(["--dataset", "xray", "--models_dir", str(models), "--out_dir", str(out)])
    named, summary = [line for line in capsys.readouterr().err.splitlines() if "error: " in line]  # one per file, one for all
    assert stop.value.code == 2 and KINDS[kind] in named and "a model file must hold its own data" in named
    assert summary.endswith("1 of 1 model files could not be used: generator_model_001.h5")
    assert os.listdir(out) == []
    Image.new("RGB", (80, 80)).save(tmp_path / "scan.png")
    line = one_error_line(explain_image.main, ["--model", models / "generator_model_001.h5", "--image",
                                               tmp_path / "scan.png", "--label", 1, "--out_dir", tmp_path / "explained"],
                          capsys)
    assert KINDS[kind] in line


def test_a_restart_refuses_a_run_whose_model_file_reads_another_file(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = data / "results"
    os.makedirs(results)
    epoch_files(results, 1)
    history(results, [1])
    with h5py.File(run_folder.model_paths(str(results), 1)["generator"], "r+") as h5:
        h5["model_weights/kernel"] = np.zeros(16, np.float32)
        borrowing(h5, "model_weights/kernel", "external", tmp_path)
    err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart"))
    assert "generator_model_001.h5: dataset model_weights/kernel is stored in external files" in err


def test_the_keras2_generators_in_tests_data_hold_their_own_data():
    for name in ("keras2_generator_c3_f8.h5", "keras2_generator_c4_f8.h5"):
        with storage.open_h5(os.path.join(DATA, name)) as h5:
            assert "model_weights" in h5


# ---------------------------------------------------------------- a classifier's .keras checked before Keras builds it


@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory):
    """A .keras file of build_classifier's model (widths 2, 4, 8) and prepared arrays beside it."""
    folder = tmp_path_factory.mktemp("classifier")
    make_xray_data(folder, n=24)
    classifier.build_classifier(3, (2, 4, 8)).save(folder / "classifier.keras")
    storage.save_arrays(folder / "held_out.npz", held_out=np.arange(24))
    return folder


def rewritten(source, target, config=None, weights=None):
    """A copy of a .keras file with config.json changed by config(dict) and model.weights.h5 by
    weights(open h5py file)."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if config:
        members["config.json"] = json.dumps(config(json.loads(members["config.json"]))).encode()
    if weights:
        buffer = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buffer, "r+") as h5:
            weights(h5)
        members["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return target


def layer_config(config, name):
    return next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == name)["config"]


def declaring(name, key, value):
    def change(config):
        layer_config(config, name)[key] = value
        return config

    return change


CLASSIFIER_CASES = [
    ("12,000,000 filters", declaring("conv1", "filters", 12_000_000),
     "layer 'conv1' declares filters 12000000, kernel [5, 5], but the weights it stores are [5, 5, 3, 2]"),
    ("a kernel of 9000", declaring("conv2", "kernel_size", [9000, 9000]),
     "layer 'conv2' declares filters 4, kernel [9000, 9000], but the weights it stores are [3, 3, 2, 4]"),
    ("a million units", declaring("class_scores", "units", 1_000_000),
     "layer 'class_scores' declares units 1000000, but the weights it stores are [8, 3]"),
    ("filters as text", declaring("last_conv", "filters", "8"), "declares filters '8', kernel [3, 3]: not whole numbers"),
    ("64x64 input", declaring("pixels", "batch_shape", [None, 64, 64, 3]),
     "built for input [None, 64, 64, 3], not 80x80 RGB images [None, 80, 80, 3]"),
    ("one channel", declaring("pixels", "batch_shape", [None, 80, 80, 1]), "built for input [None, 80, 80, 1]"),
    ("another kind of layer", lambda config: {**config, "config": {**config["config"], "layers": [
        *config["config"]["layers"], {"class_name": "Embedding", "config": {"input_dim": 10**9, "output_dim": 10**3}}]}},
     "a layer of kind 'Embedding': a classifier of train_classifier.py is made of InputLayer, Rescaling, Conv2D"),
]


@pytest.mark.parametrize("change, message", [case[1:] for case in CLASSIFIER_CASES],
                         ids=[case[0] for case in CLASSIFIER_CASES])
def test_a_classifier_declaring_sizes_its_file_does_not_hold_is_refused_before_keras_builds_it(
        saved_classifier, tmp_path, capsys, monkeypatch, change, message):
    crafted = rewritten(saved_classifier / "classifier.keras", tmp_path / "classifier.keras", config=change)
    assert os.path.getsize(crafted) < 30_000

    def never(*args, **kwargs):
        raise AssertionError("Keras was asked to build the model")

    monkeypatch.setattr(classifier.keras.models, "load_model", never)
    line = one_error_line(saliency.main, ["--dataset", "xray", "--data_dir", saved_classifier, "--classifier", crafted,
                                          "--out_dir", tmp_path / "maps"], capsys)
    assert message in line
    assert not (tmp_path / "maps").exists()


def test_a_classifier_whose_weights_lie_in_another_file_is_refused(saved_classifier, tmp_path, capsys):
    crafted = rewritten(saved_classifier / "classifier.keras", tmp_path / "classifier.keras",
                        weights=lambda h5: borrowing(h5, "layers/conv2d/vars/0", "external", tmp_path))
    line = one_error_line(saliency.main, ["--dataset", "xray", "--data_dir", saved_classifier, "--classifier", crafted],
                          capsys)
    assert "classifier.keras's model.weights.h5: dataset layers/conv2d/vars/0 is stored in external files" in line


def test_a_classifier_as_train_classifier_saves_it_passes_the_checks(saved_classifier):
    model = classifier.load_classifier(saved_classifier / "classifier.keras")
    assert [layer.name for layer in model.layers][-3:] [::2] == ["last_conv", "class_scores"]


# ---------------------------------------------------------------- FIFOs where a file belongs


def test_a_fifo_named_like_a_generator_is_refused_not_waited_on(tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    os.mkfifo(models / "generator_model_001.h5")
    with pytest.raises(SystemExit) as stop:
        heatmaps.main(["--dataset", "xray", "--models_dir", str(models), "--out_dir", str(tmp_path / "out")])
    named, summary = [line for line in capsys.readouterr().err.splitlines() if "error: " in line]
    assert stop.value.code == 2 and named.endswith(f"{models / 'generator_model_001.h5'} is not a regular file")
    assert summary.endswith("1 of 1 model files could not be used: generator_model_001.h5")


def test_a_fifo_as_the_classifier_is_refused_not_waited_on(saved_classifier, tmp_path, capsys):
    os.mkfifo(tmp_path / "classifier.keras")
    line = one_error_line(saliency.main, ["--dataset", "xray", "--data_dir", saved_classifier, "--classifier",
                                          tmp_path / "classifier.keras"], capsys)
    assert line.endswith(f"{tmp_path / 'classifier.keras'} is not a regular file")


@pytest.mark.parametrize("part", ["generator", "discriminator"])
def test_a_fifo_in_a_run_folder_is_refused_by_a_restart_not_waited_on(tmp_path, capsys, part):
    data = make_xray_data(tmp_path / "data", n=32)
    results = data / "results"
    os.makedirs(results)
    epoch_files(results, 1, parts=[p for p in ("generator", "discriminator", "gan") if p != part])
    os.mkfifo(run_folder.model_paths(str(results), 1)[part])
    history(results, [1])
    err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart"))
    assert err.endswith(f"{run_folder.model_paths(str(results), 1)[part]} is not a regular file")


def test_a_fifo_as_names_txt_is_refused_not_waited_on(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    os.mkfifo(data / "names.txt")
    line = one_error_line(train_classifier.main, ["--dataset", "xray", "--data_dir", data], capsys)
    assert line.endswith(f"{data / 'names.txt'} is not a regular file")
    assert not (data / "classifier").exists()


def test_a_fifo_as_a_training_state_is_refused_when_it_loads(tmp_path):
    os.mkfifo(run_folder.state_path(str(tmp_path), 1))
    with pytest.raises(InputError, match="train_state_001.npz is not a regular file"):
        run_folder.load_state(str(tmp_path), 1)


# ---------------------------------------------------------------- make_phantoms.py's workers and staging folder


def test_sigterm_stops_make_phantoms_workers_and_removes_its_staging_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    process = start_logged("make_phantoms.py", tmp_path / "stderr.txt", "--out_dir", out, "--n", 3000, "--size", 128,
                           "--workers", 2)
    parent = psutil.Process(process.pid)
    # drawing has begun: both workers are up and a phantom is saved in the staging folder
    while not (len(parent.children()) >= 2 and any(name.endswith(".jpeg") for _, _, names in os.walk(out)
                                                   for name in names)):
        assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
        time.sleep(0.1)
    workers = parent.children()
    try:
        process.send_signal(signal.SIGTERM)
        finish(process)  # a worker left running would hold its stdout open: this would wait on
        assert process.returncode == cli.EXIT_TERMINATED
        assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
    finally:  # the test's group kill misses workers whose parent has ended
        for worker in workers:
            if worker.is_running():
                worker.kill()
    assert os.listdir(out) == []  # no staging folder, no phantoms
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def test_make_phantoms_removes_the_staging_folder_a_killed_run_left_and_no_running_ones(tmp_path):
    killed, running = tmp_path / f".tmp-phantoms-{dead_pid()}-k1ll3d", tmp_path / f".tmp-phantoms-{os.getpid()}-l1ve"
    for folder in (killed, running):
        (folder / "chest_xray").mkdir(parents=True)
        (folder / "chest_xray" / "IM-0001-0001.jpeg").write_bytes(b"drawn")
    make_phantoms.main(["--out_dir", str(tmp_path), "--n", "1", "--size", "80", "--workers", "1"])
    assert sorted(os.listdir(tmp_path)) == sorted(["chest_xray", "ground_truth.npz", running.name])


# ---------------------------------------------------------------- the classifier and its split, one set


def killed_at_rename(monkeypatch, final_name):
    """os.replace raises KeyboardInterrupt (a Ctrl-C) when it would put final_name in place."""
    replace = os.replace

    def replace_or_die(src, dst):
        if os.path.basename(dst) == final_name:
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace_or_die)


def test_a_classifier_killed_beside_the_previous_split_is_refused_by_its_readers(tmp_path, capsys, monkeypatch):
    data = make_xray_data(tmp_path / "data", n=48)
    train = ["--dataset", "xray", "--data_dir", str(data), "--max_epochs", "1", "--filters", "2"]
    folder = data / "classifier"
    train_classifier.main([*train, "--seed", "0"])
    old = tree(folder)
    assert sorted(old) == ["classifier.keras", "classifier_files.json", "held_out.npz"]
    killed_at_rename(monkeypatch, "classifier_files.json")  # killed before the set's commit: the old set stands
    with pytest.raises(SystemExit):
        train_classifier.main([*train, "--seed", "1"])
    assert tree(folder) == old
    monkeypatch.undo()
    killed_at_rename(monkeypatch, "held_out.npz")  # the new model in place, the old split beside it
    with pytest.raises(SystemExit):
        train_classifier.main([*train, "--seed", "1"])
    monkeypatch.undo()
    capsys.readouterr()
    assert tree(folder)["classifier.keras"] != old["classifier.keras"]
    assert tree(folder)["held_out.npz"] == old["held_out.npz"]
    stale = (f"{folder / 'held_out.npz'} is not the file classifier_files.json lists with the rest of its set "
             "(a write stopped halfway, or a file replaced by hand): make the set again with files/train_classifier.py")
    line = one_error_line(saliency.main, ["--dataset", "xray", "--data_dir", data, "--out_dir", tmp_path / "maps"], capsys)
    assert line.endswith(stale)
    line = one_error_line(explain_image.main, [
        "--model", os.path.join(DATA, "keras2_generator_c3_f8.h5"), "--npz", data / "img_align_xray.npz",
        "--labels_npz", data / "labels_align_xray.npz", "--indices_from", folder / "held_out.npz",
        "--out_dir", tmp_path / "explained"], capsys)
    assert line.endswith(stale)
    train_classifier.main([*train, "--seed", "1"])  # made again: a set
    assert classifier.load_classifier(folder / "classifier.keras") is not None
