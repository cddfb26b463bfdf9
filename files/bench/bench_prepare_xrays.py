"""Benchmark of prepare_xrays.py's image loading against the naive way, on the same files in
the same run.

There is no dataset here, so it first writes --n synthetic chest X-ray JPEGs of 1 to 2
megapixels (grey, with film grain, quality 90: Kermany et al.'s files are of this kind) into a
temporary folder (or --folder, kept), then times, after a warm-up pass over the files, and
alternating the two chunk by chunk so load from other processes hits both alike:

  naive: one file after another, the posted script's full decode, RGB, resize, then equalize
  ours:  xray_images.load_xrays, prepare_xrays.py's: reduced JPEG decoding (Image.draft), grey
         kept grey, resize, equalize; on 1 thread, then on --workers threads (default: all cores)

and prints images/s for each, the ratios to naive, the CPU time per image (all threads: less
work and more cores are told apart), and how far our pixels are from naive's. Threads only
help where cores are free: run it on an otherwise idle machine.

    python files/bench/bench_prepare_xrays.py            # 200 images, under a minute on 2 cores
    python files/bench/bench_prepare_xrays.py --n 500 --folder /tmp/xrays
"""

import argparse
import os
import sys
import tempfile

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from alternating import time_alternating

from cganlib.xray_images import load_xrays

SIZE = 80


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="number of synthetic X-rays")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding threads for ours")
    p.add_argument("--folder", help="write (or reuse) the synthetic X-rays here instead of a temporary folder")
    return p.parse_args()


def synthetic_xray(rng):
    """A grey chest-like picture of 1 to 2 megapixels: bright body, dark lungs, ribs, grain."""
    megapixels = rng.uniform(1.0, 2.0)
    aspect = rng.uniform(1.1, 1.4)
    height = int(np.sqrt(megapixels * 1e6 / aspect))
    width = int(height * aspect)
    yy, xx = np.meshgrid(np.linspace(0, 1, height, dtype=np.float32), np.linspace(0, 1, width, dtype=np.float32),
                         indexing="ij")
    body = np.exp(-((((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.55) ** 2) ** 2))
    lungs = np.exp(-(((np.abs(xx - 0.5) - rng.uniform(0.18, 0.22)) / 0.11) ** 2 + ((yy - 0.45) / 0.28) ** 2))
    ribs = 0.5 + 0.5 * np.sin(rng.uniform(35, 45) * yy + 2 * np.sin(6 * xx))
    grain = rng.normal(0, 0.03, (height, width)).astype(np.float32)
    grey = body * (0.85 - 0.5 * lungs + 0.12 * ribs) + grain
    return Image.fromarray(np.clip(255 * grey, 0, 255).astype(np.uint8))


def write_xrays(folder, n):
    """Paths of n synthetic X-ray JPEGs in folder, made if missing."""
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        path = os.path.join(folder, f"person{k}_bacteria_{k}.jpeg")
        xray = synthetic_xray(rng)  # drawn even when the file exists, so a reused folder matches
        if not os.path.exists(path):
            xray.save(path, quality=90)
        paths.append(path)
    return paths


def naive_load(path):
    """The posted script's loading (full decode, RGB, resize) plus the equalization we add."""
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((SIZE, SIZE))
    grey = np.asarray(ImageOps.equalize(rgb.convert("L")))
    return np.repeat(grey[:, :, None], 3, axis=2)


def run(paths, workers, chunk=25):
    sizes = []
    for path in paths:
        with Image.open(path) as image:
            sizes.append(image.size[0] * image.size[1] / 1e6)
    megabytes = np.mean([os.path.getsize(p) for p in paths]) / 1e6
    print(f"{len(paths)} synthetic X-rays, {min(sizes):.1f}-{max(sizes):.1f} megapixels, {megabytes:.2f} MB each "
          f"on average; {os.cpu_count()} cores")
    list(load_xrays(paths, SIZE, workers=workers))  # warm-up: file cache, thread start
    naive, one_thread, threads = "naive (full decode, RGB, resize, equalize)", "ours, 1 thread", f"ours, {workers} threads"
    ways = {
        naive: lambda part: [naive_load(p) for p in part],
        one_thread: lambda part: [pixels for pixels, _ in load_xrays(part, SIZE, workers=1)],
        threads: lambda part: [pixels for pixels, _ in load_xrays(part, SIZE, workers=workers)],
    }
    rates, images = time_alternating(ways, paths, chunk)
    print(f"speed-up: {rates[threads] / rates[naive]:.2f}x")
    difference = np.abs(np.stack(images[threads]).astype(int) - np.stack(images[naive]).astype(int))
    print(f"difference from the naive pixels (equalized): mean {difference.mean():.2f}, "
          f"max {difference.max()} grey levels")


def main():
    args = parse_args()
    if args.folder:
        os.makedirs(args.folder, exist_ok=True)
        run(write_xrays(args.folder, args.n), args.workers)
        return
    with tempfile.TemporaryDirectory() as folder:
        run(write_xrays(folder, args.n), args.workers)


if __name__ == "__main__":
    main()
