"""The generator's options against mode collapse (--mode_seeking): each term's known answer,
what it does to a training step, the run's record of it and its restart, and its bad values.
Resuming bit for bit with each on: test_train_resume.py."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import train_cgan
from cganlib import cgan, config, datasets, run_folder, training
from helpers import bad_input, make_xray_data, train_argv, xray_argv


def small_trainer(tmp_path, **options):
    """A Trainer of width 4 and batches of 16 on 32 noise X-rays, dropout off (a training-mode pass
    is then the same twice), with these TrainConfig options."""
    train_config = config.resolve("xray", filters=4, n_batch=16, **options)
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(make_xray_data(tmp_path, n=32)))
    keras.utils.set_random_seed(0)
    g = cgan.build_generator(3, train_config.latent_dim, train_config.filters)
    d = cgan.build_discriminator(3, train_config.filters, train_config.d_lr)
    for layer in g.layers + d.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    gan = cgan.build_gan(g, d, train_config.g_lr)
    return training.Trainer(g, d, gan, images, labels, train_config, np.random.default_rng(0))


# ---------------------------------------------------------------- --mode_seeking


def test_the_mode_seeking_term_of_two_known_images():
    """Images 0.5 and -0.5 everywhere (mean distance 1), latents 2 apart in every coordinate:
    ratio 0.5, term 1 / (0.5 + 1e-5)."""
    a, b = np.full((2, 80, 80, 3), 0.5, np.float32), np.full((2, 80, 80, 3), -0.5, np.float32)
    za, zb = np.full((2, 100), 1.0, np.float32), np.full((2, 100), -1.0, np.float32)
    assert float(training.mode_seeking_term(a, b, za, zb)) == pytest.approx(1 / (0.5 + 1e-5), rel=1e-6)
    # the same image from both latents: 1e5, the largest the term gets
    assert float(training.mode_seeking_term(a, a, za, zb)) == pytest.approx(1e5, rel=1e-6)


def test_mode_seeking_draws_the_gan_batch_in_pairs_of_one_label_in_every_part(tmp_path):
    trainer = small_trainer(tmp_path, mode_seeking=1.0)
    for _ in range(5):
        gan_latents, gan_labels = trainer.draw_batch()[4:]
        assert gan_latents.shape == (16, 100) and gan_labels.shape == (16, 1)
        np.testing.assert_array_equal(gan_labels[0::2], gan_labels[1::2])
        assert not np.any(np.all(gan_latents[0::2] == gan_latents[1::2], axis=1))
    parts = np.split(np.arange(16), training.GAN_PARTS)  # gan_step's parts: each holds whole pairs
    assert all(part[0] % 2 == 0 and len(part) % 2 == 0 for part in parts)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_the_mode_seeking_term_alone_moves_the_generator_towards_different_images(tmp_path, weight):
    """A discriminator that says the same for every image gives the generator no gradient: the
    GAN step then moves it by the mode-seeking term alone, which makes the images of a pair
    differ more; without the term it does not move at all."""
    trainer = small_trainer(tmp_path, mode_seeking=weight)
    out = trainer.d.layers[-1]
    out.set_weights([np.zeros_like(out.kernel), np.zeros(1, np.float32)])
    gan_latents, gan_labels = (tf.constant(x) for x in trainer.draw_batch()[4:])

    def term():
        fakes = trainer.g([gan_latents, gan_labels], training=True)
        return float(training.mode_seeking_term(fakes[0::2], fakes[1::2], gan_latents[0::2], gan_latents[1::2]))

    before, start = term(), trainer.g.get_weights()
    step = tf.function(trainer.gan_step)
    losses = [float(step(gan_latents, gan_labels)) for _ in range(5)]
    assert losses == pytest.approx([-math.log(0.5)] * 5, rel=1e-5)  # the GAN loss alone, the term left out
    if weight:
        assert term() < 0.9 * before
    else:
        assert all(np.array_equal(a, b) for a, b in zip(start, trainer.g.get_weights()))


# ---------------------------------------------------------------- the run's record and restart


@pytest.mark.slow
def test_the_options_are_recorded_and_a_restart_keeps_them(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    options = ["--mode_seeking", "0.5"]
    assert train_cgan.main(train_argv(data, results, "--seed", 2, "--epochs_goal", 1, *options)) == 0
    assert "diff_augment=none mode_seeking=0.5 " in capsys.readouterr().out.splitlines()[0]
    recorded = run_folder.read_config(str(results))
    assert recorded["flags"]["mode_seeking"] == 0.5 and recorded["config"]["mode_seeking"] == 0.5
    assert config.differences(config.TrainConfig.from_record(recorded["config"]), "xray", "original") == {
        "filters": 4, "n_batch": 16, "mode_seeking": 0.5}
    # without the flags the restart takes them from run_config.json, and refuses a contradiction
    assert train_cgan.main(train_argv(data, results, "--qRestart", "--epochs_goal", 2)) == 0
    resumed = capsys.readouterr().out
    assert "diff_augment=none mode_seeking=0.5 " in resumed and "(settings from run_config.json)" in resumed
    err = bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart", "--epochs_goal", 3, "--mode_seeking", 2))
    assert "--mode_seeking 2.0 contradicts this run's --mode_seeking 0.5" in err


# ---------------------------------------------------------------- bad values


@pytest.mark.parametrize("extra, message", [
    (["--mode_seeking", -1], "--mode_seeking: must be at least 0, got -1"),
    (["--mode_seeking", "inf"], "--mode_seeking: must be at least 0, got inf"),
    (["--mode_seeking", 1, "--n_batch", 6], "the GAN step's 2 parts: --n_batch must be a multiple of 4, got 6"),
    (["--mode_seeking", 1, "--strategy", "mirrored"], "--mode_seeking trains on one device: use it with --strategy default"),
])
def test_bad_values_are_one_line_errors(tmp_path, capsys, extra, message):
    data = make_xray_data(tmp_path / "data", n=32)
    assert message in bad_input(tmp_path, capsys, xray_argv(data, *extra))
