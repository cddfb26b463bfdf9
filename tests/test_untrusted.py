"""Untrusted files, tampered run folders and interruptions (issue 22): a link or a FIFO where a
file belongs, images and arrays whose headers promise more memory than there is, a prepared set
half replaced, a run folder edited by hand. Each ends in one line and exit status 2 (bad
input) or 1 (the machine failed), or works; nothing outside the run's own files is touched."""

import os

import pytest

from cganlib import run_folder
from cganlib.storage import InputError
from test_train import bad_input, make_xray_data, xray_argv

# ---------------------------------------------------------------- the run folder's lock


def test_a_linked_lock_is_refused_and_its_target_left_alone(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.makedirs(data / "results")
    os.symlink(victim, data / "results" / ".lock")
    err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart"))
    assert "results/.lock is a symbolic link, not a training run's lock: remove it" in err
    with pytest.raises(InputError, match="symbolic link"), run_folder.locked(str(data / "results")):
        pass
    assert victim.read_text() == "precious\n"


def test_a_fifo_lock_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / ".lock")
    with pytest.raises(InputError, match="is not a regular file"):
        run_folder.check_not_in_use(str(tmp_path))
    with pytest.raises(InputError, match="is not a regular file"), run_folder.locked(str(tmp_path)):
        pass
