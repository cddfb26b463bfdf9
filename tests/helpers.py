"""Helpers the test modules share: synthetic data (X-ray arrays, bright squares), the check of a
one-line error, and reading a running script's log. Launching a script: conftest.py."""

import os

import numpy as np
import pytest

from cganlib.storage import save_npz
from conftest import DATA


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


# ---------------------------------------------------------------- bad input


def error_line(status, stderr):
    """The one line a refused input prints, `<script>: error: <message>`, after checking that it
    is the only line of stderr and the exit status is 2."""
    lines = stderr.strip().splitlines()
    assert status == 2, stderr[-2000:]
    assert len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


def one_error_line(main, argv, capsys, unchanged=None):
    """Run a script's main(argv) in this process: its error_line. With `unchanged`, a folder,
    also checks that nothing under it was written or removed."""
    before = sorted(unchanged.rglob("*")) if unchanged is not None else None
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    line = error_line(exit_info.value.code, capsys.readouterr().err)
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
