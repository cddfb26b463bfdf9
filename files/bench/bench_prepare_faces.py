"""Benchmark of prepare_faces.py's batched MTCNN face detection against the naive way (one MTCNN
call per photo, as the original), on the same photos in the same run.

Writes --n CelebA-like 178x218 JPEGs into a temporary folder: portraits cut at random places
and scales from scikit-image's astronaut photo, and one in four from photos without a face.
Builds one MTCNN (not timed), warms it up, then times, for the same files:

  naive: face_crops.faces_of(detector, [path]) for each photo: one MTCNN call per photo
  ours:  face_crops.faces_of(detector, paths) on batches of --batch photos, as the script

Both include reading the JPEG, cropping and resizing; the two alternate batch by batch, so
load from other processes hits both alike. Prints images/s and CPU time per image (all of
TensorFlow's threads) for each, the ratio, and whether both gave the same crops.

    python files/bench/bench_prepare_faces.py             # 256 photos, about half a minute on 2 cores
    python files/bench/bench_prepare_faces.py --batch 64
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before mtcnn, which loads it)

# isort: split
import numpy as np
from alternating import time_alternating
from mtcnn import MTCNN
from PIL import Image
from skimage import data

from cganlib.face_crops import faces_of

SIZE = 80
NO_FACE_PHOTOS = ("coffee", "rocket", "chelsea", "brick")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=256, help="number of photos")
    p.add_argument("--batch", type=int, default=128, help="photos per MTCNN call for ours")
    return p.parse_args()


def write_photos(folder, n):
    """Paths of n CelebA-like photos: 3 in 4 portraits, 1 in 4 without a face."""
    rng = np.random.default_rng(0)
    astronaut = data.astronaut()
    others = [np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB")) for name in NO_FACE_PHOTOS]
    paths = []
    for k in range(n):
        if k % 4 == 3:
            photo = Image.fromarray(others[k // 4 % len(others)])
        else:
            height = int(rng.integers(220, 300))
            x0, y0 = int(rng.integers(90, 170)), int(rng.integers(0, 50))
            photo = Image.fromarray(astronaut[y0 : y0 + height, x0 : x0 + height * 178 // 218])
        path = os.path.join(folder, f"{k + 1:06d}.jpg")
        photo.resize((178, 218)).save(path, quality=95)
        paths.append(path)
    return paths


def same(a, b):
    return all(
        reason_a == reason_b and (face_a is None or np.array_equal(face_a, face_b))
        for (face_a, reason_a), (face_b, reason_b) in zip(a, b)
    )


def run(paths, batch):
    detector = MTCNN()
    faces_of(detector, paths[:batch], SIZE)  # warm-up: both ways' first calls
    faces_of(detector, paths[:1], SIZE)
    print(f"{len(paths)} CelebA-like 178x218 photos; {os.cpu_count()} cores")
    naive, ours = "naive (one MTCNN call per photo)", f"ours (batches of {batch})"
    ways = {
        naive: lambda part: [faces_of(detector, [path], SIZE)[0] for path in part],
        ours: lambda part: faces_of(detector, part, SIZE),
    }
    rates, results = time_alternating(ways, paths, batch)
    print(f"speed-up: {rates[ours] / rates[naive]:.2f}x")
    n_faces = sum(face is not None for face, _ in results[ours])
    print(f"faces found: {n_faces} of {len(paths)}; same crops as the naive way: {same(results[ours], results[naive])}")


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run(write_photos(folder, args.n), args.batch)


if __name__ == "__main__":
    main()
