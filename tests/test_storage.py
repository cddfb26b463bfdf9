"""storage.py: writes are atomic (all or nothing under the final name) and keep the usual mode."""

import os

import numpy as np
import pytest

from cganlib.storage import InputError, atomic_write, load_npz, save_npz


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
