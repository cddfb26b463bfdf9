"""A judge that is not a contestant: train_classifier.py --architecture vgg (another network,
loadable as a classifier) trained on the first classifier's split (--split_from), and
explain_image.py --judge, which asks that second classifier the same measures of the same maps.
The judge's scores are checked against known answers on classifiers set by hand."""

import os
import shutil

import keras
import numpy as np
import pytest
from keras import layers

import explain_image
import train_classifier
from cganlib import classifier, explanation_measures
from cganlib.classifier import build_classifier, build_vgg_classifier, load_classifier
from cganlib.scoring import CURVE_MAPS, JUDGE, explained_measures
from cganlib.storage import load_arrays, save_arrays, save_npz
from conftest import DATA
from helpers import bright_squares, one_error_line

SIDE = 80
REGION = np.zeros((SIDE, SIDE), bool)
REGION[20:36, 44:60] = True  # 256 pixels: fewer than one curve step's 320 of 20 steps


# ---------------------------------------------------------------- the judge's scores, known answers


def region_images(seed):
    """uint8 (4, 80, 80, 3) grey noise in 40..119; images 2 and 3 (class 1) have the region at 230."""
    rng = np.random.default_rng(seed)
    images = rng.integers(40, 120, (4, SIDE, SIDE, 1)).astype(np.uint8).repeat(3, axis=-1)
    images[2:, REGION] = 230
    return images, np.array([0, 0, 1, 1])


def region_judge(gain=1.0, threshold=175.0):
    """A classifier set by hand that reads only the region's mean grey level: logits
    (0, gain * (mean - threshold)), so class 1 (probability 1 to within 1e-20) where the region is
    bright and class 0 where it is dark or blurred into its dark surroundings."""
    pixels = keras.Input((SIDE, SIDE, 3))
    model = keras.Model(pixels, layers.Dense(2)(layers.Flatten()(pixels)))
    kernel = np.zeros((SIDE * SIDE * 3, 2), np.float32)
    kernel[:, 1] = np.repeat(REGION.ravel(), 3) * gain / (3 * REGION.sum())
    model.layers[-1].set_weights([kernel, np.array([0.0, -gain * threshold], np.float32)])
    return model


def always_class_0():
    """train_classifier.py's network with weights set by hand: every weight 0, the class scores'
    bias (1, 0): class 0 for every image, class 1's probability 1 / (1 + e) everywhere."""
    model = build_classifier(2, (1, 1, 1))
    for layer in model.layers:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    model.layers[-1].set_weights([np.zeros((1, 2), np.float32), np.array([1.0, 0.0], np.float32)])
    return model


def region_result():
    """explained()'s result, as far as the measures read it, set by hand: each image switched to
    labels 0 and 1, its delta the region; the reconstructions and relabelled images chosen so
    that the judge gives 2 of 4 reconstructions their label and flips 3 of the 4 switches."""
    images, labels = region_images(seed=0)
    plain, bright = images[0], images[3]
    reconstructions = np.stack([plain, bright, bright, plain])  # the 1st and 3rd read as their label
    # the switches to another label: 0->1 (stays plain: no flip), 0->1, 1->0, 1->0
    relabelled = np.stack([[plain, plain], [plain, bright], [plain, bright], [plain, bright]])
    deltas = np.repeat(REGION[None, None].astype(np.float32), 4, axis=0).repeat(2, axis=1)
    return {"images": images / 255.0, "labels": labels, "targets": np.array([0, 1]),
            "reconstructions": reconstructions / 255.0, "relabelled": relabelled / 255.0,
            "mse": np.full(4, 0.01), "ssim": np.full(4, 0.9), "deltas": deltas}


@pytest.fixture(scope="module")
def judged():
    """region_result's measures: the maps from a classifier that always says class 0, judged by
    one that reads the region."""
    result = region_result()
    return result, explanation_measures.measure(always_class_0(), result, None, steps=20, seed=0,
                                                judge=region_judge())


def test_the_judge_counts_its_own_classes_not_the_classifiers(judged):
    _, measures = judged
    arrays, scores = measures.arrays, measures.scores
    assert arrays[f"{JUDGE}recon_classes"].tolist() == [0, 1, 1, 0]
    assert arrays[f"{JUDGE}relabelled_classes"].tolist() == [[0, 0], [0, 1], [0, 1], [0, 1]]
    assert scores[f"{JUDGE}recon_agree"] == 0.5 and scores[f"{JUDGE}flip_rate"] == 0.75
    # the classifier the maps come from says class 0 of everything: half the labels, half the switches
    assert arrays["recon_classes"].tolist() == [0, 0, 0, 0] and (arrays["relabelled_classes"] == 0).all()
    assert scores["recon_agree"] == 0.5 and scores["flip_rate"] == 0.5


def test_the_judges_curves_of_a_map_on_the_region_fall_at_the_first_step(judged):
    """The delta map is the region: deleting the first 320 pixels blurs all of it, and the judge's
    probability of class 1 falls from 1 to 0 (area 0.5 x 1/20 = 0.025); inserting them puts it
    back (0.975). The dark images' class 0 needs no pixel: their curves stay at 1. The
    classifier the maps come from gives class 1 the probability 1 / (1 + e) whatever is deleted."""
    _, measures = judged
    arrays, scores = measures.arrays, measures.scores
    delta = CURVE_MAPS.index("delta")
    assert arrays["curve_maps"].tolist() == ["delta", "gradcam", "ig", "random"]  # no rows: no class-mean difference
    np.testing.assert_allclose(arrays[f"{JUDGE}deletion_auc"][:, delta], [1, 1, 0.025, 0.025], atol=1e-6)
    np.testing.assert_allclose(arrays[f"{JUDGE}insertion_auc"][:, delta], [1, 1, 0.975, 0.975], atol=1e-6)
    assert arrays[f"{JUDGE}deletion_curves"].shape == arrays[f"{JUDGE}insertion_curves"].shape == (4, 4, 21)
    np.testing.assert_allclose(arrays[f"{JUDGE}deletion_curves"][2:, delta, 1:], 0, atol=1e-6)
    assert scores[f"{JUDGE}deletion_auc_delta"] == pytest.approx(0.5125, abs=1e-6)
    assert scores[f"{JUDGE}insertion_auc_delta"] == pytest.approx(0.9875, abs=1e-6)
    # a random map blurs the region a share at a time: the judge's probability falls later
    assert (arrays[f"{JUDGE}deletion_auc"][2:, list(arrays["curve_maps"]).index("random")] > 0.3).all()
    np.testing.assert_allclose(arrays["deletion_auc"][2:], 1 / (1 + np.e), atol=1e-6)
    np.testing.assert_allclose(arrays["deletion_auc"][:2], 1 - 1 / (1 + np.e), atol=1e-6)
    for name in ("delta", "gradcam", "ig", "random"):
        m = list(arrays["curve_maps"]).index(name)
        for curve in ("deletion", "insertion"):
            key = f"{curve}_auc"
            assert scores[f"{JUDGE}{key}_{name}"] == pytest.approx(arrays[f"{JUDGE}{key}"][:, m].mean())
            assert scores[f"{key}_{name}"] == pytest.approx(arrays[key][:, m].mean())


def test_the_saved_arrays_give_the_judges_scores_back(judged, tmp_path):
    result, measures = judged
    save_arrays(tmp_path / "explained.npz", **result, **measures.arrays)
    assert explained_measures(tmp_path / "explained.npz") == measures.scores
    own = {key: value for key, value in measures.arrays.items() if not key.startswith(JUDGE)}
    save_arrays(tmp_path / "unjudged.npz", **result, **own)
    assert explained_measures(tmp_path / "unjudged.npz") == {
        key: value for key, value in measures.scores.items() if not key.startswith(JUDGE)}


def test_the_report_shows_the_judges_table_after_the_classifiers(judged):
    _, measures = judged
    lines = explanation_measures.report_lines(measures, 4, 4, 20)
    judge_line = next(k for k, line in enumerate(lines) if line.startswith("the judge"))
    assert "gives 0.500 of 4 reconstructions" in lines[judge_line] and "0.750 of 4 relabelled" in lines[judge_line]
    tables = [k for k, line in enumerate(lines) if line.startswith("  map ")]
    assert len(tables) == 2 and tables[0] < judge_line < tables[1]
    judge_delta, own_delta = (list(map(float, lines[k + 1].split()[1:])) for k in (tables[1], tables[0]))
    assert judge_delta == pytest.approx([0.5125, 0.9875], abs=1e-3) and own_delta == [0.5, 0.5]
    keys = [item.split("=")[0] for item in lines[-1].split()[1:]]
    assert keys[:4] == ["recon_mse", "recon_ssim", "recon_agree", "flip_rate"]
    judge_keys = ["judge_recon_agree", "judge_flip_rate",
                  *(f"judge_{curve}_auc_{name}" for name in ("delta", "gradcam", "ig", "random")
                    for curve in ("deletion", "insertion"))]
    assert keys[-len(judge_keys) - 2:] == [*judge_keys, "n_images", "n_relabelled"]


# ---------------------------------------------------------------- train_classifier.py: vgg and --split_from


@pytest.fixture(scope="module")
def squares_data(tmp_path_factory):
    """Prepared X-ray arrays (no patient names: split by image) a network can learn: 30 images
    per class, grey noise with a bright square anywhere, none in class 0, of side 10 in class 1
    and 24 in class 2."""
    folder = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    images = rng.integers(0, 120, (len(labels), SIDE, SIDE, 1)).astype(np.uint8).repeat(3, axis=-1)
    for label, side in ((1, 10), (2, 24)):
        rows = np.flatnonzero(labels == label)
        images[rows] = bright_squares(images[rows], rng.integers(0, SIDE - side, (len(rows), 2)), side)[0]
    save_npz(folder / "img_align_xray.npz", images)
    save_npz(folder / "labels_align_xray.npz", labels)
    return folder


def train(data, out_dir, *extra, epochs=8):
    train_classifier.main(["--dataset", "xray", "--data_dir", str(data), "--out_dir", str(out_dir),
                           "--filters", "4", "--max_epochs", str(epochs), *map(str, extra)])
    return out_dir


SPLIT = ("train", "validation", "held_out")


@pytest.fixture(scope="module")
def first_classifier(squares_data, tmp_path_factory):
    """train_classifier.py's default network, seed 0."""
    return train(squares_data, tmp_path_factory.mktemp("cam"))


def test_the_vgg_judge_learns_on_the_first_classifiers_split_and_loads_as_a_classifier(
        squares_data, first_classifier, tmp_path, capsys):
    judge_dir = train(squares_data, tmp_path / "judge", "--architecture", "vgg", "--seed", 1,
                      "--split_from", first_classifier / "held_out.npz", epochs=15)
    printed = capsys.readouterr().out
    assert f"(the split of {first_classifier / 'held_out.npz'})" in printed
    first = load_arrays(first_classifier / "held_out.npz", (*SPLIT, "architecture"))
    second = load_arrays(judge_dir / "held_out.npz", (*SPLIT, "architecture", "accuracy"))
    for a, b in zip(first[:3], second[:3]):
        assert np.array_equal(a, b)
    assert str(first[3]) == "cam" and str(second[3]) == "vgg" and second[4] >= 0.9
    judge, cam = load_classifier(judge_dir / "classifier.keras"), load_classifier(first_classifier / "classifier.keras")
    assert judge.name == "classifier_vgg" and cam.name == "classifier"
    kinds = [type(layer).__name__ for layer in judge.layers]
    assert kinds.count("MaxPooling2D") == 3 and kinds.count("Conv2D") == 4
    assert all(layer.strides == (1, 1) and layer.kernel_size == (3, 3) for layer in judge.layers
               if isinstance(layer, layers.Conv2D))
    assert [w.shape for w in judge.get_weights()] != [w.shape for w in cam.get_weights()]
    # the same seed without --split_from draws another split: the test above can fail
    other = train(squares_data, tmp_path / "own_split", "--architecture", "vgg", "--seed", 1, epochs=1)
    assert not np.array_equal(load_arrays(other / "held_out.npz", ("held_out",))[0], first[2])


def test_the_architectures_flag_names_the_classifiers_builders():
    assert train_classifier.ARCHITECTURES == tuple(classifier.ARCHITECTURES)
    assert classifier.ARCHITECTURES["cam"] is build_classifier
    assert classifier.ARCHITECTURES["vgg"] is build_vgg_classifier


def bad_splits(folder, first_classifier):
    """held_out.npz files that do not fit the squares' 90 images, written in folder: {name: the
    error each must give}."""
    good = dict(zip((*SPLIT, "labels"), load_arrays(first_classifier / "held_out.npz", (*SPLIT, "labels"))))
    train_part, validation, held_out = good["train"], good["validation"], good["held_out"]
    cases = {
        "fewer.npz": ({"train": train_part[:-1]}, "its 89 indices do not hold each of the 90 images once"),
        "twice.npz": ({"train": np.append(train_part[:-1], held_out[0])}, "do not hold each of the 90 images once"),
        "floats.npz": ({"train": train_part.astype(float)},
                       "its training indices must be a non-empty list of whole numbers, got float64"),
        "empty.npz": ({"train": np.concatenate([train_part, validation]), "validation": np.array([], np.int64)},
                      "its validation indices must be a non-empty list"),
        # the held-out images' classes as another data set of 90 images would have them
        "other_classes.npz": ({"labels": np.roll(good["labels"], 1)}, "its held-out images' classes differ"),
    }
    for name, (changed, _) in cases.items():
        save_arrays(folder / name, **{**good, **changed})
    save_arrays(folder / "no_labels.npz", **{key: good[key] for key in SPLIT})
    return {**{name: message for name, (_, message) in cases.items()}, "no_labels.npz": "has no array labels"}


def test_a_split_that_does_not_fit_the_data_is_one_line(squares_data, first_classifier, tmp_path, capsys):
    splits = tmp_path / "splits"
    splits.mkdir()
    cases = {**bad_splits(splits, first_classifier), "missing.npz": "missing.npz not found"}
    for name, message in cases.items():
        argv = ["--dataset", "xray", "--data_dir", squares_data, "--out_dir", tmp_path / "judge",
                "--architecture", "vgg", "--split_from", splits / name]
        line = one_error_line(train_classifier.main, argv, capsys, unchanged=tmp_path)
        assert message in line, (name, line)


# ---------------------------------------------------------------- explain_image.py --judge


@pytest.fixture(scope="module")
def explain_inputs(tmp_path_factory):
    """The test generator of 3 classes; an untrained classifier of 3 classes, a copy of it, a
    judge of another architecture of 3 classes and one of 2; prepared images and labels."""
    folder = tmp_path_factory.mktemp("explain")
    keras.utils.set_random_seed(0)
    build_classifier(3, (2, 2, 2)).save(folder / "classifier.keras")
    shutil.copy(folder / "classifier.keras", folder / "copy.keras")
    for n_classes in (3, 2):
        build_vgg_classifier(n_classes, (2, 2, 2)).save(folder / f"judge{n_classes}.keras")
    images, _ = region_images(seed=5)
    save_arrays(folder / "images.npz", arr_0=images)
    save_arrays(folder / "labels.npz", arr_0=np.array([0, 1, 2, 2]))
    return folder


def explain_args(folder, out_dir, *extra):
    return ["--model", os.path.join(DATA, "keras2_generator_c3_f8.h5"), "--npz", str(folder / "images.npz"),
            "--labels_npz", str(folder / "labels.npz"), "--out_dir", str(out_dir), "--steps", "2", "--starts", "1",
            "--curve_steps", "4", "--classifier", str(folder / "classifier.keras"), *map(str, extra)]


JUDGE_ARRAYS = {"judge_recon_classes": (4,), "judge_relabelled_classes": (4, 3), "judge_deletion_curves": (4, 5, 5),
                "judge_insertion_curves": (4, 5, 5), "judge_deletion_auc": (4, 5), "judge_insertion_auc": (4, 5)}


def result_values(printed):
    result_line = printed.strip().splitlines()[-1].split()
    assert result_line[0] == "RESULT"
    return {key: float(value) for key, value in (item.split("=") for item in result_line[1:])}


def test_explain_image_asks_the_judge_and_saves_and_prints_its_verdicts(explain_inputs, tmp_path, capsys):
    folder = explain_inputs
    explain_image.main(explain_args(folder, tmp_path / "judged", "--judge", folder / "judge3.keras"))
    printed = capsys.readouterr().out
    values = result_values(printed)
    judge_keys = ["judge_recon_agree", "judge_flip_rate",
                  *(f"judge_{curve}_auc_{name}" for name in CURVE_MAPS for curve in ("deletion", "insertion"))]
    assert list(values)[-len(judge_keys) - 2:-2] == judge_keys
    assert "the judge (a classifier no map comes from) gives" in printed and printed.count("  map ") == 2
    with np.load(tmp_path / "judged" / "explain_images.npz") as saved:
        assert {key: saved[key].shape for key in JUDGE_ARRAYS} == JUDGE_ARRAYS
        judge = load_classifier(folder / "judge3.keras")
        relabelled = saved["relabelled"] * 255.0
        expected = np.argmax(judge.predict(relabelled.reshape(-1, SIDE, SIDE, 3), verbose=0), axis=1).reshape(4, 3)
        assert np.array_equal(saved["judge_relabelled_classes"], expected)
    assert explained_measures(tmp_path / "judged" / "explain_images.npz") == pytest.approx(
        {key: value for key, value in values.items() if key not in ("n_images", "n_relabelled")}, abs=1e-5)

    # a copy of the classifier as the judge says what the classifier says, to the last digit
    explain_image.main(explain_args(folder, tmp_path / "copy", "--judge", folder / "copy.keras"))
    same = result_values(capsys.readouterr().out)
    assert all(same[f"judge_{key}"] == same[key] for key in ("recon_agree", "flip_rate", "deletion_auc_gradcam",
                                                                "insertion_auc_ig", "deletion_auc_delta"))
    assert any(values[f"judge_{key}"] != values[key] for key in ("deletion_auc_gradcam", "insertion_auc_gradcam"))


def test_explain_image_without_a_judge_saves_no_judge_arrays(explain_inputs, tmp_path, capsys):
    explain_image.main(explain_args(explain_inputs, tmp_path))
    assert not any(key.startswith("judge") for key in result_values(capsys.readouterr().out))
    with np.load(tmp_path / "explain_images.npz") as saved:
        assert not set(saved.files) & set(JUDGE_ARRAYS)


@pytest.mark.parametrize("extra, message", [
    (["--judge", "{folder}/judge2.keras"], "judge2.keras has 2 classes, keras2_generator_c3_f8.h5 has 3"),
    (["--judge", "{folder}/nowhere.keras"], "nowhere.keras not found (make it with train_classifier.py)"),
    (["--judge", "{folder}/classifier.keras"], "--judge must be another classifier than --classifier"),
])
def test_explain_image_bad_judge_is_one_line(explain_inputs, tmp_path, capsys, extra, message):
    argv = explain_args(explain_inputs, tmp_path / "out", *(item.format(folder=explain_inputs) for item in extra))
    assert message in one_error_line(explain_image.main, argv, capsys, unchanged=tmp_path)


def test_a_judge_without_a_classifier_is_one_line(explain_inputs, tmp_path, capsys):
    argv = explain_args(explain_inputs, tmp_path / "out", "--judge", explain_inputs / "judge3.keras")
    argv.remove("--classifier")
    argv.remove(str(explain_inputs / "classifier.keras"))
    line = one_error_line(explain_image.main, argv, capsys, unchanged=tmp_path)
    assert "--judge goes with --classifier" in line
