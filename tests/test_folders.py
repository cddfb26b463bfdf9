"""Your own labelled images: prepare_folders.py on a folder made here (drawn shapes in mixed
formats and modes, a damaged file, a non-image, an empty class folder), the folder dataset in
training and the explaining scripts, and explain_image.py's projection."""

import json
import os
import re

import keras
import numpy as np
import pytest
from PIL import Image, ImageOps

import explain_image
import heatmaps
import prepare_folders
import saliency
import train_classifier
from cganlib import cgan, datasets, explanation, plots, projection
from cganlib.classifier import class_activation_maps, grad_cam, load_classifier
from cganlib.ssim import ssim as separable_ssim
from cganlib.storage import InputError, load_npz, save_arrays, save_model
from helpers import auc_by_hand, bright_squares, data_file, one_error_line

SIZE = 80


def draw_shape(rng, shape, width=100, height=120):
    """A noisy dark picture with a bright square (39 pixels wide) or disc (radius 20) in the middle, uint8 RGB."""
    pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    if shape == "squares":
        return bright_squares(pixels[None], [(height // 2 - 19, width // 2 - 19)], 39, 240)[0][0]
    v, u = np.mgrid[:height, :width]
    pixels[(u - width / 2) ** 2 + (v - height / 2) ** 2 < 20**2] = 240
    return pixels


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """discs/ (PNG RGB, 16-bit grey PNG, RGBA WebP in a sub-folder), squares/ (JPEG, BMP palette,
    TIFF, grey PNG, a damaged JPEG, a text file), empty/ (nothing usable)."""
    root = tmp_path_factory.mktemp("own") / "images"
    rng = np.random.default_rng(0)
    for name in ("discs/deeper", "squares", "empty"):
        os.makedirs(root / name)
    for k in range(4):
        Image.fromarray(draw_shape(rng, "discs")).save(root / "discs" / f"d{k}.png")
        Image.fromarray(draw_shape(rng, "squares")).save(root / "squares" / f"s{k}.jpg", quality=95)
    sixteen = (draw_shape(rng, "discs")[:, :, 0].astype(np.uint16) * 257)
    Image.fromarray(sixteen).save(root / "discs" / "d16.png")  # mode I;16
    Image.fromarray(np.dstack([draw_shape(rng, "discs"), np.full((120, 100), 255, np.uint8)]), "RGBA").save(
        root / "discs" / "deeper" / "alpha.webp")
    Image.fromarray(draw_shape(rng, "squares")).convert("P").save(root / "squares" / "palette.bmp")
    Image.fromarray(draw_shape(rng, "squares")).save(root / "squares" / "t.tiff")
    Image.fromarray(draw_shape(rng, "squares")[:, :, 0], "L").save(root / "squares" / "grey.png")
    (root / "squares" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "squares" / "notes.txt").write_text("not an image")
    (root / "empty" / ".DS_Store").write_bytes(b"\x00\x01")
    return root


def prepare(image_folder, out, *extra, capsys=None):
    prepare_folders.main(["--images", str(image_folder), "--out_dir", str(out), "--workers", "2", *map(str, extra)])
    images = load_npz(out / "img_align_folder.npz")
    labels = load_npz(out / "labels_align_folder.npz")
    with open(out / "classes.json") as f:
        return images, labels, json.load(f)


def test_every_format_and_mode_becomes_an_80x80_rgb_image(image_folder, tmp_path, capsys):
    images, labels, classes = prepare(image_folder, tmp_path)
    assert classes == {"classes": ["discs", "squares"], "counts": [6, 7]}  # empty/ skipped
    assert images.shape == (13, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0] * 6 + [1] * 7
    out = capsys.readouterr().out
    assert "skipped, unreadable: 1" in out and "skipped, not an image: 1" in out
    assert "skipped, hidden files and folders (names starting with a dot), not read: 1" in out  # .DS_Store
    assert "skipped, class folders with no usable image: 1" in out
    # every image shows its bright shape in the middle and dark corners, whatever its mode
    assert (images[:, 38:42, 38:42].mean(axis=(1, 2, 3)) > 200).all()
    assert (images[:, :6, :6].mean(axis=(1, 2, 3)) < 70).all()


def test_a_disc_and_a_square_keep_their_shape(image_folder, tmp_path):
    """Centre crop of a 100x120 picture: the 40-pixel shapes become 32 pixels wide at 80x80."""
    images, labels, _ = prepare(image_folder, tmp_path)
    disc, square = images[labels == 0][0, :, :, 0] > 128, images[labels == 1][0, :, :, 0] > 128
    assert square[25, 25] and square[54, 54] and not disc[25, 25]  # a square's corner, not a disc's
    assert disc[40, 26] and disc[26, 40]


def test_pad_grey_equalize_and_n(image_folder, tmp_path):
    images, labels, classes = prepare(image_folder, tmp_path / "equalized", "--pad", "--grey", "--equalize", "--n", 2)
    assert classes["counts"] == [2, 2] and labels.tolist() == [0, 0, 1, 1]
    assert (images[..., 0] == images[..., 1]).all() and (images[..., 1] == images[..., 2]).all()
    padded_strip = images[:, :, :4]  # 100x120 padded to 120x120: black bars left and right
    assert padded_strip.mean() < images[:, :, 10:].mean()
    # --equalize: the grey 80x80 image's histogram equalized (Pillow's equalization of the image
    # --grey alone gives), which spreads the dark noise and the bright shape over the grey levels
    plain, _, _ = prepare(image_folder, tmp_path / "plain", "--pad", "--grey", "--n", 2)
    for grey, equalized in zip(plain[..., 0], images[..., 0]):
        np.testing.assert_array_equal(equalized, np.asarray(ImageOps.equalize(Image.fromarray(grey))))
        levels = np.linspace(0, 255, 9)[1:-1]
        below = [[np.mean(image <= level) for level in levels] for image in (grey, equalized)]
        assert np.abs(np.array(below[1]) - levels / 255).max() < 0.2 < np.abs(np.array(below[0]) - levels / 255).max()


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "nowhere", "not found"),
    (lambda root: root / "squares", "has 0 class folders; it needs at least 2"),
])
def test_bad_image_folders_are_one_line_errors(image_folder, tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as exit_info:
        prepare_folders.main(["--images", str(make(image_folder)), "--out_dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_one_usable_class_is_refused(tmp_path, capsys):
    for name in ("a", "b"):
        os.makedirs(tmp_path / "images" / name)
    Image.new("RGB", (10, 10)).save(tmp_path / "images" / "a" / "x.png")
    (tmp_path / "images" / "b" / "y.jpg").write_bytes(b"damaged")
    with pytest.raises(SystemExit):
        prepare_folders.main(["--images", str(tmp_path / "images"), "--out_dir", str(tmp_path / "out")])
    assert "1 class folders in" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_the_folder_dataset_takes_its_classes_from_classes_json(image_folder, tmp_path):
    prepare(image_folder, tmp_path)
    settings = datasets.dataset_settings("folder", str(tmp_path))
    assert settings.n_classes == 2 and settings.class_names == ("discs", "squares")
    assert settings.heatmap_labels == (0, 1) and settings.images_file == "img_align_folder.npz"
    with pytest.raises(datasets.InputError, match="classes.json not found"):
        datasets.dataset_settings("folder", str(tmp_path / "elsewhere"))


def test_heatmaps_name_rows_by_the_folders_class_names(tmp_path, capsys, monkeypatch):
    with open(tmp_path / "classes.json", "w") as f:
        json.dump({"classes": ["benign", "malignant", "unsure"], "counts": [1, 1, 1]}, f)
    os.makedirs(tmp_path / "results")
    save_model(cgan.build_generator(3, cgan.LATENT_DIM, 4), str(tmp_path / "results" / "generator_model_001.h5"))
    drawn, image_rows = [], plots.image_rows

    def keep_row_names(rows, row_names, *args, **kwargs):
        drawn.append(list(row_names))
        return image_rows(rows, row_names, *args, **kwargs)

    monkeypatch.setattr(plots, "image_rows", keep_row_names)
    heatmaps.main(["--dataset", "folder", "--data_dir", str(tmp_path), "--labels", "0", "2"])
    assert os.path.exists(tmp_path / "heatmaps" / "generator_model_001.h5.png")
    assert drawn == [["benign", "unsure", "benign vs unsure", "unsure vs benign"]]  # the figure's rows, as drawn
    capsys.readouterr()
    line = one_error_line(heatmaps.main, ["--dataset", "folder", "--data_dir", tmp_path / "results"], capsys)
    assert "classes.json not found" in line


@pytest.mark.slow
def test_a_folder_dataset_goes_through_the_whole_pipeline(image_folder, tmp_path, run):
    """prepare_folders.py, one training epoch at a small width, heatmaps named by the classes,
    a prepared image explained by the trained generator, and the classifier baseline with its
    saliency maps."""
    data = tmp_path / "data"
    assert run("prepare_folders.py", "--images", image_folder, "--out_dir", data).returncode == 0
    train = run("train_cgan.py", "--dataset", "folder", "--data_dir", data, "--epochs", 1, "--filters", 4,
                "--batch_size", 4, "--seed", 1, "--summary_dir", tmp_path / "summaries", "--real_plots", 0)
    assert train.returncode == 0, train.stderr
    assert "folder: 13 images, classes [6, 7]" in train.stdout and "gan_upper=4.5" in train.stdout
    model = data / "results" / "generator_model_001.h5"
    assert cgan.n_classes_of(cgan.load_generator(str(model))) == 2
    heat = run("heatmaps.py", "--dataset", "folder", "--data_dir", data)
    assert heat.returncode == 0, heat.stderr
    generator = cgan.load_generator(str(model))
    with np.load(data / "heatmaps" / "generator_model_001.h5.npz") as saved:  # the trained generator's images
        assert saved["labels"].tolist() == [0, 1]
        for label, images in zip((0, 1), saved["images"]):
            np.testing.assert_allclose(images, cgan.generate(generator, saved["latents"], [label] * len(images)), atol=1e-5)
    explained = run("explain_image.py", "--model", model, "--dataset", "folder", "--data_dir", data,
                    "--npz", data / "img_align_folder.npz", "--labels_npz", data / "labels_align_folder.npz",
                    "--indices", 0, 12, "--steps", 3, "--starts", 1, "--out_dir", tmp_path / "explained")
    assert explained.returncode == 0, explained.stderr
    with np.load(tmp_path / "explained" / "explain_img_align_folder.npz") as saved:
        result = {key: saved[key] for key in saved}
    assert result["labels"].tolist() == [0, 1] and result["targets"].tolist() == [0, 1]
    np.testing.assert_allclose(result["images"], load_npz(data / "img_align_folder.npz")[[0, 12]] / 255.0, atol=1e-6)
    assert_generated_at_the_projected_latents(result, str(model))
    # the baseline, in this process (two TensorFlow start-ups less)
    train_classifier.main(["--dataset", "folder", "--data_dir", str(data), "--max_epochs", "1",
                           "--held_out", "0.3", "--validation", "0.2"])
    with np.load(data / "classifier" / "held_out.npz") as saved:
        assert saved["confusion"].shape == (2, 2)
    saliency.main(["--dataset", "folder", "--data_dir", str(data)])
    classifier = load_classifier(str(data / "classifier" / "classifier.keras"))
    images, labels = load_npz(data / "img_align_folder.npz"), load_npz(data / "labels_align_folder.npz")
    with np.load(data / "classifier" / "held_out.npz") as saved:
        held_out = saved["held_out"]
    for label in (0, 1):  # the classifier's maps of its held-out images of the class, for the class
        with np.load(data / "saliency" / f"saliency_{label}.npz") as saved:
            indices = saved["indices"]
            assert indices.tolist() == held_out[labels[held_out] == label].tolist() and (saved["labels"] == label).all()
            for name, method in (("gradcam", grad_cam), ("cam", class_activation_maps)):
                expected = method(classifier, images[indices], label)
                np.testing.assert_allclose(saved[name], expected, atol=1e-5 * max(np.abs(expected).max(), 1e-3))


# ---------------------------------------------------------------- projection


def strong_generator():
    """A 3-class generator at width 8 with larger weights: images that depend strongly on the latent."""
    keras.utils.set_random_seed(3)
    generator = cgan.build_generator(3, cgan.LATENT_DIM, 8)
    for layer in generator.layers:
        layer.set_weights([w * 2.0 for w in layer.get_weights()])
    return generator


def test_projection_recovers_an_image_made_from_a_known_latent():
    generator = strong_generator()
    rng = np.random.default_rng(5)
    known = cgan.training_latents(rng, 3)
    labels = np.array([0, 1, 2])
    images = cgan.generate(generator, known, labels)
    latents, reconstructions, mse, ssim = projection.project(generator, images, labels, steps=60, starts=2, lr=0.05,
                                                             ssim_weight=0.2, progress=False)
    # a latent drawn at random, as the projection starts, is much further off
    start_error = np.mean((cgan.generate(generator, cgan.training_latents(rng, 3), labels) - images) ** 2)
    assert mse.max() < 0.2 * start_error  # measured: 0.011 against 0.09
    np.testing.assert_allclose(mse, np.mean((reconstructions - images) ** 2, axis=(1, 2, 3)), rtol=1e-3, atol=1e-7)
    assert (ssim > 0.85).all() and np.abs(latents).max() <= projection.LATENT_RANGE


def test_projection_keeps_each_images_start_of_least_total_loss_not_of_least_mse():
    generator, labels, n_starts = strong_generator(), np.array([0, 1, 2, 0]), 6
    images = cgan.generate(generator, cgan.training_latents(np.random.default_rng(5), 4), labels)
    latents, _, mse, ssim = projection.project(generator, images, labels, steps=0, starts=n_starts, lr=0.05,
                                               ssim_weight=1.0, seed=0, progress=False)
    # the starting points, unmoved (0 steps): start s of image i is row s * 4 + i of the seed's draw
    starts = cgan.training_latents(np.random.default_rng(0), n_starts * 4, cgan.LATENT_DIM).reshape(n_starts, 4, -1)
    generated = np.stack([cgan.generate(generator, z, labels) for z in starts])
    start_mse = ((generated - images) ** 2).mean(axis=(2, 3, 4))
    start_ssim = np.stack([separable_ssim(g, images).numpy() for g in generated])
    best, columns = (start_mse + 1.0 * (1.0 - start_ssim)).argmin(axis=0), np.arange(4)
    assert (best != start_mse.argmin(axis=0)).any()  # here MSE alone would keep other starts
    np.testing.assert_array_equal(latents, starts[best, columns])
    np.testing.assert_allclose(mse, start_mse[best, columns], rtol=1e-4)
    np.testing.assert_allclose(ssim, start_ssim[best, columns], rtol=1e-4)


def test_an_exaggerated_label_is_the_targets_embedding_pushed_away_from_the_images_own():
    generator, own = strong_generator(), np.array([1, 2, 1, 0])
    latents = cgan.training_latents(np.random.default_rng(4), 4)
    embedding = next(layer for layer in generator.layers if isinstance(layer, keras.layers.Embedding))
    table = embedding.get_weights()[0].copy()
    drawn = cgan.generate_exaggerated(generator, latents, own, 0, 0.5)
    np.testing.assert_array_equal(embedding.get_weights()[0], table)  # the generator is left as it was
    by_hand = keras.models.clone_model(generator)
    by_hand.set_weights(generator.get_weights())
    hand_embedding = next(layer for layer in by_hand.layers if isinstance(layer, keras.layers.Embedding))
    for i, label in enumerate(own):
        pushed = table.copy()
        pushed[0] = table[0] + 0.5 * (table[0] - table[label])  # label 0 (own == target): unchanged
        hand_embedding.set_weights([pushed])
        np.testing.assert_allclose(drawn[i], cgan.generate(by_hand, latents[i : i + 1], [0])[0], atol=1e-5)
    plain = cgan.generate(generator, latents, [0] * 4)
    np.testing.assert_array_equal(cgan.generate_exaggerated(generator, latents, own, 0, 0.0), plain)
    assert np.abs(drawn[:3] - plain[:3]).max() > 0.01 and np.allclose(drawn[3], plain[3], atol=1e-5)


def test_pivotal_tuning_without_steps_draws_what_the_generator_draws():
    generator, labels, targets = strong_generator(), np.array([0, 2, 1]), np.array([1, 2])
    latents = cgan.training_latents(np.random.default_rng(2), 3)
    images = np.random.default_rng(3).uniform(0, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    reconstructions, relabelled, mse, ssim = projection.pivotal_tuning(
        generator, latents, labels, images, targets, steps=0, lr=0.01, ssim_weight=0.2, progress=False)
    np.testing.assert_allclose(reconstructions, cgan.generate(generator, latents, labels), atol=1e-5)
    for t, target in enumerate(targets):
        np.testing.assert_allclose(relabelled[:, t], cgan.generate(generator, latents, [target] * 3), atol=1e-5)
    np.testing.assert_allclose(mse, ((reconstructions - images) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(ssim, separable_ssim(reconstructions, images).numpy(), rtol=1e-5)


def test_pivotal_tuning_draws_each_image_from_the_pivot_and_leaves_the_generator_alone():
    generator, labels, targets = strong_generator(), np.array([0, 2, 1]), np.array([0, 1, 2])
    before = [w.copy() for w in generator.get_weights()]
    latents = cgan.training_latents(np.random.default_rng(2), 3)
    # images the generator cannot draw: a bright square on black, somewhere else in each
    images = np.zeros((3, SIZE, SIZE, 3), np.float32)
    for i in range(3):
        images[i, 10 + 20 * i : 30 + 20 * i, 10:40] = 1.0
    untuned = ((cgan.generate(generator, latents, labels) - images) ** 2).mean(axis=(1, 2, 3))
    reconstructions, relabelled, mse, _ = projection.pivotal_tuning(
        generator, latents, labels, images, targets, steps=40, lr=0.003, ssim_weight=0.2, progress=False)
    assert (mse < 0.5 * untuned).all()  # the tuned copy draws the image itself
    for i, label in enumerate(labels):  # under its own label the tuned copy draws its reconstruction
        np.testing.assert_allclose(relabelled[i, label], reconstructions[i], atol=1e-6)
    for w, b in zip(generator.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    # each image is tuned from the generator's own weights with a fresh Adam: alone, the same
    alone = projection.pivotal_tuning(generator, latents[2:], labels[2:], images[2:], targets, steps=40, lr=0.003,
                                      ssim_weight=0.2, progress=False)
    np.testing.assert_allclose(alone[0][0], reconstructions[2], atol=1e-4)
    np.testing.assert_allclose(alone[1][0], relabelled[2], atol=1e-4)


def assert_generated_at_the_projected_latents(result, model):
    """The reconstruction is the generator's image of the projected latent under the image's own
    label, each relabelled image that of the same latent under its target, and the deltas their
    summed RGB difference; MSE is the reconstruction's error against the given image."""
    generator = cgan.load_generator(model)
    latents, labels = result["latents"], result["labels"]
    np.testing.assert_allclose(result["reconstructions"], cgan.generate(generator, latents, labels), atol=1e-5)
    for t, target in enumerate(result["targets"]):
        relabelled = cgan.generate(generator, latents, [target] * len(latents))
        np.testing.assert_allclose(result["relabelled"][:, t], relabelled, atol=1e-5)
        np.testing.assert_allclose(result["deltas"][:, t], (result["reconstructions"] - relabelled).sum(axis=-1), atol=1e-4)
    np.testing.assert_allclose(result["mse"], ((result["reconstructions"] - result["images"]) ** 2).mean(axis=(1, 2, 3)),
                               rtol=1e-3, atol=1e-7)


def test_explain_image_writes_the_reconstruction_relabelled_images_and_deltas(image_folder, tmp_path, capsys):
    model = data_file("keras2_generator_c3_f8.h5")
    explain_image.main(["--model", model, "--image", str(image_folder / "discs" / "d0.png"), "--label", "1",
                        "--out_dir", str(tmp_path), "--steps", "3", "--starts", "2"])
    with np.load(tmp_path / "explain_d0.npz") as saved:
        result = {key: saved[key] for key in saved}
    assert result["targets"].tolist() == [0, 2] and result["labels"].tolist() == [1]
    assert result["relabelled"].shape == (1, 2, SIZE, SIZE, 3)
    # the given image as prepare_folders.py prepares it: the bright disc in the middle, dark corners
    assert result["images"].shape == (1, SIZE, SIZE, 3) and result["images"][0, 38:42, 38:42].min() > 0.8
    assert result["images"][0, :6, :6].max() < 0.25
    assert_generated_at_the_projected_latents(result, model)
    assert os.path.exists(tmp_path / "explain_d0.png")
    printed = re.search(r"reconstruction: MSE (\S+) \(worst (\S+)\), SSIM (\S+) \(worst (\S+)\) over 1 images",
                        capsys.readouterr().out)
    assert printed and [float(x) for x in printed.groups()] == pytest.approx(
        [result["mse"][0], result["mse"][0], result["ssim"][0], result["ssim"][0]], abs=1e-3)


def test_explain_image_exaggerates_the_switch_at_the_projected_latents(image_folder, tmp_path):
    model, image = data_file("keras2_generator_c3_f8.h5"), str(image_folder / "discs" / "d0.png")
    explain_image.main(["--model", model, "--image", image, "--label", "1", "--steps", "3", "--starts", "2",
                        "--exaggerate", "0.5", "--out_dir", str(tmp_path)])
    with np.load(tmp_path / "explain_d0.npz") as saved:
        generator = cgan.load_generator(model)
        for t, target in enumerate(saved["targets"]):
            np.testing.assert_allclose(saved["relabelled"][:, t], cgan.generate_exaggerated(
                generator, saved["latents"], saved["labels"], target, 0.5), atol=1e-5)
        np.testing.assert_allclose(saved["deltas"], (saved["reconstructions"][:, None] - saved["relabelled"]).sum(-1),
                                   atol=1e-4)


def test_explain_image_with_tune_steps_draws_the_image_from_its_tuned_copy(image_folder, tmp_path):
    model, image = data_file("keras2_generator_c3_f8.h5"), str(image_folder / "discs" / "d0.png")
    argv = ["--model", model, "--image", image, "--label", "1", "--steps", "3", "--starts", "2"]
    explain_image.main(argv + ["--out_dir", str(tmp_path / "plain")])
    explain_image.main(argv + ["--out_dir", str(tmp_path / "tuned"), "--tune_steps", "30", "--tune_lr", "0.003"])
    with np.load(tmp_path / "plain" / "explain_d0.npz") as plain, np.load(tmp_path / "tuned" / "explain_d0.npz") as tuned:
        np.testing.assert_array_equal(tuned["latents"], plain["latents"])  # the same projection, the pivot
        assert tuned["mse"][0] < 0.5 * plain["mse"][0]
        np.testing.assert_allclose(tuned["deltas"], (tuned["reconstructions"][:, None] - tuned["relabelled"]).sum(-1),
                                   atol=1e-4)
        assert not np.allclose(tuned["relabelled"], plain["relabelled"], atol=1e-3)


def scores_by_hand(maps, masks):
    """Each map against its own mask, averaged over the maps: ROC-AUC (the share of inside-outside
    pixel pairs ranked right, ties half), the positive mass's share inside, the pointing game
    (ties split), and over the maps that paint any pixel (above 0.2) the painted share inside;
    and how many paint."""
    aucs, energies, hits, shares = [], [], [], []
    for values, mask in zip(np.asarray(maps, np.float64), np.asarray(masks, bool)):
        aucs.append(auc_by_hand(values, mask))
        positive = np.clip(values, 0, None)
        energies.append(positive[mask].sum() / positive.sum() if positive.sum() else 0.0)
        top = values == values.max()
        hits.append((top & mask).sum() / top.sum())
        painted = values > 0.2
        if painted.any():
            shares.append((painted & mask).sum() / painted.sum())
    return [np.mean(aucs), np.mean(energies), np.mean(hits), np.mean(shares) if shares else 0.0, len(shares)]


def test_explain_many_scores_each_image_against_its_own_mask(tmp_path, capsys):
    model = data_file("keras2_generator_c3_f8.h5")
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    save_arrays(tmp_path / "set.npz", images=images, labels=np.array([2, 0, 0, 0]))
    masks = np.zeros((4, SIZE, SIZE), np.uint8)
    masks[0, :40], masks[1, :, :20], masks[2, 30:50, 30:50], masks[3, 60:] = 1, 1, 1, 1  # each image's own
    save_arrays(tmp_path / "truth.npz", lesion=masks)
    explain_image.main(["--model", model, "--npz", str(tmp_path / "set.npz"), "--indices", "3", "1", "--to", "2", "1",
                        "--ground_truth", str(tmp_path / "truth.npz"), "--out_dir", str(tmp_path),
                        "--steps", "2", "--starts", "1", "--ssim_weight", "0"])  # the MSE-only path
    out = capsys.readouterr().out
    with np.load(tmp_path / "explain_set.npz") as saved:
        result = {key: saved[key] for key in saved}
    assert result["indices"].tolist() == [3, 1] and result["latents"].shape == (2, cgan.LATENT_DIM)
    assert result["labels"].tolist() == [0, 0] and result["targets"].tolist() == [2, 1]
    np.testing.assert_allclose(result["images"], images[[3, 1]] / 255.0, atol=1e-6)
    assert_generated_at_the_projected_latents(result, model)
    area = masks[[3, 1]].mean()
    for t, target in enumerate((2, 1)):  # a line per target, each image's delta against its own mask
        line = re.search(rf"own label brighter than label {target}, against each image's own lesion mask \(mean of 2 "
                         rf"images; chance: area (\S+), ROC-AUC 0.5\): ROC-AUC (\S+), energy in (\S+), pointing (\S+), "
                         rf"painted@0.2 (\S+) \((\d+) images painted\)", out)
        assert line, out
        assert float(line.group(1)) == pytest.approx(area, abs=1e-3)
        expected = scores_by_hand(result["deltas"][:, t], masks[[3, 1]])
        assert [float(x) for x in line.groups()[1:]] == pytest.approx(expected, abs=2e-3)


def test_own_mask_scores_score_each_delta_against_its_own_mask():
    masks = np.zeros((3, SIZE, SIZE), np.uint8)
    masks[0, :10], masks[1, 40:50], masks[2, :, :5] = 1, 1, 1
    on_mask = masks[[2, 0]].astype(float)  # images 2 and 0, each delta exactly its own mask
    result = {"indices": np.array([2, 0]), "targets": np.array([0, 1]),
              "deltas": np.stack([on_mask, -on_mask], axis=1)}  # target 1: the inverse
    exact, inverse = explanation.own_mask_scores(result, masks)
    assert exact["auc"] == 1.0 and exact["energy"] == 1.0 and exact["pointing"] == 1.0 and exact["painted"] == 1.0
    assert exact["n"] == 2 and exact["n_painted"] == 2 and exact["area"] == masks[[2, 0]].mean()
    assert inverse["auc"] == 0.0 and inverse["energy"] == 0.0 and inverse["n_painted"] == 0


def test_phantom_masks_are_matched_to_the_prepared_order(tmp_path):
    """make_phantoms.py lists its phantoms as drawn; prepare_xrays.py reads them sorted."""
    names = np.array(["train/PNEUMONIA/person1_bacteria_1.jpeg", "train/NORMAL/IM-0001-0001.jpeg"])
    lesion = np.zeros((2, SIZE, SIZE), np.uint8)
    lesion[0, :5] = 1  # the bacterial phantom's, drawn first, prepared second
    save_arrays(tmp_path / "truth.npz", names=names, labels=np.array([2, 0]), lesion=lesion)
    masks = explanation.ground_truth_masks(str(tmp_path / "truth.npz"), "lesion", np.array([1]), np.array([2]))
    assert masks[1].sum() == 5 * SIZE and masks[0].sum() == 0
    with pytest.raises(InputError, match="classes differ"):
        explanation.ground_truth_masks(str(tmp_path / "truth.npz"), "lesion", np.array([0]), np.array([2]))


@pytest.mark.parametrize("extra, message", [
    (["--label", "5"], "label 5 outside"),
    (["--label", "1", "--to", "3"], "label 3 outside"),
    (["--label", "1", "--image", "{junk}"], "not an image"),
    ([], "--image needs its --label"),
    (["--label", "1", "--equalize"], "--equalize works on grey levels"),
    (["--label", "1", "--tune_steps", "-1"], "--tune_steps"),
])
def test_explain_image_bad_input_is_one_line(tmp_path, capsys, extra, message):
    (tmp_path / "junk.png").write_text("not an image")
    image = tmp_path / "img.png"
    Image.new("RGB", (90, 80), (10, 20, 30)).save(image)
    argv = ["--model", data_file("keras2_generator_c3_f8.h5"), "--image", str(image),
            "--out_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        explain_image.main(argv + [a.format(junk=tmp_path / "junk.png") for a in extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
