"""SSIM with a separable Gaussian window, for projection's loss: the same numbers as
tf.image.ssim (11-tap window, sigma 1.5, K1 0.01, K2 0.03, valid padding, the mean over pixels
and channels), with a gradient that costs two 1-D depthwise convolutions per statistic
instead of one 11x11 one (tf.image.ssim's gradient was most of a projection step).
"""

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import numpy as np
import tensorflow as tf

WINDOW, SIGMA = 11, 1.5
K1, K2 = 0.01, 0.03


def gaussian_taps(size=WINDOW, sigma=SIGMA):
    """The normalized 1-D Gaussian window tf.image.ssim uses."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-(x**2) / (2 * sigma**2))
    return (taps / taps.sum()).astype(np.float32)


def _blur(images, taps):
    """Each channel convolved with the window, across then down, valid padding."""
    channels = images.shape[-1]
    row = tf.tile(tf.reshape(taps, (1, -1, 1, 1)), (1, 1, channels, 1))
    column = tf.reshape(row, (-1, 1, channels, 1))
    across = tf.nn.depthwise_conv2d(images, row, strides=(1, 1, 1, 1), padding="VALID")
    return tf.nn.depthwise_conv2d(across, column, strides=(1, 1, 1, 1), padding="VALID")


def ssim(a, b, max_val=1.0):
    """SSIM of each pair of images (N, H, W, C), as tf.image.ssim computes it; shape (N,)."""
    a, b = tf.convert_to_tensor(a, tf.float32), tf.convert_to_tensor(b, tf.float32)
    taps = tf.constant(gaussian_taps())
    c1, c2 = (K1 * max_val) ** 2, (K2 * max_val) ** 2
    mean_a, mean_b = _blur(a, taps), _blur(b, taps)
    var_a = _blur(a * a, taps) - mean_a**2
    var_b = _blur(b * b, taps) - mean_b**2
    covariance = _blur(a * b, taps) - mean_a * mean_b
    luminance = (2 * mean_a * mean_b + c1) / (mean_a**2 + mean_b**2 + c1)
    contrast_structure = (2 * covariance + c2) / (var_a + var_b + c2)
    return tf.reduce_mean(luminance * contrast_structure, axis=[1, 2, 3])
