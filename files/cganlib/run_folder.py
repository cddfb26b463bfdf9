"""The layout of a training run's folder (`--results_dir`), in one place: the epoch files'
names, which epochs are complete, the history, the lock, the run's settings and the training
state. Training writes the folder; a script that reads saved models finds them here (generator_files).

    generator_model_NNN.h5, generator_model_ganNNN.h5, generator_model_disNNN.h5,
    generated_plot_eNNN.png      the original's files of epoch NNN
    train_state_NNN.npz          what the .h5 files lack to go on exactly (see save_state)
    history.csv                  one row per complete epoch: written last, the epoch's commit
    losses.png                   the history drawn
    run_config.json              the run's settings and data files, written before epoch 1
    .lock                        held by the training run using the folder; holds its pid

An epoch's files are written in that order, each under a temporary name and renamed when
whole, and its row in history.csv last: an epoch is complete when history.csv lists it and
its generator and discriminator files open. In a folder without history rows or run_config.json
(the original's), an epoch is complete when those two files open.
"""

import csv
import errno
import fcntl
import json
import os
import platform
import re
import stat
import zipfile
import zlib
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import version

import numpy as np

from cganlib.datasets import CLASSES_FILE, FOLDER
from cganlib.storage import (
    InputError,
    atomic_write,
    file_digest,
    load_arrays,
    open_h5,
    open_regular,
    parse_json,
    save_arrays,
    writable_folder,
)

RUN_CONFIG = "run_config.json"
HISTORY = "history.csv"
LOSSES = "losses.png"
LOCK = ".lock"
TEMPORARY_PREFIX = ".tmp-"  # storage.atomic_write's temporary names: .tmp-<final name>.<random>
HISTORY_FIELDS = (
    "epoch", "d1", "d2", "g", "acc_real", "acc_fake", "nTryAgains", "nTripsOnSameSavedWts", "nSaves", "secs",
)
_EPOCH_FILE = re.compile(r"^(generator_model_(gan|dis)?\d+\.h5|generated_plot_e\d+\.png|train_state_\d+\.npz)$")
_GENERATOR_FILE = re.compile(r"^generator_model_(\d+)\.h5$")


# ---------------------------------------------------------------- an epoch's files


def model_paths(results_dir, epoch):
    """The three model files of an epoch, by the original's names."""
    return {
        "generator": os.path.join(results_dir, f"generator_model_{epoch:03d}.h5"),
        "gan": os.path.join(results_dir, f"generator_model_gan{epoch:03d}.h5"),
        "discriminator": os.path.join(results_dir, f"generator_model_dis{epoch:03d}.h5"),
    }


def plot_path(results_dir, epoch):
    return os.path.join(results_dir, f"generated_plot_e{epoch:03d}.png")


def state_path(results_dir, epoch):
    return os.path.join(results_dir, f"train_state_{epoch:03d}.npz")


def readable_h5(path):
    """Whether path opens as a saved Keras model; InputError for a file that is not a regular
    one or would read another file (storage.open_h5)."""
    try:
        with open_h5(path) as f:
            return "model_weights" in f
    except OSError:
        return False


def saved_epochs(results_dir):
    """Epochs whose generator and discriminator files both open, ascending."""
    if not os.path.isdir(results_dir):
        return []
    epochs = sorted(int(m.group(1)) for m in map(_GENERATOR_FILE.match, os.listdir(results_dir)) if m)
    return [e for e in epochs if all(readable_h5(model_paths(results_dir, e)[k]) for k in ("generator", "discriminator"))]


def complete_epochs(results_dir):
    """Epochs whose generator and discriminator open and that the run committed (committed)."""
    return committed(results_dir, saved_epochs(results_dir))


def committed(results_dir, epochs):
    """Those of epochs that history.csv lists, or that come before its first row (an original's
    run resumed here). Without history rows: none in a run with run_config.json (nothing
    committed yet), all of them otherwise (an original's folder, or one filled by hand)."""
    listed = {int(row["epoch"]) for row in read_history(results_dir)}
    if listed:
        return [e for e in epochs if e in listed or e < min(listed)]
    return [] if read_config(results_dir) is not None else list(epochs)


def describe_epochs(epochs):
    """'no complete epoch', 'complete epoch 4', 'complete epochs 1-5' or 'complete epochs 2, 5'."""
    if not epochs:
        return "no complete epoch"
    if len(epochs) == 1:
        return f"complete epoch {epochs[0]}"
    if epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"complete epochs {epochs[0]}-{epochs[-1]}"
    return f"complete epochs {', '.join(map(str, epochs))}"


def restart_epoch(out_dir, epochs_done):
    """The epoch to resume from, checked, its training state too; InputError listing the
    complete epochs otherwise. The newest epoch history.csv lists must be whole: resuming
    from the one before would replace its files, so a damaged one is named instead."""
    complete = complete_epochs(out_dir)
    if epochs_done is None:
        check_newest_listed(out_dir, complete)
        if not complete:
            again = "; start again with --overwrite" if run_files(out_dir) else ""
            raise InputError(f"--qRestart: no complete epoch in {out_dir}{again}")
        epochs_done = complete[-1]
    elif epochs_done not in complete:
        raise InputError(f"--qRestart: epoch {epochs_done} is missing, unreadable or incomplete in {out_dir}; "
                         f"{describe_epochs(complete)}")
    check_state(out_dir, epochs_done)
    return epochs_done


def check_newest_listed(out_dir, complete):
    """InputError naming the damaged files when the newest epoch history.csv lists is not complete."""
    listed = [int(row["epoch"]) for row in read_history(out_dir)]
    if not listed or max(listed) in complete:
        return
    newest = max(listed)
    damaged = [os.path.basename(path) for part, path in model_paths(out_dir, newest).items()
               if part != "gan" and not readable_h5(path)]
    earlier = (f"or resume from epoch {complete[-1]} with --epochs_done {complete[-1]}, which replaces epoch "
               f"{newest}'s files" if complete else "or start again with --overwrite")
    raise InputError(f"--qRestart: epoch {newest} is complete in history.csv but {' and '.join(damaged)} in {out_dir} "
                     f"is missing or damaged: put back a good copy, {earlier}")


def check_state(out_dir, epoch):
    """InputError when the epoch's training state file is damaged (cut short, its bytes changed):
    every member's checksum is read, before the run prints or writes anything."""
    path = state_path(out_dir, epoch)
    if not os.path.lexists(path):
        return
    try:
        with open_regular(path, "rb") as f, zipfile.ZipFile(f) as archive:
            bad = archive.testzip()
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        bad = f"{type(e).__name__}: {e}"
    if bad:
        raise InputError(f"--qRestart: {path} is damaged ({bad}): put back a good copy, or resume from an earlier "
                         f"epoch with --epochs_done")
    info = _state_info(path)
    again = f"put back epoch {epoch}'s own files, or resume from an earlier epoch with --epochs_done"
    if "epoch" in info and info["epoch"] != epoch:
        raise InputError(f"--qRestart: {path} holds the training state of epoch {info['epoch']}, not of epoch {epoch}: "
                         f"{again}")
    recorded = info.get("files")
    for model in _state_models(out_dir, epoch):
        name = os.path.basename(model)
        if isinstance(recorded, dict) and name in recorded and file_digest(model)[1] != recorded[name]:
            raise InputError(f"--qRestart: {model} is not the file epoch {epoch} saved: its SHA-256 differs from the one "
                             f"{os.path.basename(path)} records (another epoch's copy?); {again}")


def _state_models(results_dir, epoch):
    """The model files of an epoch that a restart reads, whose SHA-256 its state file records."""
    paths = model_paths(results_dir, epoch)
    return [paths["generator"], paths["discriminator"]]


def _state_info(path):
    """The `info` record of a training state file, as a dict ({} when it holds another kind of value)."""
    (info,) = load_arrays(path, ("info",))
    try:
        info = parse_json(str(info))
    except ValueError as e:
        raise InputError(f"{path}: not a readable training state ({e})") from e
    return info if isinstance(info, dict) else {}


def run_files(results_dir):
    """The files a training run keeps in results_dir (not the lock, not temporary files), sorted."""
    if not os.path.isdir(results_dir):
        return []
    fixed = {RUN_CONFIG, HISTORY, LOSSES}
    names = (n for n in os.listdir(results_dir) if n in fixed or _EPOCH_FILE.match(n))
    return sorted(os.path.join(results_dir, n) for n in names)


def own_files(results_dir):
    """The files the run in results_dir names as its own, sorted: run_config.json, history.csv,
    losses.png and the files of each epoch its history lists. A folder without run_config.json
    (an original's run) names none: every file named like a run's is taken for its own."""
    if not os.path.lexists(os.path.join(results_dir, RUN_CONFIG)):
        return run_files(results_dir)
    paths = [os.path.join(results_dir, name) for name in (RUN_CONFIG, HISTORY, LOSSES)]
    for epoch in sorted({int(row["epoch"]) for row in read_history(results_dir)}):
        paths += [*model_paths(results_dir, epoch).values(), plot_path(results_dir, epoch),
                  state_path(results_dir, epoch)]
    return sorted(path for path in paths if os.path.lexists(path))


def clear_run(results_dir):
    """Remove the run's own files (own_files) for --overwrite; returns the names of the files
    that stay though named like a run's (a model copied in, an epoch the history never listed)."""
    for path in own_files(results_dir):
        os.remove(path)
    return [os.path.basename(path) for path in run_files(results_dir)]


def generator_files(models_dir):
    """[(epoch, path)] of the generators in any folder of them, by epoch, by the original's rule:
    every `.h5` whose name holds neither `_gan` nor `_dis`, its epoch the first number in the name
    without `.h5`. Hidden names (the temporary files of writes in progress among them) are skipped;
    in a training run's folder, so are the epochs it has not committed (committed): one being
    written, or those a restart from an earlier epoch took out of history.csv."""
    if not os.path.isdir(models_dir):
        raise InputError(f"models folder {models_dir} not found")
    found = []
    for name in os.listdir(models_dir):
        number = re.search(r"\d+", name.removesuffix(".h5"))  # not the 5 of ".h5"
        if name.endswith(".h5") and "_gan" not in name and "_dis" not in name and not name.startswith(".") and number:
            found.append((int(number.group()), os.path.join(models_dir, name)))
    if not found:
        raise InputError(f"no generator .h5 files in {models_dir}")
    complete = set(committed(models_dir, {epoch for epoch, _ in found}))
    if not complete:
        raise InputError(f"no generator of a complete epoch in {models_dir}: its {HISTORY} lists none")
    return sorted((epoch, path) for epoch, path in found if epoch in complete)


def remove_temporary_files(folder, prefixes=("",)):
    """Remove the temporary files that killed writes left in folder: all of them, or only those
    whose final name starts with one of prefixes (in a folder that other runs write to as well).
    Returns how many."""
    if not os.path.isdir(folder):
        return 0
    names = [n for n in os.listdir(folder) if n.startswith(TEMPORARY_PREFIX)]
    doomed = [n for n in names if n[len(TEMPORARY_PREFIX):].startswith(tuple(prefixes))]
    for name in doomed:
        os.remove(os.path.join(folder, name))
    return len(doomed)


# ---------------------------------------------------------------- the history


def read_history(results_dir, up_to_epoch=None):
    """history.csv's rows as dicts of strings (all, or those up to an epoch); [] without one.
    InputError when a row's epoch is not a whole number from 1 (a column lost, an edit)."""
    path = os.path.join(results_dir, HISTORY)
    if not os.path.lexists(path):
        return []
    try:
        with open_regular(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable history ({e})") from e
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        epoch = row.get("epoch")
        if not (epoch or "").isdigit() or int(epoch) < 1:
            raise InputError(f"{path} line {number}: epoch {epoch!r} is not a whole number from 1; "
                             f"history.csv's first column is the epoch")
    return [row for row in rows if up_to_epoch is None or int(row["epoch"]) <= up_to_epoch]


def write_history(results_dir, rows, fields=HISTORY_FIELDS):
    """history.csv with these rows, atomically: the last write of an epoch, its commit."""

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(os.path.join(results_dir, HISTORY), write)


# ---------------------------------------------------------------- the lock


def _in_use(results_dir, pid):
    return InputError(
        f"{results_dir} is in use by another training run (pid {pid or 'unknown'}); "
        "wait for it to end or pick another --results_dir"
    )


def _open_lock(results_dir, flags):
    """The lock file, opened without following a link. Training writes its pid into it, so a
    link there (or a FIFO, a device) would send that write elsewhere: InputError instead."""
    path = os.path.join(results_dir, LOCK)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise InputError(f"{path} is a symbolic link, not a training run's lock: remove it") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path} is not a regular file, not a training run's lock: remove it")
    return os.fdopen(fd, "r+" if flags & os.O_RDWR else "r")


def check_not_in_use(results_dir):
    """InputError if a running training run holds results_dir's lock. Writes nothing."""
    if not os.path.lexists(os.path.join(results_dir, LOCK)):
        return
    with _open_lock(results_dir, os.O_RDONLY) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(results_dir, f.read().strip()) from None


@contextmanager
def locked(results_dir):
    """Hold results_dir's lock for the with-block, with this process's pid in the lock file;
    InputError at once if another run holds it. The kernel drops the lock when the holder
    dies, so the file a killed run leaves behind blocks nobody."""
    writable_folder(results_dir)
    with _open_lock(results_dir, os.O_RDWR | os.O_CREAT) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(results_dir, f.read().strip()) from None
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


# ---------------------------------------------------------------- the run's settings


def prepare_folder(run, overwrite):
    """Under the lock: clear what killed writes left, the old run for --overwrite; record a fresh
    run's settings (run_record); a restart from an earlier epoch takes the later ones out of the
    history. Returns (how many temporary files it removed, the names --overwrite left: clear_run)."""
    removed = remove_temporary_files(run.out_dir)
    removed += remove_temporary_files(run.real_plots_dir, ("real_plot_e",))
    removed += remove_temporary_files(run.summary_dir, ("generator_", "discriminator_", "gan_"))
    kept = []
    if not run.restart:
        if overwrite:
            kept = clear_run(run.out_dir)
        write_config(run.out_dir, run_record(run))
    else:
        rows = read_history(run.out_dir, run.epochs_done)
        if len(rows) < len(read_history(run.out_dir)):
            write_history(run.out_dir, rows)
    return removed, kept



def read_config(results_dir):
    """run_config.json as a dict, or None when the folder has none; InputError if unreadable or
    not laid out as run_record writes it (its values are the flags' to check: train_cgan.py)."""
    path = os.path.join(results_dir, RUN_CONFIG)
    if not os.path.lexists(path):
        return None
    try:
        with open_regular(path) as f:
            record = parse_json(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable run config ({e})") from e
    problem = _layout_problem(record)
    if problem:
        raise InputError(f"{path}: {problem}")
    return record


def _layout_problem(record):
    """What is wrong with run_config.json's layout, or None."""
    if not isinstance(record, dict):
        return f"holds a {type(record).__name__}, not an object"
    for name in ("flags", "config"):
        if not isinstance(record.get(name, {}), dict):
            return f'"{name}" holds a {type(record[name]).__name__}, not an object'
    files = record.get("data_files", [])
    if not isinstance(files, list):
        return f'"data_files" holds a {type(files).__name__}, not a list'
    fields = {"path": str, "bytes": int, "sha256": str}
    for k, entry in enumerate(files):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), t) for f, t in fields.items()):
            return f'"data_files" entry {k} is not {{"path": text, "bytes": whole number, "sha256": text}}'
    return None


def write_config(results_dir, config):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")

    atomic_write(os.path.join(results_dir, RUN_CONFIG), write)


def run_record(run):
    """What run_config.json records: the flags, the resolved config, the data files with their
    sizes and hashes, the library versions, the start time."""
    data_files = [os.path.join(run.data_dir, run.dataset.images_file), os.path.join(run.data_dir, run.dataset.labels_file)]
    extra = {"celeb": [run.attributes], FOLDER: [os.path.join(run.data_dir, CLASSES_FILE)]}
    return {
        "flags": run.flags(),
        "config": run.config.record(),
        "data_files": [file_record(path) for path in data_files + extra.get(run.dataset.name, [])],
        **versions_and_time(),
    }


def versions_and_time():
    """The library versions and the start time, as run_config.json records them."""
    return {"versions": {"python": platform.python_version(),
                         **{name: version(name) for name in ("tensorflow", "keras", "numpy")}},
            "started": datetime.now().astimezone().isoformat(timespec="seconds")}


def file_record(path):
    """{"path", "bytes", "sha256"} of a data file, to tell later whether it changed."""
    n_bytes, sha256 = file_digest(path)
    return {"path": path, "bytes": n_bytes, "sha256": sha256}


def check_data_files(records):
    """InputError naming the file and both versions when a recorded data file has changed."""
    for record in records:
        path = record["path"]
        try:
            now = file_record(path)
        except OSError as e:
            raise InputError(f"{path}, a data file of this run, cannot be read: {e.strerror}") from e
        if (now["bytes"], now["sha256"]) != (record["bytes"], record["sha256"]):
            raise InputError(
                f"{path} changed since the run began: {record['bytes']} bytes, sha256 {record['sha256'][:12]} "
                f"then; {now['bytes']} bytes, sha256 {now['sha256'][:12]} now"
            )


# ---------------------------------------------------------------- the training state


def save_state(results_dir, epoch, info, arrays):
    """train_state_NNN.npz: `info` (JSON-able: counters, random generator states) and named
    lists of arrays (optimizer variables, ...), atomically. One NumPy file per epoch beside
    the .h5 files, which already hold the weights: written whole or not at all, readable
    without TensorFlow, and without the model graph a TensorFlow checkpoint would need. `info`
    gains the epoch and the SHA-256 of the epoch's generator and discriminator, written before
    it, for check_state."""
    info = {**info, "epoch": epoch, "files": {os.path.basename(path): file_digest(path)[1]
                                              for path in _state_models(results_dir, epoch) if os.path.exists(path)}}
    save_state_file(state_path(results_dir, epoch), info, arrays)


def save_state_file(path, info, arrays):
    """save_state's file at any path."""
    flat = {f"{name}.{i:04d}": value for name, values in arrays.items() for i, value in enumerate(values)}
    save_arrays(path, info=np.array(json.dumps(info)), **flat)


def load_state(results_dir, epoch):
    """(info, {name: [arrays]}) of an epoch's state file, or None when there is none."""
    path = state_path(results_dir, epoch)
    return load_state_file(path) if os.path.exists(path) else None


def load_state_file(path):
    """(info, {name: [arrays]}) of a file save_state_file wrote; InputError when it is not one."""
    try:
        with open_regular(path, "rb") as f, np.load(f) as data:
            info = parse_json(str(data["info"]))
            arrays = {}
            for key in sorted(k for k in data.files if k != "info"):
                arrays.setdefault(key.rsplit(".", 1)[0], []).append(data[key])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise InputError(f"{path}: not a readable training state ({e})") from e
    return info, arrays
