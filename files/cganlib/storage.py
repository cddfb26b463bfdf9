"""Files on disk: atomic writes (a killed run never leaves a half-written file under the
final name), `.npz` arrays under the key `arr_0`, and the one-line error every script exits with."""

import logging
import math
import os
import sys
import tempfile

import numpy as np
import psutil

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


def _header(data, key):
    """(shape, dtype) of one array of an open `.npz`, from its .npy header alone."""
    with data.zip.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype


def load_arrays(path, keys, made_by=None, check=None):
    """The named arrays of a `.npz`, in the order of keys; InputError naming the file (and the
    script that makes it) when it is missing, unreadable or lacks one. Each array's header is
    read first: check(key, shape, dtype), when given, may refuse it (InputError), and arrays of
    Python objects or larger than the free memory are refused, all before anything is loaded
    (a file of a megabyte can declare gigabytes of zeros)."""
    hint = f" (make it with {made_by})" if made_by else ""
    if not os.path.exists(path):
        raise InputError(f"{path} not found{hint}")
    try:
        with np.load(path) as data:
            present = [key for key in keys if key in data]
            headers = {key: _header(data, key) for key in present}
            _check_headers(path, headers, check)
            arrays = {key: data[key] for key in present}
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{path}: not a readable .npz ({type(e).__name__}: {e}){hint}") from e
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise InputError(f"{path} has no array {', '.join(missing)}{hint}")
    return [arrays[key] for key in keys]


def _check_headers(path, headers, check):
    for key, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise InputError(f"{path}: array {key} holds Python objects, which are never loaded")
        if check:
            check(key, shape, dtype)
    n_bytes = sum(math.prod(shape) * dtype.itemsize for shape, dtype in headers.values())
    check_memory(n_bytes, f"{path}'s arrays {', '.join(f'{key} {shape}' for key, (shape, _) in headers.items())}")


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


def check_memory(n_bytes, what):
    """InputError when n_bytes cannot fit in the memory this machine has free now."""
    free = psutil.virtual_memory().available
    if n_bytes > free:
        raise InputError(f"{what} would need {_size(n_bytes)} of memory; {_size(free)} is free")


def _size(n_bytes):
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1000 or unit == "PB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000


def writable_folder(path):
    """Create path if needed; InputError if it cannot be written to."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output folder {path}: {e.strerror}") from e
    if not os.access(path, os.W_OK):
        raise InputError(f"output folder {path} is not writable")
    return path
