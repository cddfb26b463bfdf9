"""prepare_faces.py's work: MTCNN's face crops of CelebA photos. MTCNN runs on batches of
photos of one size at a time, many times faster than one photo per call, with the same boxes.
"""

import os

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before mtcnn, which loads it)

# isort: split
import numpy as np
from mtcnn import MTCNN
from PIL import Image
from tqdm import tqdm

from cganlib.datasets import read_image

NO_FACE = "no face"
# MTCNN's last-stage (ONet) confidence threshold: the original ran mtcnn 0.1.0, whose stage
# thresholds were [0.6, 0.7, 0.7]; mtcnn 1.0 defaults this stage to 0.8 (its first two stages'
# defaults, 0.6 and 0.7, already match), which would drop faces scored in (0.7, 0.8].
ONET_THRESHOLD = 0.7


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


def collect_faces(folder, chosen, args, skipped):
    """(faces, table rows, photos not looked at) for the first --n faces among `chosen`;
    adds the reasons for photos without a face to `skipped`."""
    detector = MTCNN()  # slow to build: once per run
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
