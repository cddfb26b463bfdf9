"""train_cgan.py: the models, the sampling, the step, the loop's log and reloads, restart,
and the CLI end to end. Resuming, the run folder's safety and settings: test_train_resume.py."""

import io
import os
import re
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import train_cgan
from cganlib import cgan, cli, collapse_guard, config, datasets, run_folder, training
from cganlib.collapse_guard import CollapseGuard
from cganlib.storage import save_model, save_npz
from helpers import (
    HELD,
    bad_input,
    make_xray_data,
    read_until,
    start_held_training,
    xray_argv,
)

LOG_LINE = re.compile(
    r"^>\d+/\d+, \d+/\d+, d1=\d+\.\d{3}, d2=\d+\.\d{3}, g=\d+\.\d{3}, secs=\d+, "
    r"tryAgain=\d+, nTripsOnSameSavedWts=\d+, nSaves=\d+$"
)


def run_for(folder, restart=False, epochs_done=0, epochs_goal=100, dataset="xray"):
    """A training run at width 8, batch 16, on the prepared arrays in folder."""
    folder = str(folder)
    return config.Run(
        dataset=datasets.dataset_settings(dataset, folder), config=config.resolve(dataset, filters=8, n_batch=16),
        preset="original", data_dir=folder, attributes=datasets.attribute_table(folder),
        out_dir=os.path.join(folder, "results"), summary_dir=os.path.join(folder, "cgan"), epochs_done=epochs_done,
        epochs_goal=epochs_goal, restart=restart, from_run_config=False, seed=3,
    )


XRAY_16 = config.resolve("xray", filters=8, n_batch=16)


def weights(model):
    return [w.copy() for w in model.get_weights()]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------- models and sampling


@pytest.mark.parametrize("n_classes, d_params, g_params", [(4, 1_712_673, 1_384_196), (3, 1_712_665, 1_384_188)])
def test_parameter_counts_at_the_originals_width(n_classes, d_params, g_params):
    d = cgan.build_discriminator(n_classes, filters=128, lr=config.resolve("xray").d_lr)
    g = cgan.build_generator(n_classes, filters=128)
    gan = cgan.build_gan(g, d)
    assert d.count_params() == d_params
    assert g.count_params() == g_params
    assert gan.count_params() == d_params + g_params


def test_dataset_settings_are_the_specs():
    assert (datasets.DATASETS["celeb"].n_classes, datasets.DATASETS["xray"].n_classes) == (4, 3)
    celeb, xray, folder = config.resolve("celeb"), config.resolve("xray"), config.resolve("folder")
    assert (celeb.d_lr, celeb.gan_upper) == (folder.d_lr, folder.gan_upper) == (0.00007, 4.50)
    assert (xray.d_lr, xray.gan_upper) == (0.00004, 3.00)
    assert (xray.n_batch, xray.filters, xray.latent_dim, xray.d_beta1, xray.g_lr, xray.g_beta1) == (
        64, 128, 100, 0.08, 0.0002, 0.5)
    d = cgan.build_discriminator(3, filters=8, lr=xray.d_lr)
    cfg = d.optimizer.get_config()
    assert (cfg["beta_1"], cfg["beta_2"], cfg["epsilon"]) == (0.08, 0.999, 1e-7)
    assert np.isclose(cfg["learning_rate"], 0.00004)
    gcfg = cgan.build_generator(3, filters=8).optimizer.get_config()
    assert np.isclose(gcfg["learning_rate"], 0.0002) and gcfg["beta_1"] == 0.5


def test_training_latents_hold_exactly_the_grid():
    rng = np.random.default_rng(0)
    for n in (32, 64):
        z = cgan.training_latents(rng, n)
        assert z.shape == (n, 100) and z.dtype == np.float32
        grid = (-3 + np.arange(n * 100) * 6 / (n * 100)).astype(np.float32)
        np.testing.assert_array_equal(np.sort(z.ravel()), grid)
    a, b = cgan.training_latents(rng, 64), cgan.training_latents(rng, 64)
    assert not np.array_equal(a, b)  # shuffled afresh every batch


def test_label_frequencies_follow_the_cumulative_fractions():
    cum = np.array([0, 0.21328, 0.4402, 0.8939, 1.0])
    labels = cgan.sample_labels(np.random.default_rng(1), 200_000, cum)
    freq = np.bincount(labels, minlength=4) / len(labels)
    np.testing.assert_allclose(freq, np.diff(cum), atol=0.005)
    assert cgan.sample_labels(np.random.default_rng(1), 10, [0, 0.0, 1.0, 1.0]).tolist() == [1] * 10


def test_cumulative_fractions_of_a_training_set():
    np.testing.assert_allclose(datasets.cumulative_fractions(np.array([0, 0, 1, 2]), 3), [0, 0.5, 0.75, 1.0])


# ---------------------------------------------------------------- the step (the Keras 3 trap)


def step_checks(trainer):
    """d learns in its own steps and not in the GAN step; g learns in the GAN step."""
    d0, g0 = weights(trainer.d), weights(trainer.g)
    batch = [keras.ops.convert_to_tensor(x) for x in trainer.draw_batch()]
    real, real_labels, fake_z, fake_labels, gan_z, gan_labels = batch
    trainer.d_step(cgan.scale_images(tf.cast(real, tf.float32)), real_labels, 1.0)
    d1 = weights(trainer.d)
    assert not same(d0, d1), "the discriminator did not learn on the real half batch"
    assert same(g0, weights(trainer.g))
    fakes = trainer.g([fake_z, fake_labels], training=False)
    trainer.d_step(fakes, fake_labels, 0.0)
    d2 = weights(trainer.d)
    assert not same(d1, d2), "the discriminator did not learn on the fake half batch"
    trainer.gan_step(gan_z, gan_labels)
    assert same(d2, weights(trainer.d)), "the GAN step changed the discriminator"
    assert not same(g0, weights(trainer.g)), "the GAN step did not change the generator"
    d3, g3 = weights(trainer.d), weights(trainer.g)
    trainer.step()  # the compiled step: all three updates
    assert not same(d3, weights(trainer.d)) and not same(g3, weights(trainer.g))


def test_discriminator_learns_in_its_step_and_stays_in_the_gan_step(tmp_path):
    run = run_for(make_xray_data(tmp_path / "data"))
    images, labels = training.load_dataset(run)
    g, d, gan = training.build_models(run)
    step_checks(training.Trainer(g, d, gan, images, labels, XRAY_16, np.random.default_rng(0)))


def test_bfloat16_step_learns_and_keeps_float32_weights_and_losses(tmp_path):
    run = run_for(make_xray_data(tmp_path / "data"))
    images, labels = training.load_dataset(run)
    cgan.set_bfloat16(emulated=True)  # the bfloat16 path also where this CPU would only emulate it
    try:
        g, d, gan = training.build_models(run)
        trainer = training.Trainer(g, d, gan, images, labels, XRAY_16, np.random.default_rng(0))
        d0, g0 = weights(d), weights(g)
        losses = trainer.train_batch(*trainer.draw_batch())
    finally:
        cgan.set_bfloat16(False)
    assert [loss.dtype for loss in losses] == [tf.float32] * 3 and all(np.isfinite(losses))
    assert not same(d0, weights(d)) and not same(g0, weights(g))
    assert {w.dtype for w in weights(d) + weights(g)} == {np.dtype("float32")}


def test_mixed_precision_stays_float32_where_the_cpu_only_emulates_bfloat16(tmp_path, monkeypatch):
    monkeypatch.setattr(cgan, "cpu_has_bfloat16", lambda: False)
    try:
        assert cgan.set_bfloat16() is False
        assert tf.config.optimizer.get_experimental_options().get("auto_mixed_precision_onednn_bfloat16") is False
        assert cgan.set_bfloat16(emulated=True) is True
    finally:
        cgan.set_bfloat16(False)


def test_restart_loads_the_saved_models_and_they_still_learn(tmp_path):
    data = make_xray_data(tmp_path / "data")
    run = run_for(data)
    images, labels = training.load_dataset(run)
    g, d, gan = training.build_models(run)
    trainer = training.Trainer(g, d, gan, images, labels, XRAY_16, np.random.default_rng(0))
    trainer.step()
    paths = run_folder.model_paths(run.out_dir, 7)
    os.makedirs(run.out_dir)
    save_model(g, paths["generator"])
    save_model(gan, paths["gan"])
    save_model(d, paths["discriminator"])

    assert run_folder.saved_epochs(run.out_dir) == [7]
    g2, d2, gan2 = training.build_models(run_for(data, restart=True, epochs_done=7, epochs_goal=9))
    assert same(weights(d), weights(d2)) and same(weights(g), weights(g2))
    assert d2.trainable and len(d2.trainable_variables) == len(d2.weights)
    assert int(d2.optimizer.iterations) == int(d.optimizer.iterations) == 2  # d's moments restored too
    assert same([v.numpy() for v in d.optimizer.variables[2:]], [v.numpy() for v in d2.optimizer.variables[2:]])
    step_checks(training.Trainer(g2, d2, gan2, images, labels, XRAY_16, np.random.default_rng(0)))


# ---------------------------------------------------------------- the loop: log lines, reloads, abort


class ScriptedTrainer(training.Trainer):
    """The real trainer whose losses come from a script, to drive the guard through the loop."""

    def __init__(self, losses, *args):
        super().__init__(*args)
        self.losses = iter(losses)
        self.reloaded = []

    def step(self):
        return next(self.losses)

    def reload(self, which):
        self.reloaded.append(which)
        super().reload(which)


def test_loop_prints_reloads_and_aborts_like_the_original(tmp_path, capsys):
    run = run_for(make_xray_data(tmp_path / "data", n=32 * 16), epochs_goal=1)
    images, labels = training.load_dataset(run)
    g, d, gan = training.build_models(run)
    os.makedirs(run.out_dir)
    ok, bad_d, bad_all = (0.6, 0.6, 0.9), (2.5, 0.6, 0.9), (2.5, 0.0004, 3.5)
    script = [ok, bad_d] + [bad_all] * 7  # trips: 1, then 3 per batch: 4, 7, ..., 22 > 20 at batch 9
    trainer = ScriptedTrainer(script, g, d, gan, images, labels, XRAY_16, np.random.default_rng(0))
    status = training.train(run, trainer, CollapseGuard(3.0), 0)
    out = capsys.readouterr()
    lines = [re.sub(r"secs=\d+", "secs=S", line) for line in out.out.splitlines()]  # seconds depend on the machine
    assert status == cli.EXIT_TOO_MANY_REBUILDS
    assert lines[0] == ">1/1, 2/32, d1=2.500, d2=0.600, g=0.900, secs=S, tryAgain=0, nTripsOnSameSavedWts=0, nSaves=1"
    assert lines[1] == "LOADING d_model 2  from  1"  # print("LOADING d_model", j+1, " from ", ijSave)
    assert lines[2].startswith(">1/1, 3/32, d1=2.500, d2=0.000, g=3.500,")
    assert lines[3:6] == ["LOADING d_model 3  from  1", "LOADING g_model 3  from  1", "LOADING gan_models 3  from  1"]
    assert all(LOG_LINE.match(line) for line in out.out.splitlines() if line.startswith(">1/1"))
    assert lines[-2] == "**********  Too many rebuilds  **************"
    assert lines[-6].startswith(">1/1, 9/32,") and lines[-6].endswith("tryAgain=19, nTripsOnSameSavedWts=19, nSaves=1")
    assert lines[-1].startswith(">Accuracy real: ")
    assert trainer.reloaded[:4] == ["d_model", "d_model", "g_model", "gan_models"] and len(trainer.reloaded) == 22
    assert "more than 20 reloads" in out.err
    for path in run_folder.model_paths(run.out_dir, 1).values():  # saved before stopping
        assert os.path.exists(path)
    # the stopped epoch is complete: a restart goes on from it, with the trip count back at 0
    (row,) = run_folder.read_history(run.out_dir)
    assert (row["epoch"], row["nTryAgains"], row["nTripsOnSameSavedWts"]) == ("1", "22", "22")
    assert run_folder.complete_epochs(run.out_dir) == [1]
    info, _ = run_folder.load_state(run.out_dir, 1)
    guard = CollapseGuard(3.0)
    trainer = training.Trainer(g, d, gan, images, labels, XRAY_16, np.random.default_rng(0))
    assert training.restore_state(trainer, guard, *run_folder.load_state(run.out_dir, 1), "state") == 9
    assert info["stopped_by_guard"] and (guard.nTryAgains, guard.nTripsOnSameSavedWts, guard.ijSave) == (22, 0, 1)


NAN = float("nan")


@pytest.mark.parametrize("rule", ["ours", "the original's"])
def test_nan_losses_stop_our_run_where_the_originals_rule_trains_on(tmp_path, capsys, monkeypatch, rule):
    """Seven all-NaN batches from the start: ours trips all three rules each (a NaN lies outside
    every band, also before a snapshot) and stops at the 21st trip; the original's `<` and `>`
    are False on NaN, so it never reloads and trains the epoch out."""
    if rule == "the original's":
        monkeypatch.setattr(collapse_guard, "outside", lambda loss, low, high: loss < low or loss > high)
    run = run_for(make_xray_data(tmp_path / "data", n=16 * 8), epochs_goal=1)  # 8 batches
    images, labels = training.load_dataset(run)
    g, d, gan = training.build_models(run)
    os.makedirs(run.out_dir)
    trainer = ScriptedTrainer([(NAN, NAN, NAN)] * 8, g, d, gan, images, labels, XRAY_16, np.random.default_rng(0))
    status = training.train(run, trainer, CollapseGuard(3.0), 0)
    out = capsys.readouterr().out
    if rule == "ours":
        assert status == cli.EXIT_TOO_MANY_REBUILDS and "**********  Too many rebuilds  **************" in out
        assert len(trainer.reloaded) == 21  # three a batch: the 7th batch's make 21, more than 20
    else:
        assert status == 0 and "Too many rebuilds" not in out and "LOADING" not in out
        assert trainer.reloaded == [] and ">1/1, 5/8, d1=nan, d2=nan, g=nan," in out


def test_reload_restores_the_snapshot(tmp_path):
    run = run_for(make_xray_data(tmp_path / "data"))
    images, labels = training.load_dataset(run)
    g, d, gan = training.build_models(run)
    trainer = training.Trainer(g, d, gan, images, labels, XRAY_16, np.random.default_rng(0))
    d0, g0 = weights(d), weights(g)
    trainer.step()
    trainer.reload("d_model")
    assert same(d0, weights(d)) and not same(g0, weights(g))
    trainer.step()
    trainer.reload("gan_models")  # the GAN holds both: both come back
    assert same(d0, weights(d)) and same(g0, weights(g))


# ---------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_fresh_then_restart(tmp_path, run):
    data = make_xray_data(tmp_path / "data", n=96)
    common = ["--dataset", "xray", "--data_dir", data, "--filters", "8", "--batch_size", "16", "--seed", "1"]
    first = run("train_cgan.py", *common, "--epochs", 2)
    assert first.returncode == 0, first.stderr
    assert ">2/2, 5/6, d1=" in first.stdout and ">Accuracy real: " in first.stdout
    assert first.stdout.splitlines()[0].endswith("(settings from the command line)")
    second = run("train_cgan.py", *common, "--qRestart", "--epochs-goal", 3)
    assert second.returncode == 0, second.stderr
    assert "epochs 3..3" in second.stdout and "(settings from run_config.json)" in second.stdout
    assert "training state of epoch 2 restored" in second.stdout and ">3/3, 5/6," in second.stdout
    results = data / "results"
    for epoch in (1, 2, 3):
        assert os.path.exists(results / f"generated_plot_e{epoch:03d}.png")
        g = cgan.load_generator(str(results / f"generator_model_{epoch:03d}.h5"))
        d = cgan.load_discriminator(str(results / f"generator_model_dis{epoch:03d}.h5"), 4e-5)
        assert g.count_params() == cgan.build_generator(3, filters=8).count_params() and d.built
        assert os.path.exists(results / f"generator_model_gan{epoch:03d}.h5")
        assert os.path.exists(results / f"train_state_{epoch:03d}.npz")
    assert sorted(os.listdir(results / "real_plots")) == ["real_plot_e001.png", "real_plot_e002.png"]
    assert "real_plots" not in os.listdir(data)  # nothing written into the data folder
    history = (results / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,d1,d2,g,acc_real,acc_fake,nTryAgains,nTripsOnSameSavedWts,nSaves,secs"
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2", "3"]
    assert os.path.exists(results / "losses.png") and os.path.exists(results / "run_config.json")
    summaries = {"generator_summary.txt", "discriminator_summary.txt", "gan_summary.txt"}
    assert summaries <= set(os.listdir(results / "summaries"))  # under the run's folder, not the current one


@pytest.mark.slow
def test_sigkill_leaves_exactly_the_complete_epochs_and_a_lock_that_blocks_nobody(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=16 * 10)  # 10 batches an epoch
    argv = xray_argv(data, "--real_plots", 0, "--seed", 2)
    # held in epoch 2's commit: its sample grid and models written, not yet its state and history row
    proc = start_held_training(tmp_path / "stderr.txt", "run_folder", "save_state", 2, *argv, "--epochs_goal", 5)
    try:
        read_until(proc, lambda line: line == HELD)
        for extra in ([], ["--qRestart"]):  # a second run on the folder is refused at once
            err = bad_input(tmp_path, capsys, argv + extra)
            assert f"is in use by another training run (pid {proc.pid})" in err
    finally:
        proc.kill()
        proc.wait()
    results = str(data / "results")
    assert os.path.exists(run_folder.model_paths(results, 2)["generator"])  # epoch 2's files, half its set
    assert [row["epoch"] for row in run_folder.read_history(results)] == ["1"] and run_folder.complete_epochs(results) == [1]
    cgan.load_generator(run_folder.model_paths(results, 1)["generator"])
    assert train_cgan.main(argv + ["--qRestart", "--epochs_goal", "2"]) == 0  # the dead run's lock file is no bar
    assert "epochs 2..2" in capsys.readouterr().out
    assert run_folder.complete_epochs(results) == [1, 2]
    assert not [name for name in os.listdir(results) if name.startswith(".tmp-")]


# ---------------------------------------------------------------- bad input: one line, status 2, nothing written


def test_missing_npz_names_the_file_and_the_prepare_script(tmp_path, capsys):
    os.makedirs(tmp_path / "empty")
    err = bad_input(tmp_path, capsys, xray_argv(tmp_path / "empty"))
    assert "img_align_xray.npz not found" in err and "files/prepare_xrays.py" in err


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.zeros((32, 80, 80, 3), np.float32), np.zeros(32, int), "must be uint8 (N, 80, 80, 3)"),
        (np.zeros((32, 64, 64, 3), np.uint8), np.zeros(32, int), "must be uint8 (N, 80, 80, 3)"),
        (np.zeros((32, 80, 80, 3), np.uint8), np.zeros(31, int), "31 labels for 32 images"),
        (np.zeros((32, 80, 80, 3), np.uint8), np.full(32, 3), "labels must be in 0..2"),
        (np.zeros((32, 80, 80, 3), np.uint8), np.full(32, -1), "labels must be in 0..2"),
        (np.zeros((9, 80, 80, 3), np.uint8), np.zeros(9, int),
         "9 images is fewer than one batch of 16: use more images or a smaller --n_batch (even, at most 8)"),
    ],
)
def test_bad_arrays(tmp_path, capsys, images, labels, message):
    data = tmp_path / "data"
    os.makedirs(data)
    save_npz(data / "img_align_xray.npz", images)
    save_npz(data / "labels_align_xray.npz", labels)
    assert message in bad_input(tmp_path, capsys, xray_argv(data))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--n_batch", 15], "--n_batch must be even (two half batches), got 15"),
        (["--batch_size", 0], "--n_batch/--batch_size: must be at least 2, got 0"),
        (["--filters", 0], "--filters: must be at least 1, got 0"),
        (["--latent_dim", -3], "--latent_dim: must be at least 2, got -3"),
        (["--epochs", 0], "--epochs_goal/--epochs-goal/--epochs: must be at least 1, got 0"),
        (["--real_plots", -1], "--real_plots: must be at least 0, got -1"),
        (["--epochs_done", 3], "--epochs_done needs --qRestart"),
        (["--qRestart", "--epochs_done", 0], "--epochs_done/--epochs-done: must be at least 1, got 0"),
        (["--seed", -1], "--seed: must be in [0, 4294967295], got -1"),
        (["--seed", 2**32], "--seed: must be in [0, 4294967295], got 4294967296"),
        (["--d_lr", "nan"], "--d_lr: must be in (0, 1], got nan"),
        (["--d_lr", 0], "--d_lr: must be in (0, 1], got 0"),
        (["--d_lr", -0.001], "--d_lr: must be in (0, 1], got -0.001"),
        (["--g_lr", "inf"], "--g_lr: must be in (0, 1], got inf"),
        (["--g_lr", "0"], "--g_lr: must be in (0, 1], got 0"),
        (["--d_beta1", 1], "--d_beta1: must be in [0, 1), got 1"),
        (["--d_beta1", -0.1], "--d_beta1: must be in [0, 1), got -0.1"),
        (["--n_batch", 2**50], "training 32 images at --n_batch 1125899906842624 --filters 8 --latent_dim 100 would need"),
        (["--filters", 10**7], "--filters 10000000 --latent_dim 100 would need"),
        (["--overwrite", "--qRestart"], "--overwrite starts a fresh run; it cannot go with --qRestart"),
    ],
)
def test_bad_numbers(tmp_path, capsys, extra, message):
    data = make_xray_data(tmp_path / "data", n=32)
    assert message in bad_input(tmp_path, capsys, xray_argv(data, *extra))


def test_a_data_set_too_big_for_memory_is_refused_before_it_is_read(tmp_path, capsys):
    data = tmp_path / "data"
    os.makedirs(data)
    header = io.BytesIO()  # an .npz whose arr_0 says it holds a billion images (and holds none)
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**9, 80, 80, 3)})
    with zipfile.ZipFile(data / "img_align_xray.npz", "w") as archive:
        archive.writestr("arr_0.npy", header.getvalue())
    save_npz(data / "labels_align_xray.npz", np.zeros(10**3, int))
    err = bad_input(tmp_path, capsys, xray_argv(data))
    assert "training 1000000000 images at --n_batch 16 --filters 8 --latent_dim 100 would need 19.2 TB of memory" in err


def test_restart_without_checkpoints_lists_complete_epochs(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    assert "no complete epoch" in bad_input(tmp_path, capsys, xray_argv(data, "--qRestart"))
    results = data / "results"
    os.makedirs(results)
    g = cgan.build_generator(3, filters=8)
    d = cgan.build_discriminator(3, filters=8, lr=4e-5)
    save_model(g, run_folder.model_paths(str(results), 4)["generator"])
    save_model(d, run_folder.model_paths(str(results), 4)["discriminator"])
    (results / "generator_model_005.h5").write_bytes(b"truncated")
    (results / "generator_model_dis005.h5").write_bytes(b"truncated")
    err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart", "--epochs_done", 5, "--epochs_goal", 9))
    assert "epoch 5 is missing, unreadable or incomplete" in err and "; complete epoch 4" in err
    err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart", "--epochs_done", 4, "--epochs_goal", 4))
    assert "--epochs_goal 4 must be above --epochs_done 4" in err


def test_bad_input_through_the_real_cli(tmp_path, run):
    result = run("train_cgan.py", "--dataset", "celeb", "--data_dir", tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train_cgan.py: error: ") and "img_align_celeba_attractive.npz" in last
    assert "files/prepare_faces.py" in last and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_face_labels_come_from_the_attribute_table(tmp_path):
    data = tmp_path / "celeb"
    os.makedirs(data)
    rows = [("000001.jpg", -1, -1, -1), ("000002.jpg", 1, 1, 1), ("000003.jpg", -1, 1, 1), ("000004.jpg", -1, -1, 1)]
    lines = ["image_id,Attractive,Big_Lips,High_Cheekbones,Male"]
    lines += [f"{name},1,{lips},{cheek},{male}" for name, male, cheek, lips in rows]
    (data / "list_attr_celeba.csv").write_text("\n".join(lines) + "\n")
    ids = np.array([3, 2, 1, 0] * 8)
    save_npz(data / "img_align_celeba_attractive.npz", np.zeros((32, 80, 80, 3), np.uint8))
    save_npz(data / "ids_align_celeba_attractive.npz", ids)
    _, labels = training.load_dataset(run_for(data, dataset="celeb"))
    assert labels[:4].tolist() == [3, 2, 1, 0]

    # the original's space-separated table, when there is no CSV
    (data / "list_attr_celeba.csv").unlink()
    txt = ["4", "Attractive Big_Lips High_Cheekbones Male"]
    txt += [f"{name}  1 {lips:2d} {cheek:2d} {male:2d}" for name, male, cheek, lips in rows]
    (data / "list_attr_celeba.txt").write_text("\n".join(txt) + "\n")
    run = run_for(data, dataset="celeb")
    assert run.attributes.endswith("list_attr_celeba.txt")
    assert training.load_dataset(run)[1][:4].tolist() == [3, 2, 1, 0]
