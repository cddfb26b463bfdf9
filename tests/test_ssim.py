"""The separable-window SSIM that projection minimizes: tf.image.ssim's numbers and gradient."""

import numpy as np
import pytest
import tensorflow as tf

from cganlib.ssim import gaussian_taps, ssim


def pairs():
    rng = np.random.default_rng(0)
    a = rng.random((6, 80, 80, 3)).astype(np.float32)
    noisy = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    dimmed = np.clip(0.5 * a + 0.3, 0, 1).astype(np.float32)
    return [(a, noisy), (a, dimmed), (noisy, dimmed), (a, a)]


@pytest.mark.parametrize("k", range(4))
def test_ssim_is_tensorflows(k):
    x, y = pairs()[k]
    np.testing.assert_allclose(ssim(x, y).numpy(), tf.image.ssim(x, y, max_val=1.0).numpy(), atol=1e-4)


def test_its_gradient_is_tensorflows():
    x, y = pairs()[0]
    z = tf.Variable(x)
    grads = []
    for measure in (ssim, lambda a, b: tf.image.ssim(a, b, max_val=1.0)):
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(measure(z, y))
        grads.append(tape.gradient(total, z).numpy())
    scale = np.abs(grads[1]).max()
    assert scale > 0 and np.abs(grads[0] - grads[1]).max() < 1e-4 * scale


def test_the_window_is_an_11_tap_gaussian_of_sigma_1_5():
    taps = gaussian_taps()
    assert taps.shape == (11,) and np.isclose(taps.sum(), 1.0) and taps.argmax() == 5
    assert np.isclose(taps[5] / taps[6], np.exp(1 / (2 * 1.5**2)))
