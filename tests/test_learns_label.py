"""Training learns the label: train_cgan.py, run as a user runs it, on a synthetic X-ray set
where only the label decides whether a bright square is drawn, makes a generator whose delta
between the two labels (the same latents, only the label switched) lies in that square."""

import numpy as np
import pytest

from cganlib import cgan
from cganlib.delta import delta_sums
from helpers import bright_squares

SIDE = 80
SQUARE = (slice(8, 32), slice(8, 32))  # label 1's bright square (9% of the image); label 0 has none
# Grey levels inside tanh's steep range (a generator pushed to 0 or 255 saturated and stopped
# learning in some runs), each image's brightness spread, so the discriminator cannot win on one grey level.
BACKGROUND, SPREAD, BRIGHT = 100, 20, 200  # each image's brightness in 100 +- 20
N_PER_CLASS = 1600  # one epoch of 200 batches of 16
LATENT_DIM = 8
# Settings that learn this set within one epoch at width 8. A small latent keeps the latent's pull
# on the first layer near the label's; fast learning rates let the discriminator tie the square
# to label 1 early (at the demo's rates it took 500-800 batches); one-sided label smoothing keeps
# the discriminator from winning outright. A GAN run can still fail: a seeded run repeats exactly on
# one machine and library version (test_train_resume.py), but another CPU computes other round-offs,
# and so another run. Without smoothing, of seeds 0-3 only 0 and 1 learnt within the epoch on an
# AMX Xeon, of 0, 1, 2 and 6 only 2 and 6 on an AVX2 EPYC; with it, 8 of seeds 0-9 on the Xeon.
# So the test tries up to SEEDS in turn and needs one run that learns: a broken training loop,
# label path or generator learns in none.
SEEDS = (0, 1, 2)
TRAIN_FLAGS = ("--filters", 8, "--latent_dim", LATENT_DIM, "--n_batch", 16, "--d_lr", 0.005, "--g_lr", 0.02,
               "--d_beta1", 0.5, "--label_smoothing", 0.9, "--epochs_goal", 1, "--real_plots", 0)


def square_mask():
    mask = np.zeros((SIDE, SIDE), bool)
    mask[SQUARE] = True
    return mask


def write_square_set(folder):
    """The X-ray layout (img_align_xray.npz, labels_align_xray.npz, one array under arr_0 each):
    uint8 (N, 80, 80, 3) grey images, those of label 1 with the bright square."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat([0, 1], N_PER_CLASS))
    brightness = BACKGROUND + SPREAD * rng.uniform(-1, 1, (len(labels), 1, 1))
    grey = np.clip(np.round(np.broadcast_to(brightness, (len(labels), SIDE, SIDE))), 0, 255).astype(np.uint8)
    corner = (SQUARE[0].start, SQUARE[1].start)
    grey, _ = bright_squares(grey, [corner if label else None for label in labels], SQUARE[0].stop - corner[0], BRIGHT)
    images = np.repeat(grey[..., None], 3, axis=-1)
    np.savez_compressed(folder / "img_align_xray.npz", images)
    np.savez_compressed(folder / "labels_align_xray.npz", labels)


def label_delta(generator_path, n=50):
    """Summed RGB delta (n, 80, 80) of label 1's images minus label 0's, the same latents."""
    generator = cgan.load_generator(str(generator_path))
    latents = cgan.training_latents(np.random.default_rng(1), n, LATENT_DIM)
    return delta_sums(*(cgan.generate(generator, latents, [label] * n) for label in (1, 0)))


def square_scores(delta):
    """What the square test reads off the label delta: the mean delta inside the square and
    outside it, and the painted shares inside and outside (heatmaps.py's lowest paint level)."""
    inside, outside = delta[:, square_mask()], delta[:, ~square_mask()]
    painted = delta > 0.2
    return inside.mean(), np.abs(outside).mean(), painted[:, square_mask()].mean(), painted[:, ~square_mask()].mean()


def learnt_the_square(inside, outside, painted_in, painted_out):
    # label 1 brightens the square by at least half the real contrast (3 * 100/255 = 1.2 summed RGB),
    # changes the rest far less, and paints nearly all of the square and little else
    return inside > 0.6 and inside > 5 * outside and painted_in > 0.9 and painted_in > 4 * painted_out


@pytest.mark.slow
def test_trained_generator_draws_the_square_for_label_1_only(run, tmp_path):
    write_square_set(tmp_path)
    tried = []
    for seed in SEEDS:
        results = tmp_path / f"results_seed{seed}"
        done = run("train_cgan.py", "--dataset", "xray", "--data_dir", tmp_path, "--results_dir", results,
                   "--summary_dir", tmp_path / "cgan", *TRAIN_FLAGS, "--seed", seed)
        assert done.returncode == 0, done.stderr[-2000:]
        scores = square_scores(label_delta(results / "generator_model_001.h5"))
        tried.append((seed, np.round(scores, 3).tolist()))
        if learnt_the_square(*scores):
            break
    else:
        pytest.fail(f"no run learnt the square; (seed, [inside, outside, painted inside, painted outside]): {tried}")
