"""Synthetic chest X-ray phantoms with known findings: each image's own anatomy (position, size,
body width, brightness, contrast, noise), and in it the finding that makes its class, with the
masks that say where the finding is. make_phantoms.py writes them as a dataset; the tests and
benchmarks draw them directly.

  healthy (0):   clear lungs
  viral (1):     diffuse haze in both lungs
  bacterial (2): one consolidation: in the right lower lobe (the image's left) with the lesion
                 place `fixed`; in either lung, upper or lower zone, drawn per image with `any`
"""

import numpy as np
from PIL import Image

from cganlib.datasets import BACTERIAL, HEALTHY, IMAGE_SIDE, VIRAL

MASK_SIZE = IMAGE_SIDE  # prepare_xrays.py's image size, the size heatmaps are drawn at
GROUND_TRUTH = "ground_truth.npz"
JPEG_QUALITY = 90
SIZE = 512
LESION_STRENGTH = 0.35  # the consolidation's added grey level at its core: plain at 80x80
HAZE_STRENGTH = 0.28  # lungs hazy enough to stay brighter after prepare_xrays.py's equalization
LESION_PLACES = ("fixed", "any")


# ---------------------------------------------------------------- drawing helpers


def smooth_noise(rng, size, cells):
    """Zero-mean, unit-scale noise varying over about `cells` blobs across the image."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((size, size), Image.BICUBIC))


def soft_ellipse(u, v, cx, cy, rx, ry, edge=0.15):
    """1 inside the ellipse, 0 outside, a linear ramp `edge` (in radii) wide across its rim."""
    r = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
    return np.clip((1.0 - r) / edge + 0.5, 0.0, 1.0)


def shrink_mask(mask, size=MASK_SIZE):
    """A full-size boolean mask at size x size: a shrunk pixel is in when most of its area is."""
    area = Image.fromarray(mask.astype(np.float32), "F").resize((size, size), Image.BOX)
    return (np.asarray(area) >= 0.5).astype(np.uint8)


# ---------------------------------------------------------------- one phantom


def draw_anatomy(rng, size):
    """A healthy chest as float32 grey levels (size, size) in about 0..1, and its geometry."""
    # Pixel centres in 0..1, as a row (u, across) and a column (v, down) that broadcast.
    u = (np.arange(size, dtype=np.float32)[None, :] + 0.5) / size
    v = u.T
    s = rng.uniform(0.88, 1.04)  # patient size and distance to the film
    cx, cy = 0.5 + rng.uniform(-0.04, 0.04), 0.5 + rng.uniform(-0.04, 0.04)  # patient position
    geo = {"u": u, "v": v, "s": s}

    # Soft tissue, brightest where thickest: a chest barrel under a band of shoulders.
    width = rng.uniform(0.93, 1.07)
    chest = 1.0 - np.abs((u - cx) / (0.44 * s * width)) ** 3 - ((v - cy - 0.1 * s) / (0.6 * s)) ** 2
    shoulders = 1.0 - ((u - cx) / (0.5 * s * width)) ** 4 - ((v - cy + 0.27 * s) / (0.16 * s)) ** 2
    neck = 1.0 - ((u - cx) / (0.09 * s)) ** 2 - ((v - cy + 0.45 * s) / (0.2 * s)) ** 2
    depth = np.clip(np.maximum(np.maximum(chest, shoulders), neck), 0.0, 1.0)
    inside = np.float32(1) * (depth > 0)
    image = 0.04 + 0.30 * inside + 0.18 * np.sqrt(depth)

    # Lung fields: air, dark, with faint vessels. The patient's right lung (image left) ends a
    # little higher: the liver lifts the right diaphragm.
    lungs = np.zeros((size, size), np.float32)
    for side, ry in ((-1, 0.235 * s), (1, 0.26 * s)):
        lx, ly = cx + side * 0.175 * s, cy - 0.27 * s + ry  # same apex height
        lungs = np.maximum(lungs, soft_ellipse(u, v, lx, ly, 0.12 * s, ry, edge=0.12))
        geo["right_lung" if side == -1 else "left_lung"] = lx, ly, ry  # centre and half-height
    image = image - lungs * (0.30 + 0.025 * smooth_noise(rng, size, 40))

    # Ribs, arcs falling away from the spine; clavicles, rising away from it.
    du = np.abs(u - cx) / s
    phase = (v - cy + 0.3 * s - 1.4 * du**2 * s) / (0.058 * s)
    rib_area = (du > 0.04) & (du < 0.36) & (phase > 0) & (phase < 10)  # ten ribs a side
    ribs = np.exp(-((((phase - np.floor(phase)) - 0.5) / 0.2) ** 2)) * rib_area
    clavicles = np.exp(-(((v - cy + 0.29 * s + 0.2 * du * s) / (0.012 * s)) ** 2)) * ((du > 0.03) & (du < 0.27))
    image = image + (0.08 * ribs + 0.12 * clavicles) * inside

    # Heart (patient's left, image right, low) and mediastinum cover the lungs behind them.
    heart = soft_ellipse(u, v, cx + 0.06 * s, cy + 0.13 * s, 0.14 * s, 0.11 * s, edge=0.2)
    mediastinum = np.clip((0.055 * s - np.abs(u - cx)) / (0.01 * s), 0, 1) * (v > cy - 0.35 * s)
    cover = np.maximum(heart, mediastinum)
    image = image * (1 - cover) + 0.58 * cover

    # Spine: a bright column with a vertebra every 0.045 of the height.
    spine = np.clip((0.035 * s - np.abs(u - cx)) / (0.006 * s), 0, 1) * inside
    image = image + spine * (0.12 + 0.05 * np.cos(2 * np.pi * v / (0.045 * s)))

    geo["lung_weight"] = lungs * (1 - cover)
    geo["lung_field"] = geo["lung_weight"] > 0.5
    return image, geo


def lesion_centre(rng, geo, place):
    """Where the consolidation sits: the right lower lobe (image left, low) for `fixed`; for `any`,
    either lung and its upper or lower zone, drawn. The left lower zone's centre moves out to the
    side, away from the heart that covers the lung's inner part there."""
    s = geo["s"]
    lung, zone = ("right_lung", 1) if place == "fixed" else (str(rng.choice(["right_lung", "left_lung"])),
                                                              int(rng.choice([-1, 1])))
    lx, ly, ry = geo[lung]
    if lung == "left_lung" and zone == 1:
        lx += 0.04 * s
    return lx + rng.uniform(-0.01, 0.01) * s, ly + zone * 0.45 * ry + rng.uniform(-0.01, 0.01) * s


def add_consolidation(rng, image, geo, strength, place="fixed"):
    """Bacterial: one bright irregular patch in a lung (lesion_centre); its mask."""
    s, u, v = geo["s"], geo["u"], geo["v"]
    px, py = lesion_centre(rng, geo, place)
    patch = soft_ellipse(u, v, px, py, 0.075 * s * rng.uniform(0.9, 1.1), 0.065 * s * rng.uniform(0.9, 1.1), 0.4)
    patch = np.clip(patch + 0.25 * smooth_noise(rng, image.shape[0], 24) * (patch > 0), 0, 1)
    patch = patch * geo["lung_weight"]
    return image + strength * patch, patch > 0.5


def add_haze(rng, image, geo, strength):
    """Viral: diffuse interstitial haze over both lungs, a veil with a fine net of brighter lines."""
    net = np.exp(-((smooth_noise(rng, image.shape[0], 48) / 0.35) ** 2))
    return image + strength * geo["lung_weight"] * (0.9 + 0.2 * net)


def finish(rng, image):
    """Exposure (gain, offset, gamma) and film noise; uint8 grey levels."""
    image = np.clip(image, 0, 1) * rng.uniform(0.85, 1.15) + rng.uniform(-0.04, 0.04)
    image = np.clip(image, 0, 1) ** rng.uniform(0.85, 1.15)
    grain = rng.standard_normal(image.shape, dtype=np.float32)
    image = image + 0.02 * smooth_noise(rng, image.shape[0], 8) + 0.012 * grain
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def phantom(seed, label, index, size=SIZE, lesion_strength=LESION_STRENGTH, haze_strength=HAZE_STRENGTH,
            lesion_place="fixed"):
    """One phantom: (uint8 image (size, size), lesion mask, lung mask) at full size."""
    rng = np.random.default_rng([seed, label, index])
    image, geo = draw_anatomy(rng, size)
    lesion = np.zeros_like(geo["lung_field"])
    if label == BACTERIAL:
        image, lesion = add_consolidation(rng, image, geo, lesion_strength, lesion_place)
    elif label == VIRAL:
        image = add_haze(rng, image, geo, haze_strength)
    return finish(rng, image), lesion, geo["lung_field"]


# ---------------------------------------------------------------- the dataset


def file_names(n):
    """Kermany-style names per label; pneumonia patients alternate bacterial and viral."""
    return {
        HEALTHY: [f"train/NORMAL/IM-{k + 1:04d}-0001.jpeg" for k in range(n)],
        BACTERIAL: [f"train/PNEUMONIA/person{2 * k + 1}_bacteria_{k + 1}.jpeg" for k in range(n)],
        VIRAL: [f"train/PNEUMONIA/person{2 * k + 2}_virus_{k + 1}.jpeg" for k in range(n)],
    }
