"""prepare_xrays.py on synthetic chest X-ray JPEGs laid out as Kermany et al.'s dataset
({train,test,val}/{NORMAL,PNEUMONIA}, personN_virus_M.jpeg / personN_bacteria_M.jpeg names),
with a .DS_Store and a truncated JPEG among them."""

import io
import os
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageOps

import prepare_xrays
from cganlib import datasets, storage, xray_images

# relative path -> expected label, or the reason it is skipped; listed in the sorted walk order
TREE = {
    "test/NORMAL/NORMAL2-IM-0012-0001.jpeg": 0,
    "test/PNEUMONIA/person2_virus_3.jpeg": 1,
    "test/PNEUMONIA/person3_bacteria_10.jpeg": 2,
    "test/PNEUMONIA/person4_bacteria_2.jpeg": "unreadable",
    "train/NORMAL/.DS_Store": "not an image",
    "train/NORMAL/IM-0115-0001.jpeg": 0,
    "train/NORMAL/IM-0117-0001.jpeg": 0,
    "train/PNEUMONIA/person1_bacteria_1.jpeg": 2,
    "train/PNEUMONIA/person1_virus_6.jpeg": 1,
    "val/PNEUMONIA/person5_virus_1.jpeg": 1,
    "val/PNEUMONIA/more/person6_bacteria_7.jpeg": 2,
}
KEPT = [path for path, label in TREE.items() if isinstance(label, int)]
LABELS = [TREE[path] for path in KEPT]


def synthetic_xray(rng, width, height, low=0, high=255):
    """A grey chest-like picture: a bright body, two dark lungs, ribs, and film noise."""
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    body = np.exp(-((((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.55) ** 2) ** 2))
    lungs = np.exp(-(((np.abs(xx - 0.5) - 0.2) / 0.11) ** 2 + ((yy - 0.45) / 0.28) ** 2))
    ribs = 0.5 + 0.5 * np.sin(40 * yy + 2 * np.sin(6 * xx))
    grey = body * (0.85 - 0.5 * lungs + 0.12 * ribs) + rng.normal(0, 0.03, (height, width))
    return Image.fromarray(np.clip(low + (high - low) * grey, 0, 255).astype(np.uint8))


def jpeg_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def xrays(tmp_path_factory):
    root = tmp_path_factory.mktemp("xray") / "chest_xray"
    rng = np.random.default_rng(0)
    for k, (relative, label) in enumerate(TREE.items()):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        xray = synthetic_xray(rng, 320 + 16 * k, 260 + 8 * k)
        if label == "not an image":
            path.write_bytes(b"\0\0\0\1Bud1\0\0\x10\0")
        elif label == "unreadable":
            data = jpeg_bytes(xray)
            path.write_bytes(data[: len(data) // 2])
        elif relative.startswith("test/NORMAL"):
            xray.convert("RGB").save(path, quality=90)  # some of the real files are RGB JPEGs
        else:
            xray.save(path, quality=90)
    return SimpleNamespace(root=root, kept=[root / p for p in KEPT], all=[root / p for p in TREE])


def load_output(out_dir):
    return (
        storage.load_npz(os.path.join(out_dir, "img_align_xray.npz")),
        storage.load_npz(os.path.join(out_dir, "labels_align_xray.npz")),
    )


def full_decode(path, size=80):
    """The posted script's pixels: full decode, RGB, resize."""
    with Image.open(path) as image:
        return image.convert("RGB").resize((size, size))


@pytest.mark.slow
def test_cli_labels_from_names_in_sorted_order(xrays, run, tmp_path):
    result = run("prepare_xrays.py", "--images", xrays.root, "--out_dir", tmp_path)
    assert result.returncode == 0, result.stderr
    images, labels = load_output(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["img_align_xray.npz", "labels_align_xray.npz", "names.txt", "prepared_xray.json"]
    assert labels.tolist() == LABELS
    assert (tmp_path / "names.txt").read_text().splitlines() == KEPT  # each row's file: its patient
    assert images.shape == (len(KEPT), 80, 80, 3) and images.dtype == np.uint8
    assert (images == images[..., :1]).all()  # 3 equal channels
    for image, path in zip(images, xrays.kept):  # reduced decoding: close to the full-size way
        expected = np.asarray(ImageOps.equalize(full_decode(path).convert("L")), dtype=int)
        assert np.abs(image[..., 0].astype(int) - expected).mean() < 1.0
    for line in [
        "kept 9 X-rays of 11 files",
        "skipped, not an image: 1",
        "skipped, unreadable: 1",
        "class 0 healthy: 3 (0.33333)",
        "class 1 viral: 3 (0.33333)",
        "class 2 bacter: 3 (0.33333)",
        "cumulative class fractions (training's label sampling): [0.0, 0.33333, 0.66667, 1.0]",
    ]:
        assert line in result.stdout
    assert "img/s" in result.stderr  # the progress bar's rate


def test_no_equalize_full_decode_is_the_posted_script(xrays, tmp_path):
    prepare_xrays.main(["--images", str(xrays.root), "--out_dir", str(tmp_path), "--no_equalize", "--full_decode"])
    images, labels = load_output(tmp_path)
    assert labels.tolist() == LABELS
    for image, path in zip(images, xrays.kept):
        np.testing.assert_array_equal(image, np.asarray(full_decode(path)))


def test_n_xrays_keeps_the_first(xrays, tmp_path, capsys):
    prepare_xrays.main(["--images", str(xrays.root), "--out_dir", str(tmp_path), "--n_xrays", "3", "--size", "32"])
    images, labels = load_output(tmp_path)
    assert images.shape == (3, 32, 32, 3) and labels.tolist() == LABELS[:3]
    # the 3rd image kept is the 3rd file: 8 files are left
    assert "left out (--n reached): 8" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name, label",
    [
        ("person1_virus_6.jpeg", 1),
        ("person1_bacteria_1.jpeg", 2),
        ("IM-0115-0001.jpeg", 0),
        ("NORMAL2-IM-1427-0001.jpeg", 0),
        ("virus/IM-0001-0001.jpeg", 0),  # the file name decides, not the folder
    ],
)
def test_label_from_file_name(name, label):
    assert datasets.xray_label(name) == label


def test_threads_keep_file_order(xrays):
    sequential = [xray_images.load_xray(path, 40) for path in xrays.all]
    threaded = list(xray_images.load_xrays(xrays.all, 40, workers=3))
    assert [reason for _, reason in threaded] == [reason for _, reason in sequential]
    for (a, _), (b, _) in zip(threaded, sequential):
        assert (a is None and b is None) or np.array_equal(a, b)


def test_reduced_decoding_stays_close_to_full_decoding(tmp_path):
    path = tmp_path / "person7_bacteria_1.jpeg"
    synthetic_xray(np.random.default_rng(1), 1400, 1100).save(path, quality=90)  # 1.5 megapixels, as real ones
    with Image.open(path) as image:
        xray_images.reduce_decoding(image, 80)
        assert image.size == (350, 275)  # 1/4 scale: the smallest still at least 160 pixels a side
    for equalize, mean_bound, max_bound in [(False, 0.5, 3), (True, 1.0, 8)]:
        reduced, _ = xray_images.load_xray(path, 80, equalize, reduced=True)
        full, _ = xray_images.load_xray(path, 80, equalize, reduced=False)
        difference = np.abs(reduced.astype(int) - full.astype(int))
        assert difference.mean() <= mean_bound and difference.max() <= max_bound


def cdf_gap(grey):
    """Largest distance, in pixels, between the count of pixels below each grey level the image
    uses and the count a perfectly flat histogram (n/256 pixels a level) has below it."""
    counts = np.bincount(grey.ravel(), minlength=256)
    below = np.concatenate([[0], np.cumsum(counts)[:-1]])
    used = counts > 0
    return np.abs(below[used] - np.arange(256)[used] * grey.size / 256).max()


def test_equalized_histogram_is_flat(tmp_path):
    path = tmp_path / "IM-0001-0001.jpeg"
    synthetic_xray(np.random.default_rng(2), 400, 300, low=70, high=150).save(path)  # a dull, low-contrast film
    before, _ = xray_images.load_xray(path, 80, equalize=False)
    after, _ = xray_images.load_xray(path, 80, equalize=True)
    # one grey level's pixels cannot be split: flat to within the largest level's count, plus one level's share
    allowed = np.bincount(before[..., 0].ravel()).max() + 6400 / 256
    assert cdf_gap(after[..., 0]) <= allowed
    # the check can tell: neither the dull film nor a mere contrast stretch of it passes
    assert cdf_gap(before[..., 0]) > 4 * allowed
    assert cdf_gap(np.asarray(ImageOps.autocontrast(Image.fromarray(before[..., 0])))) > 2 * allowed
    assert after.min() <= 5 and after.max() == 255


def only_junk(tmp):
    folder = tmp / "junk"
    (folder / "NORMAL").mkdir(parents=True)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "NORMAL" / "IM-1.jpeg").write_bytes(jpeg_bytes(Image.new("L", (64, 64)))[:100])
    return folder


def a_file(tmp):
    path = tmp / "a_file"
    path.write_text("")
    return path


# (case, arguments made in a temporary folder, a piece of the expected error message)
BAD_INPUTS = [
    ("missing folder", lambda tmp: ["--images", tmp / "nowhere"], "not found"),
    ("empty folder", lambda tmp: ["--images", tmp], "no files under"),
    ("no images", lambda tmp: ["--images", only_junk(tmp)], "no images found under"),
    ("output not a folder", lambda tmp: ["--out_dir", a_file(tmp) / "out"], "cannot create output folder"),
    ("n_xrays 0", lambda tmp: ["--n_xrays", 0], "--n/--n_xrays: must be at least 1"),
    ("workers 0", lambda tmp: ["--workers", 0], "--workers: must be at least 1, got 0"),
]


@pytest.mark.parametrize("extra, message", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_no_output(extra, message, xrays, tmp_path, capsys):
    args = ["--images", xrays.root, "--out_dir", tmp_path / "out", *extra(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        prepare_xrays.main(list(map(str, args)))
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: " in last_line and message in last_line
    assert not list(tmp_path.rglob("*.npz"))


def test_no_images_names_the_reasons(tmp_path, capsys):
    with pytest.raises(SystemExit):
        prepare_xrays.main(["--images", str(only_junk(tmp_path)), "--out_dir", str(tmp_path / "out")])
    assert "(1 not an image, 1 unreadable)" in capsys.readouterr().err


def test_interrupted_write_keeps_the_old_file(xrays, tmp_path, monkeypatch):
    old = np.zeros((1, 80, 80, 3), np.uint8)
    storage.save_npz(tmp_path / "img_align_xray.npz", old)

    def killed_midway(f, *arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.np, "savez_compressed", killed_midway)
    with pytest.raises(SystemExit) as stop:  # Ctrl-C: one line, exit status 130
        prepare_xrays.main(["--images", str(xrays.root), "--out_dir", str(tmp_path)])
    assert stop.value.code == 130
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["img_align_xray.npz"]
    np.testing.assert_array_equal(storage.load_npz(tmp_path / "img_align_xray.npz"), old)


@pytest.mark.slow
def test_cli_error_has_no_traceback(run, tmp_path):
    result = run("prepare_xrays.py", "--images", tmp_path / "nowhere", "--out_dir", tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"prepare_xrays.py: error: X-ray folder {tmp_path / 'nowhere'} not found"
    assert not list(tmp_path.iterdir())
