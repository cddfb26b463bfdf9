"""prepare_faces.py on real pixels: CelebA-like 178x218 photos cut from scikit-image's astronaut
(a face MTCNN finds) and cameraman, photos without faces (coffee, rocket), a text file, a
truncated JPEG and a .DS_Store, with an attribute table whose rows are not in file order."""

import inspect
import io
import os
import random
from types import SimpleNamespace

import numpy as np
import pytest
from mtcnn import MTCNN
from mtcnn.stages import StageONet, StagePNet, StageRNet
from PIL import Image
from skimage import data

import prepare_faces
from cganlib import face_crops, storage
from cganlib.datasets import face_labels_from_rows

ASTRONAUT = data.astronaut()
COLUMNS = ["5_o_Clock_Shadow", "Attractive", "Big_Lips", "High_Cheekbones", "Male"]
KEPT = ["000001.jpg", "000004.jpg", "000006.jpg", "000009.jpg", "000011.jpg"]
KEPT_CLASSES = [2, 1, 3, 0, 0]


def astronaut_photo(x0, y0, height, size=(178, 218)):
    """A CelebA-like portrait cut from the astronaut photo."""
    window = ASTRONAUT[y0 : y0 + height, x0 : x0 + height * 178 // 218]
    return Image.fromarray(window).resize(size)


def corner_photo():
    """A photo whose face sticks out of its top-left corner: MTCNN's box starts at negative x, y."""
    return Image.fromarray(ASTRONAUT[75:293, 200:378])


def other_photo(name):
    return Image.fromarray(getattr(data, name)()).resize((178, 218))


def jpeg_bytes(photo):
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def celeb_files():
    """File name -> (photo or raw bytes, attributes in COLUMNS order, or None: not in the table)."""
    truncated = jpeg_bytes(astronaut_photo(120, 10, 260))
    truncated = truncated[: len(truncated) // 2]
    return {
        "000001.jpg": (astronaut_photo(120, 10, 260), [-1, 1, -1, 1, -1]),  # high cheekbones: class 2
        "000002.jpg": (other_photo("coffee"), [-1, 1, -1, -1, -1]),  # no face
        "000003.jpg": (astronaut_photo(140, 20, 240), [-1, -1, -1, -1, -1]),  # not attractive
        "000004.jpg": (astronaut_photo(100, 0, 280), [1, 1, 1, 1, 1]),  # male: class 1
        "000005.jpg": (b"not a photo\n", [-1, 1, -1, -1, -1]),  # not an image
        "000006.jpg": (other_photo("camera"), [-1, 1, 1, -1, -1]),  # grey photo, big lips: class 3
        "000007.jpg": (truncated, [-1, 1, -1, -1, -1]),  # unreadable
        "000008.jpg": (other_photo("rocket"), [-1, 1, -1, -1, -1]),  # no face
        "000009.jpg": (astronaut_photo(130, 30, 250, (200, 250)), [-1, 1, -1, -1, -1]),  # other size: class 0
        "000010.jpg": (astronaut_photo(110, 5, 270), None),  # not in the table
        "000011.jpg": (corner_photo(), [-1, 1, -1, -1, -1]),  # box with a negative corner: class 0
        ".DS_Store": (b"\0\0\0\1Bud1", None),
    }


def write_table(path, rows, fmt="csv"):
    """rows: [(file name, attributes)]; the Kaggle CSV or the original space-separated txt."""
    if fmt == "csv":
        lines = [",".join(["image_id", *COLUMNS])]
        lines += [",".join([name, *map(str, values)]) for name, values in rows]
    else:
        lines = [str(len(rows)), " ".join(COLUMNS)]
        lines += [name + "".join(f"{v:3d}" for v in values) for name, values in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def celeb(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeb")
    images = root / "img_align_celeba"
    images.mkdir()
    table = []
    for name, (content, attributes) in celeb_files().items():
        if isinstance(content, bytes):
            (images / name).write_bytes(content)
        else:
            content.save(images / name, quality=95)
        if attributes is not None:
            table.append((name, attributes))
    table.append(("999999.jpg", [1, 1, 1, 1, 1]))  # a row without a photo
    random.Random(3).shuffle(table)  # the row is looked up by name, not by walk position
    write_table(root / "list_attr_celeba.csv", table)
    write_table(root / "list_attr_celeba.txt", table, fmt="txt")
    rows = {name: row for row, (name, _) in enumerate(table)}
    return SimpleNamespace(images=images, csv=root / "list_attr_celeba.csv", txt=root / "list_attr_celeba.txt", rows=rows)


@pytest.fixture(scope="module")
def detector():
    return MTCNN()


def one_call_per_image_face(detector, path, size=80):
    """The original's way: one MTCNN call for one photo, first box, abs() corner, crop, resize."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    x, y, width, height = detector.detect_faces(pixels, fit_to_image=False, threshold_onet=0.7)[0]["box"]
    x, y = abs(x), abs(y)
    return np.asarray(Image.fromarray(pixels[y : y + height, x : x + width]).resize((size, size)))


def load_output(out_dir):
    return (
        storage.load_npz(out_dir / "img_align_celeba_attractive.npz"),
        storage.load_npz(out_dir / "ids_align_celeba_attractive.npz"),
    )


@pytest.mark.slow
def test_cli_keeps_attractive_faces_in_sorted_order(celeb, detector, run, tmp_path):
    out = tmp_path / "out"
    result = run(
        "prepare_faces.py", "--images", celeb.images, "--attributes", celeb.csv, "--out_dir", out, "--batch", 3
    )
    assert result.returncode == 0, result.stderr
    faces, ids = load_output(out)
    assert sorted(os.listdir(out)) == ["ids_align_celeba_attractive.npz", "img_align_celeba_attractive.npz", "prepared_celeb.json"]
    assert ids.tolist() == [celeb.rows[name] for name in KEPT]
    assert face_labels_from_rows(celeb.csv, ids).tolist() == KEPT_CLASSES
    assert faces.shape == (5, 80, 80, 3) and faces.dtype == np.uint8
    # batches of 3 photos, split again where the photo size changes: the same crops as one call per photo
    for face, name in zip(faces, KEPT):
        np.testing.assert_array_equal(face, one_call_per_image_face(detector, celeb.images / name))
    for line in [
        "kept 5 faces of 12 files",
        "skipped, not in the attribute table: 2",
        "skipped, not attractive: 1",
        "skipped, not an image: 1",
        "skipped, unreadable: 1",
        "skipped, no face: 2",
        "class 0 fem: 2 (0.40000)",
        "cumulative class fractions (training's label sampling): [0.0, 0.4, 0.6, 0.8, 1.0]",
    ]:
        assert line in result.stdout
    assert "img/s" in result.stderr  # the progress bar's rate


def test_txt_table_and_n_faces_stop(celeb, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--images", celeb.images, "--attributes", celeb.txt, "--out_dir", out, "--n_faces", 2, "--size", 40]
    prepare_faces.main(list(map(str, args)))
    faces, ids = load_output(out)
    assert ids.tolist() == [celeb.rows[name] for name in KEPT[:2]]
    assert faces.shape == (2, 40, 40, 3)
    # 9 attractive photos; the 2nd face is the 3rd of them
    assert "left out (--n reached): 6" in capsys.readouterr().out


def test_batched_boxes_equal_one_call_per_image(detector):
    photos = [
        astronaut_photo(120, 10, 260),
        other_photo("coffee"),
        astronaut_photo(100, 0, 280, (200, 250)),
        astronaut_photo(90, 0, 300, (200, 250)),
        other_photo("rocket"),
        astronaut_photo(140, 20, 240),
        astronaut_photo(130, 30, 250),
        corner_photo(),
    ]
    pixels = [np.asarray(photo) for photo in photos]
    singles = [detector.detect_faces(p, fit_to_image=False, threshold_onet=0.7) for p in pixels]
    expected = [faces[0]["box"] if faces else None for faces in singles]
    assert sum(box is not None for box in expected) == 6
    assert min(expected[-1][:2]) < 0  # unclipped, as the original's detector: abs() has work to do
    assert face_crops.first_boxes(detector, pixels) == expected


def stage_thresholds(monkeypatch):
    """{threshold name: value} of the confidence threshold each MTCNN stage ran with, its
    default included; recorded while the stages run as usual."""
    used = {}
    for stage, name in ((StagePNet, "threshold_pnet"), (StageRNet, "threshold_rnet"), (StageONet, "threshold_onet")):
        def recording(self, *args, _call=stage.__call__, _name=name, **kwargs):
            bound = inspect.signature(_call).bind(self, *args, **kwargs)
            bound.apply_defaults()
            used[_name] = bound.arguments[_name]
            return _call(self, *args, **kwargs)

        monkeypatch.setattr(stage, "__call__", recording)
    return used


def test_stage_thresholds_are_the_original_mtcnns(detector, monkeypatch):
    """mtcnn 0.1.0 (February 2020) kept proposals above [0.6, 0.7, 0.7]; mtcnn 1.0's last stage
    defaults to 0.8, so prepare_faces passes 0.7."""
    used = stage_thresholds(monkeypatch)
    face_crops.first_boxes(detector, [np.asarray(astronaut_photo(120, 10, 260))])
    assert used == {"threshold_pnet": 0.6, "threshold_rnet": 0.7, "threshold_onet": 0.7}


def noisy_photos():
    """The astronaut portrait under seeded Gaussian noise of growing strength: MTCNN's final
    confidence falls from about 1 to 0, through the band (0.7, 0.8] for some of them."""
    pixels = np.asarray(astronaut_photo(120, 10, 260)).astype(np.float64)
    noise = np.random.default_rng(0).normal(size=pixels.shape)
    return [np.clip(np.round(pixels + s * noise), 0, 255).astype(np.uint8) for s in range(80, 101, 2)]


def test_a_face_scored_between_0_7_and_0_8_is_kept(detector):
    """The original's detector kept a face whose last-stage confidence was in (0.7, 0.8];
    mtcnn 1.0 at its default threshold drops it; prepare_faces keeps it, with the same box."""
    in_band = []
    for pixels in noisy_photos():
        faces = detector.detect_faces(pixels.astype(np.float32), fit_to_image=False, threshold_onet=0.0)
        if faces and 0.7 < faces[0]["confidence"] <= 0.8:
            in_band.append((pixels, faces[0]["box"]))
    assert in_band, "no noisy photo has a face scored in (0.7, 0.8]: choose other noise strengths"
    for pixels, box in in_band:
        assert detector.detect_faces(pixels.astype(np.float32), fit_to_image=False) == []  # mtcnn 1.0's 0.8
        assert face_crops.first_boxes(detector, [pixels]) == [box]


def test_crop_takes_abs_of_a_negative_corner():
    pixels = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(pixels[2:14, 3:13]).resize((8, 8)))
    np.testing.assert_array_equal(face_crops.crop_face(pixels, [-3, -2, 10, 12], 8), expected)
    assert face_crops.crop_face(pixels, [70, 0, 5, 5], 8) is None


def text_file(tmp, text):
    path = tmp / "table.csv"
    path.write_text(text)
    return path


def photo_folder(tmp, photos):
    folder = tmp / "photos"
    folder.mkdir()
    for name, photo in photos.items():
        photo.save(folder / name)
    return folder


HEADER = "image_id," + ",".join(COLUMNS)
# (case, extra arguments made in a temporary folder, a piece of the expected error message)
BAD_INPUTS = [
    ("missing folder", lambda tmp: ["--images", tmp / "nowhere"], "not found"),
    ("empty folder", lambda tmp: ["--images", photo_folder(tmp, {})], "no files in"),
    ("missing table", lambda tmp: ["--attributes", tmp / "nowhere.csv"], "not found"),
    ("no Attractive", lambda tmp: ["--attributes", text_file(tmp, "image_id,Male,High_Cheekbones,Big_Lips\n000001.jpg,1,-1,-1\n")],
     "has no column Attractive"),
    ("no image_id", lambda tmp: ["--attributes", text_file(tmp, "name" + HEADER[8:] + "\n")], "no image_id column"),
    ("no photo in table", lambda tmp: ["--attributes", text_file(tmp, HEADER + "\n123456.jpg,1,1,1,1,1\n")],
     "none of the 12 files"),
    ("output not a folder", lambda tmp: ["--out_dir", text_file(tmp, "") / "out"], "cannot create output folder"),
    ("no face", lambda tmp: ["--images", photo_folder(tmp, {"000001.jpg": other_photo("coffee")})],
     "no face found in the 1 attractive photos"),
    ("size 0", lambda tmp: ["--size", 0], "--size: must be at least 1, got 0"),
]


@pytest.mark.parametrize("extra, message", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_no_output(extra, message, celeb, tmp_path, capsys):
    args = ["--images", celeb.images, "--attributes", celeb.csv, "--out_dir", tmp_path / "out", *extra(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        prepare_faces.main(list(map(str, args)))
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: " in last_line and message in last_line
    assert not list(tmp_path.rglob("*.npz"))


@pytest.mark.slow
def test_cli_error_has_no_traceback(celeb, run, tmp_path):
    result = run("prepare_faces.py", "--images", celeb.images, "--attributes", tmp_path / "x.csv", "--out_dir", tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"prepare_faces.py: error: attribute table {tmp_path / 'x.csv'} not found"
    assert not list(tmp_path.iterdir())
