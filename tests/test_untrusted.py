"""Untrusted files, tampered run folders and interruptions (issue 22): a link or a FIFO where a
file belongs, images and arrays whose headers promise more memory than there is, a prepared set
half replaced, a run folder edited by hand. Each ends in one line and exit status 2 (bad
input) or 1 (the machine failed), or works; nothing outside the run's own files is touched."""

import copy
import io
import json
import math
import os
import resource
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

import explain_image
import heatmap_scores
import heatmaps
import prepare_folders
import prepare_xrays
import train_cgan
import train_classifier
from cganlib import cgan, cli, datasets, explanation, run_folder, storage
from cganlib.collapse_guard import D_MODEL, G_MODEL, GAN_MODELS, CollapseGuard, Decision
from cganlib.storage import InputError
from conftest import DATA, FILES
from helpers import (
    bad_input,
    dead_pid,
    epoch_files,
    full_disk_at,
    history,
    make_xray_data,
    one_error_line,
    save_generator,
    train_argv,
    xray_argv,
)

MEMORY_LIMIT = 600 << 20  # address space for a preparing script: its work fits, a decoded bomb does not
ARRAY_MEMORY_LIMIT = 256 << 20  # for reading arrays without TensorFlow
BOMB_SIDE = 12000


def limited(command, limit=MEMORY_LIMIT, timeout=120):
    """Run command in a subprocess with at most `limit` bytes of address space: one that decodes
    a bomb fails (MemoryError) instead of taking the machine's memory."""

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # OpenBLAS's threads would reserve address space
    return subprocess.run([sys.executable, *map(str, command)], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit_memory, env=env, check=False)


def run_limited(script, *args, timeout=120):
    """files/<script> with args, within MEMORY_LIMIT."""
    return limited([os.path.join(FILES, script), *args], timeout=timeout)


def png_bomb(path, side=BOMB_SIDE):
    """A valid 1-bit PNG of side x side black pixels: 17.5 KB on disk, 144 MB as Pillow's
    1-bit image, 432 MB as RGB."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * ((side // 8 + 1) * side), 9)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def jpeg_bomb(path, side=BOMB_SIDE):
    """A few hundred bytes of JPEG whose header (SOF0) says side x side."""
    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))
    return path


def npz_bomb(path, shape, descr="|u1"):
    """An .npz whose arr_0 is zeros of this shape, written a piece at a time: megabytes on disk."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    n_bytes, piece = math.prod(shape) * np.dtype(descr).itemsize, bytes(1 << 24)
    with (zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
          archive.open("arr_0.npy", "w", force_zip64=True) as f):
        f.write(header.getvalue())
        for start in range(0, n_bytes, len(piece)):
            f.write(piece[: n_bytes - start])
    return path


def small_image(path, value=100):
    Image.fromarray(np.full((90, 100, 3), value, np.uint8)).save(path)
    return path


def class_folders(root, names=("a", "b")):
    for k, name in enumerate(names):
        os.makedirs(root / name, exist_ok=True)
        small_image(root / name / f"{name}.png", 60 * k)
    return root

# ---------------------------------------------------------------- the run folder's lock


def test_a_linked_lock_is_refused_and_its_target_left_alone(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.makedirs(data / "results")
    os.symlink(victim, data / "results" / ".lock")
    err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart"))
    assert "results/.lock is a symbolic link, not a training run's lock: remove it" in err
    with pytest.raises(InputError, match="symbolic link"), run_folder.locked(str(data / "results")):
        pass
    assert victim.read_text() == "precious\n"


def test_a_fifo_lock_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / ".lock")
    with pytest.raises(InputError, match="is not a regular file"):
        run_folder.check_not_in_use(str(tmp_path))
    with pytest.raises(InputError, match="is not a regular file"), run_folder.locked(str(tmp_path)):
        pass


# ---------------------------------------------------------------- images: bombs, FIFOs, links


@pytest.mark.parametrize("script", ["prepare_folders.py", "prepare_xrays.py"])
def test_an_image_bomb_is_skipped_and_counted_within_a_memory_limit(tmp_path, script):
    images = class_folders(tmp_path / "images")
    assert os.path.getsize(png_bomb(images / "a" / "bomb.png")) < 20_000
    result = run_limited(script, "--images", images, "--out_dir", tmp_path / "out", "--workers", 2)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped, over 25 megapixels: 1" in result.stdout
    assert "kept 2 " in result.stdout and "DecompressionBombWarning" not in result.stderr


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")  # as datasets.py sets it; pytest resets it
@pytest.mark.parametrize("side", [8000, 12000, 20000])  # under Pillow's limit, over it, over twice it
def test_a_jpeg_header_claiming_more_than_25_megapixels_is_refused_before_decoding(tmp_path, side):
    from cganlib import face_crops  # prepare_faces.py's reading

    bomb = jpeg_bomb(tmp_path / "tiny.jpg", side)
    assert os.path.getsize(bomb) < 1000
    assert face_crops.load_photo(str(bomb)) == (None, datasets.TOO_LARGE)
    assert datasets.load_square_image(str(bomb), 80) == (None, datasets.TOO_LARGE)


@pytest.mark.parametrize("script", ["prepare_folders.py", "prepare_xrays.py"])
def test_a_fifo_named_like_an_image_is_skipped_not_waited_on(tmp_path, script):
    images = class_folders(tmp_path / "images")
    os.mkfifo(images / "a" / "scan.png")
    result = run_limited(script, "--images", images, "--out_dir", tmp_path / "out", "--workers", 2, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped, not a regular file: 1" in result.stdout


def test_links_are_followed_to_files_and_folders_and_a_loop_is_walked_once(tmp_path, capsys):
    images = class_folders(tmp_path / "images")
    elsewhere = class_folders(tmp_path / "elsewhere", names=("c",))
    os.symlink(elsewhere / "c", images / "c")  # a class folder linked in
    os.symlink(elsewhere / "c" / "c.png", images / "a" / "linked.png")  # a file linked in
    os.symlink(elsewhere / "c", images / "a" / "more")  # a folder linked in
    os.symlink(images / "b", images / "b" / "loop")  # a folder that contains itself
    prepare_folders.main(["--images", str(images), "--out_dir", str(tmp_path / "out"), "--workers", "2"])
    out = capsys.readouterr().out
    assert "kept 5 images of 5 files" in out
    assert "class 0 a: 3" in out and "class 1 b: 1" in out and "class 2 c: 1" in out


# ---------------------------------------------------------------- arrays: headers before data

LOAD_PREPARED = """
import sys
sys.path.insert(0, sys.argv[1])
from cganlib import datasets, storage
try:
    datasets.load_prepared(datasets.DATASETS["xray"], sys.argv[2])
except storage.InputError as e:
    storage.fail(str(e))
"""


@pytest.mark.parametrize("images, labels, message", [
    ((1, 80, 80, 62_500), (1,), "images must be uint8 (N, 80, 80, 3), got uint8 (1, 80, 80, 62500)"),
    ((2, 80, 80, 3), (50_000_000,), "50000000 labels for 2 images"),
])
def test_an_array_bomb_is_refused_from_its_header_within_a_memory_limit(tmp_path, images, labels, message):
    npz_bomb(tmp_path / "img_align_xray.npz", images)  # 400 MB declared, under 2 MB on disk
    npz_bomb(tmp_path / "labels_align_xray.npz", labels, "<i8")
    assert max(os.path.getsize(tmp_path / name) for name in os.listdir(tmp_path)) < 2_000_000
    result = limited(["-c", LOAD_PREPARED, FILES, tmp_path], limit=ARRAY_MEMORY_LIMIT)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1


def test_any_npz_read_refuses_objects_and_arrays_past_the_free_memory_from_the_header(tmp_path):
    header = io.BytesIO()  # a header that declares 100 TB, and no data
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**7, 10**7)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("arr_0.npy", header.getvalue())
    with pytest.raises(InputError, match=r"huge.npz's arrays arr_0 \(10000000, 10000000\) would need 100.0 TB"):
        storage.load_npz(tmp_path / "huge.npz")
    np.savez(tmp_path / "objects.npz", np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="objects.npz: array arr_0 holds Python objects, which are never loaded"):
        storage.load_npz(tmp_path / "objects.npz")


# ---------------------------------------------------------------- the prepared arrays, one set


def xray_folder(root, n=6):
    os.makedirs(root, exist_ok=True)
    for k in range(n):
        small_image(root / f"person{k}_{('virus', 'bacteria', 'normal')[k % 3]}.png", 25 * k)
    return root


def killed_at_rename(monkeypatch, final_name):
    """os.replace raises KeyboardInterrupt (a Ctrl-C) when it would put final_name in place."""
    replace = os.replace

    def replace_or_die(src, dst):
        if os.path.basename(dst) == final_name:
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace_or_die)


def test_a_set_killed_halfway_is_refused_and_one_killed_before_its_manifest_stands(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    prepare = ["--images", str(xray_folder(tmp_path / "old")), "--out_dir", str(data), "--workers", "1"]
    prepare_xrays.main(prepare)
    old_images, old_labels = datasets.load_prepared(datasets.DATASETS["xray"], str(data))
    (data / f".tmp-img_align_xray.npz.{dead_pid()}.k1ll3d").write_bytes(b"left by a killed run")
    prepare[1] = str(xray_folder(tmp_path / "new", n=9))
    killed_at_rename(monkeypatch, "prepared_xray.json")  # killed before the set's commit
    one_error_line(prepare_xrays.main, prepare, capsys, status=cli.EXIT_INTERRUPTED)
    assert not [name for name in os.listdir(data) if name.startswith(".tmp-")]  # the killed run's, and the one before's
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(data))
    assert np.array_equal(images, old_images) and np.array_equal(labels, old_labels)
    monkeypatch.undo()
    killed_at_rename(monkeypatch, "labels_align_xray.npz")  # the new images in place, the old labels beside them
    one_error_line(prepare_xrays.main, prepare, capsys, status=cli.EXIT_INTERRUPTED)
    monkeypatch.undo()
    capsys.readouterr()
    err = bad_input(tmp_path, capsys, xray_argv(data))
    assert "labels_align_xray.npz is not the file prepared_xray.json lists with the rest of its set" in err
    assert "make the set again with files/prepare_xrays.py" in err
    prepare_xrays.main(prepare)
    assert len(datasets.load_prepared(datasets.DATASETS["xray"], str(data))[0]) == 9


def test_every_preparing_script_commits_its_files_as_one_set(tmp_path):
    out = tmp_path / "out"
    prepare_folders.main(["--images", str(class_folders(tmp_path / "images")), "--out_dir", str(out)])
    settings = datasets.dataset_settings("folder", str(out))
    datasets.load_prepared(settings, str(out))
    with open(out / "classes.json", "a") as f:  # edited by hand
        f.write(" ")
    with pytest.raises(InputError, match="classes.json is not the file prepared_folder.json lists"):
        datasets.load_prepared(settings, str(out))


# ---------------------------------------------------------------- a run folder touched by hand


def test_overwrite_removes_exactly_the_runs_files_and_names_what_stays(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = data / "results"
    os.makedirs(results)
    run_folder.write_config(str(results), {"flags": {}})
    for epoch in (1, 2):
        epoch_files(results, epoch)
        (results / f"generated_plot_e{epoch:03d}.png").write_bytes(b"png")
    history(results, [1, 2])
    foreign = ["generator_model_380.h5", "generated_plot_e999.png", "notes.txt"]  # copied in by hand
    for name in foreign:
        (results / name).write_bytes(b"someone's")
    err = bad_input(tmp_path, capsys, xray_argv(data))
    assert "already holds a training run (complete epochs 1-2)" in err
    assert train_cgan.main(xray_argv(data, "--overwrite", "--epochs_goal", 1)) == 0
    assert "2 file(s) its history and config do not name stay: generated_plot_e999.png, generator_model_380.h5" in (
        capsys.readouterr().out)
    assert all((results / name).read_bytes() == b"someone's" for name in foreign)
    assert not (results / "generator_model_002.h5").exists() and run_folder.complete_epochs(str(results)) == [1]


def committed_run(results, epochs):
    """A run folder (run_config.json, history.csv) whose epochs all open, without training."""
    os.makedirs(results, exist_ok=True)
    run_folder.write_config(str(results), {"flags": {}})
    for epoch in epochs:
        epoch_files(results, epoch)
    history(results, epochs)


def test_a_damaged_file_in_the_newest_complete_epoch_is_named_not_replaced(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = data / "results"
    committed_run(results, [1, 2, 3])
    (results / "generator_model_003.h5").write_bytes(b"cut short")
    err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart"))
    assert ("epoch 3 is complete in history.csv but generator_model_003.h5" in err
            and "is missing or damaged: put back a good copy, or resume from epoch 2 with --epochs_done 2, "
                "which replaces epoch 3's files" in err)
    assert (results / "generator_model_003.h5").read_bytes() == b"cut short"


def test_a_damaged_training_state_is_named_before_anything_is_printed_or_written(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    results = data / "results"
    committed_run(results, [1, 2])
    run_folder.save_state(str(results), 2, {"ij": 4}, {"moments": [np.arange(1000.0)]})
    whole = (results / "train_state_002.npz").read_bytes()
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 0xFF
    for damaged in (whole[: len(whole) // 2], bytes(flipped)):  # cut short; a byte of the moments changed
        (results / "train_state_002.npz").write_bytes(damaged)
        err = bad_input(tmp_path, capsys, xray_argv(data, "--qRestart"))
        assert "train_state_002.npz is damaged" in err and "resume from an earlier epoch with --epochs_done" in err


# ---------------------------------------------------------------- a NaN loss


def test_a_nan_loss_trips_the_reload_rules_and_in_the_end_stops_the_run():
    guard = CollapseGuard(gan_upper=3.0)
    assert guard.check(1, 0.2, 0.5, 1.0) == Decision()  # out of the save band: no snapshot, no rule yet
    assert guard.check(2, float("nan"), 0.2, 1.0).reloads == [D_MODEL]  # before a snapshot too
    assert guard.check(12, 0.5, 0.5, 1.0).snapshot
    assert guard.check(13, 0.5, float("nan"), float("nan")).reloads == [G_MODEL, GAN_MODELS]
    # two trips so far on this snapshot; the run stops at the first trip past max_trips
    decisions = [guard.check(14 + k, float("nan"), 0.5, 1.0) for k in range(guard.bands.max_trips - 1)]
    assert decisions[-1].abort and not decisions[-2].abort


def edited(record, where, value):
    """record with the value at path `where` ("config.d_lr") replaced, or removed for DELETE."""
    *parents, last = where.split(".")
    node = record
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return record


DELETE = object()
NAN = float("nan")


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    """(data, run_config.json's text) of a one-epoch run of train_argv's settings."""
    folder = tmp_path_factory.mktemp("fresh_run")
    data = make_xray_data(folder / "data", n=32)
    assert train_cgan.main(train_argv(data, folder / "results", "--epochs_goal", 1)) == 0
    return data, (folder / "results" / run_folder.RUN_CONFIG).read_text()


def fresh_run_config(fresh_run, results):
    """The fresh run's data, its run_config.json copied into results (an empty run folder)."""
    data, text = fresh_run
    os.makedirs(results, exist_ok=True)
    (results / run_folder.RUN_CONFIG).write_text(text)
    return data


@pytest.mark.parametrize("where, value, message", [
    ("flags.n_batch", "16", """flag "n_batch" must be a whole number, got '16'"""),
    ("flags.seed", "abc", """flag "seed" must be a whole number, got 'abc'"""),
    ("flags.d_lr", NAN, 'flag "d_lr" must be in (0, 1], got nan'),
    ("flags.strategy", "ps", """flag "strategy" must be one of default, mirrored, multiworker, got 'ps'"""),
    ("flags.spectral_norm", "yes", """flag "spectral_norm" must be true or false, got 'yes'"""),
    ("config.d_lr", 0, 'config "d_lr" must be in (0, 1], got 0'),
    ("config.d_lr", NAN, 'config "d_lr" must be in (0, 1], got nan'),
    ("config.epsilon", -1.0, 'config "epsilon" must be above 0, got -1.0'),
    ("config.n_batch", 15, 'config "n_batch" must be even (two half batches), got 15'),
    ("config.guard.d_loss_high", NAN, 'config guard "d_loss_high" must be finite numbers, got nan'),
    ("flags", [], '"flags" holds a list, not an object'),
    ("data_files.0.sha256", DELETE, '"data_files" entry 0 is not {"path": text, "bytes": whole number, "sha256": text}'),
])
def test_a_run_config_edited_by_hand_is_refused_as_the_command_line_would(tmp_path, capsys, fresh_run, where, value,
                                                                          message):
    results = tmp_path / "results"
    data = fresh_run_config(fresh_run, results)
    epoch_files(results, 1)
    history(results, [1])
    record = edited(run_folder.read_config(str(results)), where, value)
    (results / "run_config.json").write_text(json.dumps(record))
    err = bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart"))
    assert f"run_config.json: {message}" in err


@pytest.mark.parametrize("text, message", [
    ("[]", "run_config.json: holds a list, not an object"),
    ("epoch,d1\nabc,0.5\n", "history.csv line 2: epoch 'abc' is not a whole number from 1"),
    ("d1,d2\n0.5,0.5\n", "history.csv line 2: epoch None is not a whole number from 1"),
])
def test_a_history_or_run_config_that_is_not_one_is_refused(tmp_path, capsys, text, message):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    committed_run(results, [1])
    (results / message.split(":")[0].split()[0]).write_text(text)
    assert message in bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart"))


# ---------------------------------------------------------------- interruptions and full disks outside training


def test_a_full_disk_while_heatmaps_write_is_one_line_exit_1_and_nothing_half_written(tmp_path, capsys, monkeypatch):
    models, out = tmp_path / "models", tmp_path / "out"
    models.mkdir()
    save_generator(models / "generator_model_001.h5", 3)
    full_disk_at(monkeypatch, ".png")
    line = one_error_line(heatmaps.main, ["--dataset", "xray", "--models_dir", models, "--out_dir", out], capsys,
                          status=cli.EXIT_FAILED)
    assert line.endswith(f"error: {out / 'generator_model_001.h5.png'}: No space left on device")
    assert not [name for name in os.listdir(out) if name.endswith(".png") or name.startswith(".tmp-")]


def test_ctrl_c_in_explain_image_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    image = small_image(tmp_path / "scan.png")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explanation.projection, "project", interrupted)
    line = one_error_line(explain_image.main, [
        "--model", os.path.join(DATA, "keras2_generator_c3_f8.h5"), "--image", image, "--label", 1,
        "--out_dir", tmp_path / "out"], capsys, status=cli.EXIT_INTERRUPTED)
    assert line.endswith("error: interrupted")
    assert os.listdir(tmp_path / "out") == []


# ---------------------------------------------------------------- model files


def with_model_config(path, change):
    """Rewrite a saved model's model_config: change(config) returns the new one."""
    import h5py

    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = json.dumps(change(json.loads(f.attrs["model_config"])))
    return path


def layer_set(config, class_name, key, value):
    config = copy.deepcopy(config)
    next(layer for layer in config["config"]["layers"] if layer["class_name"] == class_name)["config"][key] = value
    return config


BAD_CONFIGS = [
    ("empty object", lambda config: {}, "its model_config holds no list of layers"),
    ("a list", lambda config: [], "its model_config holds no list of layers"),
    ("60,000 filters", lambda config: layer_set(config, "Conv2DTranspose", "filters", 60_000),
     "a model of 60000 filters, latent size 100 and 3 classes would need"),
    ("no classes", lambda config: layer_set(config, "Embedding", "input_dim", 0),
     "its classes, 0, is not a whole number from 1"),
]


@pytest.mark.parametrize("change, message", [case[1:] for case in BAD_CONFIGS], ids=[case[0] for case in BAD_CONFIGS])
def test_a_malformed_model_file_is_named_and_the_others_still_done(tmp_path, capsys, change, message):
    models, out = tmp_path / "models", tmp_path / "out"
    models.mkdir()
    save_generator(models / "generator_model_001.h5", 3)
    save_generator(models / "generator_model_002.h5", 3)
    with_model_config(models / "generator_model_001.h5", change)
    with pytest.raises(SystemExit) as stop:
        heatmaps.main(["--dataset", "xray", "--models_dir", str(models), "--out_dir", str(out)])
    named, summary = [line for line in capsys.readouterr().err.splitlines() if "error: " in line]  # one per file, one for all
    assert stop.value.code == 2 and message in named
    assert summary.endswith("1 of 2 model files could not be used: generator_model_001.h5")
    assert os.path.exists(out / "generator_model_002.h5.npz") and not os.path.exists(out / "generator_model_001.h5.npz")
    with pytest.raises(cgan.ModelFileError if "would need" not in message else InputError, match=message):
        cgan.load_generator(str(models / "generator_model_001.h5"))
    line = one_error_line(explain_image.main, [
        "--model", models / "generator_model_001.h5", "--image", small_image(tmp_path / "scan.png"), "--label", 1,
        "--out_dir", tmp_path / "explained"], capsys)
    assert message in line


# ---------------------------------------------------------------- arrays given to explain_image.py

GREY = np.full((4, 80, 80, 3), 100, np.uint8)
NPZ_CASES = [
    ("float 0..255", {"images": GREY.astype(np.float64), "labels": np.zeros(4, int)}, [],
     "images must be uint8 in 0..255 or lie in [0, 1], got float64 100..100"),
    ("NaN", {"images": np.full((4, 80, 80, 3), np.nan, np.float32), "labels": np.zeros(4, int)}, [],
     "images must be uint8 in 0..255 or lie in [0, 1], got float32 nan..nan"),
    ("float labels", {"images": GREY, "labels": np.zeros(4)}, [], "labels must be whole numbers, got float64"),
    ("2-D labels", {"images": GREY, "labels": np.zeros((4, 1), int)}, [],
     "labels must be one per image row, (4,), got (4, 1)"),
    ("labels of another length", {"arr_0": GREY}, ["--labels_npz", "{labels}"],
     "labels must be one per image row, (4,), got (3,)"),
    ("images of another shape", {"images": np.zeros((4, 80, 80), np.uint8)}, ["--label", 0],
     "images must be (N, 80, 80, 3), got uint8 (4, 80, 80)"),
]


@pytest.mark.parametrize("arrays, extra, message", [case[1:] for case in NPZ_CASES], ids=[case[0] for case in NPZ_CASES])
def test_explain_image_refuses_arrays_it_would_misread(tmp_path, capsys, arrays, extra, message):
    storage.save_arrays(tmp_path / "set.npz", **arrays)
    storage.save_npz(tmp_path / "labels.npz", np.zeros(3, int))
    line = one_error_line(explain_image.main, [
        "--model", os.path.join(DATA, "keras2_generator_c3_f8.h5"), "--npz", tmp_path / "set.npz",
        "--out_dir", tmp_path / "out", *[str(a).format(labels=tmp_path / "labels.npz") for a in extra]], capsys)
    assert message in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- maps scored against the ground truth


def truth_and_deltas(tmp_path, deltas=None, lesion_on=True):
    lesion, lungs = np.zeros((3, 80, 80), np.uint8), np.zeros((3, 80, 80), np.uint8)
    lesion[2, 50:60, 10:20] = lesion_on
    lungs[:, 15:65, 8:35] = 1
    storage.save_arrays(tmp_path / "truth.npz", lesion=lesion, lungs=lungs)
    deltas = np.zeros((3, 3, 2, 80, 80), np.float32) if deltas is None else deltas
    storage.save_arrays(tmp_path / "heatmap.npz", labels=np.arange(3), deltas=deltas)
    return ["--ground_truth", tmp_path / "truth.npz", "--heatmap", tmp_path / "heatmap.npz"]


def with_value(value):
    deltas = np.zeros((3, 3, 2, 80, 80), np.float32)
    deltas[2, 0, 1, 40, 40] = value
    return deltas


@pytest.mark.parametrize("deltas, lesion_on, message", [
    (with_value(np.nan), True, "the heatmap's deltas holds NaN or infinite values"),
    (with_value(np.inf), True, "the heatmap's deltas holds NaN or infinite values"),
    (np.zeros((3, 3, 0, 80, 80), np.float32), True, "the heatmap holds no samples"),
    (None, False, "the ground truth's lesion masks are all empty: nothing to score against"),
])
def test_heatmap_scores_refuses_what_it_cannot_score(tmp_path, capsys, deltas, lesion_on, message):
    argv = truth_and_deltas(tmp_path, deltas, lesion_on)
    assert one_error_line(heatmap_scores.main, argv, capsys).endswith(f"error: {message}")


def test_heatmap_scores_refuses_a_nan_average(tmp_path, capsys):
    argv = truth_and_deltas(tmp_path)[:2]
    mean = np.full((3, 3, 80, 80), np.nan, np.float32)
    share = np.zeros((3, 3, 3, 80, 80), np.float32)
    storage.save_arrays(tmp_path / "average.npz", labels=np.arange(3), mean=mean, share_above=share,
                        thresholds=np.array([1.0, 0.6, 0.2]))
    line = one_error_line(heatmap_scores.main, [*argv, "--average", tmp_path / "average.npz"], capsys)
    assert line.endswith("error: the averaged delta holds NaN or infinite values")


# ---------------------------------------------------------------- the cluster


@pytest.mark.parametrize("tf_config, message", [
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": -1}},
     "TF_CONFIG: task worker -1 is not in its cluster"),
    ({"cluster": {"worker": "a:1,b:1"}, "task": {"type": "worker", "index": 0}},
     """TF_CONFIG: its cluster's worker must be a list of "host:port" addresses, got 'a:1,b:1'"""),
    ({"cluster": {"worker": ["a:1"], "ps": ["c:1"]}, "task": {"type": "ps", "index": 0}},
     "TF_CONFIG: its cluster has 'ps' tasks; --strategy multiworker trains on chief and worker tasks only"),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}},
     "TF_CONFIG: its task index must be a whole number, got '0'"),
    ({"cluster": [], "task": {"type": "worker", "index": 0}},
     "TF_CONFIG: its cluster must map task types to lists of addresses, got []"),
])
def test_a_malformed_tf_config_is_one_line(tmp_path, capsys, monkeypatch, tf_config, message):
    data = make_xray_data(tmp_path / "data", n=32)
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert message in bad_input(tmp_path, capsys, xray_argv(data, "--strategy", "multiworker"))


def test_empty_prepared_arrays_are_refused_by_training_and_the_classifier(tmp_path, capsys):
    data = tmp_path / "data"
    os.makedirs(data)
    storage.save_npz(data / "img_align_xray.npz", np.zeros((0, 80, 80, 3), np.uint8))
    storage.save_npz(data / "labels_align_xray.npz", np.zeros(0, np.int64))
    message = f"{data / 'img_align_xray.npz'} holds no images"
    assert message in bad_input(tmp_path, capsys, xray_argv(data))
    assert one_error_line(train_classifier.main, ["--dataset", "xray", "--data_dir", data], capsys).endswith(message)


def test_a_restart_whose_models_are_another_runs_says_so_rather_than_advise_flags_it_refuses(tmp_path, capsys,
                                                                                            fresh_run):
    results = tmp_path / "results"
    data = fresh_run_config(fresh_run, results)  # latent_dim 100, filters 4
    paths = run_folder.model_paths(str(results), 1)
    storage.save_model(cgan.build_generator(3, latent_dim=50, filters=4), paths["generator"])
    storage.save_model(cgan.build_discriminator(3, filters=4, lr=4e-5), paths["discriminator"])
    history(results, [1])
    err = bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart"))
    assert err.endswith("saved models have latent_dim 50 and filters 4; its run_config.json says latent_dim 100 and "
                        "filters 4: these are another run's models")
