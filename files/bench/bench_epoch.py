"""Benchmark of a demo-size epoch, part by part: the training step, and each part of the end of
an epoch (the discriminator's accuracies on 100 real and 100 generated images, the 100 samples,
the sample grid, the three model files, the training state, the loss curves), at the demo's
width 16 and batch 16 on 900 synthetic images; beside two parts, the way they were done before (predict()
for the accuracies and samples, a matplotlib figure for the grid).

Reads nothing; writes into a temporary folder it removes; prints to stdout.

    python files/bench/bench_epoch.py                              # about a minute on 2 CPU cores
    TF_ENABLE_ONEDNN_OPTS=0 python files/bench/bench_epoch.py      # with Eigen's CPU kernels
    python files/bench/bench_epoch.py --n_batch 64                 # the step at the original's batch
    python files/bench/bench_epoch.py --smoke                      # every part once, smallest size

Last line: RESULT step_s=<median step> epoch_end_s=<sum of the end's parts> (median seconds).
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import matplotlib.pyplot as plt
import numpy as np
from timing import median_seconds, onednn_enabled

from cganlib import cgan, config, plots, run_folder, training
from cganlib.collapse_guard import CollapseGuard
from cganlib.storage import save_model

N_CLASSES = 3
SMALL = config.resolve("xray", "small")  # the demo's settings


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=900, help="synthetic training set size (the demo's 900)")
    p.add_argument("--filters", type=int, default=SMALL.filters, help="the GAN's width (default: %(default)s, the demo's)")
    p.add_argument("--n_batch", type=int, default=SMALL.n_batch,
                   help="the batch (default: %(default)s, the demo's; the original's 64)")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats of each part (median)")
    p.add_argument("--smoke", action="store_true", help="every part once at the smallest size: checks it runs")
    args = p.parse_args()
    if args.smoke:
        args.images, args.filters, args.repeats = 128, 4, 1
    return args


def matplotlib_grid(images, labels, path):
    """The grid as it was drawn before: a 10-inch figure, the montage resampled by imshow."""
    canvas, corners = plots.montage(images, 10)
    fig = plt.figure(figsize=(10, 10))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(canvas)
    ax.axis("off")
    for (x, y), label in zip(corners, labels):
        ax.text(x + 3, y + 10, str(int(label)), color="white", fontsize=6)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def end_of_epoch_parts(trainer, folder):
    """{part: function} of the end of an epoch, as training.summarize_performance and end_epoch
    do them, and the two former ways."""
    n = training.N_SUMMARY_SAMPLES
    idx = trainer.rng.integers(0, len(trainer.images), n)
    real, real_labels = cgan.scale_images(trainer.images[idx]), trainer.labels[idx]
    fakes, fake_labels = trainer.fakes(n)
    latents = cgan.training_latents(trainer.rng, n, trainer.latent_dim)
    guard = CollapseGuard(config.resolve("xray").gan_upper)
    history = [dict.fromkeys(run_folder.HISTORY_FIELDS, "0.5") | {"epoch": str(k)} for k in range(1, 135)]

    def predict_way():
        samples = cgan.generate(trainer.g, latents, fake_labels)
        for images, labels in ((real, real_labels), (cgan.from_unit(samples), fake_labels)):
            trainer.d.predict([images, labels.reshape(-1, 1)], verbose=0)

    return {
        "accuracies and samples": lambda: (trainer.accuracy(real, real_labels, 1), trainer.fakes(n),
                                           trainer.accuracy(fakes, fake_labels, 0)),
        "sample grid (Pillow)": lambda: plots.labelled_grid(cgan.to_unit(fakes), fake_labels,
                                                            os.path.join(folder, "grid.png")),
        "three model files": lambda: [save_model(model, os.path.join(folder, f"{model.name}.h5"))
                                      for model in (trainer.g, trainer.gan, trainer.d)],
        "training state": lambda: run_folder.save_state(folder, 1, *training.training_state(trainer, guard, 0, False)),
        "loss curves (134 epochs)": lambda: plots.loss_curves(history, os.path.join(folder, "losses.png")),
        "before: accuracies and samples by predict()": predict_way,
        "before: sample grid (matplotlib)": lambda: matplotlib_grid(cgan.to_unit(fakes), fake_labels,
                                                                     os.path.join(folder, "grid_mpl.png")),
    }


def main():
    args = parse_args()
    print(f"oneDNN {'on' if onednn_enabled() else 'off'} (TF_ENABLE_ONEDNN_OPTS), width {args.filters}, "
          f"{args.images} images, batch {args.n_batch}, median of {args.repeats}")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, *cgan.IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, args.images).astype(np.int32)
    c = config.resolve("xray", "small", filters=args.filters, n_batch=args.n_batch)
    g = cgan.build_generator(N_CLASSES, c.latent_dim, c.filters)
    d = cgan.build_discriminator(N_CLASSES, c.filters, c.d_lr, c.d_beta1)
    trainer = training.Trainer(g, d, cgan.build_gan(g, d, c.g_lr, c.g_beta1), images, labels, c, rng)
    step_s = median_seconds(trainer.step, args.repeats)
    steps = args.images // args.n_batch
    print(f"training step: {step_s:.3f} s; an epoch's {steps} steps: {steps * step_s:.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        seconds = {name: median_seconds(part, args.repeats, warmup=1)
                   for name, part in end_of_epoch_parts(trainer, folder).items()}
    for name, s in seconds.items():
        print(f"  {name}: {s * 1e3:.0f} ms")
    end_s = sum(s for name, s in seconds.items() if not name.startswith("before"))
    before = end_s - seconds["accuracies and samples"] - seconds["sample grid (Pillow)"] + sum(
        s for name, s in seconds.items() if name.startswith("before"))
    print(f"end of epoch: {end_s:.2f} s (with the two former ways: {before:.2f} s)")
    print(f"RESULT step_s={step_s:.4f} epoch_end_s={end_s:.4f} epoch_end_before_s={before:.4f}")


if __name__ == "__main__":
    main()
