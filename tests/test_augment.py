"""DiffAugment (--diff_augment): each operation's known effect, its gradient, and the trainer
applying it to every image the discriminator sees, real and generated, in both steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cganlib import augment, cgan, config, training


def seed():
    return keras.random.SeedGenerator(0)


def test_translation_moves_each_image_whole_with_zeros_coming_in():
    x = np.zeros((64, 80, 80, 1), np.float32)
    x[:, 40, 40, 0] = 1.0
    shifted = augment.translation(tf.constant(x), seed()).numpy()
    for image in shifted:
        (rows, columns) = np.nonzero(image[..., 0])
        assert len(rows) == 1 and abs(rows[0] - 40) <= 10 and abs(columns[0] - 40) <= 10
    moved = {(int(np.argmax(image.max(axis=(1, 2)))), int(np.argmax(image.max(axis=(0, 2))))) for image in shifted}
    assert len(moved) > 10  # drawn per image
    ones = augment.translation(tf.ones((16, 80, 80, 1)), seed()).numpy()
    assert set(np.unique(ones)) <= {0.0, 1.0} and ones.min() == 0.0  # the border that came in is 0


def test_cutout_zeroes_one_square_of_half_the_side():
    out = augment.cutout(tf.ones((8, 80, 80, 3)), seed()).numpy()
    for image in out:
        zero = image[..., 0] == 0
        rows, columns = np.nonzero(zero)
        assert zero.sum() == 40 * 40 and np.ptp(rows) == np.ptp(columns) == 39
        assert (image[..., 1:][zero] == 0).all()


def test_color_changes_each_image_by_its_own_draw():
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 80, 80, 3)).astype(np.float32))
    out = augment.color(x, seed()).numpy()
    assert out.shape == x.shape and not np.allclose(out, x.numpy())
    means = (out - x.numpy()).mean(axis=(1, 2, 3))
    assert np.unique(np.round(means, 5)).size == 8


def test_augmentation_is_differentiable():
    x = tf.Variable(np.random.default_rng(1).uniform(-1, 1, (4, 80, 80, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(augment.augment(x, "color,translation,cutout", seed()) ** 2)
    grad = tape.gradient(total, x).numpy()
    assert np.isfinite(grad).all() and (grad != 0).mean() > 0.3


@pytest.mark.parametrize("policy, calls", [("", 0), ("cutout", 2 + training.GAN_PARTS)])
def test_the_trainer_augments_real_and_generated_images_in_both_steps(monkeypatch, policy, calls):
    seen = []
    real_augment = augment.augment

    def spy(x, names, seed):
        seen.append(int(x.shape[0]))
        return real_augment(x, names, seed)

    monkeypatch.setattr(augment, "augment", spy)
    c = config.resolve("xray", filters=4, n_batch=16, diff_augment=policy)
    g, d = cgan.build_generator(3, c.latent_dim, c.filters), cgan.build_discriminator(3, c.filters, c.d_lr)
    images = np.zeros((32, 80, 80, 3), np.uint8)
    trainer = training.Trainer(g, d, cgan.build_gan(g, d), images, np.arange(32) % 3, c, np.random.default_rng(0))
    trainer.step()
    # traced once: the real half, the generated half, and each part of the GAN step's batch
    assert seen == ([8, 8] + [16 // training.GAN_PARTS] * training.GAN_PARTS if policy else [])
    assert len(seen) == calls
    assert len(trainer.seed_states()) == 2 + bool(policy)  # the augmentation's state is saved for a restart
