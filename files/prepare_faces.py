"""Prepare the CelebA faces for training: MTCNN face crops of the attractive faces.

Reads the aligned CelebA photos in --images (default files/celeb/img_align_celeba/) and the
attribute table --attributes (default files/celeb/list_attr_celeba.csv: the Kaggle CSV, or the
original space-separated list_attr_celeba.txt). It walks the photos
in sorted file-name order, looks each one's row up in the table by file name, keeps those whose
`Attractive` attribute is +1 (before running the detector), finds the face with MTCNN (the first
detection's box, abs() on its corner), crops it, resizes it to --size x --size with Pillow, and
stops after --n faces.

Writes into --out_dir (default files/celeb/):
  img_align_celeba_attractive.npz  uint8 (N, size, size, 3)
  ids_align_celeba_attractive.npz  int64 (N,), each face's row in the attribute table
Training turns the rows into the 4 face classes (datasets.face_labels_from_rows).

Fast: MTCNN runs on batches of --batch photos of one size at a time, many times faster than one
photo per call, with the same boxes. Photos that are missing from the table, unreadable, not
images, over 25 megapixels (checked before decoding) or have no face are skipped and counted.
"""

import os
from collections import Counter

from cganlib import cli
from cganlib.datasets import (
    DATASETS,
    IMAGE_SIDE,
    NOT_IMAGE,
    UNREADABLE,
    face_classes,
    manifest_file,
    print_prepared_summary,
    read_attribute_table,
)
from cganlib.storage import InputError, fail, npz_writer, save_file_set, writable_folder

CELEB = DATASETS["celeb"]
NEEDED_COLUMNS = ("Attractive", "Male", "High_Cheekbones", "Big_Lips")
NOT_IN_TABLE = "not in the attribute table"
NOT_ATTRACTIVE = "not attractive"
N_FACES = 50000  # the original's limit


def parse_args(argv=None):
    parser = cli.Parser(__doc__)
    parser.add_argument("--images", default="files/celeb/img_align_celeba/", help="folder of CelebA photos")
    parser.add_argument("--attributes", default="files/celeb/list_attr_celeba.csv",
                        help="CelebA attribute table, .csv or .txt")
    parser.add_argument("--out_dir", default="files/celeb/", help="folder for the two .npz files")
    parser.add_argument("--n", "--n_faces", dest="n", type=cli.POSITIVE, default=N_FACES,
                        help="stop after this many faces")
    parser.add_argument("--size", type=cli.POSITIVE, default=IMAGE_SIDE, help="side of the square face crops")
    parser.add_argument("--batch_size", "--batch", dest="batch_size", type=cli.POSITIVE, default=128,
                        help="photos per MTCNN call")
    return parser.parse_args(argv)


def check_args(args):
    if not os.path.isdir(args.images):
        raise InputError(f"photo folder {args.images} not found")


def read_attributes(path):
    """(image ids, {column: +1/-1 array}) of the attribute table, with the columns we need."""
    if not os.path.isfile(path):
        raise InputError(f"attribute table {path} not found")
    try:
        ids, columns = read_attribute_table(path)
    except (OSError, ValueError) as e:
        raise InputError(f"{path} is not a CelebA attribute table: {e}") from e
    missing = [name for name in NEEDED_COLUMNS if name not in columns]
    if missing:
        raise InputError(f"attribute table {path} has no column {', '.join(missing)}")
    return ids, columns


def attractive_photos(folder, ids, attractive):
    """([(file name, table row)] of the attractive photos in sorted order, Counter of the rest).
    Rows are looked up by file name: the original used its unordered walk's position."""
    names = sorted(name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name)))
    if not names:
        raise InputError(f"no files in {folder}")
    row_of = {image_id: row for row, image_id in enumerate(ids)}
    chosen, skipped = [], Counter()
    for name in names:
        row = row_of.get(name)
        if row is None:
            skipped[NOT_IN_TABLE] += 1
        elif attractive[row] > 0:
            chosen.append((name, row))
        else:
            skipped[NOT_ATTRACTIVE] += 1
    if skipped[NOT_IN_TABLE] == len(names):
        raise InputError(f"none of the {len(names)} files in {folder} is in the attribute table")
    if not chosen:
        raise InputError(f"no photo in {folder} is marked Attractive in the attribute table")
    return chosen, skipped


def checked_photos(args):
    """(attribute columns, the attractive photos to look at, Counter of the photos left out), checked."""
    check_args(args)
    ids, columns = read_attributes(args.attributes)
    chosen, skipped = attractive_photos(args.images, ids, columns["Attractive"])
    n_faces = min(args.n, len(chosen))
    cli.check_memory(n_faces * args.size**2 * 3, f"{n_faces} faces of {args.size}x{args.size}")
    writable_folder(args.out_dir)
    return columns, chosen, skipped


def main(argv=None):
    args = parse_args(argv)
    with cli.exit_on_bad_input():
        columns, chosen, skipped = checked_photos(args)
    # TensorFlow loads here (mtcnn imports it), after the arguments and the inputs are checked
    from cganlib import face_crops

    faces, rows, not_seen = face_crops.collect_faces(args.images, chosen, args, skipped)
    if not len(rows):
        fail(f"no face found in the {len(chosen)} attractive photos in {args.images}")
    images_path = os.path.join(args.out_dir, CELEB.images_file)
    ids_path = os.path.join(args.out_dir, CELEB.labels_file)
    save_file_set(args.out_dir, manifest_file(CELEB.name),
                  {CELEB.images_file: npz_writer(faces), CELEB.labels_file: npz_writer(rows)})
    # the classes training will derive from these rows (datasets.face_labels_from_rows)
    labels = face_classes(columns["Male"][rows], columns["High_Cheekbones"][rows], columns["Big_Lips"][rows])
    n_files = len(chosen) + skipped[NOT_IN_TABLE] + skipped[NOT_ATTRACTIVE]
    reasons = (NOT_IN_TABLE, NOT_ATTRACTIVE, NOT_IMAGE, UNREADABLE, face_crops.NO_FACE)
    counts = {reason: skipped[reason] for reason in reasons} | skipped  # the rarer reasons when they occur
    print_prepared_summary("faces", labels, CELEB.class_names, counts, n_files, not_seen, "--n")
    print(f"wrote {images_path} {faces.shape} and {ids_path} {rows.shape}")


if __name__ == "__main__":
    main()
