"""Prepare your own labelled images for training: one sub-folder per class, the layout Keras's
image_dataset_from_directory and torchvision's ImageFolder read.

    DIR/benign/img001.jpg, DIR/benign/scans/a.png, ...     class 0 (sub-folders of any depth)
    DIR/malignant/x.tif, ...                               class 1

Classes get ids 0..K-1 in sorted folder-name order (2 <= K <= 100). JPEG, PNG, BMP, TIFF, WebP
and any other format Pillow reads, in any mode (grey, RGB, RGBA, 16-bit, palette), become RGB:
16-bit grey is scaled to 8 bits, transparent pixels are laid over black. Each image is
centre-cropped to a square (--pad pads it with black instead) and resized to 80x80, the size
the models take, with Pillow's default filter. --grey stores grey levels in 3 equal channels, and --equalize
with it equalizes each image's histogram, as prepare_xrays.py does for X-rays.

Writes into --out_dir (default files/folder/):
  img_align_folder.npz     uint8 (N, 80, 80, 3)
  labels_align_folder.npz  int64 (N,), the class ids
  classes.json             {"classes": [names in id order], "counts": [images per class]}
Each image is turned upright as its EXIF orientation says. Files that are not images, are
damaged (a float TIFF with NaN pixels too), declare over 25 megapixels (checked before decoding)
or are not regular files (a FIFO, a device) are skipped and counted; so are hidden files and
folders (.ipynb_checkpoints/, .DS_Store) and class folders with no usable image, and the
remaining classes are numbered without them. Links are followed, to files and folders alike,
outside the folder (a dataset linked in reads as if copied); a folder reached twice is read
once. A link back into the folder outside its own class folder, or up to a folder that holds it
(a loop: cat/up -> ..), is not followed and is counted: its images would join the wrong class. Then:

    python files/train_cgan.py --dataset folder --data_dir files/folder
"""

import os
from collections import Counter
from functools import partial

import numpy as np
from tqdm import tqdm

from cganlib import cli
from cganlib.datasets import (
    CLASSES_FILE,
    FOLDER,
    IMAGE_SIDE,
    MAX_CLASSES,
    MIN_CLASSES,
    SKIP_REASONS,
    load_square_image,
    manifest_file,
    print_prepared_summary,
    read_in_threads,
)
from cganlib.storage import (
    InputError,
    json_writer,
    npz_writer,
    save_file_set,
    writable_folder,
)

IMAGES_FILE, LABELS_FILE = "img_align_folder.npz", "labels_align_folder.npz"
EMPTY_CLASS = "class folders with no usable image"
HIDDEN = "hidden files and folders (names starting with a dot), not read"
ASTRAY = "links into another class's folder or up the tree, not followed"


def parse_args(argv=None):
    p = cli.Parser(__doc__)
    p.add_argument("--images", required=True, help="folder with one sub-folder of images per class")
    p.add_argument("--out_dir", default="files/folder/", help="folder for the prepared files")
    p.add_argument("--n", type=cli.POSITIVE, help="at most this many images per class (default: all)")
    p.add_argument("--size", type=cli.POSITIVE, default=IMAGE_SIDE,
                   help=f"side of the square images: {IMAGE_SIDE}, the only size the models take (default: %(default)s)")
    p.add_argument("--pad", action="store_true", help="pad to a square with black instead of cropping the centre")
    p.add_argument("--grey", action="store_true", help="store grey levels (3 equal channels)")
    p.add_argument("--equalize", action="store_true", help="with --grey: equalize each image's histogram")
    p.add_argument("--workers", type=cli.POSITIVE, default=os.cpu_count(),
                   help="decoding threads (default: all %(default)s cores)")
    args = p.parse_args(argv)
    if args.size != IMAGE_SIDE:
        p.error(f"--size: training and the explaining scripts take {IMAGE_SIDE}x{IMAGE_SIDE} images only, got {args.size}")
    if args.equalize and not args.grey:
        p.error("--equalize works on grey levels: add --grey")
    return args


def within(path, folder):
    """Whether the real path `path` is `folder` or lies under it."""
    return os.path.commonpath([path, folder]) == folder


def class_folders(root):
    """([(class name, sorted image paths)] per sub-folder of root, in sorted name order, and a
    Counter of what was left out: hidden names, links that stray)."""
    if not os.path.isdir(root):
        raise InputError(f"image folder {root} not found")
    tree, left_out, names = os.path.realpath(root), Counter(), []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        target = os.path.realpath(path)
        if name.startswith("."):
            left_out[HIDDEN] += 1
        elif os.path.islink(path) and (within(target, tree) or within(tree, target)):
            left_out[ASTRAY] += 1  # another class's folder, the folder itself or one above it
        else:
            names.append(name)
    if len(names) < MIN_CLASSES:
        raise InputError(f"{root} has {len(names)} class folders; it needs at least {MIN_CLASSES}, one per class")
    folders = []
    for name in names:
        files, skipped = class_files(tree, os.path.join(root, name))
        folders.append((name, files))
        left_out.update(skipped)
    return folders, left_out


def class_files(tree, folder):
    """(every file under one class folder, sub-folders of any depth, in sorted order; a Counter
    of what was left out). Hidden names are skipped; a link is followed unless it leads into the
    tree (the real path of --images) outside this class folder, or to a folder that holds it."""
    own, found, left_out, walked = os.path.realpath(folder), [], Counter(), set()

    def strays(path, is_folder):
        target = os.path.realpath(path)
        return (within(target, tree) and not within(target, own)) or (is_folder and within(own, target))

    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:  # two links to one folder of this class
            dirs.clear()
            continue
        walked.add(real)
        kept = []
        for name in sorted(dirs):  # os.walk visits sub-folders in this list's order
            path = os.path.join(root, name)
            if name.startswith("."):
                left_out[HIDDEN] += 1
            elif os.path.islink(path) and strays(path, True):
                left_out[ASTRAY] += 1
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith("."):
                left_out[HIDDEN] += 1
            elif os.path.islink(path) and strays(path, False):
                left_out[ASTRAY] += 1
            else:
                found.append(path)
    return found, left_out


def prepare(folders, args):
    """(images, labels, class names, counts, skipped reasons, usable images over --n) over the
    class folders."""
    paths = [(name, path) for name, files in folders for path in files]
    n_images = len(paths) if args.n is None else sum(min(args.n, len(files)) for _, files in folders)
    cli.check_memory(n_images * args.size**2 * 3, f"{n_images} images of {args.size}x{args.size}")
    images = np.empty((n_images, args.size, args.size, 3), dtype=np.uint8)
    kept, names, skipped, over_limit = Counter(), [], Counter(), 0
    read = partial(load_square_image, size=args.size, pad=args.pad, grey=args.grey, equalize=args.equalize)
    loaded = read_in_threads(read, [path for _, path in paths], args.workers)
    with tqdm(total=len(paths), unit="img", desc="images") as bar:
        for (name, _), (pixels, reason) in zip(paths, loaded):
            bar.update()
            if pixels is None:
                skipped[reason] += 1
            elif args.n is not None and kept[name] == args.n:
                over_limit += 1
            else:
                images[len(names)] = pixels
                names.append(name)
                kept[name] += 1
    classes = [name for name, _ in folders if kept[name]]
    skipped[EMPTY_CLASS] = len(folders) - len(classes)
    labels = np.array([classes.index(name) for name in names], dtype=np.int64)
    return images[: len(names)], labels, classes, [kept[name] for name in classes], skipped, over_limit


def main(argv=None):
    args = parse_args(argv)
    with cli.exit_on_bad_input():
        folders, left_out = class_folders(args.images)
        images, labels, classes, counts, skipped, over_limit = prepare(folders, args)
        skipped.update(left_out)
        if len(classes) < MIN_CLASSES:
            raise InputError(f"{len(classes)} class folders in {args.images} hold a usable image; at least "
                             f"{MIN_CLASSES} must ({sum(skipped[r] for r in SKIP_REASONS)} files skipped)")
        if len(classes) > MAX_CLASSES:
            raise InputError(f"{len(classes)} classes in {args.images}; at most {MAX_CLASSES} are supported")
        writable_folder(args.out_dir)
        save_file_set(args.out_dir, manifest_file(FOLDER), {
            IMAGES_FILE: npz_writer(images), LABELS_FILE: npz_writer(labels),
            CLASSES_FILE: json_writer({"classes": classes, "counts": counts}, indent=1),
        })
    n_files = sum(len(files) for _, files in folders)
    print_prepared_summary("images", labels, classes, skipped, n_files, over_limit, "--n")
    print(f"wrote {IMAGES_FILE} {images.shape}, {LABELS_FILE} {labels.shape} and {CLASSES_FILE} to {args.out_dir}")


if __name__ == "__main__":
    main()
