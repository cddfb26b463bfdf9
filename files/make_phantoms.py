"""Synthetic chest X-ray phantoms with known findings, laid out like the Kermany dataset.

Writes, under --out_dir (default `files/xray/`):
  chest_xray/train/NORMAL/IM-0001-0001.jpeg ...            healthy: clear lungs
  chest_xray/train/PNEUMONIA/person2_virus_1.jpeg ...      viral: diffuse haze in both lungs
  chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg ...   bacterial: one consolidation, in the
                                                           right lower lobe (image's left), or with
                                                           --lesion_place any in either lung, upper
                                                           or lower zone
  ground_truth.npz   the truth the heatmaps are scored against (heatmap_scores.py), one row per
                     image in file-name order, the order prepare_xrays.py reads them (so row i
                     is image i of the training set), arrays:
      names  (N,)        str, path relative to chest_xray/, e.g. "train/PNEUMONIA/person1_bacteria_1.jpeg"
      labels (N,)        int, 0 healthy, 1 viral, 2 bacterial (prepare_xrays.py's rule on the name)
      lesion (N, 80, 80) uint8 0/1, the consolidation; all zero for healthy and viral images
      lungs  (N, 80, 80) uint8 0/1, the visible lung fields (not behind the heart)
  The masks are the full-size masks shrunk to 80x80 the way prepare_xrays.py shrinks the image
  (the whole picture, no crop), so they lie on its pixels.

Every image has its own anatomy (position, size, body width, brightness, contrast, noise), so
the finding is the only thing a class shares. Image k of a class depends only on --seed, the
class and k: the same seed gives the same files, whatever --n.
`prepare_xrays.py --images <out>/chest_xray` then makes the training set.
"""

import os
import shutil
import signal
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
from PIL import Image
from tqdm import tqdm

from cganlib import cli
from cganlib.phantoms import (
    GROUND_TRUTH,
    HAZE_STRENGTH,
    JPEG_QUALITY,
    LESION_PLACES,
    LESION_STRENGTH,
    MASK_SIZE,
    SIZE,
    file_names,
    phantom,
    shrink_mask,
)
from cganlib.storage import (
    InputError,
    fail,
    save_arrays,
    staging_folder,
    writable_folder,
)

ARRAYS_PER_PHANTOM = 24  # full-size float32 arrays alive while one phantom is drawn: 25 MB at 512x512
CHUNK = 16  # phantoms a worker draws per task: few enough round trips, the progress bar still moves


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--out_dir", "--out", dest="out_dir", default="files/xray",
                   help="folder to write chest_xray/ and ground_truth.npz into")
    p.add_argument("--n", type=cli.POSITIVE, default=200, help="images per class (healthy, viral, bacterial)")
    p.add_argument("--size", type=cli.integer(MASK_SIZE), default=SIZE,
                   help=f"image width and height in pixels (at least {MASK_SIZE})")
    p.add_argument("--seed", type=cli.SEED, default=0, help="random seed; the same seed gives the same files")
    p.add_argument(
        "--lesion_strength", type=cli.number(0, 1), default=LESION_STRENGTH,
        help="grey level (0..1) the bacterial consolidation adds at its core",
    )
    p.add_argument(
        "--haze_strength", type=cli.number(0, 1), default=HAZE_STRENGTH,
        help="grey level (0..1) the viral haze adds over both lungs, give or take its texture",
    )
    p.add_argument("--lesion_place", choices=LESION_PLACES, default="fixed",
                   help="where the bacterial consolidation lies: fixed, the right lower lobe in every image; any, "
                        "either lung, upper or lower zone, drawn per image")
    p.add_argument("--workers", type=cli.POSITIVE, default=len(os.sched_getaffinity(0)),
                   help="processes drawing phantoms side by side (default: this machine's cores, %(default)s); "
                        "the files are the same whatever the number")
    p.add_argument("--overwrite", action="store_true", help="replace phantoms this script wrote before")
    return p.parse_args(argv)


def draw_phantom(job, root, size, seed, lesion_strength, haze_strength, lesion_place):
    """Draw one phantom, save its JPEG under root/chest_xray; return its masks at 80x80."""
    label, k, name = job
    image, lesion, lungs = phantom(seed, label, k, size, lesion_strength, haze_strength, lesion_place)
    Image.fromarray(image, "L").save(os.path.join(root, "chest_xray", name), quality=JPEG_QUALITY)
    return shrink_mask(lesion), shrink_mask(lungs)


def _worker_signals():
    """A worker leaves Ctrl-C and SIGTERM to the main process, which stops the pool (a Ctrl-C
    reaches every process of the terminal's group: each worker would print its traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def write_phantoms(root, n, size=SIZE, seed=0, lesion_strength=LESION_STRENGTH, haze_strength=HAZE_STRENGTH, workers=1,
                   lesion_place="fixed"):
    """Draw and save n phantoms per class under root/chest_xray, in `workers` processes; return
    the ground-truth arrays. Each phantom depends only on its seed, so the workers' order does not matter."""
    for folder in ("NORMAL", "PNEUMONIA"):
        os.makedirs(os.path.join(root, "chest_xray", "train", folder))
    # in name order, the order prepare_xrays.py reads them: truth row i is training image i
    jobs = sorted(((label, k, name) for label, names in file_names(n).items() for k, name in enumerate(names)),
                  key=lambda job: job[2])
    draw = partial(draw_phantom, root=root, size=size, seed=seed, lesion_strength=lesion_strength,
                   haze_strength=haze_strength, lesion_place=lesion_place)
    progress = partial(tqdm, total=len(jobs), desc="phantoms", unit="img")
    if workers == 1:
        masks = list(progress(map(draw, jobs)))
    else:
        # stopped (Ctrl-C, SIGTERM: exit_on_bad_input), the pool cancels the chunks not begun and
        # waits for the workers' current ones, so that none writes into the staging folder after
        # it is removed
        with ProcessPoolExecutor(workers, initializer=_worker_signals) as pool:
            masks = list(progress(pool.map(draw, jobs, chunksize=CHUNK)))
    return {
        "names": np.array([name for _, _, name in jobs]),
        "labels": np.array([label for label, _, _ in jobs]),
        "lesion": np.array([lesion for lesion, _ in masks]),
        "lungs": np.array([lungs for _, lungs in masks]),
    }


def check_args(args):
    workers = f" in {args.workers} workers" if args.workers > 1 else ""
    cli.check_memory(args.workers * ARRAYS_PER_PHANTOM * 4 * args.size**2, f"--size {args.size}{workers}")
    target = os.path.join(args.out_dir, "chest_xray")
    if os.path.exists(target):
        if not args.overwrite:
            raise InputError(f"{target} already exists (pass --overwrite to replace phantoms made before)")
        if not os.path.exists(os.path.join(args.out_dir, GROUND_TRUTH)):
            raise InputError(f"{target} exists but has no {GROUND_TRUTH} beside it: not ours, not replacing it")


def main(argv=None):
    args = parse_args(argv)
    with cli.exit_on_bad_input():
        check_args(args)
        writable_folder(args.out_dir)
        # Draw into a hidden folder and move it in place at the end: an interrupted run (Ctrl-C,
        # SIGTERM) leaves nothing, and a killed one's folder goes at the next run (staging_folder).
        staging = staging_folder(args.out_dir, "phantoms")
        try:
            truth = write_phantoms(staging, args.n, args.size, args.seed, args.lesion_strength, args.haze_strength,
                                   args.workers, args.lesion_place)
            save_arrays(os.path.join(staging, GROUND_TRUTH), **truth)
            target = os.path.join(args.out_dir, "chest_xray")
            if os.path.exists(target):
                shutil.rmtree(target)
            os.replace(os.path.join(staging, "chest_xray"), target)
            os.replace(os.path.join(staging, GROUND_TRUTH), os.path.join(args.out_dir, GROUND_TRUTH))
        except KeyboardInterrupt:
            fail("interrupted; no phantoms written", status=cli.EXIT_INTERRUPTED)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    lesion_area = truth["lesion"].any(axis=0).mean()
    print(f"wrote {len(truth['names'])} phantoms ({args.n} per class, {args.size}x{args.size}) to {target}")
    print(f"ground truth: {os.path.join(args.out_dir, GROUND_TRUTH)} (lesion region {lesion_area:.1%} of the image)")


if __name__ == "__main__":
    main()
