"""Does a saliency map point at what the classifier uses? The deletion and insertion curves of
Petsiuk et al. 2018 (RISE), which need no ground-truth mask: rank an image's pixels by the map,
replace the top-ranked ones step by step with a reference, and record the classifier's
probability of the image's class after each step.

  deletion:  from the image towards the reference; a map that ranks first what the classifier
             needs makes the probability fall at once: a low area under the curve is better.
  insertion: from the reference towards the image; the probability rises at once: a high area
             is better.

The reference is a blurred copy of the image (the paper's insertion reference, used here for
both), so a replaced pixel keeps its neighbourhood's mean grey level and loses its detail,
rather than turning black, which no X-ray shows. Ties in a map (Grad-CAM's zeros) are ranked at
random, so a flat map scores as a random one does. All the curves of a few images go through the
classifier together.
"""

import numpy as np
from scipy.ndimage import gaussian_filter

CURVE_STEPS = 20  # points on a curve besides its start: 5% of the pixels replaced per step
BLUR_SIGMA = 8.0  # pixels at 80x80: wide enough to wash out a lesion, as the paper's blur does at 224
MAX_INPUTS = 1024  # classifier inputs built at once (80x80x3 float32: 79 MB)
BATCH_SIZE = 256


def blurred(images, sigma=BLUR_SIGMA, mode="nearest"):
    """Each image (N, H, W, C) blurred across its pixels (not its channels) by a Gaussian of
    `sigma` pixels; the edges repeated, or as scipy's `mode` says."""
    return gaussian_filter(np.asarray(images, np.float32), sigma=(0, sigma, sigma, 0), mode=mode)


def pixel_ranks(maps, rng):
    """Each pixel's place when its map is sorted from high to low (0: the highest), ties in an
    order drawn from rng; maps (..., H, W) -> ranks of the same shape."""
    flat = np.asarray(maps, np.float64).reshape(-1, maps.shape[-2] * maps.shape[-1])
    order = np.lexsort((rng.random(flat.shape), -flat), axis=-1)  # the last key sorts first
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=-1)
    return ranks.reshape(maps.shape)


def replaced_counts(n_pixels, steps):
    """How many of the top-ranked pixels are replaced at each point, 0 to all: (steps + 1,)."""
    return np.round(np.linspace(0, n_pixels, steps + 1)).astype(np.int64)


def curve_inputs(image, reference, ranks, steps):
    """(deletion inputs, insertion inputs), each (M, steps + 1, H, W, C), for one image (H, W, C),
    its reference and the pixel ranks of its M maps (M, H, W)."""
    counts = replaced_counts(ranks.shape[-2] * ranks.shape[-1], steps)
    replaced = (ranks[:, None] < counts[None, :, None, None])[..., None]  # (M, steps + 1, H, W, 1)
    return np.where(replaced, reference, image), np.where(replaced, image, reference)


def class_scores(model, inputs, batch_size=BATCH_SIZE):
    """The model's outputs, a batch at a time through predict_on_batch: predict() sets up a data
    pipeline on every call, which made the curves take twice the time."""
    return np.concatenate([model.predict_on_batch(inputs[k : k + batch_size]) for k in range(0, len(inputs), batch_size)])


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def deletion_insertion_curves(model, images, labels, maps, steps=CURVE_STEPS, seed=0, sigma=BLUR_SIGMA):
    """(deletion curves, insertion curves), each (N, M, steps + 1): the classifier's probability
    of each image's class (labels (N,)) as its pixels are replaced in the order of each of its M
    maps (N, M, H, W). images (N, H, W, C) are the classifier's input (0..255 for ours); model
    gives class scores (logits)."""
    images = np.asarray(images, np.float32)
    ranks = pixel_ranks(maps, np.random.default_rng(seed))
    references = blurred(images, sigma)
    n_maps = maps.shape[1]
    per_call = max(1, MAX_INPUTS // (2 * n_maps * (steps + 1)))
    deletion, insertion = [], []
    for start in range(0, len(images), per_call):
        batch = range(start, min(start + per_call, len(images)))
        inputs = np.stack([np.stack(curve_inputs(images[i], references[i], ranks[i], steps)) for i in batch])
        logits = class_scores(model, inputs.reshape(-1, *images.shape[1:]))
        shape = (len(batch), 2, n_maps, steps + 1)
        probability = softmax(logits).reshape(*shape, -1)[np.arange(len(batch)), ..., labels[start : batch.stop]]
        deletion.append(probability[:, 0])
        insertion.append(probability[:, 1])
    return np.concatenate(deletion), np.concatenate(insertion)


def area_under(curves):
    """The area under each curve, its points evenly spread over the replaced share 0..1 (trapezoids)."""
    curves = np.asarray(curves, np.float64)
    return np.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), axis=-1)
