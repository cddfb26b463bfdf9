"""storage.py: writes are atomic (all or nothing under the final name) and keep the usual mode."""

import os
import signal

import numpy as np
import pytest

from cganlib import datasets
from cganlib.storage import (
    InputError,
    atomic_write,
    load_npz,
    npz_writer,
    save_file_set,
    save_npz,
)
from conftest import FILES, start_python, stop
from helpers import dead_pid


def test_npz_round_trip_under_arr_0_with_the_usual_mode(tmp_path):
    path = tmp_path / "a.npz"
    save_npz(path, np.arange(6).reshape(2, 3))
    with np.load(path) as data:
        assert list(data.keys()) == ["arr_0"]
    np.testing.assert_array_equal(load_npz(path), np.arange(6).reshape(2, 3))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.npz"
    save_npz(path, np.zeros(3))

    def broken(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    np.testing.assert_array_equal(load_npz(path), np.zeros(3))
    assert os.listdir(tmp_path) == ["a.npz"]


def test_missing_or_corrupt_npz_names_the_file_and_its_maker(tmp_path):
    with pytest.raises(InputError, match=r"b\.npz not found \(make it with files/prepare_xrays\.py\)"):
        load_npz(tmp_path / "b.npz", "files/prepare_xrays.py")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"c\.npz: not a readable \.npz"):
        load_npz(tmp_path / "c.npz")


def test_a_write_removes_what_a_killed_writer_of_the_same_name_left_and_nothing_else(tmp_path):
    gone = dead_pid()
    live = f".tmp-a.npz.{os.getpid()}.w0rk1ng"  # a writer still at work
    kept = [live, f".tmp-b.npz.{gone}.other", ".tmp-a.npz.n0p1d"]  # another name's; no pid in it
    for name in (f".tmp-a.npz.{gone}.k1ll3d", *kept):
        (tmp_path / name).write_bytes(b"partial")
    save_npz(tmp_path / "a.npz", np.zeros(3))
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, "a.npz"])


def test_a_set_whose_manifest_leaves_a_file_out_is_refused(tmp_path):
    xray = datasets.DATASETS["xray"]
    images, labels = np.zeros((2, 80, 80, 3), np.uint8), np.zeros(2, int)
    save_file_set(tmp_path, datasets.manifest_file("xray"), {xray.images_file: npz_writer(images)})
    save_npz(tmp_path / xray.labels_file, labels)  # beside the set, not in its manifest
    with pytest.raises(InputError, match=r"prepared_xray\.json does not list labels_align_xray\.npz: make the set again"):
        datasets.load_prepared(xray, str(tmp_path))
    save_file_set(tmp_path, datasets.manifest_file("xray"), {xray.images_file: npz_writer(images),
                                                             xray.labels_file: npz_writer(labels)})
    assert len(datasets.load_prepared(xray, str(tmp_path))[0]) == 2  # listed whole, the same files are taken


# atomic_write inside a script's exit_on_bad_input, its writer stuck until the process is signalled
WRITER_STUCK = """
import sys, time
sys.path.insert(0, {files!r})
from cganlib import cli
from cganlib.storage import atomic_write

def stuck(path):
    open(path, "wb").write(b"half")
    print("writing", flush=True)
    time.sleep(600)

with cli.exit_on_bad_input():
    atomic_write({path!r}, stuck)
"""


def test_kill_ends_a_write_with_status_143_and_no_temporary_file(tmp_path):
    writer = start_python("-c", WRITER_STUCK.format(files=FILES, path=str(tmp_path / "a.npz")))
    try:
        assert writer.stdout.readline() == "writing\n"
        assert [name for name in os.listdir(tmp_path) if name.startswith(".tmp-a.npz.")]
        writer.send_signal(signal.SIGTERM)
        _, err = writer.communicate()
    finally:
        stop(writer)
    assert writer.returncode == 143 and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []
