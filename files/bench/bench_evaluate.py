"""Benchmark of evaluate.py's work for one epoch, part by part, at its default --n 500 per class:
generating the images, the classifier's features of them, and each measure of every class's set
and of the `all` set against the real images; then the whole epoch as evaluate.py runs it.
At the demo's size: 3 classes, 900 real images, a width-16 generator, the demo's classifier
architecture (its weights are untrained here: the work does not depend on them).

Reads nothing; prints to stdout.

    python files/bench/bench_evaluate.py             # about a minute on 2 CPU cores
    python files/bench/bench_evaluate.py --n 200     # the demo's evaluation size
    python files/bench/bench_evaluate.py --smoke     # every part once, smallest size

Last line: RESULT epoch_s=<one epoch, median> and each part's median seconds.
"""

import argparse
import os
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import numpy as np
from bench_train import median_seconds, onednn_enabled

from cganlib import cgan, evaluation
from cganlib.classifier import build_classifier, features_and_classes, features_model
from cganlib.gan_metrics import (
    diversity,
    frechet_distance,
    kernel_distance,
    nearest_real_scores,
    precision_recall,
)

LABELS = (0, 1, 2)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500, help="generated images per class (evaluate.py's default 500)")
    p.add_argument("--real", type=int, default=900, help="real images, split evenly over 3 classes (the demo's 900)")
    p.add_argument("--filters", type=int, default=16, help="the generator's width (the demo's 16)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of each part (median)")
    p.add_argument("--smoke", action="store_true", help="every part once at the smallest size: checks it runs")
    args = p.parse_args()
    if args.smoke:
        args.n, args.real, args.filters, args.repeats = 20, 60, 4, 1
    return args


def measure_parts(real, real_features, generated, generated_features):
    """{part: function} of gan_metrics.measures, each over every class's set and the `all` set, as
    evaluation.measured_rows calls it."""
    sets = [(real[k], real_features[k], generated[k], generated_features[k]) for k in LABELS]
    sets.append(tuple(evaluation.pooled(d) for d in (real, real_features, generated, generated_features)))
    return {
        "diversity (multi-scale SSIM of 500 pairs)": lambda: [diversity(g, np.random.default_rng(0)) for _, _, g, _ in sets],
        "Frechet distance": lambda: [frechet_distance(rf, gf) for _, rf, _, gf in sets],
        "kernel distance": lambda: [kernel_distance(rf, gf) for _, rf, _, gf in sets],
        "precision and recall (k=3)": lambda: [precision_recall(rf, gf) for _, rf, _, gf in sets],
        "nearest real image's SSIM and PSNR": lambda: [nearest_real_scores(g, r) for r, _, g, _ in sets],
    }


def main():
    args = parse_args()
    print(f"oneDNN {'on' if onednn_enabled() else 'off'} (TF_ENABLE_ONEDNN_OPTS), --n {args.n} per class, "
          f"{args.real} real images, generator width {args.filters}, median of {args.repeats}")
    rng = np.random.default_rng(0)
    per_class = args.real // len(LABELS)
    real_pixels = rng.integers(0, 256, (len(LABELS), per_class, *cgan.IMAGE_SHAPE), dtype=np.uint8)
    generator = cgan.build_generator(len(LABELS), filters=args.filters)
    features = features_model(build_classifier(len(LABELS)))
    real = {k: real_pixels[k].astype(np.float32) / 255.0 for k in LABELS}
    real_features = {k: features_and_classes(features, real_pixels[k])[0] for k in LABELS}
    options = SimpleNamespace(labels=list(LABELS), n=args.n, seed=0)
    real_diversity = evaluation.real_diversities(real, options.seed)

    def generate():
        return evaluation.generated_sets(generator, options.labels, options.n, options.seed)

    generated = generate()
    generated_features = {k: features_and_classes(features, generated[k] * 255.0)[0] for k in LABELS}
    parts = {
        "generating the images": generate,
        "the classifier's features": lambda: features_and_classes(features, evaluation.pooled(generated) * 255.0),
        **measure_parts(real, real_features, generated, generated_features),
    }
    seconds = {name: median_seconds(part, args.repeats, warmup=1) for name, part in parts.items()}
    for name, s in seconds.items():
        print(f"  {name}: {s:.2f} s")
    epoch_s = median_seconds(lambda: evaluation.evaluate_epoch(1, generator, features, real, real_features,
                                                               real_diversity, options), args.repeats, warmup=1)
    print(f"one epoch (evaluation.evaluate_epoch): {epoch_s:.2f} s; the parts add up to {sum(seconds.values()):.2f} s")
    keys = ("generate", "features", "diversity", "fd", "kid", "precision_recall", "nearest_real")
    print(f"RESULT epoch_s={epoch_s:.3f} " + " ".join(f"{key}_s={s:.3f}" for key, s in zip(keys, seconds.values())))


if __name__ == "__main__":
    main()
