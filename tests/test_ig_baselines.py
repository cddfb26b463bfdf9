"""Integrated Gradients from the baselines that keep dark regions: the blurred copy and a class
mean, checked on a model whose exact attributions are known (a linear one)."""

import keras
import numpy as np
from scipy.ndimage import gaussian_filter

from cganlib import cgan
from cganlib.classifier import blurred_baselines as blurred
from cganlib.classifier import integrated_gradients, integrated_gradients_from


def linear_model(weights):
    """score_c(x) = sum(w_c * x): IG from any baseline b is exactly (x - b) * w_c."""
    model = keras.Sequential([keras.Input(cgan.IMAGE_SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(2, use_bias=False)])
    model.layers[-1].set_weights([weights.reshape(-1, 2)])
    return model


def test_ig_from_a_baseline_is_the_difference_times_the_weights_on_a_linear_model():
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((*cgan.IMAGE_SHAPE, 2)).astype(np.float32)
    images = rng.uniform(0, 255, (3, *cgan.IMAGE_SHAPE)).astype(np.float32)
    reference = rng.uniform(0, 255, cgan.IMAGE_SHAPE).astype(np.float32)
    model = linear_model(weights)
    for baselines in (None, reference, blurred(images)):
        b = 0 if baselines is None else baselines
        expected = ((images - b) * weights[..., 1]).sum(axis=-1)
        got = integrated_gradients(model, images, 1, steps=4, baselines=baselines)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-2 * np.abs(expected).max())
    maps = integrated_gradients_from(model, images, 1, reference)
    np.testing.assert_allclose(maps["ig_reference"], integrated_gradients(model, images, 1, baselines=reference),
                               rtol=1e-5, atol=1e-3)
    assert set(maps) == {"ig_blur", "ig_reference"}


def test_a_dark_region_gets_attribution_from_the_reference_but_not_from_black():
    weights = np.zeros((*cgan.IMAGE_SHAPE, 2), np.float32)
    weights[30:50, 30:50, :, 1] = 1.0  # the class reads a dark square: darker than healthy there
    image = np.full((1, *cgan.IMAGE_SHAPE), 200.0, np.float32)
    image[0, 30:50, 30:50] = 2.0  # near black
    healthy = np.full(cgan.IMAGE_SHAPE, 200.0, np.float32)
    model = linear_model(weights)
    black = integrated_gradients(model, image, 1)[0]
    from_healthy = integrated_gradients(model, image, 1, baselines=healthy)[0]
    assert np.abs(black[30:50, 30:50]).max() < 10  # 2 grey levels x 3 channels: nearly nothing
    assert np.abs(from_healthy[30:50, 30:50]).min() > 500  # (2 - 200) x 3 channels at every pixel
    assert np.abs(from_healthy).sum() == np.abs(from_healthy[30:50, 30:50]).sum()  # nothing outside


def test_the_blurred_baseline_keeps_each_images_brightness_and_loses_its_detail():
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (2, *cgan.IMAGE_SHAPE)).astype(np.float32)
    soft = blurred(images)
    assert soft.shape == images.shape
    np.testing.assert_allclose(soft.mean(axis=(1, 2)), images.mean(axis=(1, 2)), rtol=0.02)
    assert soft.std() < 0.2 * images.std()


def test_the_blurred_baseline_is_a_gaussian_of_sigma_5_pixels_with_the_edges_reflected():
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (2, *cgan.IMAGE_SHAPE)).astype(np.float32)
    # each image and channel on its own; scipy's "reflect" mirrors the edge pixel itself (d c b a | a b c d)
    expected = gaussian_filter(images.astype(np.float64), sigma=(0, 5.0, 5.0, 0), mode="reflect")
    np.testing.assert_allclose(blurred(images), expected, rtol=1e-5, atol=1e-3)
