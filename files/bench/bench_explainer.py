"""Benchmark of the explainer's training step (train_explainer.py): one compiled step of the
explainer and its critic on a batch of synthetic 80x80 images, at the widths given, with and
without the cycle term, and of the encoder-decoder (design b) with its latent critic; and the switch of 500 images (explain_image.py --explainer's work). The
demo plans the explainer's epochs from the step's time (demo.py SECONDS_PER_EXPLAINER_STEP).

Reads nothing; writes nothing; prints to stdout.

    python files/bench/bench_explainer.py                  # about a minute on 2 CPU cores
    python files/bench/bench_explainer.py --filters 8 16   # the step at each width
    python files/bench/bench_explainer.py --smoke          # every part once, smallest size

Last line: RESULT step_s_f<width>=<median step> ... switch_500_s=<seconds> (the first width's).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import numpy as np
import tensorflow as tf
from timing import median_seconds, onednn_enabled

from cganlib.config import ExplainerConfig
from cganlib.explainer import Trainer, batch_plan, switch

N_CLASSES = 3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--filters", type=int, nargs="+", default=[ExplainerConfig().filters], help="widths to time")
    p.add_argument("--n_batch", type=int, default=ExplainerConfig().n_batch, help="the batch (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=20, help="timed steps (median)")
    p.add_argument("--smoke", action="store_true", help="every part once at the smallest size: checks it runs")
    args = p.parse_args()
    if args.smoke:
        args.filters, args.repeats = [4], 1
    return args


def step_seconds(config, repeats, rng):
    """The median time of one training step at this config."""
    trainer = Trainer(config, N_CLASSES)
    labels = rng.integers(0, N_CLASSES, 4 * config.n_batch).astype(np.int32)
    images = rng.uniform(-1, 1, (len(labels), 80, 80, 3)).astype(np.float32)
    rows, targets = batch_plan(labels, config.n_batch, N_CLASSES, rng)
    batch = (tf.constant(images[rows[0]]), tf.constant(labels[rows[0]]), tf.constant(targets[0]))
    return median_seconds(lambda: trainer.step(*batch), repeats), trainer


def switch_seconds(explainer, n, rng):
    """The time of switching n images, after one switch of them."""
    images = rng.uniform(-1, 1, (n, 80, 80, 3)).astype(np.float32)
    targets = rng.integers(0, N_CLASSES, n)
    return median_seconds(lambda: switch(explainer, images, targets, N_CLASSES), 1, 1)


def main():
    args = parse_args()
    rng = np.random.default_rng(0)
    print(f"oneDNN kernels: {'on' if onednn_enabled() else 'off'}; batch {args.n_batch}; median of {args.repeats} steps")
    results = {}
    for filters in args.filters:
        seconds, trainer = step_seconds(ExplainerConfig(filters=filters, n_batch=args.n_batch), args.repeats, rng)
        cycle, _ = step_seconds(ExplainerConfig(filters=filters, n_batch=args.n_batch, cycle_weight=1.0), args.repeats, rng)
        coded, _ = step_seconds(ExplainerConfig(filters=filters, n_batch=args.n_batch, architecture="encoder_decoder",
                                                latent_weight=1.0), args.repeats, rng)
        print(f"width {filters}: a step {seconds * 1000:.1f} ms, with the cycle term {cycle * 1000:.1f} ms, "
              f"the encoder-decoder with its latent critic {coded * 1000:.1f} ms", flush=True)
        results[f"step_s_f{filters}"] = seconds
        if len(results) == 1:
            n = 8 if args.smoke else 500
            results["switch_500_s"] = switch_seconds(trainer.explainer, n, rng)
            print(f"width {filters}: switching {n} images {results['switch_500_s']:.2f} s")
    print("RESULT " + " ".join(f"{key}={value:.4f}" for key, value in results.items()))


if __name__ == "__main__":
    main()
