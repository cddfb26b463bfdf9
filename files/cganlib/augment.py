"""Differentiable augmentation (DiffAugment, Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training"): the same random colour, translation and cutout applied to every
image the discriminator sees, real and generated, in its own steps and in the generator's, so
it cannot memorize a small training set and the generator is not taught the augmentations.
Every operation is differentiable in the images; images are in [-1, 1].
"""

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import tensorflow as tf

from cganlib.config import AUGMENTATIONS

TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the side, zeros (mid-grey) coming in
CUTOUT_RATIO = 0.5  # a square half the side, zeroed


def color(x, seed):
    """Brightness, saturation and contrast, each drawn per image."""
    n = tf.shape(x)[0]
    x = x + (keras.random.uniform((n, 1, 1, 1), seed=seed) - 0.5)
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * (keras.random.uniform((n, 1, 1, 1), seed=seed) * 2.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * (keras.random.uniform((n, 1, 1, 1), seed=seed) + 0.5) + mean


def _shifted_indices(n, side, shift):
    """For each image, the source index of each target position, -1 where it falls outside."""
    positions = tf.range(side)[None, :] - shift[:, None]
    return tf.where((positions >= 0) & (positions < side), positions, -1)


def translation(x, seed):
    """Each image shifted by up to TRANSLATION_RATIO of its side in each direction."""
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    max_shift = int(h * TRANSLATION_RATIO + 0.5)
    shifts = keras.random.randint((2, n), -max_shift, max_shift + 1, seed=seed)
    rows, columns = _shifted_indices(n, h, shifts[0]), _shifted_indices(n, w, shifts[1])
    padded = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])  # index -1 picks the zero border
    x = tf.gather(padded, tf.where(rows < 0, h, rows), axis=1, batch_dims=1)
    return tf.gather(x, tf.where(columns < 0, w, columns), axis=2, batch_dims=1)


def cutout(x, seed):
    """A square of CUTOUT_RATIO of the side, at a random place in each image, set to 0."""
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    size = int(h * CUTOUT_RATIO + 0.5)
    corners = keras.random.randint((2, n), 0, h - size + 1, seed=seed)
    rows, columns = tf.range(h)[None, :], tf.range(w)[None, :]
    inside_rows = (rows >= corners[0][:, None]) & (rows < corners[0][:, None] + size)
    inside_columns = (columns >= corners[1][:, None]) & (columns < corners[1][:, None] + size)
    keep = ~(inside_rows[:, :, None] & inside_columns[:, None, :])
    return x * tf.cast(keep, x.dtype)[..., None]


def augment(x, policy, seed):
    """The policy's operations ("color,translation,cutout" or some of them), in the paper's order,
    on a batch of images."""
    names = policy.split(",")
    for name in AUGMENTATIONS:
        if name in names:
            x = {"color": color, "translation": translation, "cutout": cutout}[name](x, seed)
    return x
