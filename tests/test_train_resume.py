"""Training runs that stop and go on: a resumed run repeats the uninterrupted one exactly, the
printed resume command keeps the run's settings, nothing half-written counts as an epoch, a
run never overwrites another, old runs (the original's, Keras 2 files) still resume."""

import errno
import os
import re
import shlex
import shutil
import signal

import h5py
import numpy as np
import pytest

import train_cgan
from cganlib import cgan, cli, plots, run_folder, training
from cganlib.storage import save_model, save_npz
from conftest import FILES
from helpers import (
    HELD,
    data_file,
    make_xray_data,
    one_error_line,
    read_until,
    start_held_training,
    train_argv,
)


def state_of(results, epoch):
    """A state file's contents, less the models' SHA-256 it records: Keras names a model's layers
    by how many it built before in that process, and the .h5 files keep the names."""
    info, arrays = run_folder.load_state(str(results), epoch)
    return {k: v for k, v in info.items() if k != "files"}, {name: [a.tolist() for a in values]
                                                            for name, values in arrays.items()}


def without_seconds(results):
    return [{k: v for k, v in row.items() if k != "secs"} for row in run_folder.read_history(str(results))]


# ---------------------------------------------------------------- resuming


@pytest.mark.slow
@pytest.mark.parametrize("options", [
    [], ["--diff_augment", "color,translation,cutout"], ["--mbstd_group", 4], ["--d_steps", 2],
    ["--r1_weight", 1, "--spectral_norm", "--diff_augment", "color,translation,cutout"],  # R1 through all of d
    ["--projection", "--mbstd_group", 4, "--r1_weight", 1],
    ["--mode_seeking", "1"], ["--ema", "0.9"], ["--label_fade", "6"],  # the fade ends in epoch 2's second batch
    ["--mode_seeking", "1", "--ema", "0.9", "--label_fade", "6", "--mbstd_group", 4, "--d_steps", 2, "--projection"],
    ["--resize_conv", "--ema", "0.9"],
], ids=["plain", "diff_augment", "mbstd_group", "d_steps", "r1_weight", "projection", "mode_seeking", "ema",
        "label_fade", "all_new", "resize_conv"])
def test_a_resumed_run_repeats_the_uninterrupted_one_exactly(tmp_path, run, options):
    data = make_xray_data(tmp_path / "data", n=64)  # 4 batches an epoch
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert train_cgan.main(train_argv(data, whole, "--seed", 7, "--epochs_goal", 2, *options)) == 0
    # What a kill during epoch 2's writes leaves: its files half-written and no history row.
    shutil.copytree(whole, resumed)
    run_folder.write_history(str(resumed), run_folder.read_history(str(resumed), 1))
    for path in [*run_folder.model_paths(str(resumed), 2).values(), run_folder.state_path(str(resumed), 2)]:
        with open(path, "r+b") as f:
            f.truncate(100)
    (resumed / ".tmp-train_state_002.npz.x8k2").write_bytes(b"partial")

    result = run("train_cgan.py", "--dataset", "xray", "--results_dir", resumed, "--qRestart", "--epochs_goal", 2)
    assert result.returncode == 0, result.stderr
    assert "training state of epoch 1 restored" in result.stdout
    assert run_folder.complete_epochs(str(resumed)) == [1, 2]
    assert not [name for name in os.listdir(resumed) if name.startswith(".tmp-")]
    # Epoch 2 again, in another process, bit for bit: weights, Adamax moments, random states, guard.
    a, b = run_folder.model_paths(str(whole), 2), run_folder.model_paths(str(resumed), 2)
    g_a, g_b = cgan.load_generator(a["generator"]), cgan.load_generator(b["generator"])
    d_a, d_b = (cgan.load_discriminator(p["discriminator"], 4e-5) for p in (a, b))
    for x, y in zip(g_a.get_weights() + d_a.get_weights(), g_b.get_weights() + d_b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert state_of(whole, 2) == state_of(resumed, 2)
    assert without_seconds(whole) == without_seconds(resumed)


@pytest.mark.slow
def test_ctrl_c_then_the_printed_command_goes_on_with_the_runs_own_settings(tmp_path):
    data = make_xray_data(tmp_path / "data", n=160)  # 5 batches of 32 an epoch: one log line each
    results, summaries = tmp_path / "results", tmp_path / "X"
    settings = ["--d_lr", "0.0005", "--g_lr", "0.005", "--d_beta1", "0.5", "--seed", "3", "--n_batch", "32",
                "--summary_dir", summaries, "--filters", "4", "--mixed_precision", "--real_plots", "0"]
    goal = 1000  # never reached: both runs are stopped by Ctrl-C
    # held in epoch 2's second step (epoch 1 complete), then Ctrl-C
    first = start_held_training(tmp_path / "first.err", "training.Trainer", "step", 7, "--dataset", "xray", "--data_dir",
                                data, "--results_dir", results, *settings, "--epochs_goal", goal)
    read_until(first, lambda line: line == HELD)
    first.send_signal(signal.SIGINT)
    first.communicate()  # drain the log: a closed pipe would fail the run's next print
    assert first.returncode == cli.EXIT_INTERRUPTED
    err = (tmp_path / "first.err").read_text()
    assert "Traceback" not in err
    command = err.split("interrupted; resume with:\n")[1].strip()
    assert command == f"python files/train_cgan.py --dataset xray --out_dir {results} --qRestart --epochs_goal {goal}"
    done = run_folder.complete_epochs(str(results))
    assert done == [1]

    # the printed command as it stands, run from the repository's root by this Python, held at its first step
    for name in os.listdir(summaries):  # the resumed run writes them again, from the models it built
        os.remove(summaries / name)
    second = start_held_training(tmp_path / "second.err", "training.Trainer", "step", 1, *shlex.split(command)[2:])
    lines = read_until(second, lambda line: line == HELD)
    assert lines[-2] == f"training state of epoch {done[-1]} restored from {results / 'train_state_001.npz'}"
    second.send_signal(signal.SIGINT)
    second.communicate()
    assert second.returncode == cli.EXIT_INTERRUPTED
    assert lines[0].startswith("xray: 160 images, classes ")
    precision = "bfloat16" if cgan.cpu_has_bfloat16() else "float32"  # no emulated bfloat16 (it is slow)
    assert lines[0].endswith(
        f"epochs {done[-1] + 1}..{goal}, preset=original n_batch=32 d_lr=0.0005 d_beta1=0.5 g_lr=0.005 gan_upper=3 filters=4 latent_dim=100 "
        f"label_smoothing=1 spectral_norm=off diff_augment=none mbstd_group=0 r1_weight=0 d_steps=1 projection=off mode_seeking=0 ema=0 label_fade=0 resize_conv=off seed=3 precision={precision} real_plots=0 data_dir={data} summary_dir={summaries} (settings from run_config.json)"
    )
    assert lines[1].startswith("--mixed_precision: this CPU has no bfloat16") == (precision == "float32")
    flags = run_folder.read_config(str(results))["flags"]
    assert {k: flags[k] for k in ("d_lr", "g_lr", "d_beta1", "seed", "n_batch", "filters", "mixed_precision")} == {
        "d_lr": 0.0005, "g_lr": 0.005, "d_beta1": 0.5, "seed": 3, "n_batch": 32, "filters": 4, "mixed_precision": True}
    # the resumed run's models have the run's shapes: its summaries against those of models built so
    fresh = {m.name: m for m in (cgan.build_generator(3, 100, 4), cgan.build_discriminator(3, 4, 0.0005))}
    for name, model in fresh.items():
        written = (summaries / f"{name}_summary.txt").read_text()
        assert f"Trainable params: {model.count_params():,} (" in written
    g = cgan.load_generator(run_folder.model_paths(str(results), done[-1])["generator"])
    assert g.count_params() == fresh["generator"].count_params()


# ---------------------------------------------------------------- nothing half-done, nothing overwritten


class Killed(BaseException):
    """Stands in for SIGKILL: no handler of the script sees it."""


@pytest.mark.slow
def test_a_full_disk_and_a_kill_leave_the_epochs_before_complete_and_resumable(tmp_path, capsys, monkeypatch):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    argv = train_argv(data, results, "--seed", 1, "--epochs_goal", 2)
    replace = os.replace

    def failing_replace(fault):
        def replace_or_fail(src, dst):
            name = os.path.basename(dst)
            if fault == "disk full" and name == "generator_model_dis002.h5":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src, None, dst)
            if fault == "kill" and name == "history.csv" and os.path.exists(run_folder.state_path(results, 2)):
                raise Killed  # epoch 2's files all written, its history row not
            replace(src, dst)

        return replace_or_fail

    # the disk fills while epoch 2 is being written
    monkeypatch.setattr(os, "replace", failing_replace("disk full"))
    with pytest.raises(SystemExit) as stop:
        train_cgan.main(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == train_cgan.EXIT_WRITE_FAILED and len(err.splitlines()) == 1
    assert err.endswith(
        f"writing {results}/generator_model_dis002.h5 failed: No space left on device; complete epoch 1 in "
        f"{results}; make room, then resume with: python files/train_cgan.py --dataset xray --out_dir "
        f"{results} --qRestart --epochs_goal 2"
    )
    assert run_folder.complete_epochs(str(results)) == [1] and len(run_folder.read_history(str(results))) == 1

    # resumed, it is killed between epoch 2's training state and its history row
    monkeypatch.setattr(os, "replace", failing_replace("kill"))
    with pytest.raises(Killed):
        train_cgan.main(argv + ["--qRestart"])
    assert run_folder.complete_epochs(str(results)) == [1] and len(run_folder.read_history(str(results))) == 1
    # what SIGKILL leaves besides: temporary files, here and in the folders other runs share
    for folder, name in ((results, ".tmp-history.csv.k1"), (results / "real_plots", ".tmp-real_plot_e001.png.k2.png"),
                         (data / "cgan", ".tmp-gan_summary.txt.k3"), (data / "cgan", ".tmp-notes.txt.k4")):
        os.makedirs(folder, exist_ok=True)
        (folder / name).write_bytes(b"partial")

    monkeypatch.setattr(os, "replace", replace)
    assert train_cgan.main(argv + ["--qRestart"]) == 0
    out = capsys.readouterr().out
    assert "epochs 2..2" in out and "removed 3 temporary file(s) of writes a killed run left" in out
    assert run_folder.complete_epochs(str(results)) == [1, 2]
    leftovers = [name for folder in (results, results / "real_plots", data / "cgan") for name in os.listdir(folder)
                 if name.startswith(".tmp-")]
    assert leftovers == [".tmp-notes.txt.k4"]  # not a file of this script's


@pytest.mark.slow
def test_a_fresh_run_into_a_folder_with_a_run_is_refused_and_overwrite_starts_again(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    os.makedirs(results)
    old = ["generator_model_003.h5", "generator_model_gan003.h5", "generator_model_dis003.h5",
           "generated_plot_e003.png", "train_state_003.npz", "history.csv"]
    for name in old:
        (results / name).write_bytes(b"an earlier run's")
    (results / "notes.txt").write_text("not the run's")
    err = one_error_line(train_cgan.main, train_argv(data, results), capsys, tmp_path)
    assert err.endswith(f"{results} already holds a training run (no complete epoch); "
                        "use --qRestart to continue it or --overwrite to start again")
    assert train_cgan.main(train_argv(data, results, "--overwrite", "--epochs_goal", 1)) == 0
    assert not (set(old) - {"history.csv"}) & set(os.listdir(results))
    assert (results / "notes.txt").exists() and run_folder.complete_epochs(str(results)) == [1]


# ---------------------------------------------------------------- the run's settings


def ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt


def interrupt_after_each_epoch(monkeypatch):
    """Ctrl-C as soon as an epoch is complete (its history row written), where the loss curves would be drawn."""
    monkeypatch.setattr(plots, "loss_curves", ctrl_c)


def interrupt_before_the_first_batch(monkeypatch):
    """Ctrl-C once the run is set up (settings printed, models built, a restart's state restored),
    before its loop of batches."""
    monkeypatch.setattr(training, "train", ctrl_c)


def test_preset_small_sets_the_values_the_readme_documents():
    with open(os.path.join(os.path.dirname(FILES), "README.md")) as f:
        table = [line for line in f if line.startswith(("| `--preset` |", "| `small` "))]
    header, small = ([cell.strip() for cell in line.strip().strip("|").split("|")] for line in table)
    documented = dict(zip((cell.strip("`-") for cell in header[1:]), small[1:]))
    assert documented.pop("gan_upper") == "as `original`"
    for dataset in ("xray", "celeb", "folder"):
        flags = train_cgan.command_line_flags(train_cgan.parse_args(["--dataset", dataset, "--preset", "small"])[0])[0]
        assert {name: flags[name] for name in documented} == {name: float(value) for name, value in documented.items()}
        original = train_cgan.command_line_flags(train_cgan.parse_args(["--dataset", dataset])[0])[0]
        assert flags["gan_upper"] == original["gan_upper"]


def settings_line(out):
    """The settings line a run prints first, without its epochs (a restart's differ)."""
    line = next(line for line in out.splitlines() if line.startswith("xray: "))
    return re.sub(r"epochs \d+\.\.\d+, ", "", line)


@pytest.mark.slow
def test_a_restart_takes_the_runs_settings_may_change_the_machine_and_ctrl_c_prints_the_command(
        tmp_path, capsys, monkeypatch):
    """A fresh run's settings (a preset, flags beside it); the same run drawing real-sample grids
    first trains the same; contradictions refused on restart; a restart on another strategy,
    interrupted, prints a command that keeps the strategy typed; a changed data file refused."""
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    # a preset sets the defaults and a flag beside it wins (--filters 4 and --d_lr here)
    assert train_cgan.main(train_argv(data, results, "--preset", "small", "--d_lr", "1e-3", "--seed", 3,
                                      "--epochs_goal", 1)) == 0
    first = settings_line(capsys.readouterr().out)
    assert ("preset=small n_batch=16 d_lr=0.001 d_beta1=0.5 g_lr=0.005 gan_upper=3 filters=4 latent_dim=100 "
            f"label_smoothing=1 spectral_norm=off diff_augment=none mbstd_group=0 r1_weight=0 d_steps=1 projection=off mode_seeking=0.1 ema=0 label_fade=0 resize_conv=off seed=3 precision=float32 real_plots=0 "
            f"data_dir={data} summary_dir={data / 'cgan'} (settings from the command line)") in first
    recorded = run_folder.read_config(str(results))
    assert recorded["flags"]["preset"] == "small" and recorded["config"]["d_lr"] == 1e-3
    assert recorded["config"]["guard"]["save_d1"] == [0.30, 0.95] and recorded["config"]["n_batch"] == 16

    # the real-sample grids draw from their own random stream: the same run with two of them
    # drawn first trains exactly the same epoch
    with_plots = tmp_path / "with_plots"
    assert train_cgan.main(train_argv(data, with_plots, "--preset", "small", "--d_lr", "1e-3", "--seed", 3,
                                      "--epochs_goal", 1, "--real_plots", 2)) == 0
    capsys.readouterr()
    assert len(os.listdir(with_plots / "real_plots")) == 2 and not os.listdir(results / "real_plots")
    assert without_seconds(with_plots) == without_seconds(results)
    assert state_of(with_plots, 1) == state_of(results, 1)  # the random states and all
    generators = [cgan.load_generator(run_folder.model_paths(str(folder), 1)["generator"]) for folder in (results, with_plots)]
    for a, b in zip(*(generator.get_weights() for generator in generators)):
        np.testing.assert_array_equal(a, b)

    for extra, message in [
        (["--d_lr", 0.002], "--d_lr 0.002 contradicts this run's --d_lr 0.001"),
        (["--seed", 4], "--seed 4 contradicts this run's --seed 3"),
        (["--mixed_precision"], "--mixed_precision on contradicts this run's --mixed_precision off"),
        (["--preset", "original"], "--preset original contradicts this run's --preset small"),
        (["--summary_dir", tmp_path / "elsewhere"], f"this run's --summary_dir {data / 'cgan'}"),
    ]:
        err = one_error_line(train_cgan.main, train_argv(data, results, "--qRestart", *extra), capsys, tmp_path)
        assert message in err and err.endswith(f"a restart keeps the run's settings: leave --{extra[0][2:]} out")

    # --qRestart alone takes every setting from run_config.json; the machine's may change (mirrored
    # here, on this machine's one CPU device), and the command Ctrl-C prints keeps the ones typed
    interrupt_before_the_first_batch(monkeypatch)
    status = train_cgan.main(["--dataset", "xray", "--results_dir", str(results), "--qRestart", "--epochs_goal", "3",
                              "--strategy", "mirrored"])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_INTERRUPTED and "training state of epoch 1 restored" in out
    assert settings_line(out) == first.replace("(settings from the command line)", "(settings from run_config.json)")
    assert "strategy mirrored: 1 replica(s)" in out
    command = err.split("interrupted; resume with:\n")[1].strip()
    assert command == (f"python files/train_cgan.py --dataset xray --out_dir {results} --qRestart --epochs_goal 3 "
                       "--strategy mirrored")

    save_npz(data / "labels_align_xray.npz", np.zeros(32, int))
    err = one_error_line(train_cgan.main, train_argv(data, results, "--qRestart"), capsys, tmp_path)
    assert f"{data / 'labels_align_xray.npz'} changed since the run began: " in err


# ---------------------------------------------------------------- old runs


def old_argv(data, *extra):
    return ["--dataset", "xray", "--data_dir", str(data), "--summary_dir", str(data / "cgan"), "--n_batch", "16",
            "--real_plots", "0", *map(str, extra)]


def test_an_old_run_names_the_filters_and_latent_dim_to_pass(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    paths = run_folder.model_paths(str(data / "results"), 2)
    os.makedirs(data / "results")
    save_model(cgan.build_generator(3, 100, 8), paths["generator"])
    save_model(cgan.build_discriminator(3, 8, 4e-5), paths["discriminator"])
    for extra in (["--filters", 4], ["--filters", 8, "--latent_dim", 50]):
        err = one_error_line(train_cgan.main, old_argv(data, "--qRestart", "--epochs_goal", 3, *extra), capsys, tmp_path)
        assert err.endswith("saved models have latent_dim 100 and filters 8; pass --latent_dim 100 --filters 8")


@pytest.mark.slow
def test_an_old_run_with_a_keras2_discriminator_resumes_with_fresh_moments_and_its_command_spells_it_out(
        tmp_path, capsys, monkeypatch):
    data = make_xray_data(tmp_path / "data", n=32)  # 2 batches an epoch
    results = data / "results"
    os.makedirs(results)
    paths = run_folder.model_paths(str(results), 4)
    shutil.copy(data_file("keras2_generator_c3_f8.h5"), paths["generator"])
    d = cgan.build_discriminator(3, 8, 5e-4)
    d.optimizer.build(d.trainable_variables)
    d.optimizer.iterations.assign(7)  # moments a Keras 3 file would bring back
    save_model(d, paths["discriminator"])
    with h5py.File(paths["discriminator"], "r+") as f:
        f.attrs["keras_version"] = "2.4.0"  # Keras 2 keeps its moments in another order: they are not read

    interrupt_after_each_epoch(monkeypatch)  # Ctrl-C once epoch 5 is complete
    argv = old_argv(data, "--filters", 8, "--d_lr", "5e-4", "--seed", 4, "--qRestart", "--epochs_goal", 6)
    assert train_cgan.main(argv) == cli.EXIT_INTERRUPTED
    out, err = capsys.readouterr()
    assert f"{results} has no run_config.json (a run begun before it was written): the settings come from the command line" in out
    assert ("no train_state_004.npz: the GAN's optimizer, the random generators and the collapse guard start "
            "afresh; the discriminator's Adamax moments start afresh too (a Keras 2 file)") in out
    assert run_folder.complete_epochs(str(results)) == [4, 5]
    _, arrays = run_folder.load_state(str(results), 5)
    assert int(arrays["d_optimizer"][0]) == 2 * 2  # d's iterations: two steps a batch, from 0
    assert not os.path.exists(results / "run_config.json")

    # with no run_config.json to read them from, the printed command spells out every setting
    command = shlex.split(err.split("interrupted; resume with:\n")[1].strip())
    assert command[:9] == ["python", "files/train_cgan.py", "--dataset", "xray", "--out_dir", str(results), "--qRestart",
                           "--epochs_goal", "6"]
    interrupt_before_the_first_batch(monkeypatch)
    assert train_cgan.main(command[2:]) == cli.EXIT_INTERRUPTED  # the command as printed: the same settings
    again = capsys.readouterr().out
    assert settings_line(again) == settings_line(out) and "d_lr=0.0005" in again and "seed=4" in again
    assert "training state of epoch 5 restored" in again
