"""Helpers the test modules share: synthetic data (X-ray arrays, bright squares, run folders),
a ROC-AUC counted by hand, the checks of a one-line error, train_cgan.py's command lines, and
reading a running script's log. Launching a script: conftest.py."""

import errno
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

import train_cgan
from cganlib import run_folder, storage
from cganlib.storage import save_npz
from conftest import DATA, FILES, start_python


def data_file(name):
    """A file of tests/data (the Keras 2 generators and the images they computed)."""
    return os.path.join(DATA, name)


# ---------------------------------------------------------------- synthetic data


def make_xray_data(folder, n=128, seed=0):
    """Prepared X-ray arrays of noise (img_align_xray.npz, labels_align_xray.npz, labels 0-2) in folder."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    save_npz(os.path.join(folder, "img_align_xray.npz"), rng.integers(0, 256, (n, 80, 80, 3), dtype=np.uint8))
    save_npz(os.path.join(folder, "labels_align_xray.npz"), rng.integers(0, 3, n))
    return folder


def make_phantom_set(folder, n, size, seed=0, workers=1):
    """make_phantoms.py run here (its main): n chest phantoms per class under folder/chest_xray;
    returns the arrays of its ground_truth.npz."""
    import make_phantoms

    make_phantoms.main([str(a) for a in ("--out_dir", folder, "--n", n, "--size", size, "--seed", seed, "--workers", workers)])
    with np.load(os.path.join(folder, "ground_truth.npz")) as truth:
        return {key: truth[key] for key in truth}


def bright_squares(images, corners, size, value=230):
    """Paint a square of side `size` and grey level `value` into each of images (N, H, W[, C])
    in place, its top-left corner at corners[k] (top, left), none where corners[k] is None.
    Returns (images, the squares' masks (N, H, W) bool)."""
    masks = np.zeros(images.shape[:3], bool)
    for k, corner in enumerate(corners):
        if corner is not None:
            top, left = corner
            masks[k, top : top + size, left : left + size] = True
            images[k][masks[k]] = value
    return images, masks


def auc_by_hand(values, mask):
    """ROC-AUC of a map's values as a detector of the mask's pixels, counted pair by pair: the
    share of (inside, outside) pixel pairs where the inside one is larger, ties counting half."""
    values, mask = np.asarray(values, np.float64), np.asarray(mask, bool)
    inside, outside = values[mask], np.sort(values[~mask])
    below, up_to = np.searchsorted(outside, inside, "left"), np.searchsorted(outside, inside, "right")
    return float((below + 0.5 * (up_to - below)).sum() / (inside.size * outside.size))


def save_generator(path, n_classes, filters=8, scale=1.0, label_blind=False):
    """A generator from our own model code, saved as training saves it. scale > 1 makes the
    label change the images enough to paint; label_blind zeroes the label embedding."""
    import keras

    from cganlib import cgan
    from cganlib.storage import save_model

    model = cgan.build_generator(n_classes, filters=filters)
    for layer in model.layers:
        weights = layer.get_weights()
        if label_blind and isinstance(layer, keras.layers.Embedding):
            layer.set_weights([np.zeros_like(w) for w in weights])
        elif weights:
            layer.set_weights([w * scale for w in weights])
    save_model(model, str(path))


# ---------------------------------------------------------------- figures

MIN_IMAGE_PIXELS = 160  # an image of a figure is drawn at least this wide


def png_size(path):
    with Image.open(path) as image:
        return image.size


def assert_figure_fits(path, n_rows, n_columns=10):
    width, height = png_size(path)
    assert width >= n_columns * MIN_IMAGE_PIXELS and height >= n_rows * MIN_IMAGE_PIXELS


# ---------------------------------------------------------------- bad input


def error_line(status, stderr, expected_status=2):
    """The one line a script that stops prints, `<script>: error: <message>`, after checking that
    it is the only line of stderr (progress bars aside) and the exit status is expected_status (2,
    bad input, unless told)."""
    lines = [line for line in stderr.splitlines() if line.strip() and "%|" not in line]
    assert status == expected_status, stderr[-2000:]
    assert len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


def one_error_line(main, argv, capsys, unchanged=None, status=2):
    """Run a script's main(argv) in this process: its error_line, with exit status `status`. With
    `unchanged`, a folder, also checks that nothing under it was written or removed."""
    before = sorted(unchanged.rglob("*")) if unchanged is not None else None
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    line = error_line(exit_info.value.code, capsys.readouterr().err, status)
    if unchanged is not None:
        assert sorted(unchanged.rglob("*")) == before, "bad input wrote files"
    return line


# ---------------------------------------------------------------- a running script


def read_until(process, done):
    """process's stdout lines up to the first for which done(line) holds; fails if it ends first."""
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if done(lines[-1]):
            return lines
    raise AssertionError(f"the run ended (status {process.wait()}) before the line awaited; its last lines: {lines[-5:]}")


# train_cgan.py with its arguments, as a user runs it, but held for ever at the count-th call of
# owner.name (one of training's steps), once it has printed HELD: a test acts on a run stopped at
# a point it knows, however fast or busy the machine
HELD = "held"
HELD_TRAINING = """
import os, runpy, sys, threading
sys.path.insert(0, {files!r})
from cganlib import run_folder, training

owner, name, count = {owner}, {name!r}, {count}
original, calls = getattr(owner, name), []

def held(*args, **kwargs):
    calls.append(None)
    if len(calls) == count:
        print({held!r}, flush=True)
        threading.Event().wait()  # until a signal ends the process
    return original(*args, **kwargs)

setattr(owner, name, held)
sys.argv[0] = os.path.join({files!r}, "train_cgan.py")
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def start_held_training(stderr_path, owner, name, count, *args):
    """train_cgan.py args in a subprocess that holds at the count-th call of owner.name (owner
    "training.Trainer" or "run_folder"): stdout a pipe for read_until, stderr the file stderr_path
    (a pipe nobody reads could fill and stop the run)."""
    code = HELD_TRAINING.format(files=FILES, owner=owner, name=name, count=count, held=HELD)
    with open(stderr_path, "w") as err:
        return start_python("-c", code, *args, stderr=err)


def dead_pid():
    """The pid of a process that has ended (a killed writer's, in a temporary file's name)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def fake_model(path):
    """An .h5 that opens like a saved Keras model (all that completeness asks)."""
    with h5py.File(path, "w") as f:
        f.create_group("model_weights")


def epoch_files(folder, epoch, parts=("generator", "discriminator", "gan")):
    paths = run_folder.model_paths(str(folder), epoch)
    for part in parts:
        fake_model(paths[part])


def history(folder, epochs):
    run_folder.write_history(str(folder), [dict.fromkeys(run_folder.HISTORY_FIELDS, 0) | {"epoch": e} for e in epochs])


def bad_input(tmp_path, capsys, argv):
    """train_cgan.main(argv)'s one error line; nothing under tmp_path written."""
    return one_error_line(train_cgan.main, argv, capsys, unchanged=tmp_path)


def xray_argv(data, *extra):
    return ["--dataset", "xray", "--data_dir", str(data), "--filters", "8", "--n_batch", "16",
            "--summary_dir", str(data / "cgan"), *map(str, extra)]


def train_argv(data, results, *extra):
    return ["--dataset", "xray", "--data_dir", str(data), "--results_dir", str(results), "--summary_dir",
            str(data / "cgan"), "--filters", "4", "--n_batch", "16", "--real_plots", "0", *map(str, extra)]


def full_disk_at(monkeypatch, suffix):
    """os.replace fails as on a full disk when it would put a file ending in suffix in place."""
    replace = os.replace

    def replace_or_fail(src, dst):
        if str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src, None, dst)
        replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace_or_fail)
