"""The comparison of delta heatmaps with a classifier's saliency maps: every score on hand-made
maps whose answer is known; Grad-CAM, CAM and IG of a tiny classifier trained on images whose
class is one bright square; the averaged delta of a generator whose label changes one known
region; the randomized-weights sanity check; the classifier and saliency scripts and the
scoring CLI on real files."""

import itertools
import os
import re

import keras
import numpy as np
import pytest
from keras import layers

import heatmaps
import saliency
import train_classifier
from cganlib import cgan, datasets, delta_heatmaps, xray_images
from cganlib.classifier import (
    FILTERS,
    build_classifier,
    class_activation_maps,
    features_model,
    fit_classifier,
    grad_cam,
    integrated_gradients,
    last_conv,
    load_classifier,
    stratified_split,
)
from cganlib.delta import LEVELS
from cganlib.scoring import (
    class_map,
    energy_inside,
    pixel_auc,
    pointing_hit,
    prepared_order,
    score_map,
    score_saliency_arrays,
)
from cganlib.storage import InputError, load_arrays, save_arrays, save_model, save_npz
from helpers import bright_squares, make_phantom_set, one_error_line

SIDE = 80
SQUARE = 12


def square_mask(top, left, size=SQUARE):
    mask = np.zeros((SIDE, SIDE), bool)
    mask[top : top + size, left : left + size] = True
    return mask


# ---------------------------------------------------------------- the scores, by hand


def test_a_map_equal_to_the_mask_scores_one_its_inverse_zero_a_constant_chance():
    mask = square_mask(30, 10)
    assert score_map(mask.astype(float), mask) == {"auc": 1.0, "energy": 1.0, "pointing": 1.0}
    inverted = score_map(1.0 - mask, mask)
    assert inverted["auc"] == 0.0 and inverted["energy"] == 0.0 and inverted["pointing"] == 0.0
    constant = score_map(np.full((SIDE, SIDE), 0.7), mask)
    area = mask.mean()
    assert constant["auc"] == 0.5
    assert constant["energy"] == pytest.approx(area) and constant["pointing"] == pytest.approx(area)


def test_auc_is_the_share_of_inside_outside_pairs_ranked_right_ties_half():
    rng = np.random.default_rng(0)
    saliency_map = rng.integers(0, 4, (6, 6)).astype(float)  # many ties
    mask = rng.random((6, 6)) < 0.4
    inside, outside = saliency_map[mask], saliency_map[~mask]
    pairs = [(a > b) + 0.5 * (a == b) for a, b in itertools.product(inside, outside)]
    assert pixel_auc(saliency_map, mask) == pytest.approx(np.mean(pairs))
    assert np.isnan(pixel_auc(saliency_map, np.zeros((6, 6), bool)))  # no pixel inside: undefined


def test_energy_counts_only_positive_mass_and_pointing_splits_ties():
    mask = square_mask(0, 0, 40)  # the top-left quarter
    signed = np.where(mask, 1.0, -5.0)
    signed[79, 79] = 3.0  # the only positive mass outside, and the maximum
    assert energy_inside(signed, mask) == pytest.approx(1600 / 1603)
    assert pointing_hit(signed, mask) == 0.0
    assert energy_inside(-np.ones((SIDE, SIDE)), mask) == 0.0  # nothing positive
    two_peaks = np.zeros((SIDE, SIDE))
    two_peaks[5, 5] = two_peaks[70, 70] = 1.0
    assert pointing_hit(two_peaks, mask) == 0.5


def test_class_map_keeps_one_loud_image_from_drowning_the_others():
    quiet, loud = np.zeros((SIDE, SIDE)), np.zeros((SIDE, SIDE))
    quiet[10, 10] = 1.0
    loud[70, 70] = 1000.0
    mean = class_map(np.stack([quiet, loud]))
    assert mean[10, 10] == mean[70, 70] == 0.5


def test_per_image_scores_use_each_images_own_mask_found_by_its_prepared_index():
    """Two images whose maps point exactly at their own lesions score 1 per image; the union
    region is scored by the class mean; indices follow prepare_xrays.py's file order."""
    names = np.array(["train/PNEUMONIA/person3_bacteria_2.jpeg", "train/NORMAL/IM-0001-0001.jpeg",
                      "train/PNEUMONIA/person1_bacteria_1.jpeg"])
    truth_labels = np.array([2, 0, 2])
    lesion = np.stack([square_mask(50, 10), np.zeros((SIDE, SIDE), bool), square_mask(20, 60)]).astype(np.uint8)
    lungs = np.ones_like(lesion)
    # prepared order: NORMAL/IM-0001 (row 1), PNEUMONIA/person1 (row 2), PNEUMONIA/person3 (row 0)
    assert prepared_order(names).tolist() == [1, 2, 0]
    maps = {"gradcam": np.stack([lesion[2], lesion[0]]).astype(np.float32)}
    finding, scores = score_saliency_arrays(maps, [1, 2], [2, 2], 2, names, truth_labels, lesion, lungs)
    assert finding == "lesion"
    assert scores["gradcam"]["image"] == {"auc": 1.0, "energy": 1.0, "pointing": 1.0, "n": 2,
                                          "area": pytest.approx(SQUARE**2 / SIDE**2)}
    assert scores["gradcam"]["class"]["auc"] == 1.0
    swapped = np.stack([lesion[0], lesion[2]]).astype(np.float32)  # each image's map on the other's lesion
    _, scores = score_saliency_arrays({"gradcam": swapped}, [1, 2], [2, 2], 2, names, truth_labels, lesion, lungs)
    assert scores["gradcam"]["image"]["energy"] == 0.0 and scores["gradcam"]["class"]["energy"] == 1.0
    with pytest.raises(InputError, match="differ from the ground truth"):
        score_saliency_arrays(maps, [0, 1], [2, 2], 2, names, truth_labels, lesion, lungs)
    with pytest.raises(InputError, match="no finding"):
        score_saliency_arrays(maps, [1, 2], [2, 2], 0, names, truth_labels, lesion, lungs)


def test_prepared_order_is_the_order_prepare_xrays_reads_the_phantoms_in(tmp_path):
    truth = make_phantom_set(tmp_path, 12, 80)
    found = [os.path.relpath(path, tmp_path / "chest_xray") for path in datasets.find_files(tmp_path / "chest_xray")]
    assert [truth["names"][row] for row in prepared_order(truth["names"])] == found


# ---------------------------------------------------------------- a classifier of one bright square


def square_images(n_per_class, seed):
    """uint8 (2n, 80, 80, 3): noise, and in class 1 a bright square at a random place; labels;
    each image's square mask."""
    rng = np.random.default_rng(seed)
    images = rng.integers(40, 120, (2 * n_per_class, SIDE, SIDE, 1)).astype(np.uint8).repeat(3, axis=-1)
    labels = np.repeat([0, 1], n_per_class).astype(np.int32)
    corners = [tuple(rng.integers(8, SIDE - SQUARE - 8, 2)) if label else None for label in labels]
    images, masks = bright_squares(images, corners, SQUARE)
    return images, labels, masks


@pytest.fixture(scope="module")
def square_classifier():
    """A tiny classifier trained (by the training script's own function) until it tells the
    squares apart; its maps of held-out square images, with their masks."""
    images, labels, masks = square_images(40, seed=0)
    train, validation, held_out = stratified_split(labels, 0.25, 0.15, seed=0)
    keras.utils.set_random_seed(0)
    model = build_classifier(2, (4, 8, 8))
    fit_classifier(model, images, labels, train, validation, max_epochs=8, patience=8, verbose=0)
    squares = held_out[labels[held_out] == 1]
    accuracy = np.mean(np.argmax(model.predict(images[held_out].astype(np.float32), verbose=0), 1) == labels[held_out])
    return model, images[squares], masks[squares], accuracy


def test_stratified_split_holds_out_each_class_by_its_share_and_is_seeded():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, validation, held_out = stratified_split(labels, 0.2, 0.1, seed=3)
    assert np.bincount(labels[held_out]).tolist() == [10, 6, 4]
    assert np.bincount(labels[validation]).tolist() == [5, 3, 2]
    assert sorted(np.concatenate([train, validation, held_out]).tolist()) == list(range(100))
    assert np.array_equal(held_out, stratified_split(labels, 0.2, 0.1, seed=3)[2])
    assert not np.array_equal(held_out, stratified_split(labels, 0.2, 0.1, seed=4)[2])


@pytest.mark.slow
def test_grad_cam_and_cam_of_a_square_classifier_point_at_the_square(square_classifier):
    model, images, masks, accuracy = square_classifier
    assert accuracy >= 0.9
    for method in (grad_cam, class_activation_maps):
        maps = method(model, images, target=1)
        assert maps.shape == (len(images), SIDE, SIDE)
        scores = [score_map(m, mask) for m, mask in zip(maps, masks)]
        assert np.mean([s["pointing"] for s in scores]) >= 0.9, method.__name__
        assert np.mean([s["auc"] for s in scores]) >= 0.9, method.__name__
    assert grad_cam(model, images, target=1).min() >= 0  # Grad-CAM's ReLU


def test_grad_cam_is_cams_positive_part_rescaled():
    """RESULTS.md's claim: with global average pooling and one dense layer, Grad-CAM is CAM's
    positive part, divided by the last convolution's area (20 x 20). CAM's negative part is the
    Grad-CAM of the class with its dense weights negated: the two differ by CAM / 400 (any weights)."""
    keras.utils.set_random_seed(1)
    model = build_classifier(2, (4, 8, 8))
    images = np.full((1, SIDE, SIDE, 3), 40, np.float32)
    images[:, :, : SIDE // 2] = 200  # bright on the left: the features differ between the halves
    # class 1's weights orthogonal to the image's pooled features: its CAM averages 0, so it has both signs
    pooled = features_model(model).predict(images, verbose=0)[0][0].astype(np.float64)
    kernel, bias = model.layers[-1].get_weights()
    weights = np.random.default_rng(0).normal(size=len(pooled))
    kernel[:, 1] = weights - weights @ pooled / (pooled @ pooled) * pooled
    model.layers[-1].set_weights([kernel, bias])
    cam = class_activation_maps(model, images, 1)
    positive = grad_cam(model, images, 1)
    model.layers[-1].set_weights([np.stack([kernel[:, 0], -kernel[:, 1]], axis=1), bias])
    negative = grad_cam(model, images, 1)
    assert 0.1 < (cam > 0).mean() < 0.9  # both signs, to tell the positive part from the whole
    assert positive.min() >= 0 and negative.min() >= 0
    area = int(np.prod(last_conv(model).output.shape[1:3]))  # 20 x 20
    np.testing.assert_allclose(area * (positive - negative), cam, atol=1e-5 * np.abs(cam).max())
    # away from where CAM changes sign (the upsampling mixes neighbours there), one part is 0
    assert np.mean((positive > 0) == (cam > 0)) > 0.8 and np.mean((negative > 0) == (cam < 0)) > 0.8


@pytest.mark.slow
def test_integrated_gradients_add_up_to_the_score_difference_and_sit_on_the_square(square_classifier):
    model, images, masks, _ = square_classifier
    maps = integrated_gradients(model, images[:4], target=1)
    scores = model.predict(np.concatenate([images[:4], np.zeros_like(images[:1])]).astype(np.float32), verbose=0)[:, 1]
    # completeness (Sundararajan et al.): the attributions sum to score(x) - score(black)
    assert maps.sum(axis=(1, 2)) == pytest.approx(scores[:4] - scores[4], rel=0.1, abs=0.05)
    assert np.mean([energy_inside(m, mask) for m, mask in zip(maps, masks[:4])]) > 3 * masks.mean()


@pytest.mark.slow
def test_reinitialized_weights_are_fresh_draws_of_the_same_architecture_and_seeded(square_classifier):
    """The sanity check's model (Adebayo et al.): every weight drawn anew, the same seed the same draw.
    (Whether its maps still point at a bright square depends on the draw: a square on noise is
    salient to random filters too. The phantoms' numbers are in files/RESULTS.md.)"""
    model, images, _, _ = square_classifier
    fresh, again, other = (cgan.reinitialized(model, seed) for seed in (5, 5, 6))
    assert [w.shape for w in fresh.get_weights()] == [w.shape for w in model.get_weights()]
    assert not any(np.allclose(a, b) for a, b in zip(fresh.get_weights(), model.get_weights()) if a.std() > 0)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), again.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), other.get_weights()))
    assert not np.allclose(class_activation_maps(fresh, images, 1), class_activation_maps(model, images, 1))


# ---------------------------------------------------------------- the averaged delta


def layer_of(model, kind):
    return next(layer for layer in model.layers if isinstance(layer, kind))


def region_generator(region, n_classes=2):
    """A generator with the project's inputs (latent, label) whose label 1 brightens `region`
    and nothing else: the latent draws the same faint noise under either label."""
    latent, label = keras.Input((cgan.LATENT_DIM,)), keras.Input((1,))
    noise = layers.Dense(SIDE * SIDE * 3, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(latent)
    paint = layers.Flatten()(layers.Embedding(n_classes, SIDE * SIDE * 3)(label))
    image = layers.Reshape((SIDE, SIDE, 3))(layers.Activation("tanh")(layers.Add()([noise, paint])))
    model = keras.Model([latent, label], image)
    brightening = np.zeros((n_classes, SIDE, SIDE, 3), np.float32)
    brightening[1][region] = 1.5
    layer_of(model, layers.Embedding).set_weights([brightening.reshape(n_classes, -1)])
    return model


def test_the_averaged_delta_of_a_generator_that_changes_one_region_is_largest_there():
    region = square_mask(50, 10, 16)
    generator = region_generator(region)
    mean, share = delta_heatmaps.averaged_deltas(generator, (0, 1), 100, np.random.default_rng(0), batch_size=64)
    assert mean.shape == (2, 2, SIDE, SIDE) and share.shape == (2, 2, len(LEVELS), SIDE, SIDE)
    brighter = mean[1, 0]
    assert region[np.unravel_index(np.argmax(brighter), brighter.shape)]
    assert brighter[region].min() > 1.0 and np.abs(brighter[~region]).max() < 1e-6  # the same image outside it
    assert np.array_equal(mean[0, 1], -mean[1, 0]) and not mean[0, 0].any()
    assert score_map(brighter, region) == {"auc": 1.0, "energy": pytest.approx(1.0), "pointing": 1.0}
    faintest = share[1, 0, -1]  # the share of latents whose delta exceeds 0.2
    assert faintest[region].min() == 1.0 and faintest[~region].max() == 0.0
    # the sanity check: fresh weights forget the region
    fresh_mean, _ = delta_heatmaps.averaged_deltas(cgan.reinitialized(generator, 1), (0, 1), 100, np.random.default_rng(0))
    assert abs(pixel_auc(fresh_mean[1, 0], region) - 0.5) < 0.15


def test_averaged_deltas_draw_latents_as_training_does_a_batch_at_a_time():
    """A generator whose label-1 image shows its first latent value in one pixel: the mean delta
    there is the mean of the latents training's draw gives, batch by batch, for the same seed."""
    latent, label = keras.Input((cgan.LATENT_DIM,)), keras.Input((1,))
    echo = layers.Dense(SIDE * SIDE * 3, kernel_initializer="zeros")(latent)
    switch = layers.Flatten()(layers.Embedding(2, 1)(label))  # 0 for label 0, 1 for label 1
    model = keras.Model([latent, label], layers.Reshape((SIDE, SIDE, 3))(layers.Multiply()([echo, switch])))
    kernel = np.zeros((cgan.LATENT_DIM, SIDE * SIDE * 3), np.float32)
    kernel[0, 0] = 0.1  # red of pixel (0, 0): the first latent value / 10
    layer_of(model, layers.Dense).set_weights([kernel, np.zeros(SIDE * SIDE * 3, np.float32)])
    layer_of(model, layers.Embedding).set_weights([np.array([[0.0], [1.0]], np.float32)])
    mean, _ = delta_heatmaps.averaged_deltas(model, (0, 1), 10, np.random.default_rng(7), batch_size=4)
    expected = np.random.default_rng(7)
    firsts = np.concatenate([cgan.training_latents(expected, n)[:, 0] for n in (4, 4, 2)])
    assert mean[1, 0, 0, 0] == pytest.approx(firsts.mean() / 20, abs=1e-6)  # [0, 1] pixels: half of x / 10
    assert not np.delete(mean[1, 0].ravel(), 0).any()


# ---------------------------------------------------------------- the scripts


@pytest.fixture(scope="module")
def phantom_data(tmp_path_factory):
    """Prepared phantoms (8 per class, as prepare_xrays.py would write them) and their truth."""
    folder = tmp_path_factory.mktemp("phantoms")
    truth = make_phantom_set(folder, 8, 80)
    order = prepared_order(truth["names"])
    paths = [folder / "chest_xray" / truth["names"][row] for row in order]
    images = np.stack([xray_images.load_xray(str(path), 80)[0] for path in paths])
    save_npz(folder / "img_align_xray.npz", images)
    save_npz(folder / "labels_align_xray.npz", truth["labels"][order].astype(np.int64))
    return folder


@pytest.mark.slow
def test_train_classifier_then_saliency_then_scores_on_real_files(phantom_data, tmp_path, capsys, run):
    model_dir, maps_dir = tmp_path / "classifier", tmp_path / "maps"
    train_classifier.main(["--dataset", "xray", "--data_dir", str(phantom_data), "--out_dir", str(model_dir),
                           "--filters", "2", "--max_epochs", "2", "--held_out", "0.25"])
    printed = capsys.readouterr().out
    assert "held-out accuracy:" in printed and "confusion matrix" in printed
    train, validation, held_out, labels, predictions, confusion, accuracy = load_arrays(
        model_dir / "held_out.npz", ("train", "validation", "held_out", "labels", "predictions", "confusion", "accuracy"))
    assert np.bincount(labels).tolist() == [2, 2, 2] and len(train) + len(validation) + len(held_out) == 24
    assert confusion.sum() == 6 and accuracy == np.trace(confusion) / 6 == np.mean(labels == predictions)
    assert (model_dir / "classifier.keras").is_file()

    saliency.main(["--dataset", "xray", "--data_dir", str(phantom_data), "--classifier", str(model_dir / "classifier.keras"),
                   "--labels", "1", "2", "--out_dir", str(maps_dir)])
    (images,) = load_arrays(phantom_data / "img_align_xray.npz", ("arr_0",))
    (prepared_labels,) = load_arrays(phantom_data / "labels_align_xray.npz", ("arr_0",))
    model = load_classifier(model_dir / "classifier.keras")
    maps = {}
    for label in (1, 2):  # the classifier's three maps of its held-out images of the class, explaining the class
        gradcam, cam, ig, indices, image_labels, target = load_arrays(
            maps_dir / f"saliency_{label}.npz", ("gradcam", "cam", "ig", "indices", "labels", "target"))
        assert indices.tolist() == held_out[prepared_labels[held_out] == label].tolist() and len(indices) == 2
        assert (image_labels == label).all() and target == label
        for saved, method in ((gradcam, grad_cam), (cam, class_activation_maps), (ig, integrated_gradients)):
            expected = method(model, images[indices], label)
            np.testing.assert_allclose(saved, expected, atol=1e-5 * max(np.abs(expected).max(), 1e-6))
        maps[label] = {"gradcam": gradcam, "cam": cam, "indices": indices}

    # the sanity check's maps are those of the classifier re-initialized with --seed
    saliency.main(["--dataset", "xray", "--data_dir", str(phantom_data), "--classifier", str(model_dir / "classifier.keras"),
                   "--labels", "2", "--out_dir", str(tmp_path / "random"), "--randomized_weights", "--seed", "4"])
    random_cam, indices, randomized = load_arrays(tmp_path / "random" / "saliency_2.npz", ("cam", "indices", "randomized"))
    (images,) = load_arrays(phantom_data / "img_align_xray.npz", ("arr_0",))
    fresh = cgan.reinitialized(load_classifier(model_dir / "classifier.keras"), 4)
    assert randomized and np.allclose(random_cam, class_activation_maps(fresh, images[indices], 2), atol=1e-5)
    assert not np.allclose(random_cam, cam, atol=1e-3)

    done = run("heatmap_scores.py", "--ground_truth", phantom_data / "ground_truth.npz",
               "--saliency", maps_dir / "saliency_1.npz", maps_dir / "saliency_2.npz")
    assert done.returncode == 0, done.stderr
    for row in ("Grad-CAM  lungs", "CAM       lesion", "IG        lesion", "per image (n=2)", "chance: ROC-AUC 0.5"):
        assert row in done.stdout, row
    # its numbers: the viral maps against the lung fields, the bacterial ones against the lesions
    names, lesion, lungs = load_arrays(phantom_data / "ground_truth.npz", ("names", "lesion", "lungs"))
    rows = prepared_order(names)
    for label, method, name, masks in ((1, "gradcam", "Grad-CAM", lungs), (2, "cam", "CAM", lesion)):
        finding = "lungs" if label == 1 else "lesion"
        class_scores = score_map(class_map(maps[label][method]), masks.astype(bool).any(axis=0))
        own = [score_map(m, mask) for m, mask in zip(maps[label][method], masks[rows][maps[label]["indices"]].astype(bool))]
        for what, scores in (("class mean", class_scores), ("per image (n=2)", {
                key: np.nanmean([s[key] for s in own]) for key in ("auc", "energy", "pointing")})):
            (line,) = re.findall(rf"^{re.escape(name)} +{finding} +{re.escape(what)} .*$", done.stdout, re.MULTILINE)
            shown = [float("nan") if x == "-" else float(x) for x in line.split()[-4:-1]]  # "-": not defined
            assert shown == pytest.approx([scores["auc"], scores["energy"], scores["pointing"]], abs=1e-3, nan_ok=True), line


@pytest.mark.parametrize("argv, message", [
    (["--held_out", "0.6", "--validation", "0.5"], "leave nothing to train on"),
    (["--held_out", "1"], "--held_out: must be in (0, 1)"),
    (["--data_dir", "/nonexistent"], "not found (make it with files/prepare_xrays.py)"),
])
def test_train_classifier_bad_input_is_one_line(phantom_data, tmp_path, capsys, argv, message):
    argv = ["--dataset", "xray", "--data_dir", str(phantom_data), "--out_dir", str(tmp_path / "c"), *argv]
    assert message in one_error_line(train_classifier.main, argv, capsys)
    assert not (tmp_path / "c" / "classifier.keras").exists()


def test_train_classifier_builds_the_classifiers_widths_by_default():
    """train_classifier.py's --filters default is set before TensorFlow loads, from its own copy."""
    width = train_classifier.FILTERS
    assert (width, 2 * width, 4 * width) == FILTERS


def test_saliency_without_a_classifier_or_with_a_foreign_file_is_one_line(phantom_data, tmp_path, capsys):
    foreign = tmp_path / "model.keras"
    foreign.write_text("not a model")
    save_arrays(tmp_path / "held_out.npz", held_out=np.arange(24))
    for classifier, message in ((tmp_path / "none.keras", "not found (make it with train_classifier.py)"),
                                (foreign, "not a readable Keras model")):
        argv = ["--dataset", "xray", "--data_dir", phantom_data, "--classifier", classifier]
        assert message in one_error_line(saliency.main, argv, capsys)


@pytest.mark.slow
def test_heatmaps_average_with_randomized_weights_writes_the_statistics_of_the_reinitialized_generator(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    path = str(models / "generator_model_004.h5")
    save_model(cgan.build_generator(3, filters=8), path)
    heatmaps.main(["--dataset", "xray", "--models_dir", str(models), "--out_dir", str(tmp_path / "out"),
                   "--average", "64", "--n_samples", "1", "--seed", "3", "--randomized_weights"])
    labels, mean, share, thresholds, n_latents, randomized = load_arrays(
        tmp_path / "out" / "generator_model_004.h5.average.npz",
        ("labels", "mean", "share_above", "thresholds", "n_latents", "randomized"))
    assert labels.tolist() == [0, 1, 2] and n_latents == 64 and randomized
    assert mean.shape == (3, 3, SIDE, SIDE) and share.shape == (3, 3, 3, SIDE, SIDE)
    assert thresholds.tolist() == [1.0, 0.6, 0.2] and (share[:, :, 0] <= share[:, :, 2]).all()
    assert os.path.getsize(tmp_path / "out" / "generator_model_004.h5.average.png") > 10_000
    # the same latents (seed 3) through the saved generator re-initialized with seed 3, not the saved one
    generator = cgan.load_generator(path)
    expected, _ = delta_heatmaps.averaged_deltas(cgan.reinitialized(generator, 3), (0, 1, 2), 64, np.random.default_rng(3))
    saved, _ = delta_heatmaps.averaged_deltas(generator, (0, 1, 2), 64, np.random.default_rng(3))
    scale = np.abs(saved).max()
    assert np.abs(mean - expected).max() < 1e-3 * scale < np.abs(mean - saved).max()


def test_heatmap_scores_cli_scores_averages_and_refuses_a_call_without_maps(run, tmp_path):
    lesion = np.zeros((2, SIDE, SIDE), np.uint8)
    lesion[1] = square_mask(50, 10)
    lungs = np.zeros_like(lesion)
    lungs[:, 10:70, 5:35] = 1
    save_arrays(tmp_path / "truth.npz", names=np.array(["a", "b"]), labels=np.array([0, 2]), lesion=lesion, lungs=lungs)
    mean = np.zeros((3, 3, SIDE, SIDE), np.float32)
    mean[2, 0] = lesion[1]  # bacterial brighter than healthy exactly on the lesion
    mean[1, 0] = 1 - lungs[0]  # viral brighter than healthy exactly outside the lungs
    share = np.repeat((mean > 0.5)[:, :, None], 3, axis=2).astype(np.float32)
    save_arrays(tmp_path / "a.average.npz", labels=np.array([0, 1, 2]), mean=mean, share_above=share,
                thresholds=np.array([1.0, 0.6, 0.2]))
    done = run("heatmap_scores.py", "--ground_truth", tmp_path / "truth.npz", "--average", tmp_path / "a.average.npz")
    assert done.returncode == 0, done.stderr
    lesion_row, lungs_row = (line.split() for line in done.stdout.splitlines()[2:4])
    assert lesion_row[:2] == ["delta", "lesion"] and lesion_row[-4:] == ["1.000", "1.000", "1.000", "1.000"]
    assert lungs_row[:2] == ["delta", "lungs"] and lungs_row[-4:] == ["0.000", "0.000", "0.000", "0.000"]
    nothing = run("heatmap_scores.py", "--ground_truth", tmp_path / "truth.npz")
    assert nothing.returncode == 2 and len(nothing.stderr.strip().splitlines()) == 1
    assert "give --heatmap, --average or --saliency" in nothing.stderr
