"""What the scripts know about the datasets, without TensorFlow: the per-dataset files and classes (the
original's two, and `folder`, any folder of labelled images, whose classes come from its
classes.json), the class rules (4 face classes from CelebA attributes, 3 X-ray classes from file
names), reading image files with the reasons a file is skipped, the preparing scripts' summary,
and reading the prepared arrays back. The preparing scripts need only this, Pillow and NumPy;
the models are in cgan.py.
"""

import os
import stat
import struct
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cganlib.storage import (
    InputError,
    check_file_set,
    load_arrays,
    open_regular,
    parse_json,
)

IMAGE_SIDE = 80  # prepared images are (80, 80, 3) uint8
HEALTHY, VIRAL, BACTERIAL = 0, 1, 2  # the X-ray classes


@dataclass(frozen=True)
class Dataset:
    """One dataset's settings; file names are relative to the data folder."""

    name: str
    n_classes: int
    images_file: str
    labels_file: str
    prepare_script: str
    class_names: tuple
    heatmap_labels: tuple  # the original heatmap script's compared labels and sample count
    heatmap_samples: int


DATASETS = {
    "celeb": Dataset(
        name="celeb",
        n_classes=4,
        images_file="img_align_celeba_attractive.npz",
        labels_file="ids_align_celeba_attractive.npz",  # rows of the attribute table
        prepare_script="files/prepare_faces.py",
        class_names=("fem", "mal", "fem_cheek", "fem_lips"),
        heatmap_labels=(2, 1),
        heatmap_samples=3,
    ),
    "xray": Dataset(
        name="xray",
        n_classes=3,
        images_file="img_align_xray.npz",
        labels_file="labels_align_xray.npz",
        prepare_script="files/prepare_xrays.py",
        class_names=("healthy", "viral", "bacter"),
        heatmap_labels=(HEALTHY, VIRAL, BACTERIAL),
        heatmap_samples=1,
    ),
}
ATTRIBUTES_FILE = "list_attr_celeba.csv"

# Any folder of labelled images (prepare_folders.py); its training values: config.DATASET_DEFAULTS.
FOLDER = "folder"
CLASSES_FILE = "classes.json"
DATASET_NAMES = (*sorted(DATASETS), FOLDER)
MIN_CLASSES, MAX_CLASSES = 2, 100


def read_classes(data_dir):
    """(class names, images per class) from a prepared folder dataset's classes.json."""
    path = os.path.join(data_dir, CLASSES_FILE)
    if not os.path.exists(path):
        raise InputError(f"{path} not found (make it with files/prepare_folders.py)")
    try:
        with open_regular(path) as f:
            table = parse_json(f)
        names, counts = [str(name) for name in table["classes"]], [int(c) for c in table["counts"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a classes table ({type(e).__name__}: {e})") from e
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES or len(counts) != len(names):
        raise InputError(f"{path}: needs {MIN_CLASSES} to {MAX_CLASSES} classes with a count each")
    return names, counts


def manifest_file(dataset_name):
    """The file that commits a dataset's prepared files as one set (storage.save_file_set)."""
    return f"prepared_{dataset_name}.json"


def dataset_settings(name, data_dir):
    """The settings of dataset `name`; for `folder`, built from data_dir's classes.json
    (every class compared in the heatmaps, one sample, as for X-rays)."""
    if name != FOLDER:
        return DATASETS[name]
    names, _ = read_classes(data_dir)
    return Dataset(
        name=FOLDER,
        n_classes=len(names),
        images_file="img_align_folder.npz",
        labels_file="labels_align_folder.npz",
        prepare_script="files/prepare_folders.py",
        class_names=tuple(names),
        heatmap_labels=tuple(range(len(names))),
        heatmap_samples=1,
    )


# ---------------------------------------------------------------- X-ray labels


def xray_label(path):
    """`virus` in the file's name -> 1 (viral), `bacteria` -> 2 (bacterial), otherwise 0 (healthy);
    the folders on the path do not count."""
    name = os.path.basename(path)
    if "virus" in name:
        return VIRAL
    if "bacteria" in name:
        return BACTERIAL
    return HEALTHY


# ---------------------------------------------------------------- face labels


def face_classes(male, high_cheekbones, big_lips):
    """The 4 face classes from +1/-1 (or 1/0) attribute columns: 0 female, 1 male,
    2 female with high cheekbones, 3 female with big lips and no high cheekbones."""
    male, cheek, lips = (np.asarray(a) > 0 for a in (male, high_cheekbones, big_lips))
    classes = np.zeros(male.shape, dtype=np.int64)
    classes[male] = 1
    classes[~male & cheek] = 2
    classes[(classes == 0) & lips] = 3
    return classes


def read_attribute_table(path):
    """CelebA attributes as (image_ids, {column: int array}); reads the Kaggle CSV
    (`image_id,5_o_Clock_Shadow,...`) or the original space-separated `list_attr_celeba.txt`
    (a count line, then the 40 names, then `file +1 -1 ...` rows). ValueError for a table
    without a header or without rows."""
    with open_regular(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    if lines and "," in lines[0]:
        header = lines[0].split(",")
        rows = [line.split(",") for line in lines[1:]]
    else:
        start = 1 if lines and lines[0].isdigit() else 0
        if len(lines) <= start:
            raise ValueError("no column names")
        header = ["image_id"] + lines[start].split()
        rows = [line.split() for line in lines[start + 1 :]]
    if "image_id" not in header:
        raise ValueError("no image_id column")
    rows = [r for r in rows if len(r) == len(header)]
    if not rows:
        raise ValueError("no rows")
    ids = [r[0] for r in rows]
    try:
        columns = {
            name: np.array([int(r[i]) for r in rows], dtype=np.int64)
            for i, name in enumerate(header)
            if name != "image_id"
        }
    except ValueError as e:
        raise ValueError(f"an attribute that is not +1/-1 ({e})") from e
    return ids, columns


def face_labels_from_rows(attribute_path, rows):
    """Class of each prepared face from its row number in the attribute table."""
    _, columns = read_attribute_table(attribute_path)
    missing = [c for c in ("Male", "High_Cheekbones", "Big_Lips") if c not in columns]
    if missing:
        raise ValueError(f"{attribute_path}: missing columns {', '.join(missing)}")
    rows = np.asarray(rows)
    n_rows = len(columns["Male"])
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"row numbers outside the attribute table's {n_rows} rows")
    return face_classes(columns["Male"][rows], columns["High_Cheekbones"][rows], columns["Big_Lips"][rows])


# ---------------------------------------------------------------- image files

NOT_IMAGE = "not an image"
UNREADABLE = "unreadable"
NOT_REGULAR = "not a regular file"  # a FIFO, a device, a socket: reading one could wait forever
# An image's declared size is checked before it is decoded: a file of a few hundred bytes can
# declare 12000x12000 pixels, gigabytes once decoded. Pillow's own limit (89 megapixels, its
# DecompressionBombWarning) is made an error below; ours is far lower: 25 megapixels decode to
# 75 MB of RGB, and an X-ray, a photo or a scan fits under it.
MAX_PIXELS = 25_000_000
TOO_LARGE = f"over {MAX_PIXELS // 1_000_000} megapixels"
NOT_FINITE = "damaged, NaN or infinite pixels"  # a float image (32-bit TIFF) has no grey levels to scale then
SKIP_REASONS = (NOT_IMAGE, UNREADABLE, NOT_REGULAR, TOO_LARGE, NOT_FINITE)
# what Pillow raises for damaged files, depending on the format and where the damage is
DAMAGED = (OSError, SyntaxError, ValueError, EOFError, struct.error)
warnings.simplefilter("error", Image.DecompressionBombWarning)


def read_image(path, convert):
    """(convert(opened image), None), or (None, the reason the file cannot be used: NOT_IMAGE,
    UNREADABLE, NOT_REGULAR, TOO_LARGE). The size is checked before anything is decoded.
    `convert` must finish its reading before returning (the file closes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens at once, and is refused
    except OSError:
        return None, UNREADABLE
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, NOT_REGULAR
        try:
            with Image.open(f) as image:
                if image.width * image.height > MAX_PIXELS:
                    return None, TOO_LARGE
                return convert(image), None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            return None, TOO_LARGE
        except UnidentifiedImageError:
            return None, NOT_IMAGE
        except NotFinite:
            return None, NOT_FINITE
        except DAMAGED:
            return None, UNREADABLE


def find_files(folder):
    """Every file under folder, sub-folders of any depth included, in sorted order. Links are
    followed, to files and folders alike, wherever they lead: a dataset linked into the folder
    is read as if copied there (read_image then reads regular files only). A folder reached
    again (a link loop, or two links to one folder) is walked once."""
    found, walked = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            dirs.clear()
            continue
        walked.add(real)
        dirs.sort()  # os.walk visits sub-folders in this list's order
        found += [os.path.join(root, name) for name in sorted(files)]
    return found


def read_in_threads(read, paths, workers):
    """read(path) for each path, in order, by `workers` threads (Pillow releases the GIL while
    decoding and resizing). Only a few files are in flight, so stopping early is cheap."""
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for path in paths:
            pending.append(pool.submit(read, path))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def grey_rgb(image, equalize):
    """A Pillow image as grey levels (histogram-equalized if asked) in 3 equal channels, uint8."""
    grey = image.convert("L")
    pixels = np.asarray(ImageOps.equalize(grey) if equalize else grey)
    return np.repeat(pixels[:, :, None], 3, axis=2)


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class NotFinite(ValueError):
    """A float image with NaN or infinite pixels: its range, and so every grey level, is undefined."""


def to_rgb(image):
    """Any Pillow mode as an RGB image: 16-bit grey scaled to 8 bits, transparency over black."""
    if image.mode in SIXTEEN_BIT_MODES:
        grey = np.clip(np.asarray(image, dtype=np.float64) / 257.0, 0, 255)
        return Image.fromarray(np.round(grey).astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise NotFinite
        span = values.max() - values.min()
        grey = (values - values.min()) / span * 255 if span else np.zeros_like(values)
        return Image.fromarray(np.round(grey).astype(np.uint8), "L").convert("RGB")
    if (image.mode == "P" and "transparency" in image.info) or image.mode in ("LA", "PA", "RGBA"):
        image = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", image.size, (0, 0, 0, 255)), image).convert("RGB")
    return image.convert("RGB")


def square(image, pad):
    """The centre square of the image, or the image padded with black to a square."""
    width, height = image.size
    side = max(width, height) if pad else min(width, height)
    if pad:
        canvas = Image.new(image.mode, (side, side))
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        return canvas
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def load_square_image(path, size, pad=False, grey=False, equalize=False):
    """(pixels (size, size, 3) uint8, None), or (None, the reason the file cannot be used). The
    image is turned upright first, as its EXIF orientation says (a camera's photo taken sideways)."""
    small, reason = read_image(path, lambda image: square(to_rgb(ImageOps.exif_transpose(image)), pad)
                               .resize((size, size)))
    if small is None:
        return None, reason
    return (grey_rgb(small, equalize) if grey else np.asarray(small)), None


# ---------------------------------------------------------------- class fractions


def cumulative_fractions(labels, n_classes):
    """[0, f0, f0+f1, ..., 1.0]: the class fractions of the training set, cumulated."""
    counts = np.bincount(np.asarray(labels), minlength=n_classes)[:n_classes]
    return np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])


def print_prepared_summary(what, labels, class_names, skipped, n_files, not_seen, limit_flag):
    """The preparing scripts' closing summary: kept, skipped and why, per-class counts and the
    cumulative class fractions training will sample labels by."""
    print(f"kept {len(labels)} {what} of {n_files} files")
    for reason, count in skipped.items():
        print(f"  skipped, {reason}: {count}")
    if not_seen:
        print(f"  left out ({limit_flag} reached): {not_seen}")
    counts = np.bincount(labels, minlength=len(class_names))
    for label, (name, count) in enumerate(zip(class_names, counts)):
        print(f"  class {label} {name}: {count} ({count / len(labels):.5f})")
    cum = cumulative_fractions(labels, len(class_names))
    print(f"cumulative class fractions (training's label sampling): {np.round(cum, 5).tolist()}")


# ---------------------------------------------------------------- the prepared arrays


def attribute_table(data_dir):
    """The faces' attribute table in data_dir: the Kaggle CSV, or else the original's .txt."""
    csv_table = os.path.join(data_dir, ATTRIBUTES_FILE)
    txt_table = os.path.splitext(csv_table)[0] + ".txt"
    return txt_table if os.path.exists(txt_table) and not os.path.exists(csv_table) else csv_table


def _prepared_images(key, shape, dtype):
    if dtype != np.uint8 or len(shape) != 4 or shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 3):
        raise InputError(f"images must be uint8 (N, {IMAGE_SIDE}, {IMAGE_SIDE}, 3), got {dtype} {shape}")


def _prepared_labels(name, n_images, key, shape, dtype):
    if len(shape) != 1 or not np.issubdtype(dtype, np.integer):
        raise InputError(f"{name} must hold integers of shape (N,), got {dtype} {shape}")
    if shape[0] != n_images:
        raise InputError(f"{shape[0]} labels for {n_images} images")


def training_rows(held_out_from, n_images):
    """The rows to train on: every row but held_out_from's `held_out` ones."""
    if held_out_from == "none":
        return np.arange(n_images)
    held_out = load_arrays(held_out_from, ("held_out",), "train_classifier.py")[0]
    if held_out.dtype.kind not in "iu" or held_out.ndim != 1 or (held_out.size and (held_out.min() < 0 or held_out.max() >= n_images)):
        raise InputError(f"{held_out_from}: held_out must be row numbers of the {n_images} prepared images")
    return np.setdiff1d(np.arange(n_images), held_out)


def load_prepared(settings, data_dir, attributes=None):
    """The prepared uint8 images (N, 80, 80, 3) and their classes (N,) int32, checked; faces'
    classes come from the attribute table (default: attribute_table(data_dir)). InputError
    for missing or malformed files, or for files of two preparing runs."""
    prepared = [settings.images_file, settings.labels_file] + ([CLASSES_FILE] if settings.name == FOLDER else [])
    check_file_set(data_dir, manifest_file(settings.name), prepared, settings.prepare_script)
    (images,) = load_arrays(os.path.join(data_dir, settings.images_file), ("arr_0",), settings.prepare_script,
                            check=_prepared_images)
    if not len(images):
        raise InputError(f"{os.path.join(data_dir, settings.images_file)} holds no images")
    (labels,) = load_arrays(os.path.join(data_dir, settings.labels_file), ("arr_0",), settings.prepare_script,
                            check=partial(_prepared_labels, settings.labels_file, len(images)))
    if settings.name == "celeb":
        attributes = attributes or attribute_table(data_dir)
        if not os.path.exists(attributes):
            raise InputError(f"{attributes} not found (the CelebA attribute table)")
        try:
            labels = face_labels_from_rows(attributes, labels)
        except ValueError as e:
            raise InputError(str(e)) from e
    if labels.size and (labels.min() < 0 or labels.max() >= settings.n_classes):
        raise InputError(f"labels must be in 0..{settings.n_classes - 1}, found {labels.min()}..{labels.max()}")
    return images, labels.astype(np.int32)


def default_data_dir(dataset):
    """The folder a dataset's files are in when --data_dir is not given: files/<dataset>."""
    return os.path.join("files", dataset)
