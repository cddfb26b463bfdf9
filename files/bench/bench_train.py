"""Benchmark of a training step at the original's size, against the machine's arithmetic limit
and against a plain Keras 3 port of the original's loop; and of the heatmap deltas.

Reads nothing; writes nothing but stdout. Synthetic data: 50,000 uint8 images (the original's
set size) held in memory as training holds them.

    python files/bench/bench_train.py            # ~10 minutes on 2 CPU cores
    python files/bench/bench_train.py --quick    # fewer steps, same figures
    python files/bench/bench_train.py --smoke    # every part at the smallest size: checks it runs
    python files/bench/bench_train.py --cpu_devices 2   # instead: the step on 1 and 2 replicas

Floating-point work is counted from the layer shapes (2 FLOPs per multiply-add of every
Conv2D, Conv2DTranspose and Dense layer); backward passes cost twice their forward pass when
both input and weight gradients are needed, once when only input gradients are (the
discriminator inside the GAN step). Last line: RESULT step_s=... (figures by machine: files/bench/README.md).

--cpu_devices N times train_cgan's step under tf.distribute instead: on one device (train_cgan's
--strategy default), then MirroredStrategy over 1..N logical CPU devices, the global batch split
across them; the overhead of the strategy, since logical devices share the same cores. Last
line: RESULT default_step_s=... mirrored_step_s=1:...,2:...
"""

import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from timing import median_seconds, onednn_enabled

from cganlib import cgan, config, datasets, delta_heatmaps, distribution
from cganlib.delta import delta_overlay, delta_overlay_per_pixel
from cganlib.training import Trainer

N_CLASSES = 3
ORIGINAL = config.resolve("xray")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer steps (every figure still printed)")
    p.add_argument("--steps", type=int, help="timed steps per variant (default 6, quick 2)")
    p.add_argument("--images", type=int, default=50_000, help="synthetic training set size")
    p.add_argument("--filters", type=int, default=ORIGINAL.filters, help="width (default: %(default)s, the original's)")
    p.add_argument("--n_batch", type=int, default=ORIGINAL.n_batch, help="batch (default: %(default)s, the original's)")
    p.add_argument("--smoke", action="store_true",
                   help="every part once at the smallest size (128 images, width 4, batch 8): checks that the "
                        "benchmark runs; its figures mean nothing")
    p.add_argument("--cpu_devices", type=int,
                   help="instead: the step on one device and on 1..N replicas over N logical CPU devices")
    args = p.parse_args()
    if args.smoke:
        args.quick, args.steps, args.images, args.filters, args.n_batch = True, 1, 128, 4, 8
    return args


# ---------------------------------------------------------------- counting and timing


def forward_flops(model):
    """FLOPs of one image's forward pass, from the layer shapes."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            kh, kw = layer.kernel_size
            macs += h * w * c_in * kh * kw * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            macs += h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            macs += int(np.prod(layer.output.shape[1:])) * layer.input.shape[-1]
    return 2 * macs


def step_flops(g, d, n_batch):
    """FLOPs of the three updates of one batch (d on a real half batch, d on a fake one, the GAN)."""
    half = n_batch // 2
    fd, fg = forward_flops(d), forward_flops(g)
    d_real = 3 * fd * half  # forward + input and weight gradients
    d_fake = fg * half + 3 * fd * half  # generate, then the same
    gan = 3 * fg * n_batch + 2 * fd * n_batch  # d: forward + input gradients only
    return d_real + d_fake + gan


def matmul_gflops(n=4096, repeats=6):
    """float32 matrix-product rate of this machine (best of repeats)."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9






def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


# ---------------------------------------------------------------- the variants


def build(c):
    g = cgan.build_generator(N_CLASSES, c.latent_dim, c.filters)
    d = cgan.build_discriminator(N_CLASSES, c.filters, c.d_lr, c.d_beta1)
    return g, d, cgan.build_gan(g, d, c.g_lr, c.g_beta1)


def ours(images, labels, c, steps, bfloat16=False):
    """train_cgan's step; bfloat16 as its --mixed_precision sets it (cgan.set_bfloat16), where
    the machine computes in bfloat16 (None on other CPUs: the option trains in float32 there)."""
    if bfloat16 and not cgan.set_bfloat16():
        return None, None
    g, d, gan = build(c)
    trainer = Trainer(g, d, gan, images, labels, c, np.random.default_rng(0))
    seconds = median_seconds(trainer.step, steps)
    cgan.set_bfloat16(False)
    return seconds, (g, d)


def plain_port(images, labels, c, steps):
    """The original's loop transcribed to Keras 3: predict for the fakes, train_on_batch three
    times (the GAN's copy of d frozen the Keras 3 way, so its weights stay in the GAN step)."""
    g, d, gan = build(c)
    d.trainable = False
    gan.compile(loss="binary_crossentropy", optimizer=cgan.adamax(c.g_lr, c.g_beta1))
    d.trainable = True
    d.compile(loss="binary_crossentropy", optimizer=cgan.adamax(c.d_lr, c.d_beta1), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    cum = datasets.cumulative_fractions(labels, N_CLASSES)
    half = c.n_batch // 2

    def step():
        idx = rng.integers(0, len(images), half)
        d.train_on_batch([cgan.scale_images(images[idx]), labels[idx]], np.ones((half, 1)))
        z, y = cgan.training_latents(rng, half), cgan.sample_labels(rng, half, cum)
        fakes = g.predict([z, y], verbose=0)
        d.train_on_batch([fakes, y], np.zeros((half, 1)))
        z, y = cgan.training_latents(rng, c.n_batch), cgan.sample_labels(rng, c.n_batch, cum)
        gan.train_on_batch([z, y], np.ones((c.n_batch, 1)))

    return median_seconds(step, steps)


def replica_step_seconds(images, labels, c, steps, strategy=None):
    """train_cgan's step with its models made under strategy (None: one device, train_cgan's default)."""
    with (strategy or tf.distribute.get_strategy()).scope():
        g, d, gan = build(c)
    trainer = Trainer(g, d, gan, images, labels, c, np.random.default_rng(0), strategy)
    return median_seconds(trainer.step, steps)


def replica_figures(images, labels, c, steps, cpu_devices):
    """Seconds a step on one device, then on 1..cpu_devices replicas of MirroredStrategy."""
    one = replica_step_seconds(images, labels, c, steps)
    print(f"one device (--strategy default): {one:.3f} s/step")
    mirrored = {}
    for n in range(1, cpu_devices + 1):
        strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(n)])
        mirrored[n] = replica_step_seconds(images, labels, c, steps, strategy)
        print(f"mirrored, {n} replica(s) of {c.n_batch // n} images: {mirrored[n]:.3f} s/step, "
              f"{mirrored[n] / one:.2f}x the one-device step")
    times = ",".join(f"{n}:{seconds:.4f}" for n, seconds in mirrored.items())
    print(f"RESULT default_step_s={one:.4f} mirrored_step_s={times}")


def heatmap_figures(filters, loop_images):
    """Seconds per model file for heatmaps.py's work (generation, deltas, figure), and seconds per
    image of the delta overlay against the original's per-pixel loop (on loop_images of the same
    images, the loop being slow)."""
    g = cgan.build_generator(N_CLASSES, filters=filters)
    settings = datasets.DATASETS["xray"]
    latents = cgan.heatmap_latents(np.random.default_rng(0), settings.heatmap_samples)
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        images, deltas = delta_heatmaps.heatmap_arrays(g, settings.heatmap_labels, latents)
        delta_heatmaps.render_figure(images, deltas, settings.heatmap_labels, "bench", os.path.join(folder, "h.png"), settings)
        per_model = time.perf_counter() - t
    pairs = [(a, b) for a in range(len(images)) for b in range(len(images)) if a != b]
    looped = [(a, b, k) for a, b in pairs for k in range(images.shape[1])][:loop_images]

    def vectorized():
        for a, b in pairs:
            delta_overlay(images[a], images[b])

    def per_pixel():
        for a, b, k in looped:
            delta_overlay_per_pixel(images[a][k], images[b][k])

    fast = median_seconds(vectorized, 5, warmup=1) / (len(pairs) * images.shape[1])
    slow = median_seconds(per_pixel, 1, warmup=0) / len(looped)
    return per_model, fast, slow


def main():
    args = parse_args()
    steps = args.steps or (2 if args.quick else 6)
    c = config.resolve("xray", filters=args.filters, n_batch=args.n_batch)
    if args.cpu_devices:
        distribution.use_cpu_devices(args.cpu_devices)  # before TensorFlow sets up its devices
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, devices: "
          f"{[d.device_type for d in tf.config.list_physical_devices()]}, "
          f"threads intra={tf.config.threading.get_intra_op_parallelism_threads()} "
          f"inter={tf.config.threading.get_inter_op_parallelism_threads()}, cpus={os.cpu_count()}, "
          f"oneDNN {'on' if onednn_enabled() else 'off'} (TF_ENABLE_ONEDNN_OPTS)")
    side = 256 if args.smoke else 4096
    peak = matmul_gflops(side)
    print(f"float32 matrix product ({side}^2): {peak:.1f} GFLOP/s")

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, *cgan.IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, args.images).astype(np.int32)
    if args.cpu_devices:
        return replica_figures(images, labels, c, steps, args.cpu_devices)
    step_s, (g, d) = ours(images, labels, c, steps)
    rss = peak_rss_gb()
    flops = step_flops(g, d, c.n_batch)
    print(f"step work: {flops / 1e9:.1f} GFLOP (d forward {forward_flops(d) / 1e9:.3f}, "
          f"g forward {forward_flops(g) / 1e9:.3f} GFLOP per image)")
    print(f"ours float32: {step_s:.3f} s/step, {c.n_batch / step_s:.1f} images/s, "
          f"{flops / step_s / 1e9:.1f} GFLOP/s = {flops / step_s / 1e9 / peak:.1%} of the matrix-product rate")
    print(f"peak RSS with {args.images} uint8 images ({images.nbytes / 1024**3:.2f} GB): {rss:.2f} GB")

    bf16_s, _ = ours(images, labels, c, steps, bfloat16=True)
    if bf16_s is None:
        print("ours --mixed_precision: this CPU has no bfloat16 arithmetic (AVX-512 BF16 or AMX), so the option "
              "computes in float32 here (with oneDNN emulating it, 4 steps at width 128 took over 11 minutes on our AVX2 CPU)")
    else:
        print(f"ours --mixed_precision (bfloat16): {bf16_s:.3f} s/step, speed-up {step_s / bf16_s:.2f}x")
    plain_s = plain_port(images, labels, c, steps)
    print(f"plain port float32: {plain_s:.3f} s/step, ours is {plain_s / step_s:.2f}x faster")

    loop_images = 1 if args.smoke else 20 if args.quick else None  # None: all the images of every pair
    per_model, fast, slow = heatmap_figures(args.filters, loop_images)
    print(f"heatmaps.py work per model file: {per_model:.2f} s; delta overlay per image "
          f"{fast * 1e3:.3f} ms vectorized vs {slow * 1e3:.1f} ms per-pixel loop ({slow / fast:.0f}x)")
    print(f"RESULT step_s={step_s:.4f} vs_peak={flops / step_s / 1e9 / peak:.4f} vs_plain_port={plain_s / step_s:.4f} "
          f"bf16_speedup={step_s / bf16_s if bf16_s else float('nan'):.4f} peak_rss_gb={rss:.4f} delta_speedup={slow / fast:.1f}")


if __name__ == "__main__":
    main()
