"""Loading chest X-rays as prepare_xrays.py prepares them: resized, histogram-equalized on their
grey levels and stored as 3 equal channels; fast, with JPEGs decoded at a reduced scale on
several threads.
"""

import numpy as np

from cganlib.datasets import grey_rgb, read_image, read_in_threads


def reduce_decoding(image, size):
    """Ask the JPEG decoder of a just-opened image for the smallest of 1/2, 1/4, 1/8 scale still
    at least twice `size` on each side, so the resize after it still averages over several
    pixels. Other formats ignore the request."""
    image.draft("RGB", (2 * size, 2 * size))


def load_xray(path, size, equalize=True, reduced=True):
    """(pixels (size, size, 3) uint8, None), or (None, the reason the file cannot be used)."""

    def shrink(image):
        if reduced:
            reduce_decoding(image, size)
        # grey JPEGs (most X-rays) skip the RGB round trip: the same pixels, less work
        return (image if image.mode == "L" else image.convert("RGB")).resize((size, size))

    small, reason = read_image(path, shrink)
    if small is None:
        return None, reason
    if equalize:
        return grey_rgb(small, equalize=True), None
    pixels = np.asarray(small)
    return (np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels), None


def load_xrays(paths, size, equalize=True, workers=1, reduced=True):
    """load_xray for each path, in order, decoded by `workers` threads."""
    return read_in_threads(lambda path: load_xray(path, size, equalize, reduced), paths, workers)
