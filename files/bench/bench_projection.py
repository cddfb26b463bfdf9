"""Benchmark of one projection step (explain_image.py's Adam step on a batch of latents), its
loss's SSIM term computed by tf.image.ssim against cganlib/ssim.py's separable window, and
without the SSIM term (--ssim_weight 0).

Reads nothing; writes nothing but stdout. A generator of the demo's width with random weights:
the step's cost does not depend on what it learnt.

    python files/bench/bench_projection.py            # about a minute on 2 CPU cores
    python files/bench/bench_projection.py --smoke    # every part once, smallest size

Last line: RESULT tf_ssim_step_s=... separable_ssim_step_s=... mse_step_s=... speedup=...
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from timing import median_seconds

from cganlib import cgan, config, projection

SMALL = config.resolve("xray", "small")
SSIM_WEIGHT = 0.2  # explain_image.py's default --ssim_weight


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latents", type=int, default=40, help="latents moved at once (default: %(default)s)")
    p.add_argument("--filters", type=int, default=SMALL.filters, help="the generator's width (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per way (median; default: %(default)s)")
    p.add_argument("--smoke", action="store_true", help="every part once at the smallest size: checks it runs")
    return p.parse_args()


def step_seconds(generator, n, ssim, ssim_weight, repeats):
    """The median time of one Adam step on n latents whose loss takes its SSIM from `ssim`."""
    rng = np.random.default_rng(0)
    targets = tf.constant(rng.random((n, *cgan.IMAGE_SHAPE)).astype(np.float32))
    labels = tf.constant((np.arange(n) % 3).reshape(-1, 1).astype(np.int32))
    z = tf.Variable(cgan.training_latents(rng, n, generator.inputs[0].shape[1]))
    optimizer = keras.optimizers.Adam(learning_rate=0.05)
    optimizer.build([z])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            images = (generator([z, labels], training=False) + 1.0) / 2.0
            loss = tf.reduce_mean(tf.square(images - targets), axis=[1, 2, 3])
            if ssim_weight:
                loss += ssim_weight * (1.0 - ssim(images, targets))
            total = tf.reduce_sum(loss)
        optimizer.apply_gradients([(tape.gradient(total, z), z)])

    return median_seconds(lambda: step(), repeats)


def main():
    args = parse_args()
    n, filters, repeats = (4, 4, 1) if args.smoke else (args.latents, args.filters, args.repeats)
    generator = cgan.build_generator(3, SMALL.latent_dim, filters)
    seconds = {
        "tf.image.ssim": step_seconds(generator, n, lambda a, b: tf.image.ssim(a, b, max_val=1.0), SSIM_WEIGHT, repeats),
        "separable window": step_seconds(generator, n, projection.separable_ssim, SSIM_WEIGHT, repeats),
        "no SSIM term": step_seconds(generator, n, None, 0.0, repeats),
    }
    print(f"a projection step on {n} latents, width {filters}, median of {repeats}:")
    for name, s in seconds.items():
        print(f"  {name}: {s * 1e3:.1f} ms")
    tf_s, ours, mse = seconds.values()
    print(f"RESULT tf_ssim_step_s={tf_s:.4f} separable_ssim_step_s={ours:.4f} mse_step_s={mse:.4f} speedup={tf_s / ours:.2f}")


if __name__ == "__main__":
    main()
