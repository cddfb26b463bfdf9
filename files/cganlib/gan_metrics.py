"""How good a generator's images are, measured against the real images of the same class: the
measures evaluate.py writes for every epoch and class.

Images are float arrays (N, 80, 80, 3) in [0, 1]; features are the classifier's pooled features
(classifier.features_and_classes), the only features this project can train itself: the
InceptionV3 weights of the literature's FID, KID and precision/recall cannot be fetched here.
So `fd` is a Fréchet distance and `kid` a kernel distance on *this classifier's* features, not
the FID and KID of published tables, and their values cannot be compared with those.

- diversity: mean multi-scale SSIM (Wang et al. 2003) over random pairs of images: AC-GAN's
  measure of mode collapse (Odena et al. 2017); 1 for identical images, higher is less varied.
  At 80x80 with the 11-pixel Gaussian window (sigma 1.5) three scales fit: 80, 40 and 20 pixels
  (the original's two coarser scales, 10 and 5 pixels, are smaller than the window), weighted by
  the original's weights of those three scales, renormalized to sum to 1. On the images' grey
  level (ITU-R 601 luma), as Wang et al. define it. Written here with SciPy's separable Gaussian
  filter over a batch of pairs: tf.image.ssim_multiscale, the one packaged version, took 30 s for
  500 pairs on our 2 shared cores, 2-D 11x11 convolutions where two 1-D ones do.
- frechet_distance: ||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) of Gaussians fitted to
  the two feature sets (Heusel et al. 2017).
- kernel_distance: the unbiased estimate of the squared MMD with the polynomial kernel
  (x.y / d + 1)^3 (Binkowski et al. 2018), on the whole sets (the paper's subsets only bound the
  memory of tens of thousands of images).
- precision_recall: the k-nearest-neighbour manifold estimates of Kynkäänniemi et al. 2019, k=3:
  precision, the share of generated images inside the real images' manifold (the union of balls
  reaching each real image's k-th nearest real neighbour); recall, the share of real images inside
  the generated images' manifold.
- nearest_real_scores: each generated image's SSIM and PSNR to its nearest real image in pixels
  (least squared error, so the largest PSNR), as the MedImageGAN project reported: values near
  1 and high PSNR flag copies of training images. The SSIM is scikit-image's
  structural_similarity with its defaults (pair_ssim), computed for all pairs at once.
"""

import csv

import numpy as np
from scipy import linalg, ndimage
from skimage.metrics import peak_signal_noise_ratio
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from cganlib.storage import open_regular

# evaluate.py's table, evaluation.csv: a row per epoch and class
FIELDS = ("epoch", "label", "n", "label_accuracy", "diversity_gen", "diversity_real", "fd", "kid", "precision",
          "recall", "nn_ssim", "nn_psnr")
MEASURES = FIELDS[3:]
FLOOR_EPOCH = "real"  # the real-against-real rows
ALL_CLASSES = "all"  # the rows of every class together

KNN_K = 3
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5  # the Gaussian window of Wang et al. 2003: 11 x 11 pixels
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # their constants, for images in [0, 1]
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001)  # their weights of the three finest scales: 80, 40, 20 pixels
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as tf.image.rgb_to_grayscale
DIVERSITY_PAIRS = 500  # random pairs per set: a standard error of about 0.005 on the mean
# A warning when the generated images' dissimilarity (1 - diversity) is below this share of the real
# images': the generator has lost more than half of the class's variety, far beyond the pairs' sampling noise.
COLLAPSE_SHARE = 0.5
COVARIANCE_RIDGE = 1e-6
SKIMAGE_WINDOW = 7  # structural_similarity's default window: uniform, 7 x 7 pixels


def _ssim_parts(x, y):
    """Per pair of grey images (N, h, w): (mean luminance term, mean contrast-structure term),
    over the pixels whose whole window lies inside the image."""

    def blur(image):
        return ndimage.gaussian_filter(image, sigma=(0, SSIM_SIGMA, SSIM_SIGMA), truncate=SSIM_RADIUS / SSIM_SIGMA)

    mean_x, mean_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mean_x**2, blur(y * y) - mean_y**2
    covariance = blur(x * y) - mean_x * mean_y
    luminance = (2 * mean_x * mean_y + SSIM_C1) / (mean_x**2 + mean_y**2 + SSIM_C1)
    contrast_structure = (2 * covariance + SSIM_C2) / (var_x + var_y + SSIM_C2)
    inside = (slice(None), slice(SSIM_RADIUS, -SSIM_RADIUS), slice(SSIM_RADIUS, -SSIM_RADIUS))
    return luminance[inside].mean(axis=(1, 2)), contrast_structure[inside].mean(axis=(1, 2))


def ms_ssim(a, b):
    """Multi-scale SSIM of each pair (a[i], b[i]) of RGB images, on their luma: (N,) float64.
    Negative terms count as 0, as in TensorFlow's version (a fractional power of them is undefined)."""
    x, y = (np.asarray(images, np.float32) @ np.asarray(LUMA, np.float32) for images in (a, b))
    weights = np.asarray(MS_SSIM_WEIGHTS) / sum(MS_SSIM_WEIGHTS)
    score = np.ones(len(x))
    for scale, weight in enumerate(weights):
        luminance, contrast_structure = _ssim_parts(x, y)
        term = contrast_structure if scale < len(weights) - 1 else luminance * contrast_structure
        score *= np.maximum(term.astype(np.float64), 0.0) ** weight
        n, h, w = x.shape
        x, y = (image.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4)) for image in (x, y))  # 2x2 average
    return score


def diversity(images, rng, n_pairs=DIVERSITY_PAIRS):
    """Mean multi-scale SSIM of n_pairs random pairs of different images (by index) of the set."""
    n = len(images)
    first = rng.integers(0, n, n_pairs)
    second = (first + rng.integers(1, n, n_pairs)) % n  # never the same index
    return float(ms_ssim(images[first], images[second]).mean())


def collapsed(diversity_generated, diversity_real, share=COLLAPSE_SHARE):
    """Whether the generated images are much less varied than the real ones (see COLLAPSE_SHARE)."""
    return (1.0 - diversity_generated) < share * (1.0 - diversity_real)


def frechet_distance(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    # a feature channel that is 0 for every image (a dead ReLU) makes a covariance singular:
    # a tiny ridge keeps the square root defined, as the FID reference code does
    ridge = COVARIANCE_RIDGE * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = linalg.sqrtm(cov_a @ cov_b).real  # the imaginary part is rounding error
    distance = np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2) + np.trace(cov_a + cov_b - 2.0 * root)
    return float(max(distance, 0.0))  # rounding can take identical sets a hair below 0


def kernel_distance(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    width = a.shape[1]

    def kernel(x, y):
        return (x @ y.T / width + 1.0) ** 3

    m, n = len(a), len(b)
    k_aa, k_bb = kernel(a, a), kernel(b, b)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(within_a + within_b - 2.0 * kernel(a, b).mean())


def _coverage(points, manifold, k):
    """The share of points within the k-NN ball of some sample of the manifold."""
    radii = NearestNeighbors(n_neighbors=k + 1).fit(manifold).kneighbors(manifold)[0][:, k]  # [:, 0]: itself
    return float(np.mean((pairwise_distances(points, manifold) <= radii[None, :]).any(axis=1)))


def precision_recall(real, generated, k=KNN_K):
    return _coverage(generated, real, k), _coverage(real, generated, k)


def pair_ssim(a, b):
    """SSIM of each pair (a[i], b[i]) of RGB images in [0, 1], as scikit-image's
    structural_similarity(a[i], b[i], data_range=1, channel_axis=-1) computes it (a 7x7 uniform
    window, sample covariances, the mean over the channels and the pixels 3 or more from the
    border), for all pairs in one pass: one call per pair took 3 ms, most of evaluate.py's time. (N,) float64."""
    x, y = np.asarray(a, np.float32), np.asarray(b, np.float32)

    def mean(image):
        return ndimage.uniform_filter(image, size=(1, SKIMAGE_WINDOW, SKIMAGE_WINDOW, 1))

    sample = SKIMAGE_WINDOW**2 / (SKIMAGE_WINDOW**2 - 1)
    mean_x, mean_y = mean(x), mean(y)
    var_x, var_y = sample * (mean(x * x) - mean_x**2), sample * (mean(y * y) - mean_y**2)
    covariance = sample * (mean(x * y) - mean_x * mean_y)
    ssim = ((2 * mean_x * mean_y + SSIM_C1) * (2 * covariance + SSIM_C2)
            / ((mean_x**2 + mean_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)))
    border = SKIMAGE_WINDOW // 2
    return ssim[:, border:-border, border:-border].mean(axis=(1, 2, 3), dtype=np.float64)


def nearest_real_scores(generated, real):
    """(mean SSIM, mean PSNR in dB) of each generated image against its nearest real image; a
    copy of a real image has PSNR infinity, and so then has the mean."""
    g, r = generated.reshape(len(generated), -1), real.reshape(len(real), -1)
    squared = (g**2).sum(axis=1)[:, None] - 2.0 * g @ r.T + (r**2).sum(axis=1)[None, :]
    nearest = np.argmin(squared, axis=1)
    ssim = pair_ssim(generated, real[nearest])
    with np.errstate(divide="ignore"):  # identical images: PSNR infinity
        psnr = [peak_signal_noise_ratio(real[j], image, data_range=1.0) for image, j in zip(generated, nearest)]
    return float(np.mean(ssim)), float(np.mean(psnr))


def measures(real, real_features, generated, generated_features, rng):
    """Every measure of one generated set against one real set but the label accuracy and the
    real set's diversity (the same at every epoch: measured once)."""
    precision, recall = precision_recall(real_features, generated_features)
    nn_ssim, nn_psnr = nearest_real_scores(generated, real)
    return {
        "diversity_gen": diversity(generated, rng),
        "fd": frechet_distance(real_features, generated_features),
        "kid": kernel_distance(real_features, generated_features),
        "precision": precision,
        "recall": recall,
        "nn_ssim": nn_ssim,
        "nn_psnr": nn_psnr,
    }


# ---------------------------------------------------------------- evaluation.csv, read back (the demo reads it)


def read_csv(path):
    """evaluation.csv's rows: epoch and label as written (`real`, `all`), the rest as floats."""
    with open_regular(path, newline="") as f:
        return [{key: value if key in ("epoch", "label") else float(value) for key, value in row.items()}
                for row in csv.DictReader(f)]


def collapsed_classes(rows):
    """The labels whose generated images `collapsed` flags at the last epoch of read_csv's rows."""
    epochs = [int(row["epoch"]) for row in rows if row["epoch"] != FLOOR_EPOCH]
    if not epochs:
        return []
    last = str(max(epochs))
    return [int(row["label"]) for row in rows if row["epoch"] == last and row["label"] != ALL_CLASSES
            and collapsed(row["diversity_gen"], row["diversity_real"])]


def last_epoch_means(rows, keys=("precision", "recall")):
    """{key: its mean over the classes (not `all`) at the last epoch of read_csv's rows}."""
    epochs = [int(row["epoch"]) for row in rows if row["epoch"] != FLOOR_EPOCH]
    if not epochs:
        return {key: float("nan") for key in keys}
    last = [row for row in rows if row["epoch"] == str(max(epochs)) and row["label"] != ALL_CLASSES]
    return {key: float(np.mean([row[key] for row in last])) for key in keys}


def class_summaries(rows, class_names):
    """One line per class of read_csv's rows: each measure's mean over the epochs evaluated,
    the real-against-real floor in brackets."""
    lines = []
    for label, name in enumerate(class_names):
        found = [row for row in rows if row["label"] == str(label) and row["epoch"] != FLOOR_EPOCH]
        floor = [row for row in rows if row["label"] == str(label) and row["epoch"] == FLOOR_EPOCH]
        if not found or not floor:
            continue
        epochs = ", ".join(row["epoch"] for row in found)
        parts = [f"{key} {np.mean([row[key] for row in found]):.3g} [{floor[0][key]:.3g}]" for key in MEASURES]
        lines.append(f"{name} (epochs {epochs}): " + ", ".join(parts))
    return lines
