"""The original's delta overlay: where image A is brighter than image B, paint a
copy of B by how much (summed RGB difference s: yellow if s > 1.0, else green if s > 0.6,
else magenta if s > 0.2).

Images are float arrays in [0, 1] of shape (..., height, width, 3): one image or a stack.
As in the original (run under NumPy 1), the per-channel differences are taken in the images'
float32 and summed and compared with the thresholds in float64, so s == float32(0.6), which
is above 0.6, counts as above it (NumPy 2 would compare in float32 and say it is not).
Paint from exact_delta_sums (float64): delta_sums rounds s to float32 for saving, and a sum
within half a float32 step of a threshold can round across it (0.5999999978 rounds to
float32(0.6), above 0.6), so painting from the rounded sums can differ from the original.
"""

import numpy as np

# (threshold, RGB colour, colour name), strongest first: the first threshold s exceeds wins.
LEVELS = (
    (1.0, (1.0, 1.0, 0.0), "yellow"),
    (0.6, (0.0, 1.0, 0.0), "green"),
    (0.2, (1.0, 0.0, 1.0), "magenta"),
)


def exact_delta_sums(a, b):
    """s = sum over RGB of (a - b), signed, per pixel, in float64: (..., height, width). The
    differences are float32 like the original's arrays, the sum float64 like its Python sum();
    the sums to compare with the thresholds."""
    d = (np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).astype(np.float64)
    return d[..., 0] + d[..., 1] + d[..., 2]


def delta_sums(a, b):
    """exact_delta_sums rounded to float32, for saving: not for comparing with the thresholds."""
    return exact_delta_sums(a, b).astype(np.float32)


def paint_levels(base, sums):
    """A float32 copy of base, each pixel painted by the highest level its s exceeds; give it
    exact_delta_sums' float64 sums, as the original compared."""
    s = np.asarray(sums).astype(np.float64)
    painted = np.array(np.broadcast_to(base, s.shape + (3,)), dtype=np.float32)
    # weakest level first, so a stronger level overwrites it: the original's if / elif order
    for threshold, colour, _ in reversed(LEVELS):
        painted[s > threshold] = colour
    return painted


def levels_exceeded(sums):
    """(..., len(LEVELS), height, width) bool: whether s exceeds each level's threshold,
    strongest level first, compared as paint_levels compares."""
    s = np.asarray(sums).astype(np.float64)
    return np.stack([s > threshold for threshold, _, _ in LEVELS], axis=-3)


def delta_overlay(a, b):
    """Delta of a against b, overlaid on a float32 copy of b (where b is darker than a)."""
    return paint_levels(b, exact_delta_sums(a, b))


def delta_overlay_per_pixel(a, b):
    """The original's algorithm, one Python loop step per pixel; same result as delta_overlay.
    Kept as the reference the vectorized version is tested and benchmarked against."""
    difference = np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)
    painted = np.array(np.broadcast_to(b, difference.shape), dtype=np.float32)
    height, width = difference.shape[-3:-1]
    flat_difference = difference.reshape(-1, height, width, 3)
    flat_painted = painted.reshape(-1, height, width, 3)
    for image, out in zip(flat_difference, flat_painted):
        for row in range(height):
            for column in range(width):
                s = sum(float(channel) for channel in image[row][column])
                for threshold, colour, _ in LEVELS:
                    if s > threshold:
                        out[row][column] = colour
                        break
    return painted
