"""run_folder.py: which epochs are complete, the generators of any folder, the lock, temporary
files, the run's recorded data files and the training state file. No training here."""

import os

import numpy as np
import pytest

from cganlib import run_folder
from cganlib.storage import InputError
from helpers import epoch_files, history


def test_generator_files_follow_the_originals_rule(tmp_path):
    with pytest.raises(InputError, match="models folder .* not found"):
        run_folder.generator_files(str(tmp_path / "none"))
    with pytest.raises(InputError, match="no generator .h5 files in"):
        run_folder.generator_files(str(tmp_path))
    names = ["generator_model_012.h5", "generator_model_gan012.h5", "generator_model_dis012.h5", "g_5_faces.h5",
             "model.h5", ".tmp-generator_model_013.h5.x1y2.h5", "generator_model_014.h5.png", "notes_7.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert run_folder.generator_files(str(tmp_path)) == [
        (5, str(tmp_path / "g_5_faces.h5")), (12, str(tmp_path / "generator_model_012.h5")),
    ]


def test_an_originals_folder_counts_epochs_by_their_files(tmp_path):
    epoch_files(tmp_path, 1)
    epoch_files(tmp_path, 2, parts=("generator",))  # no discriminator
    epoch_files(tmp_path, 3)
    (tmp_path / "generator_model_dis003.h5").write_bytes(b"half")  # unreadable
    epoch_files(tmp_path, 4, parts=("generator", "discriminator"))  # no GAN: the original resumed without it
    assert run_folder.saved_epochs(str(tmp_path)) == run_folder.complete_epochs(str(tmp_path)) == [1, 4]


def test_history_decides_which_epochs_are_complete(tmp_path):
    for epoch in (1, 2, 3, 4):
        epoch_files(tmp_path, epoch)
    run_folder.write_config(str(tmp_path), {"flags": {}})
    assert run_folder.complete_epochs(str(tmp_path)) == []  # a run that committed nothing yet
    history(tmp_path, [1, 2])  # epoch 3 and 4's files landed, their rows did not
    assert run_folder.complete_epochs(str(tmp_path)) == [1, 2]
    # an original's run resumed at epoch 2: its earlier epochs count by their files
    os.remove(tmp_path / run_folder.RUN_CONFIG)
    history(tmp_path, [3])
    assert run_folder.complete_epochs(str(tmp_path)) == [1, 2, 3]
    assert [row["epoch"] for row in run_folder.read_history(str(tmp_path), up_to_epoch=2)] == []


def test_run_files_and_clear_run_leave_other_files(tmp_path):
    epoch_files(tmp_path, 1)
    history(tmp_path, [1])
    for name in ("generated_plot_e001.png", "train_state_001.npz", "losses.png", "run_config.json", "notes.txt",
                 ".tmp-history.csv.abc", "generator_model_x.h5"):
        (tmp_path / name).write_bytes(b"")
    with run_folder.locked(str(tmp_path)):
        pass
    run_folder.clear_run(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [".lock", ".tmp-history.csv.abc", "generator_model_x.h5", "notes.txt"]


def test_temporary_files_are_removed_all_or_by_the_final_names_prefix(tmp_path):
    for name in (".tmp-real_plot_e001.png.k2j.png", ".tmp-someone_else.txt.a9", "real_plot_e001.png"):
        (tmp_path / name).write_bytes(b"")
    assert run_folder.remove_temporary_files(str(tmp_path), ("real_plot_e",)) == 1
    assert sorted(os.listdir(tmp_path)) == [".tmp-someone_else.txt.a9", "real_plot_e001.png"]
    assert run_folder.remove_temporary_files(str(tmp_path)) == 1
    assert os.listdir(tmp_path) == ["real_plot_e001.png"]
    assert run_folder.remove_temporary_files(str(tmp_path / "none")) == 0


def test_the_lock_refuses_a_second_holder_while_held_only(tmp_path):
    results = str(tmp_path / "results")
    run_folder.check_not_in_use(results)  # no folder yet: free, and nothing written
    assert not os.path.exists(results)
    with run_folder.locked(results):
        message = f"{results} is in use by another training run (pid {os.getpid()})"
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run_folder.check_not_in_use(results)
        with pytest.raises(InputError, match="in use by another training run"), run_folder.locked(results):
            pass
    # the file stays behind, as after a killed run, and blocks nobody
    assert (tmp_path / "results" / ".lock").read_text() == f"{os.getpid()}\n"
    run_folder.check_not_in_use(results)
    with run_folder.locked(results):
        pass


def test_a_changed_data_file_is_named_with_both_versions(tmp_path):
    path = tmp_path / "labels.npz"
    path.write_bytes(b"12345")
    record = run_folder.file_record(str(path))
    assert record["bytes"] == 5 and len(record["sha256"]) == 64
    run_folder.check_data_files([record])
    path.write_bytes(b"12346")
    with pytest.raises(InputError, match=r"labels.npz changed since the run began: 5 bytes, sha256 \w{12} then; "
                                         r"5 bytes, sha256 \w{12} now"):
        run_folder.check_data_files([record])
    os.remove(path)
    with pytest.raises(InputError, match="a data file of this run, cannot be read"):
        run_folder.check_data_files([record])


def test_training_state_round_trip(tmp_path):
    info = {"ij": 7, "rng": {"state": 2**100 + 3}, "stopped": False}
    arrays = {"moments": [np.full((2, k), k, np.float32) for k in range(12)], "seeds": [np.array([5, 0], np.int64)]}
    assert run_folder.load_state(str(tmp_path), 3) is None
    run_folder.save_state(str(tmp_path), 3, info, arrays)
    loaded_info, loaded = run_folder.load_state(str(tmp_path), 3)
    assert loaded_info == {**info, "epoch": 3, "files": {}} and sorted(loaded) == ["moments", "seeds"]  # no models here
    for name, saved in arrays.items():  # in order, past ten of them
        assert [a.shape for a in loaded[name]] == [a.shape for a in saved]
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(loaded[name], saved))
    assert os.listdir(tmp_path) == ["train_state_003.npz"]
    (tmp_path / "train_state_004.npz").write_bytes(b"half a zip")
    with pytest.raises(InputError, match="train_state_004.npz: not a readable training state"):
        run_folder.load_state(str(tmp_path), 4)
