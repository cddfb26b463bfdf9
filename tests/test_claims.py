"""The claims the README makes about what the code computes: the two-part GAN step is the
one-piece update, --mixed_precision computes in bfloat16, a seed repeats the explaining
scripts, and the figures show what they say (the original's latent rule, rows per sample and
label, the arithmetic grid's labels)."""

import json
import os
import re
import shutil
from types import SimpleNamespace

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import heatmaps
import latent_arithmetic
import latent_walk
from cganlib import cgan, config, gan_metrics, latent_space, plots, training
from cganlib.scoring import CURVE_MAPS, FINDINGS
from cganlib.storage import save_arrays, save_npz
from conftest import FILES, finish, run_python, start_script, stop
from helpers import data_file

N_CLASSES = 3


# ---------------------------------------------------------------- the two-part GAN step


def without_dropout(*models):
    """Dropout rate 0 in every Dropout layer, so a training-mode pass is deterministic."""
    for model in models:
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0


def one_piece_update(g, d, optimizer, latents, labels):
    """The original's GAN update: the whole batch at once, target 1, only g's weights moved."""
    with tf.GradientTape() as tape:
        p = d([g([latents, labels], training=True), labels], training=True)
        loss = keras.ops.mean(keras.losses.binary_crossentropy(tf.ones_like(p), p))
    # dense gradients: Keras 3's Adamax takes the embedding's sparse gradient row by row, so
    # |gradient| of a label seen twice in a batch would be the sum of two |parts|
    grads = [tf.convert_to_tensor(grad) for grad in tape.gradient(loss, g.trainable_variables)]
    optimizer.apply_gradients(zip(grads, g.trainable_variables))
    return float(loss)


def gan_batch(seed, n=64):
    rng = np.random.default_rng(seed)
    latents = tf.constant(cgan.training_latents(rng, n))
    labels = tf.constant(rng.integers(0, N_CLASSES, (n, 1)).astype(np.int32))
    return latents, labels


def test_two_part_gan_step_is_the_one_piece_update():
    """Trainer.gan_step (two halves, gradients summed / 2) moves g as one whole-batch update from
    the same weights and optimizer moments; dropout off, so both see the same network."""
    keras.utils.set_random_seed(0)
    g = cgan.build_generator(N_CLASSES, filters=4)
    d = cgan.build_discriminator(N_CLASSES, 4, 0.001)
    gan = cgan.build_gan(g, d, lr=0.001)
    without_dropout(g, d)
    images = np.zeros((64, *cgan.IMAGE_SHAPE), np.uint8)
    trainer = training.Trainer(g, d, gan, images, np.arange(64) % N_CLASSES, config.resolve("xray"),
                               np.random.default_rng(0))
    # Warm the optimizer's moments first: Adamax's first step is lr * sign(gradient), blind to
    # the gradient's scale, so only a later step can tell a wrong scale.
    for seed in (1, 2):
        one_piece_update(g, d, gan.optimizer, *gan_batch(seed))
    start = g.get_weights()
    moments = [v.numpy() for v in gan.optimizer.variables]
    d_weights = d.get_weights()
    latents, labels = gan_batch(3)

    parts_loss = float(tf.function(trainer.gan_step)(latents, labels))
    parts = g.get_weights()
    g.set_weights(start)
    for variable, value in zip(gan.optimizer.variables, moments):
        variable.assign(value)
    whole_loss = one_piece_update(g, d, gan.optimizer, latents, labels)
    whole = g.get_weights()

    assert parts_loss == pytest.approx(whole_loss, rel=1e-5)
    moved = max(np.abs(w - s).max() for w, s in zip(whole, start))
    assert moved > 1e-4  # the update did something to compare
    for p, w, s in zip(parts, whole, start):
        np.testing.assert_allclose(p - s, w - s, rtol=1e-4, atol=1e-4 * moved)
    for before, after in zip(d_weights, d.get_weights()):
        np.testing.assert_array_equal(before, after)  # the GAN step leaves d alone


BFLOAT16_PROBE = """
import json, sys
import numpy as np, keras, tensorflow as tf
sys.path.insert(0, sys.argv[1])
from cganlib import cgan
keras.utils.set_random_seed(0)
g = cgan.build_generator(3, filters=8)
z = cgan.training_latents(np.random.default_rng(0), 16)
y = (np.arange(16) % 3).reshape(-1, 1)
def forward():
    return tf.function(lambda: g([z, y], training=False))().numpy()
before = forward()
cgan.set_bfloat16(True, emulated=True)  # also where the CPU would only emulate it
bf16 = forward()
cgan.set_bfloat16(False)
after = forward()
print(json.dumps({"bf16": float(np.abs(bf16 - before).max()), "after": float(np.abs(after - before).max()),
                  "scale": float(np.abs(before).max()), "dtypes": [str(w.dtype) for w in g.weights]}))
"""


@pytest.mark.slow
def test_mixed_precision_computes_in_bfloat16_and_switches_back():
    # In a subprocess: the setting is process-wide. oneDNN switched on: TensorFlow leaves it off
    # by default on CPUs without AVX-512 (our 2-core machine's), and then the rewrite never runs.
    done = run_python("-c", BFLOAT16_PROBE, FILES, env={"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # bfloat16 keeps 8 bits of mantissa: differences of a few parts in a thousand of the outputs
    assert 1e-4 * result["scale"] < result["bf16"] < 0.05 * result["scale"]
    assert result["after"] == 0.0  # float32 again once switched off
    assert set(result["dtypes"]) == {"float32"}  # the weights stay float32


# ---------------------------------------------------------------- seeded runs repeat

SEED = 5


def run_twice(script, *args, out_dirs):
    """The same command into two output folders, the two processes side by side."""
    started = [start_script(script, *args, "--out_dir", out) for out in out_dirs]
    try:
        done = [finish(process) for process in started]
    finally:
        for process in started:
            stop(process)
    for result in done:
        assert result.returncode == 0, result.stderr[-2000:]


def arrays_of(path):
    with np.load(path) as data:
        return {key: data[key] for key in data}


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def assert_same_files(first, second):
    """Both folders hold the same files; .npz arrays equal, figures equal pixel for pixel."""
    names = sorted(os.listdir(first))
    assert names and names == sorted(os.listdir(second))
    for name in names:
        if name.endswith(".npz"):
            a, b = arrays_of(first / name), arrays_of(second / name)
            assert list(a) == list(b)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
        else:
            np.testing.assert_array_equal(pixels(first / name), pixels(second / name), err_msg=name)


@pytest.fixture(scope="module")
def faces_models(tmp_path_factory):
    """The Keras 2 4-class fixture generator as epoch 200 of a faces run."""
    folder = tmp_path_factory.mktemp("faces") / "results"
    folder.mkdir()
    shutil.copy(data_file("keras2_generator_c4_f8.h5"), folder / "generator_model_200.h5")
    return folder


@pytest.fixture(scope="module")
def seeded_heatmaps(faces_models):
    """heatmaps.py run twice with the same seed, 2 samples, into a/ and b/."""
    out = faces_models.parent / "heatmaps"
    run_twice("heatmaps.py", "--dataset", "celeb", "--models_dir", faces_models, "--n_samples", 2, "--seed", SEED,
              out_dirs=(out / "a", out / "b"))
    return out


@pytest.mark.slow
def test_heatmaps_repeat_with_the_same_seed(seeded_heatmaps, faces_models, tmp_path):
    assert_same_files(seeded_heatmaps / "a", seeded_heatmaps / "b")
    heatmaps.main(["--dataset", "celeb", "--models_dir", str(faces_models), "--n_samples", "2",
                   "--seed", str(SEED + 1), "--out_dir", str(tmp_path)])
    name = "generator_model_200.h5.npz"
    other, first = arrays_of(tmp_path / name), arrays_of(seeded_heatmaps / "a" / name)
    assert not np.array_equal(other["latents"], first["latents"])  # the seed is what repeats them


@pytest.mark.slow
def test_latent_walk_repeats_with_the_same_seed(faces_models, tmp_path):
    run_twice("latent_walk.py", "--dataset", "celeb", "--models_dir", faces_models, "--n_samples", 2,
              "--seed", SEED, out_dirs=(tmp_path / "a", tmp_path / "b"))
    assert_same_files(tmp_path / "a", tmp_path / "b")
    latent_walk.main(["--dataset", "celeb", "--models_dir", str(faces_models), "--n_samples", "2",
                      "--seed", str(SEED + 1), "--out_dir", str(tmp_path / "c")])
    name = "latent_walk_200.png"
    assert not np.array_equal(pixels(tmp_path / "c" / name), pixels(tmp_path / "a" / name))


@pytest.mark.slow
def test_latent_arithmetic_repeats_with_the_same_seed(faces_models, tmp_path):
    step_1 = ("latent_arithmetic.py", "--models_dir", faces_models, "--save_points", "--seed", SEED)
    run_twice(*step_1, out_dirs=(tmp_path / "a", tmp_path / "b"))
    assert_same_files(tmp_path / "a", tmp_path / "b")
    # step 2 reads each run's own points (the default <out_dir>/latent_points_200.npz)
    run_twice("latent_arithmetic.py", "--models_dir", faces_models, out_dirs=(tmp_path / "a", tmp_path / "b"))
    assert_same_files(tmp_path / "a", tmp_path / "b")
    assert sorted(os.listdir(tmp_path / "a")) == [
        "latent_arithmetic_200.npz", "latent_arithmetic_200.png", "latent_points_200.npz", "latent_points_200.png"]
    latent_arithmetic.main(["--models_dir", str(faces_models), "--save_points", "--seed", str(SEED + 1),
                            "--out_dir", str(tmp_path / "c")])
    name = "latent_points_200.npz"
    assert not np.array_equal(arrays_of(tmp_path / "c" / name)["arr_0"], arrays_of(tmp_path / "a" / name)["arr_0"])


# ---------------------------------------------------------------- what the figures show


@pytest.mark.slow
def test_heatmap_latents_follow_the_original_rule(seeded_heatmaps):
    """Each sample: two shuffles of the 100 values -3 + k*0.06 as end points, and 10 steps on the
    straight line from the first to the second at ratios 0, 1/9, ..., 1."""
    latents = arrays_of(seeded_heatmaps / "a" / "generator_model_200.h5.npz")["latents"]
    assert latents.shape == (20, 100) and latents.dtype == np.float32
    grid = -3 + np.arange(100) * 0.06
    ratios = np.linspace(0, 1, 10)[:, None]
    ends = []
    for sample in latents.reshape(2, 10, 100):
        first, last = sample[0].astype(np.float64), sample[-1].astype(np.float64)
        for end in (first, last):
            np.testing.assert_allclose(np.sort(end), grid, atol=1e-6)  # a permutation of the grid
            assert not np.allclose(end, grid)  # shuffled
        np.testing.assert_allclose(sample, (1 - ratios) * first + ratios * last, atol=1e-6)
        ends += [first, last]
    assert len({tuple(end) for end in ends}) == 4  # every end point its own shuffle


def kept_figures(monkeypatch, module, name):
    """A list that collects every figure module.name makes while the test runs."""
    figures, make = [], getattr(module, name)

    def keep(*args, **kwargs):
        figures.append(make(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(module, name, keep)
    return figures


def drawn_images(fig):
    """Every (square) image a plots.image_rows figure shows, row by row: (the image as drawn, the
    texts of its captions, the vertical centre of its row)."""
    cells = []
    for ax in fig.axes:
        if not ax.images:
            continue
        canvas = np.asarray(ax.images[0].get_array())
        side = canvas.shape[0]
        gap = plots.row_gap(side)
        y = ax.get_position().y0 + ax.get_position().height / 2
        for x in range(0, canvas.shape[1], side + gap):
            texts = [t.get_text() for t in ax.texts if x <= t.get_position()[0] < x + side]
            cells.append((canvas[:, x : x + side], texts, y))
    return cells


def row_name_at(fig, y):
    """The text left of the images whose vertical position is y (the row's name)."""
    names = [t.get_text() for t in fig.texts if t.get_ha() == "right" and abs(t.get_position()[1] - y) < 1e-6]
    assert len(names) == 1, names
    return names[0]


def test_walk_rows_are_grouped_by_sample_and_named_by_label(faces_models, tmp_path, monkeypatch):
    figures = kept_figures(monkeypatch, latent_space, "walk_figure")
    latent_walk.main(["--dataset", "celeb", "--models_dir", str(faces_models), "--n_samples", "2",
                      "--labels", "3", "1", "--seed", str(SEED), "--out_dir", str(tmp_path)])
    generator = cgan.load_generator(data_file("keras2_generator_c4_f8.h5"))
    latents = cgan.heatmap_latents(np.random.default_rng(SEED), 2)
    cells = drawn_images(figures[0])
    assert len(cells) == 4 * 10
    expected_rows = [(0, 3, "sample 1\n3 fem_lips"), (0, 1, "1 mal"), (1, 3, "sample 2\n3 fem_lips"), (1, 1, "1 mal")]
    centres = []
    for row, (sample, label, name) in enumerate(expected_rows):
        images = cgan.generate(generator, latents[sample * 10 : sample * 10 + 10], [label] * 10)
        row_cells = cells[row * 10 : row * 10 + 10]
        centres.append(row_cells[0][2])
        assert row_name_at(figures[0], centres[-1]) == name
        for k, (image, texts, y) in enumerate(row_cells):
            assert y == pytest.approx(centres[-1])
            assert texts == [str(label)]
            np.testing.assert_allclose(image, images[k], atol=1e-5)
    gaps = -np.diff(centres)
    assert gaps[1] > gaps[0] == pytest.approx(gaps[2])  # a wider gap between the two samples' groups


def test_arithmetic_grid_draws_each_point_with_label_1_or_2(faces_models, tmp_path, monkeypatch):
    figures = kept_figures(monkeypatch, latent_space, "points_figure")
    latent_arithmetic.main(["--models_dir", str(faces_models), "--save_points", "--seed", str(SEED),
                            "--out_dir", str(tmp_path)])
    points = arrays_of(tmp_path / "latent_points_200.npz")["arr_0"]
    generator = cgan.load_generator(data_file("keras2_generator_c4_f8.h5"))
    as_label = {label: cgan.generate(generator, points, [label] * len(points)) for label in (1, 2)}
    cells = drawn_images(figures[0])
    assert len(cells) == 100
    labels = []
    for k, (image, texts, _) in enumerate(cells):
        number, label = texts[0].split()
        assert number == str(k + 1)
        labels.append(int(label.strip("()")))
        # drawn with the label shown, not the other (this generator's labels differ by 6e-4 or more)
        assert np.abs(image - as_label[labels[-1]][k]).max() < 2e-5
        assert np.abs(image - as_label[3 - labels[-1]][k]).max() > 2e-4
    assert set(labels) == {1, 2}
    assert 30 < labels.count(1) < 70  # a fair draw between the two


# ---------------------------------------------------------------- the demo's plan and its steps


# The demo's wiring, on files whose scores are known by construction: ground truth for six
# phantoms; the fake steps below write each step's files where the demo asks them to, their maps
# made so that every RESULT score has one known value and most slips (another epoch, label pair,
# mask, map, method or folder) change it.
SIDE = 80
BLOCK = 10


def block(top, left, height=BLOCK, width=BLOCK):
    mask = np.zeros((SIDE, SIDE), bool)
    mask[top : top + height, left : left + width] = True
    return mask


LESION_A, LESION_B = block(50, 10), block(50, 20)  # the two bacterial phantoms' lesions, side by side
LESIONS = LESION_A | LESION_B
LUNGS = block(10, 5, 60, 30) | block(10, 45, 60, 30)  # every phantom's lung fields
LEFT_LUNG = block(10, 5, 60, 30)
OUTSIDE = block(0, 40)  # neither lesion nor lungs
# make_phantoms.py's rows, as drawn; prepare_xrays.py reads them sorted: healthy 4, 1, bacterial 3,
# viral 2, bacterial 0, viral 5, so the prepared images 2 and 4 are the bacterial ones (lesions A, B)
NAMES = np.array(["train/PNEUMONIA/person2_bacteria_2.jpeg", "train/NORMAL/IM-0002-0001.jpeg",
                  "train/PNEUMONIA/person1_virus_1.jpeg", "train/PNEUMONIA/person1_bacteria_1.jpeg",
                  "train/NORMAL/IM-0001-0001.jpeg", "train/PNEUMONIA/person2_virus_2.jpeg"])
TRUTH_LABELS = np.array([2, 0, 1, 2, 0, 1])
PREPARED_LABELS = np.array([0, 0, 2, 1, 2, 1])
HELD_OUT = {1: [3, 5], 2: [2, 4]}  # the held-out viral and bacterial images, as prepared
OWN_MASK = {2: LESION_A, 4: LESION_B, 3: LUNGS, 5: LUNGS}
ACCURACY = 0.8125


def painted_outside(epoch):
    """Epoch k's interpolation heatmap paints k px of "bacterial brighter" in the lesions, and these outside."""
    return 20 * max(epoch - 26, 0)


def flag_values(args, flag):
    """The values after flag in a command's arguments, up to the next flag."""
    start = args.index(flag) + 1
    end = next((k for k in range(start, len(args)) if args[k].startswith("--")), len(args))
    return args[start:end]


def write_phantom_truth(out):
    lesion = np.zeros((len(NAMES), SIDE, SIDE), np.uint8)
    lesion[0], lesion[3] = LESION_B, LESION_A
    lungs = np.repeat(LUNGS[None], len(NAMES), axis=0).astype(np.uint8)
    save_arrays(os.path.join(out, "ground_truth.npz"), names=NAMES, labels=TRUTH_LABELS, lesion=lesion, lungs=lungs)


def write_prepared(out):
    """Healthy images black; each bacterial one white on its lesion, each viral one on its lungs."""
    images = np.zeros((len(PREPARED_LABELS), SIDE, SIDE, 3), np.uint8)
    for k, mask in OWN_MASK.items():
        images[k][mask] = 255
    save_npz(os.path.join(out, "img_align_xray.npz"), images)
    save_npz(os.path.join(out, "labels_align_xray.npz"), PREPARED_LABELS)


def write_heatmaps(out, epochs, randomized):
    """heatmaps.py --average's two files per generator. Epoch k's averaged delta "bacterial
    brighter than healthy" is 1 on the lesions and k/100 on OUTSIDE, "viral brighter" 1 on the
    lungs; re-initialized: 1 on OUTSIDE only, and the lungs' inverse. Its interpolation heatmap
    paints k px of the lesions and painted_outside(k) px outside, all the lungs and k px outside."""
    for epoch in map(int, epochs):
        mean = np.zeros((3, 3, SIDE, SIDE), np.float32)
        share = np.zeros((3, 3, 3, SIDE, SIDE), np.float32)
        if randomized:
            mean[2, 0], mean[1, 0] = OUTSIDE, -LUNGS.astype(np.float32)
        else:
            mean[2, 0], mean[1, 0] = LESIONS + epoch / 100 * OUTSIDE, LUNGS
            mean[2, 1] = 1.0 - LESIONS  # viral's and healthy-vs-others' pairs: nothing like the answers
            share[2, 0, 2], share[1, 0, 2] = 0.5 * LESIONS + 0.5 * OUTSIDE, LUNGS  # s above 0.2
        mean[0, 2], mean[0, 1], mean[1, 2] = -mean[2, 0], -mean[1, 0], -mean[2, 1]
        deltas = np.zeros((3, 3, 1, SIDE, SIDE), np.float32)  # one interpolation step is enough
        deltas[2, 0, 0].flat[np.flatnonzero(LESIONS)[:epoch]] = 1.0
        deltas[2, 0, 0].flat[np.flatnonzero(OUTSIDE)[:painted_outside(epoch)]] = 1.0
        deltas[1, 0, 0][LUNGS] = 1.0
        deltas[1, 0, 0].flat[np.flatnonzero(OUTSIDE)[:epoch]] = 1.0
        deltas[0, 1, 0] = 1.0 - LUNGS  # healthy brighter than viral: outside the lungs
        name = os.path.join(out, f"generator_model_{epoch:03d}.h5")
        save_arrays(name + ".npz", labels=np.arange(3), deltas=deltas)
        save_arrays(name + ".average.npz", labels=np.arange(3), mean=mean, share_above=share,
                    thresholds=np.array([1.0, 0.6, 0.2]), n_latents=7, randomized=randomized)


def write_saliency(out, labels, randomized):
    """saliency.py's file per label: per held-out image, Grad-CAM on its own mask, CAM on the
    other image's lesion (bacterial) or the left lung only (viral), IG flat; re-initialized:
    Grad-CAM off its own mask."""
    for label in labels:
        indices = HELD_OUT[label]
        own = np.stack([OWN_MASK[k] for k in indices]).astype(np.float32)
        cam = own[::-1] if label == 2 else np.stack([LEFT_LUNG] * len(indices)).astype(np.float32)
        gradcam = 1.0 - own if randomized else own
        flat = np.full_like(own, 0.5)
        save_arrays(os.path.join(out, f"saliency_{label}.npz"), gradcam=gradcam, cam=cam, ig=flat, ig_blur=flat,
                    ig_reference=flat, indices=np.array(indices), labels=np.full(len(indices), label), target=label)


def write_explained(out, indices):
    """explain_image.py --explainer --classifier --judge's file for held-out images switched to
    healthy: each delta 1 on its own mask and 0.5 on OUTSIDE (ROC-AUC 1, energy below 1), the
    switched image 0.2 darker on OUTSIDE than the given one (its change outside the lesion or the
    lungs); the first image's reconstruction read as healthy, every relabelled image as healthy by
    the classifier, the first one as its own class by the judge; curve areas that name their map,
    finding and reader (measure_area)."""
    label = next(label for label, held_out in HELD_OUT.items() if indices[0] in held_out)
    n = len(indices)
    deltas = (np.stack([OWN_MASK[k] for k in indices]) + 0.5 * OUTSIDE).astype(np.float32)[:, None]
    images = np.full((n, SIDE, SIDE, 3), 0.5, np.float32)
    relabelled = (images - 0.2 * OUTSIDE[None, :, :, None])[:, None]
    areas = {(judge, curve): np.tile([measure_area(m, label, curve, judge) for m in range(len(CURVE_MAPS))], (n, 1))
             for judge in ("", "judge_") for curve in ("deletion", "insertion")}
    judge_relabelled = np.zeros((n, 1), int)
    judge_relabelled[0] = label
    save_arrays(os.path.join(out, "explain_img_align_xray.npz"), indices=np.array(indices),
                labels=np.full(n, label), targets=np.array([0]), deltas=deltas, mse=np.full(n, 0.01),
                ssim=np.linspace(0.8, 0.9, n), images=images, relabelled=relabelled,
                recon_classes=np.array([0] + [label] * (n - 1)), relabelled_classes=np.zeros((n, 1), int),
                judge_recon_classes=np.full(n, label), judge_relabelled_classes=judge_relabelled,
                curve_maps=np.array(CURVE_MAPS),
                **{f"{judge}{curve}_auc": area for (judge, curve), area in areas.items()})


def measure_area(m, label, curve, judge=""):
    """The curve area the fake explain_image.py saves for map m of images of this label."""
    return 0.1 * (m + 1) + 0.01 * label + (0.5 if curve == "insertion" else 0.0) + (0.003 if judge else 0.0)


def write_evaluation(out, epochs):
    """evaluate.py's table: at epoch 29, and only there, classes 1 and 2 collapsed, and class k's
    precision 0.2 (k + 1), its recall 0.1 (k + 1) (`all`'s 0.99)."""
    rows = []
    for epoch in [*epochs, "real"]:
        for label in ("0", "1", "2", "all"):
            collapsed = epoch == "29" and label in ("1", "2")
            last = epoch == "29" and label != "all"
            coverage = [0.2 * (int(label) + 1), 0.1 * (int(label) + 1)] if last else [0.99, 0.99]
            rows.append([epoch, label, 8, 0.9, 0.9 if collapsed else 0.3, 0.2, 1.0, 1.0, *coverage, 1.0, 1.0])
    with open(os.path.join(out, "evaluation.csv"), "w") as f:
        f.write(",".join(gan_metrics.FIELDS) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))


def classifier_dir(calls):
    """The folder of the first train_classifier.py run: the classifier the maps come from."""
    return flag_values(next(args for script, args in calls if script == "train_classifier.py"), "--out_dir")[0]


def indices_in(args):
    """The rows explain_image.py is given: its --indices_from file's `indices`."""
    with np.load(flag_values(args, "--indices_from")[0]) as saved:
        return saved["indices"].tolist()


def known_answer_steps(monkeypatch):
    """demo.run_step replaced by fakes that write each step's files where its command says, and
    check the paths that join the steps. Returns the list of (script, args) the demo ran."""
    import demo

    calls = []

    def run_step(script, *args):
        args = [str(a) for a in args]
        calls.append((script, args))
        out = flag_values(args, "--out_dir")[0]
        os.makedirs(out, exist_ok=True)
        if script == "make_phantoms.py":
            write_phantom_truth(out)
        elif script == "prepare_xrays.py":
            write_prepared(out)
        elif script == "train_classifier.py":
            if "--split_from" in args:  # the judge: another architecture on the classifier's split
                assert flag_values(args, "--architecture") == ["vgg"]
                assert flag_values(args, "--split_from") == [os.path.join(classifier_dir(calls), "held_out.npz")]
            save_arrays(os.path.join(out, "held_out.npz"), accuracy=np.array(ACCURACY if "--split_from" not in args else 0))
        elif script == "train_explainer.py":
            assert flag_values(args, "--held_out_from") == [os.path.join(classifier_dir(calls), "held_out.npz")]
        elif script == "train_cgan.py":
            for epoch in range(1, int(flag_values(args, "--epochs_goal")[0]) + 1):
                for name in (f"generator_model_{epoch:03d}.h5", f"generator_model_dis{epoch:03d}.h5"):
                    with h5py.File(os.path.join(out, name), "w") as f:  # opens as a saved model
                        f.create_group("model_weights")
        else:
            if "--models_dir" in args:  # the generators it reads are the ones training saved
                models = flag_values(args, "--models_dir")[0]
                for epoch in flag_values(args, "--epochs"):
                    assert os.path.exists(os.path.join(models, f"generator_model_{int(epoch):03d}.h5")), (script, epoch)
            if "--classifier" in args:  # the classifier is the one trained
                assert os.path.dirname(flag_values(args, "--classifier")[0]) == classifier_dir(calls)
            if "--judge" in args:  # the judge too, and the explainer
                assert os.path.dirname(flag_values(args, "--judge")[0]) == flag_values(
                    [a for script, a in calls if script == "train_classifier.py"][1], "--out_dir")[0]
                assert flag_values(args, "--explainer") == flag_values(dict(calls)["train_explainer.py"], "--out_dir")
            randomized = "--randomized_weights" in args
            {"heatmaps.py": lambda: write_heatmaps(out, flag_values(args, "--epochs"), randomized),
             "evaluate.py": lambda: write_evaluation(out, flag_values(args, "--epochs")),
             "saliency.py": lambda: write_saliency(out, map(int, flag_values(args, "--labels")), randomized),
             "explain_image.py": lambda: write_explained(out, indices_in(args))}[script]()
            assert script != "explain_image.py" or {"--classifier", "--judge"} <= set(args)  # its measures need both
        return 0

    monkeypatch.setattr(demo, "run_step", run_step)
    return calls


def test_the_demo_scores_known_maps_with_the_right_files_epochs_labels_and_masks(tmp_path, monkeypatch, capsys):
    """demo.py with its default settings, every step faked by one that writes files whose scores
    are known: its RESULT line gives those scores, and the default 9.5 minutes plan the 29 GAN
    epochs the README names and the explainer's 40."""
    import demo

    calls = known_answer_steps(monkeypatch)
    clock = iter([1000.0, 1090.0])  # the demo's start and end: 90 s, whatever the machine's speed
    monkeypatch.setattr(demo, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    demo.main(["--out_dir", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    steps = dict(calls)
    goal = int(flag_values(steps["train_cgan.py"], "--epochs_goal")[0])
    assert goal == 29 and "29 epochs (planned for --minutes 9.5) of 56 batches of 16" in out and goal * 56 == 1624
    explainer_goal = int(flag_values(steps["train_explainer.py"], "--epochs_goal")[0])
    assert explainer_goal == 40 and "the explainer 40 epochs" in out  # 720 training phantoms: 1,800 steps of 16
    with open(os.path.join(os.path.dirname(FILES), "README.md")) as f:
        assert f"({goal} for the default 9.5 minutes)" in f.read()
    assert flag_values(steps["evaluate.py"], "--epochs") == ["27", "28", "29"]  # the heatmapped epochs

    result = dict(item.split("=") for item in out.strip().splitlines()[-1].split()[1:])
    area = {"lesion": LESIONS.mean(), "lungs": LUNGS.mean()}
    inside = sum(range(27, 30))  # the bacterial heatmaps' painted pixels in the lesions, epochs 27-29
    outside = sum(painted_outside(epoch) for epoch in range(27, 30))
    outside_auc = 0.5 * (SIDE * SIDE - LESIONS.sum() - OUTSIDE.sum()) / (SIDE * SIDE - LESIONS.sum())
    expected = {
        # today's painted shares of the interpolation heatmaps, pooled pixel by pixel (not file by file)
        "bacterial_in_lesion": inside / (inside + outside), "lesion_area": area["lesion"],
        "viral_in_lungs": 3 * LUNGS.sum() / (3 * LUNGS.sum() + inside), "lung_area": area["lungs"],
        # the averaged delta pooled over epochs 27-29: 1 on the lesions, 0.28 on OUTSIDE
        "delta_auc_lesion": 1.0, "delta_energy_lesion": LESIONS.sum() / (LESIONS.sum() + 0.28 * OUTSIDE.sum()),
        "delta_painted_lesion": 2 / 3, "delta_auc_lungs": 1.0, "delta_energy_lungs": 1.0, "delta_painted_lungs": 1.0,
        # class-level saliency (both images' maps, each scaled to 1, averaged) against the union regions
        "gradcam_auc_lesion": 1.0, "cam_auc_lesion": 1.0, "ig_auc_lesion": 0.5, "gradcam_energy_lesion": 1.0,
        "gradcam_auc_lungs": 1.0, "cam_auc_lungs": 0.75, "ig_auc_lungs": 0.5, "gradcam_energy_lungs": 1.0,
        # per image, against each image's own mask: CAM on the other lesion would score about 0.49
        "gradcam_image_auc_lesion": 1.0, "gradcam_image_energy_lesion": 1.0,
        "gradcam_image_auc_lungs": 1.0, "gradcam_image_energy_lungs": 1.0,
        "classifier_accuracy": ACCURACY,
        # the sanity check's: the last epoch's re-initialized generator, Grad-CAM off the masks
        "random_delta_auc_lesion": outside_auc, "random_gradcam_auc_lesion": 0.0,
        "random_delta_auc_lungs": 0.0, "random_gradcam_auc_lungs": 0.0,
        # the class-mean difference: 1.5 on both lesions (each image's lesion and the other's), 3 on the lungs
        "mean_diff_auc_lesion": 1.0, "mean_diff_energy_lesion": 1.0, "mean_diff_auc_lungs": 1.0,
        "mean_diff_energy_lungs": 1.0, "mean_diff_image_energy_lesion": 0.5, "mean_diff_image_energy_lungs": 1.0,
        "mean_diff_image_auc_lesion": (SIDE * SIDE - LESIONS.sum() + 0.5 * LESION_B.sum()) / (SIDE * SIDE - LESION_A.sum()),
        "mean_diff_image_auc_lungs": 1.0,
        # IG's other baselines flat like IG; each projected delta on its own image's mask
        "ig_blur_auc_lesion": 0.5, "ig_reference_auc_lesion": 0.5, "ig_blur_auc_lungs": 0.5, "ig_reference_auc_lungs": 0.5,
        "explain_image_auc_lesion": 1.0, "explain_image_energy_lesion": BLOCK**2 / (BLOCK**2 + 0.5 * OUTSIDE.sum()),
        "explain_image_auc_lungs": 1.0, "explain_image_energy_lungs": LUNGS.sum() / (LUNGS.sum() + 0.5 * OUTSIDE.sum()),
        # explain_image.py --classifier --judge's measures, each finding's from its own file
        **{f"recon_agree_{finding}": 1 - 1 / len(HELD_OUT[label]) for label, finding in FINDINGS.items()},
        **{f"flip_rate_{finding}": 1.0 for finding in FINDINGS.values()},
        **{f"judge_recon_agree_{finding}": 1.0 for finding in FINDINGS.values()},
        **{f"{judge}{curve}_auc_{name}_{finding}": measure_area(m, label, curve, judge)
           for label, finding in FINDINGS.items() for m, name in enumerate(CURVE_MAPS)
           for curve in ("deletion", "insertion") for judge in ("", "judge_")},
        # the explainer's: SSIM 0.8 and 0.9 (two images each), the judge flips 1 of 2, 0.2 changed on OUTSIDE
        **{f"explain_{key}_{finding}": value for finding in FINDINGS.values()
           for key, value in (("recon_ssim", 0.85), ("flip_rate", 0.5))},
        # the change outside: 0.2 on OUTSIDE, averaged over the pixels outside each image's own mask
        "explain_outside_change_lesion": np.mean([0.2 * OUTSIDE.sum() / (SIDE * SIDE - m.sum()) for m in (LESION_A, LESION_B)]),
        "explain_outside_change_lungs": 0.2 * OUTSIDE.sum() / (SIDE * SIDE - LUNGS.sum()),
        "explain_recon_ssim": 0.85, "explain_flip_rate": 0.5,
    }
    for key, value in expected.items():
        assert float(result[key]) == pytest.approx(value, abs=1e-4), key
    assert result["collapsed_classes"] == "2" and result["minutes"] == "1.50"
    # the last epoch's precision and recall, means over the three classes (not the `all` row)
    assert float(result["gen_precision"]) == pytest.approx(0.4) and float(result["gen_recall"]) == pytest.approx(0.2)
    for finding, key in (("lesion", "bacterial_in_lesion"), ("lungs", "viral_in_lungs")):  # the table's rows too
        (row,) = re.findall(rf"^delta +{finding} +3 interpolation heatmaps .* (\S+)$", out, re.MULTILINE)
        assert float(row) == pytest.approx(expected[key], abs=1e-3), finding
def fake_steps(monkeypatch, train_status, saved_epochs):
    """demo.run_step replaced: every step succeeds at once except training, which saves
    `saved_epochs` (their generator and discriminator files) and exits with train_status.
    Returns the list of (script, args) the demo ran."""
    import demo

    calls = []

    def run_step(script, *args):
        calls.append((script, [str(a) for a in args]))
        if script == "train_cgan.py":
            results = args[args.index("--out_dir") + 1]
            os.makedirs(results, exist_ok=True)
            for epoch in saved_epochs:
                for name in (f"generator_model_{epoch:03d}.h5", f"generator_model_dis{epoch:03d}.h5"):
                    with h5py.File(os.path.join(results, name), "w") as f:  # opens as a saved model
                        f.create_group("model_weights")
            return train_status
        if script == "saliency.py":  # the held-out images explain_image.py is given next
            out = args[args.index("--out_dir") + 1]
            os.makedirs(out, exist_ok=True)
            for label in (1, 2):
                np.savez(os.path.join(out, f"saliency_{label}.npz"), indices=np.arange(3))
        return 0

    monkeypatch.setattr(demo, "run_step", run_step)
    return calls


def test_demo_goes_on_with_the_saved_epochs_when_the_collapse_guard_stops_training(tmp_path, monkeypatch, capsys):
    import demo

    calls = fake_steps(monkeypatch, train_status=3, saved_epochs=(1, 2, 3, 4))
    paths = demo.run_demo(demo.parse_args(["--out_dir", str(tmp_path)]), 10, 1)
    assert "training stopped early (collapse guard)" in capsys.readouterr().out
    scripts = [script for script, _ in calls]
    assert scripts[scripts.index("train_cgan.py") + 1] == "heatmaps.py"  # it goes on after the stop
    heatmap_args = calls[scripts.index("heatmaps.py")][1]
    chosen = heatmap_args[heatmap_args.index("--epochs") + 1 : heatmap_args.index("--n_samples")]
    assert chosen == ["2", "3", "4"]  # the last three epochs saved before the stop
    evaluate_args = calls[scripts.index("evaluate.py")][1]
    assert evaluate_args[evaluate_args.index("--epochs") + 1 : evaluate_args.index("--n")] == chosen  # the same epochs
    assert [os.path.basename(p) for p in paths["heatmap_files"]] == [f"generator_model_00{k}.h5.npz" for k in (2, 3, 4)]


def test_demo_trains_with_the_small_preset_and_passes_only_what_differs(tmp_path, monkeypatch):
    import demo

    calls = fake_steps(monkeypatch, train_status=0, saved_epochs=(1,))
    demo.run_demo(demo.parse_args(["--out_dir", str(tmp_path), "--filters", "8"]), 1, 1)
    train_args = dict(calls)["train_cgan.py"]
    assert train_args[train_args.index("--preset") + 1] == "small"
    assert train_args[train_args.index("--filters") + 1] == "8"
    assert not {"--d_lr", "--g_lr", "--d_beta1", "--n_batch", "--mode_seeking"} & set(train_args)  # the preset's own
    calls = fake_steps(monkeypatch, train_status=0, saved_epochs=(1,))
    (tmp_path / "off").mkdir()
    demo.run_demo(demo.parse_args(["--out_dir", str(tmp_path / "off"), "--mode_seeking", "0"]), 1, 1)
    train_args = dict(calls)["train_cgan.py"]
    assert train_args[train_args.index("--mode_seeking") + 1] == "0.0"  # off: the flag that turns the preset's off


def test_demo_explains_the_first_explain_n_held_out_images_of_each_finding(tmp_path, monkeypatch):
    import demo

    calls = fake_steps(monkeypatch, train_status=0, saved_epochs=(1,))  # saliency.py holds out images 0, 1, 2
    demo.run_demo(demo.parse_args(["--out_dir", str(tmp_path), "--explain_n", "2"]), 1, 1)
    explained = [indices_in(args) for script, args in calls if script == "explain_image.py"]
    assert explained == [[0, 1], [0, 1]]  # bacterial, then viral


def test_demo_stops_when_training_fails_otherwise(tmp_path, monkeypatch, capsys):
    import demo

    calls = fake_steps(monkeypatch, train_status=1, saved_epochs=(1,))
    with pytest.raises(SystemExit) as exit_info:
        demo.run_demo(demo.parse_args(["--out_dir", str(tmp_path)]), 10, 1)
    assert exit_info.value.code == 1
    assert "train_cgan.py failed (exit status 1)" in capsys.readouterr().err
    assert [script for script, _ in calls][-1] == "train_cgan.py"  # no heatmaps of a failed run


def test_demo_clears_the_files_an_earlier_demo_listed(tmp_path):
    import demo

    for name in ("ground_truth.npz", "chest_xray/train/NORMAL/IM-0001-0001.jpeg", "img_align_xray.npz",
                 "results/generator_model_149.h5", "results/history.csv", "heatmaps/generator_model_149.h5.npz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"earlier run")
    demo.record_files(str(tmp_path))  # as the earlier demo did after its steps
    demo.prepare_work_dir(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["demo_files.json"]  # the next steps write them all again
