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
images, or have no face are skipped and counted.
"""

import os
from collections import Counter

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before mtcnn, which loads it)

# isort: split
import numpy as np
from mtcnn import MTCNN
from PIL import Image
from tqdm import tqdm

from cganlib import cli
from cganlib.datasets import (
    DATASETS,
    IMAGE_SIDE,
    NOT_IMAGE,
    UNREADABLE,
    face_classes,
    print_prepared_summary,
    read_attribute_table,
    read_image,
)
from cganlib.storage import InputError, fail, save_npz, writable_folder

CELEB = DATASETS["celeb"]
NEEDED_COLUMNS = ("Attractive", "Male", "High_Cheekbones", "Big_Lips")
NOT_IN_TABLE = "not in the attribute table"
NOT_ATTRACTIVE = "not attractive"
NO_FACE = "no face"
SKIP_REASONS = (NOT_IN_TABLE, NOT_ATTRACTIVE, NOT_IMAGE, UNREADABLE, NO_FACE)
N_FACES = 50000  # the original's limit
# MTCNN's last-stage (ONet) confidence threshold: the original ran mtcnn 0.1.0, whose stage
# thresholds were [0.6, 0.7, 0.7]; mtcnn 1.0 defaults this stage to 0.8 (its first two stages'
# defaults, 0.6 and 0.7, already match), which would drop faces scored in (0.7, 0.8].
ONET_THRESHOLD = 0.7


def parse_args(argv=None):
    parser = cli.Parser(__doc__)
    parser.add_argument("--images", default="files/celeb/img_align_celeba/", help="folder of CelebA photos (default %(default)s)")
    parser.add_argument("--attributes", default="files/celeb/list_attr_celeba.csv", help="CelebA attribute table, .csv or .txt (default %(default)s)")
    parser.add_argument("--out_dir", default="files/celeb/", help="folder for the two .npz files (default %(default)s)")
    parser.add_argument("--n", "--n_faces", dest="n", type=cli.POSITIVE, default=N_FACES,
                        help="stop after this many faces (default %(default)s)")
    parser.add_argument("--size", type=cli.POSITIVE, default=IMAGE_SIDE, help="side of the square face crops (default %(default)s)")
    parser.add_argument("--batch_size", "--batch", dest="batch_size", type=cli.POSITIVE, default=128,
                        help="photos per MTCNN call (default %(default)s)")
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


def load_photo(path):
    """(RGB pixels, None), or (None, the reason the file cannot be used)."""
    return read_image(path, lambda image: np.asarray(image.convert("RGB")))


def runs_of_one_shape(photos):
    """Split photos into consecutive runs of equal shape."""
    runs = []
    for pixels in photos:
        if runs and runs[-1][0].shape == pixels.shape:
            runs[-1].append(pixels)
        else:
            runs.append([pixels])
    return runs


def first_boxes(detector, photos):
    """The first MTCNN detection's box [x, y, width, height] of each photo, or None.
    Photos of one shape go to MTCNN together: mtcnn 1.0 pads a mixed batch to one size, which
    moves its boxes. Boxes are not clipped to the photo (fit_to_image=False), as the original's
    detector returned them: negative corners happen, hence the abs() in crop_face. The last
    stage keeps faces above the original's ONET_THRESHOLD, 0.7, not mtcnn 1.0's 0.8.
    Pixels go in as float32: mtcnn normalizes uint8 ones to float64, which only costs time (the
    normalized values (v - 127.5) / 128 are exact in float32)."""
    boxes = []
    for run in runs_of_one_shape(photos):
        detections = detector.detect_faces([pixels.astype(np.float32) for pixels in run], fit_to_image=False,
                                           threshold_onet=ONET_THRESHOLD)
        boxes += [faces[0]["box"] if faces else None for faces in detections]
    return boxes


def crop_face(pixels, box, size):
    """abs() of the box's corner (the original's), crop, resize with Pillow; None if the crop is empty."""
    x, y, width, height = box
    x, y = abs(x), abs(y)
    face = pixels[y : y + height, x : x + width]
    if face.size == 0:
        return None
    return np.asarray(Image.fromarray(face).resize((size, size)))


def faces_of(detector, paths, size):
    """For each photo path, (face crop, None) or (None, the reason there is none); one MTCNN
    call for all the photos (one per run of equal shapes)."""
    photos = [load_photo(path) for path in paths]
    boxes = iter(first_boxes(detector, [pixels for pixels, _ in photos if pixels is not None]))
    results = []
    for pixels, reason in photos:
        if pixels is None:
            results.append((None, reason))
            continue
        box = next(boxes)
        face = None if box is None else crop_face(pixels, box, size)
        results.append((face, None) if face is not None else (None, NO_FACE))
    return results


def collect_faces(detector, folder, chosen, args, skipped):
    """(faces, table rows, photos not looked at) for the first --n faces among `chosen`;
    adds the reasons for photos without a face to `skipped`."""
    faces = np.empty((min(args.n, len(chosen)), args.size, args.size, 3), dtype=np.uint8)
    rows, seen = [], 0
    with tqdm(total=len(chosen), unit="img", desc="faces") as bar:
        for start in range(0, len(chosen), args.batch_size):
            batch = chosen[start : start + args.batch_size]
            results = faces_of(detector, [os.path.join(folder, name) for name, _ in batch], args.size)
            bar.update(len(batch))
            for (_, row), (face, reason) in zip(batch, results):
                seen += 1
                if face is None:
                    skipped[reason] += 1
                    continue
                faces[len(rows)] = face
                rows.append(row)
                if len(rows) == args.n:
                    return faces, np.array(rows, dtype=np.int64), len(chosen) - seen
    return faces[: len(rows)], np.array(rows, dtype=np.int64), 0


def main(argv=None):
    args = parse_args(argv)
    try:
        check_args(args)
        ids, columns = read_attributes(args.attributes)
        chosen, skipped = attractive_photos(args.images, ids, columns["Attractive"])
        n_faces = min(args.n, len(chosen))
        cli.check_memory(n_faces * args.size**2 * 3, f"{n_faces} faces of {args.size}x{args.size}")
        writable_folder(args.out_dir)
    except InputError as e:
        fail(str(e))
    detector = MTCNN()  # slow to build: once per run
    faces, rows, not_seen = collect_faces(detector, args.images, chosen, args, skipped)
    if not len(rows):
        fail(f"no face found in the {len(chosen)} attractive photos in {args.images}")
    images_path = os.path.join(args.out_dir, CELEB.images_file)
    ids_path = os.path.join(args.out_dir, CELEB.labels_file)
    save_npz(images_path, faces)
    save_npz(ids_path, rows)
    # the classes training will derive from these rows (datasets.face_labels_from_rows)
    labels = face_classes(columns["Male"][rows], columns["High_Cheekbones"][rows], columns["Big_Lips"][rows])
    n_files = len(chosen) + skipped[NOT_IN_TABLE] + skipped[NOT_ATTRACTIVE]
    counts = {reason: skipped[reason] for reason in SKIP_REASONS}
    print_prepared_summary("faces", labels, CELEB.class_names, counts, n_files, not_seen, "--n")
    print(f"wrote {images_path} {faces.shape} and {ids_path} {rows.shape}")


if __name__ == "__main__":
    main()
