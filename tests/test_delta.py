"""The delta overlay against the original's rule in words, pixel for pixel."""

import numpy as np
import pytest

from cganlib.delta import (
    delta_overlay,
    delta_overlay_per_pixel,
    delta_sums,
    exact_delta_sums,
    paint_levels,
)

YELLOW, GREEN, MAGENTA = (1.0, 1.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 1.0)


def spec_overlay(a, b):
    """The original's rule word for word, one pixel at a time: s = sum over RGB of (A - B)
    (the images are float32, so A - B is taken in float32); paint a copy of B yellow if
    s > 1.0, else green if s > 0.6, else magenta if s > 0.2; other pixels keep B.
    float(s) compares s itself, not s rounded to float32, with the thresholds."""
    out = b.copy()
    for i in range(b.shape[0]):
        for j in range(b.shape[1]):
            s = sum(float(x) for x in a[i, j] - b[i, j])
            if s > 1.0:
                out[i, j] = YELLOW
            elif s > 0.6:
                out[i, j] = GREEN
            elif s > 0.2:
                out[i, j] = MAGENTA
    return out


def up(x):
    return np.nextafter(np.float32(x), np.float32(2))


def down(x):
    return np.nextafter(np.float32(x), np.float32(0))


# (s, colour or None for unpainted): s at, and one float32 step either side of, each threshold
EDGES = [
    (np.float32(1.0), GREEN), (up(1.0), YELLOW), (down(1.0), GREEN),
    (np.float32(0.6), GREEN),  # float32(0.6) = 0.60000002 is above 0.6
    (up(0.6), GREEN), (down(0.6), MAGENTA),
    (np.float32(0.2), MAGENTA),  # float32(0.2) = 0.20000000298 is above 0.2
    (up(0.2), MAGENTA), (down(0.2), None),
]


def threshold_pixels():
    """(a, b, expected colour or None) pixels whose s is exactly each edge value: in one
    channel, spread over three, and on a coloured base."""
    pixels = []
    for s, colour in EDGES:
        pixels.append(((s, 0, 0), (0, 0, 0), colour))
        pixels.append(((s / 2, s / 4, s / 4), (0, 0, 0), colour))
        pixels.append(((s, 0.5, 0.25), (0, 0.5, 0.25), colour))
    pixels += [
        ((0.75, 0.5, 0.5), (0.25, 0.25, 0.25), GREEN),  # s = 1.0 exactly on a grey base
        ((0, 0, 0), (1.0, 0, 0), None),  # s = -1.0: A darker than B is never painted
        ((0.3, 0.3, 0.3), (0.3, 0.3, 0.3), None),  # identical
    ]
    return pixels


def pixel_images(pixels):
    a = np.array([[p[0] for p in pixels]], dtype=np.float32)
    b = np.array([[p[1] for p in pixels]], dtype=np.float32)
    return a, b


def test_threshold_pixels_get_the_spec_colours():
    pixels = threshold_pixels()
    a, b = pixel_images(pixels)
    expected = [colour if colour is not None else base for _, base, colour in pixels]
    np.testing.assert_array_equal(delta_overlay(a, b)[0], np.array(expected, dtype=np.float32))
    np.testing.assert_array_equal(spec_overlay(a, b)[0], np.array(expected, dtype=np.float32))


def straddling_pixel(threshold, x, y, base=(0.0, 0.0, 0.0)):
    """(a, b): a pixel pair whose float64 s = x + y + z lies within half a float32 step of the
    threshold, on the side where s rounded to float32 lands on the other side of it."""
    z, b = np.float32(threshold - x - y), np.array(base, np.float32)
    for direction in (0.0, 1.0):
        candidate = z
        for _ in range(64):
            a = np.array([x, y, candidate], np.float32) + b
            s = sum(float(c) for c in a - b)
            if (s > threshold) != (float(np.float32(s)) > threshold):
                return a, b
            candidate = np.nextafter(candidate, np.float32(direction))
    raise AssertionError(f"no float32 z puts s across {threshold} when rounded")


def test_sums_that_round_across_a_threshold_are_compared_unrounded():
    """s within a float32 step of each threshold, where s and float32(s) fall on either side
    (0.5999999978 rounds to float32(0.6), above 0.6): painted as the original compared s."""
    pairs = [straddling_pixel(t, t / 2, t / 4, base) for t in (1.0, 0.6, 0.2)
             for base in ((0.0, 0.0, 0.0), (0.25, 0.125, 0.0))]
    a, b = np.array([[p for p, _ in pairs]]), np.array([[q for _, q in pairs]])
    expected = spec_overlay(a, b)  # one row of pixels
    np.testing.assert_array_equal(paint_levels(b, exact_delta_sums(a, b)), expected)
    np.testing.assert_array_equal(delta_overlay(a, b), expected)
    rounded = paint_levels(b, delta_sums(a, b))
    assert np.all(np.any(rounded != expected, axis=-1))  # every pixel: float32 sums would paint it otherwise


def test_vectorized_matches_the_spec_loop_on_random_images():
    rng = np.random.default_rng(4)
    a = rng.random((3, 80, 80, 3), dtype=np.float32)
    b = rng.random((3, 80, 80, 3), dtype=np.float32)
    # plant the threshold pixels in the first row of the first image
    ta, tb = pixel_images(threshold_pixels())
    a[0, 0, : ta.shape[1]], b[0, 0, : tb.shape[1]] = ta[0], tb[0]
    overlay = delta_overlay(a, b)
    for k in range(len(a)):
        np.testing.assert_array_equal(overlay[k], spec_overlay(a[k], b[k]))
    for colour in (YELLOW, GREEN, MAGENTA):  # every level occurs, and unpainted pixels too
        assert np.all(overlay == colour, axis=-1).sum() > 1000
    assert np.all(overlay == b, axis=-1).sum() > 1000


def test_per_pixel_reference_matches_vectorized():
    rng = np.random.default_rng(5)
    a, b = rng.random((2, 2, 80, 80, 3), dtype=np.float32)
    np.testing.assert_array_equal(delta_overlay_per_pixel(a, b), delta_overlay(a, b))


def test_single_images_stacks_and_broadcasting_agree():
    rng = np.random.default_rng(6)
    a, b = rng.random((2, 4, 80, 80, 3), dtype=np.float32)
    stack = delta_overlay(a, b)
    assert stack.shape == (4, 80, 80, 3) and stack.dtype == np.float32
    np.testing.assert_array_equal(delta_overlay(a[2], b[2]), stack[2])
    np.testing.assert_array_equal(delta_overlay(a[0], b)[1], delta_overlay(a[0], b[1]))


def test_identical_images_paint_nothing_and_inputs_are_untouched():
    rng = np.random.default_rng(7)
    a = rng.random((2, 80, 80, 3), dtype=np.float32)
    before = a.copy()
    np.testing.assert_array_equal(delta_overlay(a, a), a)
    assert not delta_sums(a, a).any()
    b = np.clip(a - 0.5, 0, 1)
    painted = delta_overlay(a, b)
    assert (painted != b).any()
    np.testing.assert_array_equal(a, before)
    assert not np.shares_memory(painted, b)


@pytest.mark.parametrize("shape", [(80, 80, 3), (5, 80, 80, 3), (2, 3, 80, 80, 3)])
def test_delta_sums_are_signed_rgb_sums(shape):
    rng = np.random.default_rng(8)
    a, b = rng.random((2, *shape), dtype=np.float32)
    s = delta_sums(a, b)
    assert s.shape == shape[:-1] and s.dtype == np.float32
    np.testing.assert_allclose(s, (a.astype(np.float64) - b).sum(axis=-1), atol=1e-6)
    np.testing.assert_array_equal(delta_sums(b, a), -s)
