"""The generator's options against mode collapse (--mode_seeking, --ema, --label_fade): each one's known answer,
what it does to a training step and to the epoch's files, the run's record of it and its restart,
and its bad values. Resuming bit for bit with each on: test_train_resume.py."""

import math
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import train_cgan
from cganlib import cgan, config, datasets, run_folder, training
from cganlib.collapse_guard import D_MODEL, G_MODEL, CollapseGuard
from cganlib.storage import InputError, save_model
from helpers import bad_input, make_xray_data, train_argv, xray_argv


def small_trainer(tmp_path, **options):
    """A Trainer of width 4 and batches of 16 on 32 noise X-rays, dropout off (a training-mode pass
    is then the same twice), with these TrainConfig options."""
    train_config = config.resolve("xray", filters=4, n_batch=16, **options)
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(make_xray_data(tmp_path, n=32)))
    keras.utils.set_random_seed(0)
    fade = tf.Variable(1.0, trainable=False) if train_config.label_fade else None
    g = cgan.build_generator(3, train_config.latent_dim, train_config.filters, fade)
    d = cgan.build_discriminator(3, train_config.filters, train_config.d_lr, label_fade=fade)
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


# ---------------------------------------------------------------- --ema


def test_the_average_after_known_updates_is_the_numpy_formula(tmp_path):
    """Ten steps at --ema 0.5: the ramp's decay (1 + t) / (10 + t) for t = 0..7, then 0.5."""
    trainer = small_trainer(tmp_path, ema=0.5)
    average = [w.astype(np.float64) for w in trainer.g.get_weights()]  # the average starts at the initial weights
    for t in range(10):
        trainer.step()
        decay = min(0.5, (1 + t) / (10 + t))
        average = [decay * a + (1 - decay) * w for a, w in zip(average, trainer.g.get_weights())]
    assert [min(0.5, (1 + t) / (10 + t)) for t in (0, 7, 8)] == [0.1, 8 / 17, 0.5]
    got = trainer.sampler.get_weights()
    for a, b in zip(got, average, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not all(np.allclose(a, b) for a, b in zip(got, trainer.g.get_weights()))  # not the trained weights


def test_the_guards_reload_puts_the_average_back_with_the_generator(tmp_path):
    trainer = small_trainer(tmp_path, ema=0.9)
    for _ in range(2):
        trainer.step()
    trainer.snapshot()
    snapshot = trainer.g.get_weights(), trainer.sampler.get_weights()
    for _ in range(2):
        trainer.step()
    average = trainer.sampler.get_weights()
    trainer.reload(D_MODEL)  # the discriminator's reload leaves the generator and its average
    assert all(np.array_equal(a, b) for a, b in zip(average, trainer.sampler.get_weights()))
    trainer.reload(G_MODEL)
    for before, now in zip(snapshot, (trainer.g.get_weights(), trainer.sampler.get_weights())):
        assert all(np.array_equal(a, b) for a, b in zip(before, now, strict=True))


def test_the_epochs_files_and_plot_are_the_averages_and_its_state_the_trained_weights(tmp_path, monkeypatch):
    trainer = small_trainer(tmp_path / "data", ema=0.9, g_lr=0.005)  # the small preset's rate: the average lags
    for _ in range(3):
        trainer.step()
    drawn = []  # what the epoch's plot shows: the images the trainer generated, and from which latents
    generate = trainer.generate
    monkeypatch.setattr(trainer, "generate", lambda z, y: drawn.append((z, y, generate(z, y))) or drawn[-1][2])
    results = tmp_path / "results"
    results.mkdir()
    training.summarize_performance(0, trainer, str(results))
    paths = run_folder.model_paths(str(results), 1)
    saved = cgan.load_generator(paths["generator"])
    for a, b in zip(saved.get_weights(), trainer.sampler.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    (latents, labels, plotted), = drawn
    np.testing.assert_allclose(plotted, saved([latents, labels], training=False), atol=1e-6)
    trained = trainer.g([latents, labels], training=False)
    assert np.abs(plotted - trained).max() > 0.01 * np.abs(trained).max()  # not the trained generator's images
    gan = keras.models.load_model(paths["gan"], compile=False)  # the GAN's file: the trained generator
    for a, b in zip(gan.get_layer("generator").get_weights(), trainer.g.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    _, arrays = training.training_state(trainer, CollapseGuard(3.0, config.GuardBands()), 3, False)
    assert all(np.array_equal(a, b) for a, b in zip(arrays["trained_g"], trainer.g.get_weights(), strict=True))


@pytest.mark.parametrize("saved_ema, restart_ema, message", [
    (0.9, 0.0, "the run was trained with --ema; a restart keeps it"),
    (0.0, 0.9, "the run was trained without --ema; a restart cannot add it"),
])
def test_a_state_with_or_without_the_average_is_restored_only_with_the_same_option(tmp_path, saved_ema, restart_ema,
                                                                                    message):
    guard = CollapseGuard(3.0, config.GuardBands())
    info, arrays = training.training_state(small_trainer(tmp_path / "a", ema=saved_ema), guard, 0, False)
    with pytest.raises(InputError, match=message):
        training.restore_state(small_trainer(tmp_path / "b", ema=restart_ema), guard, info, arrays, "train_state_001.npz")


# ---------------------------------------------------------------- --label_fade


def test_the_label_fades_in_over_its_batches_and_is_whole_outside_the_step(tmp_path):
    trainer = small_trainer(tmp_path, label_fade=4)
    factors = []  # the factor both models read in each compiled step
    train_batch = trainer.train_batch
    trainer.train_batch = lambda *batch: factors.append(float(trainer.fade)) or train_batch(*batch)
    for _ in range(6):
        trainer.step()
        assert float(trainer.fade) == 1.0
    assert factors == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    d_factor = next(layer.factor for layer in trainer.d.layers if isinstance(layer, cgan.LabelFade))
    assert d_factor is trainer.fade


def test_the_label_fade_makes_both_models_unconditional_at_0_and_ordinary_at_1(tmp_path):
    """Saved, the models load as ordinary ones (the factor is no weight), which draw and judge as
    the faded ones at 1; at 0 a latent draws the same image for every label, and the discriminator
    judges an image alike for every label."""
    fade = tf.Variable(1.0, trainable=False)
    keras.utils.set_random_seed(1)
    g, d = cgan.build_generator(3, 10, 4, fade), cgan.build_discriminator(3, 4, 1e-4, label_fade=fade)
    for model in (g, d):  # label maps large enough to matter
        embedding = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))
        embedding.set_weights([np.arange(24, dtype=np.float32).reshape(3, 8) - 12])
    g_path, d_path = str(tmp_path / "generator_model_001.h5"), str(tmp_path / "generator_model_dis001.h5")
    save_model(g, g_path)
    save_model(d, d_path)
    plain_g, plain_d = cgan.load_generator(g_path), cgan.load_discriminator(d_path, 1e-4)
    assert not any(isinstance(layer, cgan.LabelFade) for layer in plain_g.layers + plain_d.layers)
    assert cgan.saved_classes(g_path) == 3

    latents = np.repeat(np.random.default_rng(0).normal(size=(1, 10)).astype(np.float32), 3, axis=0)
    labels = np.arange(3, dtype=np.int32).reshape(-1, 1)
    images = keras.ops.convert_to_numpy(g([latents, labels]))
    np.testing.assert_array_equal(images, plain_g([latents, labels]))
    np.testing.assert_array_equal(d([images, labels]), plain_d([images, labels]))
    assert not np.allclose(images[0], images[1])
    fade.assign(0.0)
    faded = keras.ops.convert_to_numpy(g([latents, labels]))
    np.testing.assert_allclose(faded, np.repeat(faded[:1], 3, axis=0), atol=1e-6)
    judged = keras.ops.convert_to_numpy(d([np.repeat(images[:1], 3, axis=0), labels]))
    np.testing.assert_allclose(judged, np.repeat(judged[:1], 3, axis=0), atol=1e-6)


# ---------------------------------------------------------------- --resize_conv


@pytest.mark.parametrize("resize_conv", [False, True])
def test_the_generator_upsamples_by_transposed_convolutions_or_by_resize_and_convolution(tmp_path, resize_conv):
    g = cgan.build_generator(3, 100, 4, resize_conv=resize_conv)
    kinds = [type(layer).__name__ for layer in g.layers]
    assert kinds.count("Conv2DTranspose") == (0 if resize_conv else 4)
    assert kinds.count("UpSampling2D") == (4 if resize_conv else 0)
    assert g.output_shape == (None, 80, 80, 3)
    # saved and read back, the same model: the same images from the same latents
    path = str(tmp_path / "g.h5")
    save_model(g, path)
    back = cgan.load_generator(path)
    latents, labels = np.random.default_rng(0).normal(size=(2, 100)).astype(np.float32), np.array([[0], [2]])
    np.testing.assert_array_equal(back.predict([latents, labels], verbose=0), g.predict([latents, labels], verbose=0))
    assert training.conv_width(back) == 4 and cgan.is_resize_conv(back) == resize_conv


def test_a_resize_generator_draws_a_constant_map_without_a_checkerboard():
    """A constant map through _upsampled with resize_conv: the resize copies each pixel into 2x2,
    and a 3x3 convolution of all-ones weights sees 9 equal values at every inside pixel: 9 there."""
    x = keras.Input((4, 4, 1))
    model = keras.Model(x, cgan._upsampled(x, 1, True))
    model.set_weights([np.ones((3, 3, 1, 1), np.float32), np.zeros(1, np.float32)])
    out = model.predict(np.ones((1, 4, 4, 1), np.float32), verbose=0)[0, 1:-1, 1:-1, 0]
    np.testing.assert_allclose(out, 9.0)


# ---------------------------------------------------------------- the run's record and restart


@pytest.mark.slow
def test_the_options_are_recorded_and_a_restart_keeps_them(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    options = ["--mode_seeking", "0.5", "--ema", "0.9", "--label_fade", "3", "--resize_conv"]
    assert train_cgan.main(train_argv(data, results, "--seed", 2, "--epochs_goal", 1, *options)) == 0
    shown = "projection=off mode_seeking=0.5 ema=0.9 label_fade=3 resize_conv=on "
    assert shown in capsys.readouterr().out.splitlines()[0]
    recorded = run_folder.read_config(str(results))
    given = {"mode_seeking": 0.5, "ema": 0.9, "label_fade": 3, "resize_conv": True}
    assert {name: recorded["flags"][name] for name in given} == given
    assert config.differences(config.TrainConfig.from_record(recorded["config"]), "xray", "original") == {
        "filters": 4, "n_batch": 16, **given}
    # without the flags the restart takes them from run_config.json, and refuses a contradiction
    assert train_cgan.main(train_argv(data, results, "--qRestart", "--epochs_goal", 2)) == 0
    resumed = capsys.readouterr().out
    assert shown in resumed and "(settings from run_config.json)" in resumed
    err = bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart", "--epochs_goal", 3, "--mode_seeking", 2))
    assert "--mode_seeking 2.0 contradicts this run's --mode_seeking 0.5" in err
    # the epoch's generator file is one the readers rebuild as it was trained: resize and convolution
    g = cgan.load_generator(run_folder.model_paths(str(results), 2)["generator"])
    assert cgan.is_resize_conv(g) and not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in g.layers)


# ---------------------------------------------------------------- bad values


@pytest.mark.parametrize("extra, message", [
    (["--mode_seeking", -1], "--mode_seeking: must be at least 0, got -1"),
    (["--mode_seeking", "inf"], "--mode_seeking: must be at least 0, got inf"),
    (["--mode_seeking", 1, "--n_batch", 6], "the GAN step's 2 parts on each of 1 replica(s): --n_batch must be a multiple of 4, got 6"),
    (["--ema", 1], "--ema: must be in [0, 1), got 1"),
    (["--ema", -0.5], "--ema: must be in [0, 1), got -0.5"),
    (["--ema", 0.99, "--strategy", "mirrored"], "--ema 0.99 trains on one device: use --strategy default, or --ema 0 to turn it off"),
    (["--label_fade", -1], "--label_fade: must be at least 0, got -1"),
    (["--label_fade", 2.5], "--label_fade: not a whole number: '2.5'"),
    (["--label_fade", 9, "--strategy", "mirrored"], "--label_fade 9 trains on one device: use --strategy default, or --label_fade 0 to turn it off"),
])
def test_bad_values_are_one_line_errors(tmp_path, capsys, extra, message):
    data = make_xray_data(tmp_path / "data", n=32)
    assert message in bad_input(tmp_path, capsys, xray_argv(data, *extra))


def test_mode_seeking_needs_pairs_in_each_part_on_every_replica():
    two = types.SimpleNamespace(num_replicas_in_sync=2)
    training.check_mode_seeking(config.resolve("xray", n_batch=16, mode_seeking=1.0), two)  # 2 pairs a part
    with pytest.raises(InputError, match="on each of 2 replica\\(s\\): --n_batch must be a multiple of 8, got 12"):
        training.check_mode_seeking(config.resolve("xray", n_batch=12, mode_seeking=1.0), two)
    training.check_mode_seeking(config.resolve("xray", n_batch=12), two)  # off: any batch the replicas split
