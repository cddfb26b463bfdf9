"""Offline evaluation of saved generators (evaluate.py, gan_metrics.py) and the training options
for steadier training (--label_smoothing, --spectral_norm): every measure on sets whose answer is
known, evaluate.py end to end on a collapsed and a label-blind generator with its TensorBoard
projector files, and both options through training, saving, restarting and loading."""

import csv
import math
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage.metrics import structural_similarity

import evaluate
import train_cgan
from cganlib import cgan, cli, config, datasets, evaluation, run_folder, training
from cganlib.classifier import build_classifier
from cganlib.gan_metrics import (
    collapsed,
    collapsed_classes,
    diversity,
    frechet_distance,
    kernel_distance,
    ms_ssim,
    nearest_real_scores,
    pair_ssim,
    precision_recall,
)
from cganlib.storage import save_arrays, save_model, save_npz
from helpers import bright_squares, full_disk_at, make_xray_data, one_error_line

N_CLASSES = 3
PER_CLASS = 12


def class_images(rng, n=PER_CLASS):
    """uint8 images of 3 classes: noise, and a bright square whose place is the class."""
    images = rng.integers(0, 80, (N_CLASSES * n, 80, 80, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(N_CLASSES), n)
    corners = [(10 + 25 * label + rng.integers(-3, 4), 30) for label in labels]
    return bright_squares(images, corners, 15)[0], labels


# ---------------------------------------------------------------- the measures, known answers


def test_identical_sets_score_fd_0_kid_about_0_precision_and_recall_1():
    features = np.random.default_rng(0).normal(size=(400, 16))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-4)
    shifted = kernel_distance(features, features + 0.5)  # about 1
    # a set against itself: the within-set means leave out each image's kernel with itself, the
    # cross mean keeps it, so the estimate is a little below 0 (2/n of the kernel's diagonal)
    assert -0.05 * shifted < kernel_distance(features, features) <= 0
    # against another sample of the same distribution it is about 0 too
    other = np.random.default_rng(1).normal(size=(400, 16))
    assert abs(kernel_distance(features, other)) < 0.01 * shifted
    assert precision_recall(features, features) == (1.0, 1.0)


def test_a_shifted_set_has_fd_the_squared_shift_and_a_positive_kid():
    features = np.random.default_rng(1).normal(size=(300, 8))
    shift = np.array([2.0, 0, 0, 0, 0, 0, -1.0, 0])
    assert frechet_distance(features, features + shift) == pytest.approx(5.0, rel=1e-4)  # same covariance
    assert kernel_distance(features, features + shift) > 0.5


def test_collapsed_classes_are_those_flagged_at_the_last_epoch():
    def row(epoch, label, generated, real):
        return {"epoch": epoch, "label": label, "diversity_gen": generated, "diversity_real": real}

    rows = [row("real", "0", 0.5, 0.5), row("2", "0", 0.9, 0.5), row("2", "1", 0.6, 0.5), row("2", "all", 0.99, 0.5),
            row("10", "0", 0.6, 0.5), row("10", "1", 0.76, 0.5), row("10", "2", 0.74, 0.5), row("10", "all", 0.9, 0.5)]
    # at epoch 10: dissimilarity 0.24 < 0.5 * 0.5 flags label 1, not 0.26 (label 2); epoch 2 no longer counts
    assert collapsed_classes(rows) == [1]
    assert collapsed_classes(rows[:4]) == [0]
    assert collapsed_classes([]) == []


def test_the_warning_names_a_collapsed_class_never_the_all_classes_row():
    xray = datasets.DATASETS["xray"]
    row = {"epoch": 3, "diversity_gen": 0.99, "diversity_real": 0.5}  # collapsed by its diversities
    assert evaluation.collapse_warning({**row, "label": 2}, xray).startswith("warning: epoch 3, class 2 (bacter): ")
    assert evaluation.collapse_warning({**row, "label": "all"}, xray) is None  # a pooled row, not a class
    assert evaluation.collapse_warning({**row, "label": 2, "diversity_gen": 0.6}, xray) is None


def test_a_collapsed_set_has_diversity_1_recall_near_0_and_is_flagged():
    rng = np.random.default_rng(2)
    real = rng.random((60, 80, 80, 3)).astype(np.float32)
    one_image = np.repeat(real[:1] * 0.5, 60, axis=0)
    assert diversity(one_image, rng) == pytest.approx(1.0, abs=1e-6)
    real_features = rng.normal(size=(60, 8))
    precision, recall = precision_recall(real_features, np.repeat(real_features[:1] + 0.01, 60, axis=0))
    assert precision == 1.0  # the one image is a realistic one: collapse shows in recall,
    assert recall <= 1 / 60  # which counts at most the one real image next to the copies
    assert collapsed(1.0, diversity(real, rng)) and not collapsed(0.3, 0.35)


def test_ms_ssim_is_tensorflows_at_three_scales_on_the_grey_level():
    rng = np.random.default_rng(3)
    a = rng.random((6, 80, 80, 3)).astype(np.float32)
    b = np.clip(a + 0.3 * rng.normal(size=a.shape), 0, 1).astype(np.float32)
    weights = np.array([0.0448, 0.2856, 0.3001]) / (0.0448 + 0.2856 + 0.3001)
    expected = tf.image.ssim_multiscale(tf.image.rgb_to_grayscale(a), tf.image.rgb_to_grayscale(b), 1.0,
                                        power_factors=weights.tolist(), filter_size=11).numpy()
    assert np.allclose(ms_ssim(a, b), expected, atol=1e-4)
    assert np.allclose(ms_ssim(a, a), 1.0)


def test_pair_ssim_is_scikit_images_ssim():
    rng = np.random.default_rng(5)
    a = rng.random((5, 80, 80, 3)).astype(np.float32)
    b = np.clip(a + 0.2 * rng.normal(size=a.shape), 0, 1).astype(np.float32)
    b[0] = a[0]
    expected = [structural_similarity(x, y, data_range=1.0, channel_axis=-1) for x, y in zip(a, b)]
    assert np.allclose(pair_ssim(a, b), expected, atol=1e-5)
    assert pair_ssim(a, b)[0] == pytest.approx(1.0)


def test_copies_of_real_images_have_nearest_ssim_1_and_infinite_psnr():
    real = np.random.default_rng(4).random((10, 80, 80, 3)).astype(np.float32)
    ssim, psnr = nearest_real_scores(real[[3, 7, 7]], real)
    assert ssim == pytest.approx(1.0) and psnr == math.inf
    ssim, psnr = nearest_real_scores(np.clip(real[:4] + 0.05, 0, 1), real)
    assert 0 < ssim < 1 and 20 < psnr < 40


# ---------------------------------------------------------------- evaluate.py end to end


def collapsed_generator():
    """A generator that draws one image whatever its latent and label: the last convolution's kernel is 0."""
    g = cgan.build_generator(N_CLASSES, filters=4)
    last = g.layers[-1]
    last.set_weights([np.zeros_like(last.kernel), np.full(3, 0.2, np.float32)])
    return g


def label_blind_generator():
    """A generator whose label embedding is 0: its images depend on the latent only."""
    keras.utils.set_random_seed(5)
    g = cgan.build_generator(N_CLASSES, filters=4)
    embedding = next(layer for layer in g.layers if isinstance(layer, keras.layers.Embedding))
    embedding.set_weights([np.zeros_like(embedding.embeddings)])
    return g


@pytest.fixture(scope="module")
def evaluation_inputs(tmp_path_factory):
    """Prepared X-ray arrays, a trained classifier with its held_out.npz, and two saved
    generators: epoch 1 collapsed, epoch 2 label-blind."""
    rng = np.random.default_rng(6)
    images, labels = class_images(rng)
    data = tmp_path_factory.mktemp("evaluation") / "data"
    os.makedirs(data / "classifier")
    os.makedirs(data / "results")
    save_npz(data / "img_align_xray.npz", images)
    save_npz(data / "labels_align_xray.npz", labels)
    keras.utils.set_random_seed(0)
    classifier = build_classifier(N_CLASSES, (4, 8, 8))
    classifier.fit(images.astype(np.float32), labels, epochs=3, batch_size=8, verbose=0)
    classifier.save(data / "classifier" / "classifier.keras")
    save_arrays(data / "classifier" / "held_out.npz", accuracy=0.75)
    save_model(collapsed_generator(), run_folder.model_paths(str(data / "results"), 1)["generator"])
    save_model(label_blind_generator(), run_folder.model_paths(str(data / "results"), 2)["generator"])
    return data


def test_ctrl_c_in_evaluate_is_one_line_and_leaves_no_partial_results(
        evaluation_inputs, tmp_path, capsys, monkeypatch):
    measure = evaluation.evaluate_epoch

    def interrupted_at_epoch_2(epoch, *args):
        if epoch == 2:
            raise KeyboardInterrupt
        return measure(epoch, *args)

    monkeypatch.setattr(evaluation, "evaluate_epoch", interrupted_at_epoch_2)
    line = one_error_line(evaluate.main, [
        "--dataset", "xray", "--data_dir", evaluation_inputs, "--n", 8, "--out_dir", tmp_path / "out"],
        capsys, status=cli.EXIT_INTERRUPTED)
    assert line.endswith("error: interrupted")
    assert os.listdir(tmp_path / "out") == []  # epoch 1 was measured: no evaluation.csv of it alone


@pytest.mark.parametrize("accuracy, message", [
    ("high", "accuracy must be one number, got <U4 ()"),
    (float("nan"), "accuracy must be in [0, 1], got nan"),
    (np.array([0.5, 0.7]), "accuracy must be one number, got float64 (2,)"),
])
def test_a_held_out_accuracy_that_is_not_one_number_is_refused(
        evaluation_inputs, tmp_path, capsys, accuracy, message):
    classifier = tmp_path / "classifier.keras"
    os.symlink(evaluation_inputs / "classifier" / "classifier.keras", classifier)
    save_arrays(tmp_path / "held_out.npz", accuracy=accuracy)
    line = one_error_line(evaluate.main, ["--dataset", "xray", "--data_dir", evaluation_inputs, "--n", 8,
                                          "--classifier", classifier, "--out_dir", tmp_path / "out"], capsys)
    assert line.endswith(f"{tmp_path / 'held_out.npz'}: {message}")


def test_a_full_disk_while_evaluate_writes_is_one_line_exit_1_and_nothing_half_written(
        evaluation_inputs, tmp_path, capsys, monkeypatch):
    full_disk_at(monkeypatch, ".png")  # the figure, after the table
    out = tmp_path / "out"
    line = one_error_line(evaluate.main, ["--dataset", "xray", "--data_dir", evaluation_inputs, "--n", 8,
                                          "--out_dir", out], capsys, status=cli.EXIT_FAILED)
    assert line.endswith(f"error: {out / 'evaluation.png'}: No space left on device")
    assert not [name for name in os.listdir(out) if name.endswith(".png") or name.startswith(".tmp-")]


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def parse_pbtxt(text):
    """The projector config's embeddings as dicts of their fields (the format's few nested blocks)."""
    embeddings = []
    for block in re.findall(r"embeddings \{(.*?)\n\}", text, re.DOTALL):
        fields = dict(re.findall(r'^\s*(tensor_name|tensor_path|metadata_path|image_path): "([^"]+)"$', block, re.MULTILINE))
        fields["single_image_dim"] = [int(v) for v in re.findall(r"single_image_dim: (\d+)", block)]
        embeddings.append(fields)
    return embeddings


@pytest.mark.slow
def test_evaluate_flags_the_collapse_scores_the_label_blind_generator_at_chance_and_writes_the_projector(
        run, evaluation_inputs):
    data, out = evaluation_inputs, evaluation_inputs / "evaluation"
    done = run("evaluate.py", "--dataset", "xray", "--data_dir", data, "--n", 8, "--embedding")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the classifier's accuracy on its held-out real images: 0.750" in done.stdout
    assert done.stdout.count("real against real") == 1
    rows = read_rows(out / "evaluation.csv")
    assert list(rows[0]) == list(evaluation.FIELDS)
    assert [(r["epoch"], r["label"]) for r in rows] == [
        (epoch, label) for epoch in ("real", "1", "2") for label in ("0", "1", "2", "all")]
    by_key = {(r["epoch"], r["label"]): {k: float(v) for k, v in r.items() if k not in ("epoch", "label")} for r in rows}
    for label in ("0", "1", "2"):
        one_image = by_key[("1", label)]
        assert one_image["diversity_gen"] == pytest.approx(1.0) and one_image["recall"] <= 0.1
        assert f"warning: epoch 1, class {label} " in done.stdout
        # the floor: real images against real ones
        assert by_key[("real", label)]["recall"] > 0.3 and by_key[("real", label)]["diversity_gen"] < 1
    # the same latents under every label give the same images: the classifier names each image's class
    # once, whatever label made it, so the labels' accuracies add up to 1, their mean 1/3
    assert by_key[("2", "all")]["label_accuracy"] == pytest.approx(1 / 3, abs=1e-5)  # the CSV keeps 6 digits
    assert sum(by_key[("2", label)]["label_accuracy"] for label in ("0", "1", "2")) == pytest.approx(1.0)
    assert os.path.getsize(out / "evaluation.png") > 10_000 and os.path.getsize(out / "embedding_e002.png") > 10_000

    projector = out / "projector_e002"
    n_points = N_CLASSES * PER_CLASS + N_CLASSES * 8
    embeddings = parse_pbtxt((projector / "projector_config.pbtxt").read_text())
    assert [e["tensor_name"] for e in embeddings] == ["features", "pixels"]
    for embedding in embeddings:
        table = np.loadtxt(projector / embedding["tensor_path"], delimiter="\t", ndmin=2)
        assert table.shape[0] == n_points and np.all(np.isfinite(table))
        assert embedding["metadata_path"] == "metadata.tsv" and embedding["image_path"] == "sprite.png"
        assert embedding["single_image_dim"] == [evaluation.SPRITE_SIDE] * 2
    assert np.loadtxt(projector / "features.tsv", delimiter="\t").shape[1] == 8  # the classifier's pooled width
    metadata = (projector / "metadata.tsv").read_text().splitlines()
    assert metadata[0] == "source\tclass" and len(metadata) == 1 + n_points
    assert metadata[1] == "real\thealthy" and metadata[-1] == "generated\tbacter"
    columns = math.ceil(math.sqrt(n_points))
    with Image.open(projector / "sprite.png") as sprite:
        assert sprite.size == (columns * evaluation.SPRITE_SIDE,) * 2 and sprite.mode == "RGB"


@pytest.mark.parametrize("extra, message", [
    (["--n", 3], "--n: must be at least 8, got 3"),
    (["--epochs", 9], "no generators for epochs 9"),
    (["--labels", 3], "label 3 outside xray's 3 classes"),
    (["--classifier", "missing.keras"], "missing.keras not found (make it with train_classifier.py)"),
])
def test_bad_input_is_one_line_exit_2(evaluation_inputs, capsys, extra, message):
    argv = ["--dataset", "xray", "--data_dir", evaluation_inputs, *extra]
    assert message in one_error_line(evaluate.main, argv, capsys)


def test_the_n_flag_asks_for_the_measures_minimum():
    """evaluate.py checks --n before the measures' libraries load, against its own copy of the minimum."""
    assert evaluate.MIN_PER_CLASS == evaluation.MIN_REAL_PER_CLASS


# ---------------------------------------------------------------- the training options


def test_spectral_norm_adds_one_non_trainable_vector_per_layer():
    plain = cgan.build_discriminator(3, filters=128, lr=4e-5)
    normalized = cgan.build_discriminator(3, filters=128, lr=4e-5, spectral_norm=True)
    # five convolutions (128 wide), the label map's dense layer (80 x 80), the output (1)
    assert normalized.count_params() - plain.count_params() == 5 * 128 + 80 * 80 + 1 == 7041
    trainable = sum(int(np.prod(w.shape)) for w in normalized.trainable_weights)
    assert trainable == plain.count_params() and cgan.has_spectral_norm(normalized)
    assert not cgan.has_spectral_norm(plain)


def bce(target, p):
    """Binary cross-entropy of an output p against a target."""
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


@pytest.mark.parametrize("real_target", [1.0, 0.9])
def test_label_smoothing_sets_the_discriminators_real_target_only(tmp_path, real_target):
    """One-sided: the real half batch's target is --label_smoothing; the fake half's stays 0 and
    the generator's step aims at 1, whatever the smoothing."""
    train_config = config.resolve("xray", filters=4, n_batch=16, label_smoothing=real_target)
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(make_xray_data(tmp_path, n=32)))
    g = cgan.build_generator(3, train_config.latent_dim, train_config.filters)
    d = cgan.build_discriminator(3, train_config.filters, train_config.d_lr)
    gan = cgan.build_gan(g, d)
    out = d.layers[-1]  # a discriminator that says 0.9 for every image, whatever it is
    out.set_weights([np.zeros_like(out.kernel), np.full(1, math.log(9.0), np.float32)])
    trainer = training.Trainer(g, d, gan, images, labels, train_config, np.random.default_rng(0))
    for optimizer in (d.optimizer, gan.optimizer):  # no update moves it: it says 0.9 in all three updates
        optimizer.learning_rate = 0.0
    d1, d2, g_loss = trainer.step()  # the real half batch's, the fake half batch's, the GAN step's losses
    assert d1 == pytest.approx(bce(real_target, 0.9), rel=1e-4)  # 0.325 with smoothing, 0.105 without
    assert d2 == pytest.approx(bce(0.0, 0.9), rel=1e-4)  # 2.303; two-sided smoothing (target 0.1) would give 2.084
    assert g_loss == pytest.approx(bce(1.0, 0.9), rel=1e-4)  # 0.105; the smoothed target would give 0.325


@pytest.mark.slow
def test_both_options_train_save_restart_and_load(tmp_path, run, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = data / "results"
    common = ["--dataset", "xray", "--data_dir", str(data), "--summary_dir", str(tmp_path / "cgan"),
              "--filters", "4", "--n_batch", "16", "--real_plots", "0", "--seed", "2"]
    assert train_cgan.main([*common, "--epochs_goal", "1", "--label_smoothing", "0.9", "--spectral_norm",
                            "--diff_augment", "cutout,translation"]) == 0
    settings = capsys.readouterr().out.splitlines()[0]
    assert "label_smoothing=0.9 spectral_norm=on diff_augment=translation,cutout" in settings
    recorded = run_folder.read_config(str(results))
    flags = recorded["flags"]
    assert (flags["label_smoothing"], flags["spectral_norm"], flags["diff_augment"]) == (0.9, True, "translation,cutout")
    assert recorded["config"]["diff_augment"] == "translation,cutout"
    # a restart takes both from run_config.json, and refuses a contradiction
    assert train_cgan.main([*common, "--qRestart", "--epochs_goal", "2"]) == 0
    resumed = capsys.readouterr().out
    assert "label_smoothing=0.9 spectral_norm=on diff_augment=translation,cutout" in resumed
    assert "training state of epoch 1 restored" in resumed
    with pytest.raises(SystemExit):
        train_cgan.main([*common, "--qRestart", "--epochs_goal", "3", "--label_smoothing", "0.8"])
    assert "--label_smoothing 0.8 contradicts this run's --label_smoothing 0.9" in capsys.readouterr().err
    paths = run_folder.model_paths(str(results), 2)
    d = cgan.load_discriminator(paths["discriminator"], 4e-5)
    assert cgan.has_spectral_norm(d)
    assert cgan.load_generator(paths["generator"]).count_params() == cgan.build_generator(3, filters=4).count_params()
    # every script that reads generators loads this one
    heatmap = run("heatmaps.py", "--dataset", "xray", "--data_dir", data, "--epochs", 2, "--labels", 0, 2)
    assert heatmap.returncode == 0, heatmap.stderr[-2000:]
    assert os.path.exists(data / "heatmaps" / "generator_model_002.h5.png")
