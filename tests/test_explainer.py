"""The explainer that keeps the patient (train_explainer.py, explain_image.py --explainer): known
answers for its losses and for the scores of a switch built by hand, a resumed run that repeats
the uninterrupted one bit for bit, and the refusals."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import explain_image
import train_explainer
from cganlib import cgan, explainer, explainer_training, run_folder
from cganlib.config import ExplainerConfig
from cganlib.explanation import explained_by_switch, own_mask_scores
from conftest import FILES
from helpers import make_xray_data, one_error_line, save_generator

N_CLASSES = 3


def hand_switch(patches):
    """An explainer (image, one-hot target) -> change that adds patches[k] (H, W) to every channel
    when the target is k, whatever the image: a Dense layer from the one-hot, its rows the patches."""
    image = keras.Input((80, 80, 3))
    target = keras.Input((N_CLASSES,))
    dense = keras.layers.Dense(80 * 80 * 3, use_bias=False)
    change = keras.layers.Reshape((80, 80, 3))(dense(target))
    model = keras.Model([image, target], change)
    dense.set_weights([np.stack([np.repeat(p[..., None], 3, -1).ravel() for p in patches]).astype(np.float32)])
    return model


def square(top, left, size=10):
    mask = np.zeros((80, 80), bool)
    mask[top : top + size, left : left + size] = True
    return mask


# ---------------------------------------------------------------- known answers


def test_hinge_losses_of_known_scores():
    critic, adversarial = explainer.hinge_losses(tf.constant([2.0, 0.5]), tf.constant([-3.0, 0.0, 1.0]))
    # real: relu(1 - 2) = 0, relu(1 - 0.5) = 0.5 -> 0.25; fake: relu(1 - 3) = 0, 1, 2 -> 1
    assert float(critic) == pytest.approx(1.25)
    assert float(adversarial) == pytest.approx(2.0 / 3.0)


def test_total_variation_and_mean_size_of_a_known_change():
    change = np.zeros((2, 4, 4, 1), np.float32)
    change[0, :, 2:] = 1.0  # one vertical edge: 4 of the 12 horizontal neighbour pairs differ by 1
    change[1] = -0.5
    tv = explainer.total_variation(tf.constant(change)).numpy()
    assert tv == pytest.approx([4 / 12, 0.0])
    assert explainer.mean_size(tf.constant(change)).numpy() == pytest.approx([0.5, 0.5])


def test_the_penalties_grow_from_a_tenth_to_their_values_over_the_ramp():
    assert [float(explainer.penalty_scale(step, 100)) for step in (0, 50, 100, 400)] == pytest.approx(
        [0.1, 0.1**0.5, 1.0, 1.0])
    assert float(explainer.penalty_scale(0, 0)) == 1.0  # no ramp


def test_batch_plan_keeps_the_first_half_and_switches_the_second():
    labels = np.repeat(np.arange(N_CLASSES), 20)
    rows, targets = explainer.batch_plan(labels, 8, N_CLASSES, np.random.default_rng(0))
    assert rows.shape == targets.shape == (7, 8)  # 60 // 8 batches, the rest dropped
    assert len(np.unique(rows)) == rows.size
    assert np.array_equal(targets[:, :4], labels[rows[:, :4]])
    assert np.all(targets[:, 4:] != labels[rows[:, 4:]])
    assert set(np.unique(targets[:, 4:])) == set(range(N_CLASSES))


def test_losses_of_a_known_switch():
    """Trainer.losses with the explainer replaced by one whose change is known: target 0 darkens
    everything by 0.2, target 1 brightens the left half by 0.4, target 2 changes nothing."""
    config = ExplainerConfig(filters=4, n_batch=4, tv_weight=1.0, cycle_weight=1.0)
    trainer = explainer.Trainer(config, N_CLASSES)
    left = np.zeros((80, 80), np.float32)
    left[:, :40] = 0.4
    trainer.explainer = hand_switch([np.full((80, 80), -0.2, np.float32), left, np.zeros((80, 80), np.float32)])
    terms = trainer.losses(tf.zeros((4, 80, 80, 3)), tf.constant([1, 2, 2, 2]), tf.constant([1, 2, 1, 0]))
    assert float(terms["identity"]) == pytest.approx((0.2 + 0.0) / 2)  # rows 0, 1 keep their labels 1, 2
    assert float(terms["switch_l1"]) == pytest.approx((0.2 + 0.2) / 2)  # rows 2, 3 go to 1 and 0
    assert float(terms["switch_tv"]) == pytest.approx((0.4 / 79 + 0.0) / 2, rel=1e-5)  # one edge in 79 pairs a row
    assert float(terms["cycle"]) == pytest.approx(0.2)  # back to label 2 changes nothing: the switch stays
    expected = (float(terms["adversarial"]) + config.identity_weight * 0.1 + config.l1_weight * 0.2
                + config.tv_weight * float(terms["switch_tv"]) + config.cycle_weight * 0.2)
    assert float(terms["explainer"]) == pytest.approx(expected, rel=1e-5)


def test_the_guide_term_is_the_classifiers_cross_entropy_for_the_target():
    """A guide whose scores are fixed (a Dense of a constant) gives a known cross-entropy."""
    pixels = keras.Input((80, 80, 3))
    scores = keras.layers.Dense(N_CLASSES)(keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(0.0)(pixels)))
    guide = keras.Model(pixels, scores)
    guide.layers[-1].set_weights([np.zeros((3, N_CLASSES), np.float32), np.log(np.array([0.5, 0.25, 0.25], np.float32))])
    trainer = explainer.Trainer(ExplainerConfig(filters=4, n_batch=2, guide_weight=2.0), N_CLASSES, guide)
    terms = trainer.losses(tf.zeros((2, 80, 80, 3)), tf.constant([1, 1]), tf.constant([1, 0]))
    assert float(terms["guide"]) == pytest.approx(-np.log(0.5), rel=1e-5)  # the switched row's target is 0


def test_latent_losses_of_known_logits():
    """The latent critic's cross-entropy for the label; the encoder's for the uniform guess, log 3
    when the critic reads nothing from the code."""
    logits = tf.constant(np.log([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]).astype(np.float32))
    critic, encoder = explainer.latent_losses(logits, tf.constant([0, 2]))
    assert float(critic) == pytest.approx((-np.log(0.5) + np.log(3)) / 2, rel=1e-5)
    assert float(encoder) == pytest.approx((-(np.log(0.5) + 2 * np.log(0.25)) / 3 + np.log(3)) / 2, rel=1e-5)


def test_the_latent_term_of_a_latent_critic_that_reads_nothing():
    """With the latent critic's weights all 0 its logits are 0 whatever the code: both latent terms
    are log 3, and the encoder-decoder's loss pays latent_weight of it."""
    config = ExplainerConfig(filters=4, n_batch=4, architecture="encoder_decoder", latent_weight=2.0)
    trainer = explainer.Trainer(config, N_CLASSES)
    trainer.latent_critic.set_weights([np.zeros_like(w) for w in trainer.latent_critic.get_weights()])
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 80, 80, 3)).astype(np.float32))
    terms = trainer.losses(images, tf.constant([0, 1, 2, 2]), tf.constant([0, 1, 0, 1]))
    assert float(terms["latent_critic"]) == pytest.approx(np.log(3), rel=1e-5)
    assert float(terms["latent"]) == pytest.approx(np.log(3), rel=1e-5)
    expected = (float(terms["adversarial"]) + config.identity_weight * float(terms["identity"])
                + config.l1_weight * float(terms["switch_l1"]) + 2.0 * np.log(3))
    assert float(terms["explainer"]) == pytest.approx(expected, rel=1e-5)
    assert "latent" not in explainer.Trainer(ExplainerConfig(filters=4, n_batch=4), N_CLASSES).losses(
        images, tf.constant([0, 1, 2, 2]), tf.constant([0, 1, 0, 1]))


def test_the_encoder_decoder_draws_the_switched_image_from_a_code_of_the_image_alone():
    model = explainer.build_explainer(N_CLASSES, 4, architecture="encoder_decoder", grey=True)
    encoder = model.get_layer("encoder")
    assert len(encoder.inputs) == 1 and tuple(encoder.output.shape[1:]) == (20, 20, 8)  # the image only, side / 4
    images = np.random.default_rng(0).uniform(-1, 1, (2, 80, 80, 3)).astype(np.float32)
    switched, changes = explainer.switch(model, images, np.array([0, 2]), N_CLASSES)
    drawn = model.get_layer("grey_drawn").output
    drawn = keras.Model(model.inputs, drawn)([tf.constant(images), tf.one_hot([0, 2], N_CLASSES)]).numpy()
    assert np.allclose(switched, drawn, atol=1e-6) and np.allclose(changes, drawn - images, atol=1e-6)
    assert np.allclose(switched[..., 0], switched[..., 2], atol=1e-6)  # grey stays grey (x + (drawn - x))
    other, _ = explainer.switch(model, images, np.array([1, 1]), N_CLASSES)
    assert not np.allclose(other, switched)  # the target reaches the drawing


def test_an_untrained_explainer_changes_nothing():
    model = explainer.build_explainer(N_CLASSES, 4)
    images = np.random.default_rng(0).uniform(-1, 1, (3, 80, 80, 3)).astype(np.float32)
    switched, changes = explainer.switch(model, images, np.array([0, 1, 2]), N_CLASSES)
    assert np.array_equal(switched, images) and not changes.any()


def test_a_grey_explainer_changes_every_channel_alike():
    model = explainer.build_explainer(N_CLASSES, 4, grey=True)
    change_layer = model.get_layer("change")
    kernel, bias = change_layer.get_weights()
    assert kernel.shape[-1] == N_CLASSES  # one plane per target, not three
    change_layer.set_weights([np.random.default_rng(1).normal(0, 0.1, kernel.shape).astype(np.float32), bias])
    images = np.random.default_rng(0).uniform(-1, 1, (2, 80, 80, 3)).astype(np.float32)
    _, changes = explainer.switch(model, images, np.array([0, 2]), N_CLASSES)
    assert changes.any() and np.array_equal(changes[..., 0], changes[..., 1])
    assert np.array_equal(changes[..., 0], changes[..., 2])


def test_the_scores_of_a_switch_built_by_hand():
    """Switched to healthy, a square darkens by 0.25 of the grey scale: the delta is 0.75 (summed
    over RGB) in the square and 0 elsewhere; under its own label nothing changes."""
    lesion = square(30, 20)
    model = hand_switch([np.where(lesion, -0.5, 0.0).astype(np.float32), np.zeros((80, 80), np.float32),
                         np.zeros((80, 80), np.float32)])
    images = np.full((2, 80, 80, 3), 0.6, np.float32)
    result = explained_by_switch(model, N_CLASSES, images, np.array([2, 2]), np.array([0, 1]), np.array([0]))
    assert np.array_equal(result["reconstructions"], images) and np.allclose(result["ssim"], 1.0)
    assert np.allclose(result["deltas"][:, 0][:, lesion], 0.75) and not result["deltas"][:, 0][:, ~lesion].any()
    scores = own_mask_scores(result, np.stack([lesion, lesion]))[0]
    assert scores["auc"] == pytest.approx(1.0) and scores["energy"] == pytest.approx(1.0)
    assert scores["outside"] == 0.0
    wider = own_mask_scores(result, np.stack([square(30, 20, 5), square(30, 20, 5)]))[0]
    assert wider["outside"] == pytest.approx(0.25 * (100 - 25) / (6400 - 25), rel=1e-5)


# ---------------------------------------------------------------- the scripts


def explainer_argv(data, out, *extra, n_batch=4):
    return [str(a) for a in ("--dataset", "xray", "--data_dir", data, "--out_dir", out, "--filters", 4, "--n_batch",
                             n_batch, "--seed", 3, *extra)]


def weights_of(out, epoch):
    model, _, _ = explainer_training.load_explainer(explainer_training.weights_path(str(out), epoch))
    return [w.tolist() for w in model.get_weights()]


def state_of(out, epoch):
    _, arrays = run_folder.load_state_file(explainer_training.state_path(str(out), epoch))
    return {name: [a.tolist() for a in values] for name, values in arrays.items()}


def history_without_seconds(out):
    return [{k: v for k, v in row.items() if k != "secs"} for row in run_folder.read_history(str(out))]


@pytest.mark.slow
@pytest.mark.parametrize("options", [
    ("--cycle_weight", 1, "--tv_weight", 1, "--ramp_steps", 8, "--grey"),
    ("--architecture", "encoder_decoder", "--latent_weight", 1),
    ("--architecture", "inversion", "--model", "{generator}"),
], ids=["unet", "encoder_decoder", "inversion"])
def test_a_resumed_explainer_run_repeats_the_uninterrupted_one_exactly(tmp_path, options):
    data = make_xray_data(tmp_path / "data", n=24)  # 6 steps an epoch
    save_generator(tmp_path / "g.h5", N_CLASSES, filters=4, scale=2.0)
    options = [str(a).format(generator=tmp_path / "g.h5") for a in options]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train_explainer.main(explainer_argv(data, whole, "--epochs_goal", 2, *options))
    train_explainer.main(explainer_argv(data, resumed, "--epochs_goal", 1, *options))
    train_explainer.main(explainer_argv(data, resumed, "--epochs_goal", 2, "--qRestart"))
    assert explainer_training.complete_epochs(str(resumed)) == [1, 2]
    assert weights_of(resumed, 2) == weights_of(whole, 2)
    assert state_of(resumed, 2) == state_of(whole, 2)
    assert history_without_seconds(resumed) == history_without_seconds(whole)
    assert weights_of(whole, 1) != weights_of(whole, 2)  # it trained
    if "--latent_weight" in options:
        assert len(state_of(whole, 2)["latent_critic"]) > 0 and float(history_without_seconds(whole)[1]["latent"]) > 0
    if "inversion" in options:  # the encoder learns, the generator stays as saved
        rows = history_without_seconds(whole)
        assert float(rows[1]["reconstruction"]) < float(rows[0]["reconstruction"])
        model, _, _ = explainer_training.load_explainer(str(whole))
        saved = cgan.load_generator(str(tmp_path / "g.h5"))
        for w, s in zip(model.get_layer("generator").get_weights(), saved.get_weights(), strict=True):
            np.testing.assert_array_equal(w, s)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["unet", "encoder_decoder"])
def test_explain_image_switches_each_image_with_a_trained_explainer(tmp_path, capsys, architecture):
    data = make_xray_data(tmp_path / "data", n=16)
    out = tmp_path / "run"
    train_explainer.main(explainer_argv(data, out, "--epochs_goal", 1, "--held_out_from", "none",
                                        "--architecture", architecture))
    assert (out / "switched_e001.png").is_file() and (out / "run_config.json").is_file()
    explained = tmp_path / "explained"
    explain_image.main([str(a) for a in ("--explainer", out, "--npz", data / "img_align_xray.npz", "--labels_npz",
                                         data / "labels_align_xray.npz", "--indices", 0, 1, 2, "--to", 0, 1, 2,
                                         "--out_dir", explained, "--rows", 2)])
    assert "over 3 images" in capsys.readouterr().out
    with np.load(explained / "explain_img_align_xray.npz") as saved:
        assert saved["relabelled"].shape == (3, 3, 80, 80, 3) and saved["deltas"].shape == (3, 3, 80, 80)
        assert "latents" not in saved.files
        own = saved["labels"][:, None] == saved["targets"][None, :]
        # the image under its own label is the reconstruction; the U-Net's deltas start from the given
        # image, the encoder-decoder's (which redraws every pixel) from the reconstruction
        assert np.allclose(saved["relabelled"][own], saved["reconstructions"], atol=1e-6)
        base = saved["images"] if architecture == "unet" else saved["reconstructions"]
        assert np.allclose(saved["deltas"], (base[:, None] - saved["relabelled"]).sum(-1), atol=1e-5)
        assert not np.allclose(saved["reconstructions"], saved["images"]) or architecture == "unet"
    assert (explained / "explain_img_align_xray.png").is_file()
    argv = [str(a) for a in ("--explainer", out, "--npz", data / "img_align_xray.npz", "--label", 0, "--tune_steps", 3)]
    assert "holds a switch, not an inversion" in one_error_line(explain_image.main, argv, capsys)
    argv[-2:] = ["--exaggerate", "0.5"]
    assert "--tune_steps and --exaggerate act on a generator" in one_error_line(explain_image.main, argv, capsys)


def test_an_inversions_change_is_the_generators_drawing_of_the_encoders_latent_minus_the_image(tmp_path):
    save_generator(tmp_path / "g.h5", N_CLASSES, filters=4, scale=2.0)
    generator = cgan.load_generator(str(tmp_path / "g.h5"))
    model = explainer.build_inversion(generator, 4)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 80, 80, 3)).astype(np.float32)
    targets = np.array([0, 2, 1, 2])
    latents = model.get_layer("encoder").predict(images, verbose=0)
    assert np.abs(latents).max() <= 3.0 and latents.std() > 0
    change = model.predict([images, np.eye(N_CLASSES)[targets]], verbose=0)
    np.testing.assert_allclose(change, cgan.generate(generator, latents, targets) * 2.0 - 1.0 - images, atol=1e-5)
    assert model.get_layer("generator").trainable_weights == []


@pytest.mark.slow
def test_explain_image_projects_from_the_inversions_latents_and_tunes_its_generator(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=16)
    save_generator(tmp_path / "g.h5", N_CLASSES, filters=4, scale=2.0)
    out = tmp_path / "run"
    train_explainer.main(explainer_argv(data, out, "--epochs_goal", 1, "--held_out_from", "none",
                                        "--architecture", "inversion", "--model", tmp_path / "g.h5"))
    model, _, _ = explainer_training.load_explainer(str(out))
    argv = [str(a) for a in ("--explainer", out, "--npz", data / "img_align_xray.npz", "--labels_npz",
                             data / "labels_align_xray.npz", "--indices", 0, 1, 2, "--to", 0, "--rows", 2)]
    explain_image.main(argv + ["--steps", "0", "--out_dir", str(tmp_path / "encoded")])
    explain_image.main(argv + ["--steps", "0", "--tune_steps", "20", "--tune_lr", "0.003",
                               "--out_dir", str(tmp_path / "tuned")])
    with np.load(tmp_path / "encoded" / "explain_img_align_xray.npz") as encoded:
        # no projection steps: the latents are the encoder's, the images the generator's drawings of them
        unit = encoded["images"] * 2.0 - 1.0
        np.testing.assert_allclose(encoded["latents"], model.get_layer("encoder").predict(unit, verbose=0), atol=1e-6)
        generator = model.get_layer("generator")
        np.testing.assert_allclose(encoded["reconstructions"], cgan.generate(generator, encoded["latents"],
                                                                             encoded["labels"]), atol=1e-5)
        np.testing.assert_allclose(encoded["relabelled"][:, 0], cgan.generate(generator, encoded["latents"], [0] * 3),
                                   atol=1e-5)
        with np.load(tmp_path / "tuned" / "explain_img_align_xray.npz") as tuned:
            np.testing.assert_array_equal(tuned["latents"], encoded["latents"])
            assert (tuned["mse"] < encoded["mse"]).all()


def test_a_redrawing_explainers_samples_show_its_own_label_drawing_and_the_change_from_it(tmp_path, monkeypatch):
    save_generator(tmp_path / "g.h5", N_CLASSES, filters=4, scale=2.0)
    model = explainer.build_inversion(cgan.load_generator(str(tmp_path / "g.h5")), 4)
    drawn = {}
    monkeypatch.setattr(explainer_training.plots, "image_rows", lambda rows, names, title: drawn.setdefault("rows", rows))
    monkeypatch.setattr(explainer_training, "save_figure", lambda fig, path, dpi: None)
    monkeypatch.setattr(explainer_training.plots, "show_or_close", lambda fig, show: None)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 80, 80, 3)).astype(np.float32)
    trainer = type("Trainer", (), {"explainer": model})
    explainer_training.samples_figure(trainer, image, np.array([1]), ["a", "b", "c"], str(tmp_path / "s.png"))
    (row,) = drawn["rows"]
    own, _ = explainer.switch(model, image, np.array([1]), N_CLASSES)
    switched, _ = explainer.switch(model, np.repeat(image, 2, 0), np.array([0, 2]), N_CLASSES)
    assert len(row) == 6  # the image, its own-label drawing, then per other label the switched image and the change
    np.testing.assert_allclose(row[1], (own[0] + 1) / 2, atol=1e-6)
    np.testing.assert_allclose(row[2], (switched[0] + 1) / 2, atol=1e-6)
    np.testing.assert_allclose(row[5], explainer_training.change_image(switched[1] - own[0]), atol=1e-6)


def test_train_explainer_help_answers_before_tensorflow_loads():
    code = ("import sys, runpy; sys.argv = ['train_explainer.py', '--help']\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow loaded'")
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=FILES, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--qRestart" in done.stdout and "--identity_weight" in done.stdout and "default 30" in done.stdout


@pytest.mark.parametrize("extra, n_batch, message", [
    ([], 5, "--n_batch: must be even"),
    (["--epochs_done", 1], 4, "--epochs_done goes with --qRestart"),
    (["--qRestart", "--overwrite"], 4, "give one"),
    (["--l1_weight", "-1"], 4, "--l1_weight"),
])
def test_bad_flags_are_refused_in_one_line(tmp_path, capsys, extra, n_batch, message):
    data = make_xray_data(tmp_path / "data", n=8)
    argv = explainer_argv(data, tmp_path / "run", *extra, n_batch=n_batch)
    assert message in one_error_line(train_explainer.main, argv, capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_runs_are_refused_that_would_overwrite_or_contradict_a_run(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=8)
    out = tmp_path / "run"
    assert "no explainer run" in one_error_line(train_explainer.main, explainer_argv(data, out, "--qRestart"), capsys)
    assert "--guide_weight needs --guide" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--guide_weight", 1), capsys)
    assert "--latent_weight needs --architecture encoder_decoder" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--latent_weight", 1), capsys)
    assert "--architecture inversion and --model go together" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--architecture", "inversion"), capsys)
    save_generator(tmp_path / "g2.h5", 2, filters=4)
    assert "draws 2 classes, the data has 3" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--architecture", "inversion", "--model", tmp_path / "g2.h5"),
        capsys)
    train_explainer.main(explainer_argv(data, out, "--epochs_goal", 1, "--held_out_from", "none"))
    before = sorted(p.name for p in out.iterdir())
    assert "holds a run" in one_error_line(train_explainer.main, explainer_argv(data, out), capsys)
    assert "contradicts the run" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--qRestart", "--l1_weight", 5), capsys)
    assert "is not complete" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--qRestart", "--epochs_done", 4, "--epochs_goal", 6), capsys)
    assert "not past epoch 1" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--qRestart", "--epochs_goal", 1), capsys)
    assert sorted(p.name for p in out.iterdir()) == before
    record = run_folder.read_config(str(out))
    run_folder.write_config(str(out), {**record, "config": {**record["config"], "architecture": "resnet"}})
    assert "architecture must be one of unet, encoder_decoder, inversion" in one_error_line(
        train_explainer.main, explainer_argv(data, out, "--qRestart", "--epochs_goal", 2), capsys)
    train_explainer.main(explainer_argv(data, out, "--epochs_goal", 1, "--held_out_from", "none", "--overwrite",
                                        "--l1_weight", 5))
    assert explainer_training.complete_epochs(str(out)) == [1]
    assert run_folder.read_config(str(out))["config"]["l1_weight"] == 5


def test_explain_image_refuses_a_folder_that_holds_no_explainer(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=4)
    (tmp_path / "empty").mkdir()
    argv = ["--explainer", tmp_path / "empty", "--npz", data / "img_align_xray.npz", "--label", 1,
            "--out_dir", tmp_path / "out"]
    assert "not a train_explainer.py run" in one_error_line(explain_image.main, argv, capsys)
    assert "not allowed with" in one_error_line(explain_image.main, ["--model", "g.h5", *argv], capsys)
