"""Prepare the chest X-rays for training: small, equalized, labelled images.

Reads every file under --images (default files/xray/chest_xray/), in sub-folders of any depth,
in sorted order: Kermany et al. 2018 ship {train,test,val}/{NORMAL,PNEUMONIA}/*.jpeg. The label
comes from the file name: `virus` -> 1 (viral pneumonia), `bacteria` -> 2
(bacterial pneumonia), anything else -> 0 (healthy). Each image is converted to RGB and resized to
--size x --size as the posted script did, then histogram-equalized on its grey levels and stored
as 3 equal channels: the write-up's step the posted script forgot (--no_equalize leaves it out).

Writes into --out_dir (default files/xray/):
  img_align_xray.npz     uint8 (N, size, size, 3)
  labels_align_xray.npz  int64 (N,), 0 healthy, 1 viral, 2 bacterial
  names.txt              row i's file, relative to --images, one a line: the patient each
                         image shows (train_classifier.py holds out whole patients)

Fast: JPEGs are decoded at a reduced scale (Pillow's Image.draft: 1/2, 1/4 or 1/8 of full size,
at least twice --size) on all cores. --full_decode decodes at full size instead; with
--no_equalize that reproduces the posted script pixel for pixel. Files that are not images
(.DS_Store), are damaged, declare over 25 megapixels or are not regular files (a FIFO) are
skipped and counted. Links are followed, to files and folders alike; a folder reached twice is read once.
"""

import os
from collections import Counter

import numpy as np
from tqdm import tqdm

from cganlib import cli
from cganlib.datasets import (
    DATASETS,
    IMAGE_SIDE,
    NOT_IMAGE,
    UNREADABLE,
    find_files,
    manifest_file,
    print_prepared_summary,
    xray_label,
)
from cganlib.patients import NAMES_FILE, names_writer
from cganlib.storage import InputError, npz_writer, save_file_set, writable_folder
from cganlib.xray_images import load_xrays

XRAY = DATASETS["xray"]
SKIP_REASONS = (NOT_IMAGE, UNREADABLE)  # always listed; the rarer datasets.SKIP_REASONS when they occur
N_XRAYS = 50000  # the original's limit


def parse_args(argv=None):
    parser = cli.Parser(__doc__)
    parser.add_argument("--images", default="files/xray/chest_xray/", help="folder of X-ray images, any depth")
    parser.add_argument("--out_dir", default="files/xray/", help="folder for the two .npz files")
    parser.add_argument("--n", "--n_xrays", dest="n", type=cli.POSITIVE, default=N_XRAYS,
                        help="stop after this many images")
    parser.add_argument("--size", type=cli.POSITIVE, default=IMAGE_SIDE, help="side of the square output images")
    parser.add_argument("--no_equalize", action="store_true", help="skip histogram equalization (the posted script)")
    parser.add_argument("--full_decode", action="store_true", help="decode JPEGs at full size (slower; exact)")
    parser.add_argument("--workers", type=cli.POSITIVE, default=os.cpu_count(),
                        help="decoding threads (default: all %(default)s cores)")
    return parser.parse_args(argv)


def check_args(args):
    if not os.path.isdir(args.images):
        raise InputError(f"X-ray folder {args.images} not found")


def prepare(paths, args):
    """(images, labels, their files' names relative to --images, skipped reasons, files not looked
    at) for the first --n usable files."""
    images = np.empty((min(args.n, len(paths)), args.size, args.size, 3), dtype=np.uint8)
    labels, names, skipped, seen = [], [], Counter(), 0
    loaded = load_xrays(paths, args.size, not args.no_equalize, args.workers, not args.full_decode)
    with tqdm(total=len(paths), unit="img", desc="X-rays") as bar:
        for path, (pixels, reason) in zip(paths, loaded):
            seen += 1
            bar.update()
            if pixels is None:
                skipped[reason] += 1
                continue
            images[len(labels)] = pixels
            labels.append(xray_label(path))
            names.append(os.path.relpath(path, args.images).replace(os.sep, "/"))
            if len(labels) == args.n:
                break
        loaded.close()
    return images[: len(labels)], np.array(labels, dtype=np.int64), names, skipped, len(paths) - seen


def checked_paths(args):
    """The files under --images, checked, and the output folder made."""
    check_args(args)
    paths = find_files(args.images)
    if not paths:
        raise InputError(f"no files under {args.images}")
    n_images = min(args.n, len(paths))
    cli.check_memory(n_images * args.size**2 * 3, f"{n_images} images of {args.size}x{args.size}")
    writable_folder(args.out_dir)
    return paths


def main(argv=None):
    args = parse_args(argv)
    with cli.exit_on_bad_input():  # Ctrl-C too: one line, exit status 130
        paths = checked_paths(args)
        images, labels, names, skipped, not_seen = prepare(paths, args)
        if not len(labels):
            reasons = ", ".join(f"{count} {reason}" for reason, count in skipped.items())
            raise InputError(f"no images found under {args.images} ({reasons})")
        save_file_set(args.out_dir, manifest_file(XRAY.name), {XRAY.images_file: npz_writer(images),
                                                               XRAY.labels_file: npz_writer(labels),
                                                               NAMES_FILE: names_writer(names)})
    images_path = os.path.join(args.out_dir, XRAY.images_file)
    labels_path = os.path.join(args.out_dir, XRAY.labels_file)
    names_path = os.path.join(args.out_dir, NAMES_FILE)
    counts = {reason: skipped[reason] for reason in SKIP_REASONS} | skipped
    print_prepared_summary("X-rays", labels, XRAY.class_names, counts, len(paths), not_seen, "--n")
    print(f"wrote {images_path} {images.shape}, {labels_path} {labels.shape} and {names_path}")


if __name__ == "__main__":
    main()
