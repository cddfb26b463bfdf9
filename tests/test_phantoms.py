"""The synthetic chest X-rays of make_phantoms.py: Kermany's layout, determinism, and ground
truth that lies on the findings as prepare_xrays.py sees them (80x80, equalized)."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from cganlib import datasets
from cganlib import phantoms as phantom_drawing
from cganlib.datasets import xray_label as label_from_name
from cganlib.xray_images import load_xray
from helpers import error_line, make_phantom_set

N, SIZE, SEED = 6, 192, 3


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    """One run of the real CLI: (output folder, ground-truth arrays)."""
    from conftest import run_script

    out = tmp_path_factory.mktemp("phantoms")
    result = run_script("make_phantoms.py", "--out_dir", out, "--n", N, "--size", SIZE, "--seed", SEED)
    assert result.returncode == 0, result.stderr
    with np.load(out / "ground_truth.npz") as data:
        truth = {key: data[key] for key in data}
    return out, truth


@pytest.fixture(scope="module")
def prepared(phantoms):
    """Each phantom as prepare_xrays.py loads it for training: (labels, grey 80x80 in 0..1)."""
    out, truth = phantoms
    grey = [load_xray(str(out / "chest_xray" / name), 80)[0][:, :, 0] for name in truth["names"]]
    return truth["labels"], np.stack(grey).astype(np.float32) / 255


def listing(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_layout_and_names_are_kermanys(phantoms):
    out, truth = phantoms
    assert sorted(os.listdir(out)) == ["chest_xray", "ground_truth.npz"]  # no staging left behind
    files = listing(out / "chest_xray")
    read_order = [os.path.relpath(path, out / "chest_xray") for path in datasets.find_files(out / "chest_xray")]
    assert read_order == truth["names"].tolist()  # row i is image i of the prepared training set
    assert len(files) == 3 * N
    for name in files:
        assert re.fullmatch(r"train/(NORMAL/IM-\d{4}-0001|PNEUMONIA/person\d+_(virus|bacteria)_\d+)\.jpeg", name)
        with Image.open(out / "chest_xray" / name) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "L", (SIZE, SIZE))
    counts = np.bincount([label_from_name(os.path.basename(name)) for name in files])
    assert counts.tolist() == [N, N, N]


def test_ground_truth_arrays(phantoms):
    _, truth = phantoms
    assert [label_from_name(name) for name in truth["names"]] == truth["labels"].tolist()
    for key in ("lesion", "lungs"):
        assert truth[key].shape == (3 * N, 80, 80) and truth[key].dtype == np.uint8
        assert set(np.unique(truth[key])) <= {0, 1}
    has_lesion = truth["lesion"].any(axis=(1, 2))
    assert has_lesion.tolist() == (truth["labels"] == datasets.BACTERIAL).tolist()
    lung_share = truth["lungs"].mean(axis=(1, 2))
    assert np.all((lung_share > 0.08) & (lung_share < 0.3))


def test_lesion_is_in_the_right_lower_lobe(phantoms):
    _, truth = phantoms
    for lesion, lungs in zip(truth["lesion"][truth["labels"] == 2], truth["lungs"][truth["labels"] == 2]):
        rows, cols = np.nonzero(lesion)
        lung_rows = np.nonzero(lungs[:, :40])[0]
        assert cols.max() < 40  # the image's left half: the patient's right
        assert rows.mean() > (lung_rows.min() + lung_rows.max()) / 2  # lower half of that lung
        assert (lesion & lungs).sum() >= 0.9 * lesion.sum()  # inside the lung field
        assert 30 < lesion.sum() < 250


def test_lesion_moves_with_the_anatomy(phantoms):
    _, truth = phantoms
    bacterial = truth["labels"] == 2
    lesion_centres = np.array([np.argwhere(lesion).mean(axis=0) for lesion in truth["lesion"][bacterial]])
    lung_centres = np.array([np.argwhere(lungs[:, :40]).mean(axis=0) for lungs in truth["lungs"][bacterial]])
    assert np.all(lung_centres.std(axis=0) > 1.0)  # the patients stand in different places
    assert np.all((lesion_centres - lung_centres).std(axis=0) < 0.5 * lung_centres.std(axis=0))


def test_any_lesion_place_moves_the_consolidation_between_lungs_and_zones_and_fixed_draws_as_before(tmp_path, phantoms):
    from conftest import run_script

    out = tmp_path / "any"
    result = run_script("make_phantoms.py", "--out_dir", out, "--n", 16, "--size", SIZE, "--seed", SEED,
                        "--lesion_place", "any")
    assert result.returncode == 0, result.stderr
    with np.load(out / "ground_truth.npz") as data:
        labels, lesions, lungs = data["labels"], data["lesion"], data["lungs"]
    places = set()
    for lesion, lung in zip(lesions[labels == 2], lungs[labels == 2]):
        rows, cols = np.nonzero(lesion)
        side = "left of image" if cols.max() < 40 else "right of image" if cols.min() >= 40 else "both"
        lung_rows = np.nonzero(lung[:, :40] if side == "left of image" else lung[:, 40:])[0]
        zone = "lower" if rows.mean() > (lung_rows.min() + lung_rows.max()) / 2 else "upper"
        places.add((side, zone))
        assert (lesion & lung).sum() >= 0.9 * lesion.sum() and lesion.sum() > 20  # inside the lung field
    assert places == {(side, zone) for side in ("left of image", "right of image") for zone in ("lower", "upper")}
    assert not lesions[labels != 2].any()
    # healthy and viral phantoms draw no lesion place: the same files as with --lesion_place fixed
    fixed_out, _ = phantoms
    for name in ("train/NORMAL/IM-0001-0001.jpeg", "train/PNEUMONIA/person2_virus_1.jpeg"):
        assert (out / "chest_xray" / name).read_bytes() == (fixed_out / "chest_xray" / name).read_bytes()


def test_the_fixed_lesion_place_draws_what_the_default_draws():
    for index in range(3):
        default = phantom_drawing.phantom(SEED, 2, index, size=SIZE)
        fixed = phantom_drawing.phantom(SEED, 2, index, size=SIZE, lesion_place="fixed")
        assert all(np.array_equal(a, b) for a, b in zip(default, fixed))


# The `fixed` place, pinned: the centre (row, column) of the consolidation's mask in bacterial
# phantoms 0, 1, 2 at size 192, as drawn since the README's demo results were measured
FIXED_LESION_CENTRES = [(112.26, 71.34), (115.76, 58.36), (110.29, 56.32)]


def test_the_fixed_lesion_place_stays_where_the_results_were_measured():
    for index, centre in enumerate(FIXED_LESION_CENTRES):
        lesion = phantom_drawing.phantom(SEED, 2, index, size=SIZE, lesion_place="fixed")[1]
        assert tuple(np.argwhere(lesion).mean(axis=0)) == pytest.approx(centre, abs=0.5), index


def test_masks_lie_on_the_findings_after_preparation(phantoms, prepared):
    _, truth = phantoms
    labels, grey = prepared
    healthy, viral, bacterial = (labels == k for k in (0, 1, 2))
    region = truth["lesion"].any(axis=0)
    # the consolidation is bright where its mask says, in every bacterial image
    in_lesion = [image[mask.astype(bool)].mean() for image, mask in zip(grey[bacterial], truth["lesion"][bacterial])]
    assert min(in_lesion) > grey[healthy][:, region].mean() + 0.2
    # lungs are dark in healthy images, hazy (brighter) in viral ones
    in_lungs = np.array([image[mask.astype(bool)].mean() for image, mask in zip(grey, truth["lungs"])])
    outside = np.array([image[~mask.astype(bool)].mean() for image, mask in zip(grey, truth["lungs"])])
    assert np.all(in_lungs[healthy] < outside[healthy] - 0.05)
    assert in_lungs[viral].min() > in_lungs[healthy].max()
    assert in_lungs[viral].mean() > in_lungs[healthy].mean() + 0.2


def test_same_seed_same_files_whatever_n(phantoms, tmp_path):
    out, truth = phantoms
    again = make_phantom_set(tmp_path, 2, SIZE, SEED)
    for name in again["names"]:
        assert (tmp_path / "chest_xray" / name).read_bytes() == (out / "chest_xray" / name).read_bytes()
        k = truth["names"].tolist().index(name)
        j = again["names"].tolist().index(name)
        assert np.array_equal(again["lesion"][j], truth["lesion"][k])
        assert np.array_equal(again["lungs"][j], truth["lungs"][k])
    other, _, _ = phantom_drawing.phantom(SEED + 1, 0, 0, SIZE)
    same, _, _ = phantom_drawing.phantom(SEED, 0, 0, SIZE)
    assert not np.array_equal(other, same)


def test_workers_write_the_same_files_and_truth(phantoms, tmp_path):
    """The default run used every core here; one worker gives the same bytes and rows."""
    out, truth = phantoms
    alone = make_phantom_set(tmp_path, N, SIZE, SEED, workers=1)
    assert listing(tmp_path / "chest_xray") == listing(out / "chest_xray")
    for name in alone["names"]:
        assert (tmp_path / "chest_xray" / name).read_bytes() == (out / "chest_xray" / name).read_bytes()
    for key in ("names", "labels", "lesion", "lungs"):
        assert np.array_equal(alone[key], truth[key])
    two = make_phantom_set(tmp_path / "two", N, SIZE, SEED, workers=2)
    for key in ("names", "labels", "lesion", "lungs"):
        assert np.array_equal(two[key], truth[key])


def test_anatomy_varies_between_images():
    images = [phantom_drawing.phantom(SEED, 0, k, SIZE)[2] for k in range(4)]
    assert len({image.tobytes() for image in images}) == 4  # lung fields differ: position and size jitter


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "0"], "--n: must be at least 1, got 0"),
        (["--size", "64"], "--size: must be at least 80, got 64"),
        (["--lesion_strength", "2"], "--lesion_strength: must be in [0, 1], got 2"),
    ],
)
def test_bad_arguments_are_one_line_errors(run, tmp_path, args, message):
    result = run("make_phantoms.py", "--out", tmp_path, *args)
    assert message in error_line(result.returncode, result.stderr)
    assert os.listdir(tmp_path) == []


def test_existing_phantoms_are_replaced_only_when_asked(run, tmp_path):
    assert run("make_phantoms.py", "--out", tmp_path, "--n", 1, "--size", 80).returncode == 0
    result = run("make_phantoms.py", "--out", tmp_path, "--n", 2, "--size", 80)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert run("make_phantoms.py", "--out", tmp_path, "--n", 2, "--size", 80, "--overwrite").returncode == 0
    assert len(listing(tmp_path / "chest_xray")) == 6
    # someone else's chest_xray (no ground truth beside it) is never replaced
    os.remove(tmp_path / "ground_truth.npz")
    result = run("make_phantoms.py", "--out", tmp_path, "--n", 1, "--size", 80, "--overwrite")
    assert result.returncode == 2 and "not ours" in result.stderr
    assert len(listing(tmp_path / "chest_xray")) == 6
