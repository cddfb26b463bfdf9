"""The measures that need no masks: deletion and insertion curves (Petsiuk et al. 2018) on a
classifier built by hand to read one region, where the map that is the truth must beat a random
one; composition and validity with known answers; the whole of explain_image.py --classifier on
a generator whose label brightens that region; and the script's output and bad input."""

import os
from types import SimpleNamespace

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from keras import layers

import explain_image
from cganlib import cgan, explanation, explanation_measures, faithfulness, plots
from cganlib.classifier import build_classifier
from cganlib.faithfulness import (
    area_under,
    curve_inputs,
    deletion_insertion_curves,
    pixel_ranks,
    replaced_counts,
)
from cganlib.scoring import (
    CURVE_MAPS,
    class_mean_difference,
    composition_scores,
    validity_scores,
)
from cganlib.storage import save_arrays
from conftest import DATA

SIDE = 80
REGION = np.zeros((SIDE, SIDE), bool)
REGION[20:36, 44:60] = True  # 256 pixels: fewer than one step's 320


def bright_region_images(n, seed):
    """uint8 (2n, 80, 80, 3): noise, and in class 1 the region bright; labels (2n,)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(40, 120, (2 * n, SIDE, SIDE, 1)).astype(np.uint8).repeat(3, axis=-1)
    labels = np.repeat([0, 1], n)
    images[n:, REGION] = 230
    return images, labels


def region_reader(gain=0.1, threshold=175.0):
    """A classifier that reads only the region's mean grey level: logits (0, gain * (mean - threshold))."""
    pixels = keras.Input((SIDE, SIDE, 3))
    model = keras.Model(pixels, layers.Dense(2)(layers.Flatten()(pixels)))
    kernel = np.zeros((SIDE * SIDE * 3, 2), np.float32)
    kernel[:, 1] = np.repeat(REGION.ravel(), 3) * gain / (3 * REGION.sum())
    model.layers[-1].set_weights([kernel, np.array([0.0, -gain * threshold], np.float32)])
    return model


def probability_of_1(model, images):
    return faithfulness.softmax(model.predict(np.asarray(images, np.float32), verbose=0))[:, 1]


# ---------------------------------------------------------------- the curves


def test_replaced_counts_go_from_none_to_every_pixel_in_even_steps():
    assert replaced_counts(6400, 20).tolist() == list(range(0, 6401, 320))
    assert replaced_counts(10, 4).tolist() == [0, 2, 5, 8, 10]  # rounded, half to even


def test_each_step_replaces_the_next_top_ranked_pixels_by_the_reference():
    rng = np.random.default_rng(0)
    image, reference = rng.random((SIDE, SIDE, 3)), -np.ones((SIDE, SIDE, 3))
    ranks = pixel_ranks(rng.random((2, SIDE, SIDE)), rng)
    deletion, insertion = curve_inputs(image, reference, ranks, 4)
    assert deletion.shape == insertion.shape == (2, 5, SIDE, SIDE, 3)
    for m in range(2):
        for k, count in enumerate(replaced_counts(SIDE * SIDE, 4)):
            replaced = ranks[m] < count
            assert (deletion[m, k][replaced] == -1).all() and np.array_equal(deletion[m, k][~replaced], image[~replaced])
            assert (insertion[m, k][~replaced] == -1).all() and np.array_equal(insertion[m, k][replaced], image[replaced])


def test_ranks_put_high_values_first_and_break_ties_at_random_by_the_seed():
    ramp = np.arange(SIDE * SIDE, dtype=float).reshape(1, SIDE, SIDE)
    assert pixel_ranks(ramp, np.random.default_rng(0))[0, -1, -1] == 0  # the largest first
    flat = np.zeros((1, SIDE, SIDE))
    a, b, c = (pixel_ranks(flat, np.random.default_rng(seed)) for seed in (1, 1, 2))
    assert sorted(a.ravel().tolist()) == list(range(SIDE * SIDE))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_area_under_a_curve_over_the_share_replaced():
    assert area_under(np.full((2, 21), 0.3)) == pytest.approx([0.3, 0.3])
    assert area_under(np.linspace(1, 0, 21)) == pytest.approx(0.5)
    assert area_under([1.0, 0.0, 0.0, 0.0, 0.0]) == pytest.approx(0.125)  # a fall at once


def test_the_true_map_beats_a_random_one_and_the_inverted_truth_loses_on_a_classifier_reading_one_region():
    model = region_reader()
    images, labels = bright_region_images(3, seed=0)
    bright = images[labels == 1]
    truth = np.repeat(REGION[None].astype(float), len(bright), axis=0)
    random = np.random.default_rng(1).random(truth.shape)
    maps = np.stack([truth, random, 1.0 - truth], axis=1)  # (N, 3 maps, 80, 80)
    deletion, insertion = deletion_insertion_curves(model, bright, np.ones(len(bright), int), maps, steps=20)
    assert deletion.shape == insertion.shape == (3, 3, 21)
    # the curves start at the image's probability and end at the blurred copy's, and the reverse
    blurred = faithfulness.blurred(bright)
    np.testing.assert_allclose(deletion[:, :, 0], probability_of_1(model, bright)[:, None].repeat(3, 1), atol=1e-6)
    np.testing.assert_allclose(deletion[:, :, -1], probability_of_1(model, blurred)[:, None].repeat(3, 1), atol=1e-6)
    np.testing.assert_allclose(insertion[:, :, [0, -1]], deletion[:, :, [-1, 0]], atol=1e-6)
    assert deletion[:, :, 0].min() > 0.99 and deletion[:, :, -1].max() < 0.05  # the blur washes the region out
    (deletion_truth, deletion_random, deletion_inverse) = area_under(deletion).T
    (insertion_truth, insertion_random, insertion_inverse) = area_under(insertion).T
    assert (deletion_truth < 0.05).all() and (deletion_truth + 0.3 < deletion_random).all()
    assert (deletion_random + 0.2 < deletion_inverse).all()
    assert (insertion_truth > 0.95).all() and (insertion_truth > insertion_random + 0.3).all()
    assert (insertion_random > insertion_inverse + 0.2).all()


def test_curves_of_many_images_come_out_in_their_order_whatever_the_batching(monkeypatch):
    model = region_reader()
    images, labels = bright_region_images(3, seed=2)
    maps = np.random.default_rng(3).random((len(images), 2, SIDE, SIDE))
    together = deletion_insertion_curves(model, images, labels, maps, steps=5, seed=4)
    monkeypatch.setattr(faithfulness, "MAX_INPUTS", 1)  # one image's curves at a time
    one_by_one = deletion_insertion_curves(model, images, labels, maps, steps=5, seed=4)
    for a, b in zip(together, one_by_one):
        np.testing.assert_allclose(a, b, atol=1e-6)
    inputs = images.astype(np.float32)
    np.testing.assert_allclose(faithfulness.class_scores(model, inputs, batch_size=4),
                               model.predict(inputs, verbose=0), rtol=1e-5)
    # each image's own class: class 0's probability for the plain images, class 1's for the bright
    assert together[0][:3, :, 0].min() > 0.99 and together[0][3:, :, 0].min() > 0.99


# ---------------------------------------------------------------- composition, validity, the maps


def hand_result(images, labels, targets, reconstructions, relabelled, deltas=None):
    """explained()'s result, as far as the measures read it; images in [0, 1]."""
    n, t = len(images), len(targets)
    return {"images": images / 255.0, "labels": np.asarray(labels), "targets": np.asarray(targets),
            "reconstructions": reconstructions / 255.0, "relabelled": relabelled / 255.0,
            "mse": np.full(n, 0.01), "ssim": np.full(n, 0.9),
            "deltas": np.zeros((n, t, SIDE, SIDE)) if deltas is None else deltas}


def test_recon_agree_and_flip_rate_count_what_the_classifier_says():
    model = region_reader()
    images, labels = bright_region_images(2, seed=0)  # labels 0, 0, 1, 1
    plain, bright = images[0], images[3]
    reconstructions = np.stack([plain, bright, bright, plain])  # the 1st and 3rd read as their label
    # per image, targets 0 and 1: the 1st image's switch to 1 stays plain (no flip); the others flip
    relabelled = np.stack([[plain, plain], [plain, bright], [plain, bright], [plain, bright]])
    result = hand_result(images, labels, [0, 1], reconstructions, relabelled)
    result["mse"], result["ssim"] = np.array([0.01, 0.03, 0.02, 0.06]), np.array([0.9, 0.5, 0.7, 0.9])
    recon_classes = explanation_measures.reconstruction_classes(model, result)
    assert recon_classes.tolist() == [0, 1, 1, 0]
    scores = composition_scores(result, recon_classes)  # the images' means, not the worst
    assert scores == {"recon_mse": pytest.approx(0.03), "recon_ssim": pytest.approx(0.75), "recon_agree": 0.5}
    classes = explanation_measures.relabelled_classes(model, result)
    assert classes.tolist() == [[0, 0], [0, 1], [0, 1], [0, 1]]
    # only the switches to another label count: 0->1, 0->1, 1->0, 1->0, of which the first fails
    assert validity_scores(result, classes) == {"flip_rate": 0.75}


def test_the_delta_and_the_mean_difference_average_the_size_over_the_other_labels_only():
    images, _ = bright_region_images(2, seed=0)
    deltas = np.zeros((4, 3, SIDE, SIDE))
    deltas[:, 0], deltas[:, 1], deltas[:, 2] = 1.0, -3.0, 8.0
    result = hand_result(images, [0, 1, 2, 2], [0, 1, 2], images, np.stack([images] * 3, 1), deltas)
    sizes = explanation_measures.delta_maps(result)
    assert sizes[:, 0, 0].tolist() == [5.5, 4.5, 2.0, 2.0]  # class 0: |-3| and |8|; class 2: |1| and |-3|
    rows = (images, np.array([0, 0, 1, 2]))
    means = explanation_measures.mean_difference_maps(rows, result)
    expected = np.mean([np.abs(class_mean_difference(*rows, 0, j)) for j in (1, 2)], axis=0)
    np.testing.assert_allclose(means[0], expected, rtol=1e-6)
    assert means[0][REGION].min() > means[0][~REGION].max()  # the bright region, over the noise
    in_chunks = explanation_measures.class_means(*rows, chunk=1)
    np.testing.assert_allclose(in_chunks[0], images[:2].mean(axis=0))
    with pytest.raises(explanation_measures.InputError, match="no row of class 2 in --npz"):
        explanation_measures.mean_difference_maps((images[:3], rows[1][:3]), result)


def test_measures_need_a_label_to_switch_to():
    explanation_measures.check_targets(np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(explanation_measures.InputError, match="give --to a label besides 2"):
        explanation_measures.check_targets(np.array([2, 2]), np.array([2]))


# ---------------------------------------------------------------- explaining with a generator that knows the region


def region_generator():
    """A generator with the project's inputs (latent, label): faint noise from the latent, and
    under label 1 the region bright (0.95 in [0, 1]) and nothing else."""
    latent, label = keras.Input((cgan.LATENT_DIM,)), keras.Input((1,))
    noise = layers.Dense(SIDE * SIDE * 3, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(latent)
    paint = layers.Embedding(2, SIDE * SIDE * 3)
    image = layers.Activation("tanh")(layers.Add()([noise, layers.Flatten()(paint(label))]))
    model = keras.Model([latent, label], layers.Reshape((SIDE, SIDE, 3))(image))
    brightening = np.zeros((2, SIDE, SIDE, 3), np.float32)
    brightening[1][REGION] = 1.5
    paint.set_weights([brightening.reshape(2, -1)])
    return model


def bright_region_classifier():
    """train_classifier.py's architecture (1 filter a layer) with weights set by hand: the first
    convolution passes only 5x5 patches whose mean grey level is above 0.6 in [-1, 1] (204 of
    255), so a few scattered bright pixels do not count; the others pass it on; class 1 wins when
    the patches fill more than a few pixels of the 20x20 map."""
    model = build_classifier(2, (1, 1, 1))
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kernel = np.zeros(layer.kernel.shape, np.float32)
            if layer.name == "conv1":
                kernel[:] = 1.0 / kernel[..., 0].size  # the patch's mean
            else:
                kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0  # passed on
            layer.set_weights([kernel, np.array([-0.6 if layer.name == "conv1" else 0.0], np.float32)])
    gain, threshold = 1000.0, 0.003  # the region: 3x3 of 0.3 on the 20x20 map, a mean of 0.007
    model.layers[-1].set_weights([np.array([[-gain, gain]], np.float32), np.array([gain, -gain], np.float32) * threshold])
    return model


@pytest.fixture(scope="module")
def region_world():
    """The generator, the classifier, and 4 + 4 images the generator made under labels 0 and 1."""
    keras.utils.set_random_seed(0)
    generator = region_generator()
    labels = np.repeat([0, 1], 4)
    images = cgan.generate(generator, cgan.training_latents(np.random.default_rng(0), 8), labels)
    return SimpleNamespace(generator=generator, classifier=bright_region_classifier(), labels=labels,
                           pixels=np.round(images * 255).astype(np.uint8))


def test_the_hand_set_classifier_reads_the_region(region_world):
    classes = np.argmax(region_world.classifier.predict(region_world.pixels.astype(np.float32), verbose=0), axis=1)
    assert classes.tolist() == region_world.labels.tolist()


@pytest.fixture(scope="module")
def region_explained(region_world):
    """The region world's 8 images explained as explain_image.py does, and their measures."""
    w = region_world
    projection_flags = SimpleNamespace(steps=5, starts=1, lr=0.05, ssim_weight=0.2, seed=0, batch_size=8, tune_steps=0,
                                       exaggerate=0.0)
    result = explanation.explained(w.generator, w.pixels / 255.0, w.labels, np.arange(8), np.array([0, 1]),
                                   projection_flags)
    return result, explanation_measures.measure(w.classifier, result, (w.pixels, w.labels), steps=20, seed=0)


def test_every_map_that_knows_the_region_beats_the_random_one(region_world, region_explained):
    """Explained as explain_image.py does: the delta (the generator's), Grad-CAM and IG (the
    classifier's), the class-mean difference (the images'), each against the random map."""
    w, (_, measures) = region_world, region_explained
    assert measures.scores["recon_agree"] == 1.0 and measures.scores["flip_rate"] == 1.0
    assert measures.note is None and measures.arrays["curve_maps"].tolist() == list(CURVE_MAPS)
    bright = w.labels == 1  # the plain images' class 0 needs no pixel: every map's curves stay flat
    deletion, insertion = (measures.arrays[key][bright] for key in ("deletion_auc", "insertion_auc"))
    random = CURVE_MAPS.index("random")
    for m, name in enumerate(CURVE_MAPS[:-1]):
        assert (deletion[:, m] + 0.3 < deletion[:, random]).all(), name
        assert (insertion[:, m] > insertion[:, random] + 0.3).all(), name
    for key in ("deletion_auc", "insertion_auc"):
        for m, name in enumerate(CURVE_MAPS):
            assert measures.scores[f"{key}_{name}"] == pytest.approx(measures.arrays[key][:, m].mean())


def test_the_saved_maps_are_the_ranked_ones_and_grad_cam_lies_on_the_region(region_world, region_explained):
    """The maps explain_image.py saves and draws: in curve_maps' order, the delta the size of the
    generator's change, and Grad-CAM of a bright image most of its mass on the region."""
    w, (result, measures) = region_world, region_explained
    maps = measures.arrays["maps"]
    assert maps.shape == (8, len(CURVE_MAPS), SIDE, SIDE) and maps.dtype == np.float32
    np.testing.assert_allclose(maps[:, CURVE_MAPS.index("delta")], explanation_measures.delta_maps(result), rtol=1e-6)
    gradcam = maps[w.labels == 1, CURVE_MAPS.index("gradcam")]
    inside = gradcam[:, REGION].sum(axis=1) / gradcam.reshape(len(gradcam), -1).sum(axis=1)
    assert (inside > 0.5).all(), inside  # the region is 4% of the image


def test_the_heat_overlay_is_brightest_where_the_map_is_largest():
    image = np.full((SIDE, SIDE, 3), 0.5, np.float32)
    saliency = np.where(REGION, 2.0, -1.0)  # negative counts as none
    overlay = plots.heat_overlay(image, saliency)
    assert overlay.shape == image.shape and overlay.dtype == np.float32
    assert overlay[REGION].mean() > overlay[~REGION].mean() + 0.3
    np.testing.assert_allclose(overlay[~REGION], overlay[~REGION][0:1].repeat((~REGION).sum(), axis=0))


# ---------------------------------------------------------------- the script


@pytest.fixture(scope="module")
def explain_inputs(tmp_path_factory):
    """The test generator of 3 classes, an untrained classifier of 3 classes (and one of 2), a
    prepared images and labels file, and a held_out.npz."""
    folder = tmp_path_factory.mktemp("explain")
    keras.utils.set_random_seed(0)
    for n_classes in (3, 2):
        build_classifier(n_classes, (2, 2, 2)).save(folder / f"classifier{n_classes}.keras")
    images, _ = bright_region_images(3, seed=5)
    save_arrays(folder / "images.npz", arr_0=images)
    save_arrays(folder / "labels.npz", arr_0=np.array([0, 1, 2, 2, 1, 0]))
    save_arrays(folder / "held_out.npz", held_out=np.array([1, 3, 5]), train=np.array([0, 2, 4]))
    save_arrays(folder / "few_labels.npz", arr_0=np.array([0, 1]))
    return folder


def explain_args(folder, out_dir, *extra):
    return ["--model", os.path.join(DATA, "keras2_generator_c3_f8.h5"), "--npz", str(folder / "images.npz"),
            "--labels_npz", str(folder / "labels.npz"), "--out_dir", str(out_dir), "--steps", "2", "--starts", "1",
            *map(str, extra)]


def test_explain_image_with_a_classifier_prints_the_measures_and_saves_the_curves(explain_inputs, tmp_path, capsys,
                                                                                 monkeypatch):
    folder = explain_inputs
    drawn = {}
    draw = explanation.explanation_figure

    def drawn_with(result, class_names, rows, title, gradcam=None):
        drawn["gradcam"] = gradcam
        return draw(result, class_names, rows, title, gradcam)

    monkeypatch.setattr(explanation, "explanation_figure", drawn_with)
    explain_image.main(explain_args(folder, tmp_path, "--indices_from", folder / "held_out.npz", "--classifier",
                                    folder / "classifier3.keras", "--curve_steps", 4))
    lines = capsys.readouterr().out.strip().splitlines()
    result_line = lines[-1].split()
    assert result_line[0] == "RESULT"
    values = dict(item.split("=") for item in result_line[1:])
    expected = ["recon_mse", "recon_ssim", "recon_agree", "flip_rate",
                *(f"{curve}_auc_{name}" for name in CURVE_MAPS for curve in ("deletion", "insertion")),
                "n_images", "n_relabelled"]
    assert list(values) == expected
    assert values["n_images"] == "3" and values["n_relabelled"] == "6"  # labels 1, 2, 0, each switched to the 2 others
    assert all(0 <= float(values[key]) <= 1 for key in expected[2:-2])
    assert any(line.startswith("  class-mean difference") for line in lines)
    with np.load(tmp_path / "explain_images.npz") as saved:
        assert saved["indices"].tolist() == [1, 3, 5]  # held_out.npz's held-out rows
        assert saved["curve_maps"].tolist() == list(CURVE_MAPS)
        assert saved["deletion_curves"].shape == saved["insertion_curves"].shape == (3, 5, 5)
        assert saved["deletion_auc"].shape == (3, 5) and saved["relabelled_classes"].shape == (3, 3)
        assert saved["recon_classes"].shape == (3,) and saved["maps"].shape == (3, 5, 80, 80)
        # the figure's last column is the Grad-CAM map, no other
        np.testing.assert_array_equal(drawn["gradcam"], saved["maps"][:, list(CURVE_MAPS).index("gradcam")])
        assert not any(np.array_equal(drawn["gradcam"], saved["maps"][:, m]) for m, name in enumerate(CURVE_MAPS)
                       if name != "gradcam")
    with_gradcam = plt.imread(tmp_path / "explain_images.png")
    explain_image.main(explain_args(folder, tmp_path / "plain", "--indices_from", folder / "held_out.npz"))
    plain = plt.imread(tmp_path / "plain" / "explain_images.png")
    assert with_gradcam.shape[0] == plain.shape[0] and with_gradcam.shape[1] > plain.shape[1]  # one column more


def test_explain_image_without_labelled_rows_leaves_the_class_mean_difference_out(explain_inputs, tmp_path, capsys):
    folder = explain_inputs
    explain_image.main(["--model", os.path.join(DATA, "keras2_generator_c3_f8.h5"), "--npz", str(folder / "images.npz"),
                        "--indices", "0", "--label", "1", "--out_dir", str(tmp_path), "--steps", "2", "--starts", "1",
                        "--classifier", str(folder / "classifier3.keras"), "--curve_steps", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "(class-mean difference left out: it needs --npz with labels for every row" in lines[-2]
    assert "deletion_auc_random=" in lines[-1] and "mean_diff" not in lines[-1]


@pytest.mark.parametrize("extra, message", [
    (["--classifier", "nowhere.keras"], "nowhere.keras not found (make it with train_classifier.py)"),
    (["--classifier", "{folder}/classifier2.keras"], "classifier2.keras has 2 classes, keras2_generator_c3_f8.h5 has 3"),
    (["--classifier", "{folder}/classifier3.keras", "--indices", "1", "4", "--to", "1"],
     "give --to a label besides 1"),
    (["--curve_steps", "0"], "--curve_steps: must be at least 1"),
    (["--classifier", "{folder}/classifier3.keras", "--labels_npz", "{folder}/held_out.npz"], "has no array arr_0"),
    (["--classifier", "{folder}/classifier3.keras", "--labels_npz", "{folder}/few_labels.npz", "--indices", "0"],
     "labels must be one per image row, (6,), got (2,)"),
])
def test_explain_image_bad_classifier_input_is_one_line(explain_inputs, tmp_path, capsys, extra, message):
    extra = [item.format(folder=explain_inputs) for item in extra]
    with pytest.raises(SystemExit) as stopped:
        explain_image.main(explain_args(explain_inputs, tmp_path / "out", *extra))
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "out" / "explain_images.npz").exists()


def test_explain_images_curve_steps_default_is_faithfulness_own():
    assert explain_image.CURVE_STEPS == faithfulness.CURVE_STEPS



def test_the_printed_table_puts_each_maps_deletion_area_under_deletion_and_insertion_under_insertion():
    scores = {"recon_mse": 0.01, "recon_ssim": 0.9, "recon_agree": 0.5, "flip_rate": 0.75}
    for m, name in enumerate(CURVE_MAPS):
        scores[f"deletion_auc_{name}"], scores[f"insertion_auc_{name}"] = 0.1 + 0.01 * m, 0.9 - 0.01 * m
    lines = explanation_measures.report_lines(explanation_measures.Measures(scores, {}, None), 4, 4, 10)
    (header,) = [line for line in lines if "deletion AUC" in line]
    ends = [header.index(title) + len(title) for title in ("(lower better)", "(higher better)")]
    rows = {line.rsplit(None, 2)[0].strip(): line for line in lines[lines.index(header) + 1 : -1]}
    assert list(rows) == [explanation_measures.MAP_NAMES[name] for name in CURVE_MAPS]
    for m, name in enumerate(CURVE_MAPS):
        row = rows[explanation_measures.MAP_NAMES[name]]
        for value, end in zip((f"{0.1 + 0.01 * m:.3f}", f"{0.9 - 0.01 * m:.3f}"), ends):  # right-aligned under its title
            assert row[end - len(value) : end] == value, (name, row)
