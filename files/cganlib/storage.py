"""Files on disk: atomic writes (a killed run never leaves a half-written file under the
final name), `.npz` arrays under the key `arr_0`, and the one-line error every script exits with."""

import logging
import os
import sys
import tempfile

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


EXIT_BAD_INPUT = 2  # argparse's status for a bad command line; ours for every bad input


class InputError(Exception):
    """Bad input from the user: reported as one line, exit status EXIT_BAD_INPUT, never a traceback."""


def fail(message, status=EXIT_BAD_INPUT):
    """Print `<script>: error: message` on stderr and exit."""
    prog = os.path.basename(sys.argv[0]) or "python"
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def _temporary_name(path, suffix):
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{name}.", suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


def atomic_write(path, write, suffix=""):
    """Call write(temporary_path) for a temporary file in path's folder, then rename it to path.
    `suffix` keeps an extension writers insist on (Keras wants `.h5`, matplotlib `.png`)."""
    tmp = _temporary_name(path, suffix)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_npz(path, array):
    """np.savez_compressed(path, array) (one array under `arr_0`), atomically."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, array)

    atomic_write(path, write)


def save_arrays(path, **arrays):
    """Several named arrays in one compressed `.npz`, atomically."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)


def save_model(model, path):
    """model.save(path) for a Keras `.h5`, atomically. `.h5` is the original's format; Keras 3
    calls it legacy and would say so on every save, three times an epoch."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        atomic_write(path, lambda tmp: model.save(tmp), suffix=".h5")
    finally:
        absl.setLevel(level)


def save_figure(fig, path, **kwargs):
    """fig.savefig(path), atomically."""
    ext = os.path.splitext(path)[1]
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=ext.lstrip(".") or "png", **kwargs), suffix=ext)


def load_arrays(path, keys, made_by=None):
    """The named arrays of a `.npz`, in the order of keys; InputError naming the file (and the
    script that makes it) when it is missing, unreadable or lacks one."""
    hint = f" (make it with {made_by})" if made_by else ""
    if not os.path.exists(path):
        raise InputError(f"{path} not found{hint}")
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in keys if key in data}
    except Exception as e:
        raise InputError(f"{path}: not a readable .npz ({type(e).__name__}: {e}){hint}") from e
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise InputError(f"{path} has no array {', '.join(missing)}{hint}")
    return [arrays[key] for key in keys]


def npz_keys(path):
    """The names of the arrays in a `.npz`; InputError naming the file when it is missing or unreadable."""
    if not os.path.exists(path):
        raise InputError(f"{path} not found")
    try:
        with np.load(path) as data:
            return set(data.files)
    except Exception as e:
        raise InputError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from e


def load_npz(path, made_by=None):
    """The array `arr_0` of a `.npz` (what np.savez_compressed(path, array) writes)."""
    return load_arrays(path, ("arr_0",), made_by)[0]


def writable_folder(path):
    """Create path if needed; InputError if it cannot be written to."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output folder {path}: {e.strerror}") from e
    if not os.access(path, os.W_OK):
        raise InputError(f"output folder {path} is not writable")
    return path
