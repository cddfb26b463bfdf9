"""Files on disk: atomic writes (a killed run never leaves a half-written file under the
final name), sets of files written as one (a reader never takes files of two runs for one set),
`.npz` arrays under the key `arr_0` with their headers checked before they load, `.h5` files
that read no other file, staging folders a killed run leaves, and the one-line error every
script exits with."""

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile

import numpy as np
import psutil

_UMASK = os.umask(0)
os.umask(_UMASK)


EXIT_BAD_INPUT = 2  # argparse's status for a bad command line; ours for every bad input


class InputError(Exception):
    """Bad input from the user: reported as one line, exit status EXIT_BAD_INPUT, never a traceback."""


def fail(message, status=EXIT_BAD_INPUT):
    """Print `<script>: error: message` on stderr, on one line, and exit."""
    prog = os.path.basename(sys.argv[0]) or "python"
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(status)


def one_line(message):
    """message with its line breaks made spaces: Keras's refusals quote configs over several lines."""
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


def parse_json(source):
    """json.load of a file, or json.loads of text; JSON nested too deeply for the parser (its
    RecursionError) raises ValueError, as other malformed JSON does."""
    try:
        return json.load(source) if hasattr(source, "read") else json.loads(source)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


def open_regular(path, mode="r", **kwargs):
    """open(path, mode, **kwargs) for reading, of a regular file only (links followed):
    InputError for a FIFO, a device or a socket, which could block the reader forever or never end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path} is not a regular file")
    return os.fdopen(fd, mode, **kwargs)


@contextlib.contextmanager
def open_h5(path):
    """h5py.File(path, "r") of a regular file (open_regular) that reads no other file
    (check_self_contained); InputError otherwise. Every `.h5` this project reads opens here."""
    import h5py  # loads when needed: --help answers without it

    with open_regular(path, "rb") as f, h5py.File(f, "r") as h5:
        check_self_contained(h5, path)
        yield h5


def check_self_contained(h5, path):
    """InputError when an open HDF5 file would make HDF5 read another file: a link into another
    file, a dataset whose bytes lie in external files, a virtual dataset mapped from others. A
    model file could otherwise load any local file's bytes into its weights."""
    import h5py

    # each visit stops at the first value its function returns (an exception raised there does
    # not pass through h5py's link visit cleanly)
    def external_link(name, link):
        if isinstance(link, h5py.ExternalLink):
            return f"{name} links to another file ({link.filename})"
        return None

    def borrowed_data(name, member):
        if isinstance(member, h5py.Dataset) and member.is_virtual:
            return f"dataset {name} is a virtual dataset, mapped from other files"
        if isinstance(member, h5py.Dataset) and member.external:
            return f"dataset {name} is stored in external files"
        return None

    problem = h5.visititems_links(external_link) or h5.visititems(borrowed_data)
    if problem:
        raise InputError(f"{path}: {problem}; a model file must hold its own data")


def staging_folder(parent, name):
    """A new hidden folder `.tmp-<name>-<pid>-<random>` in parent to build output in before it is
    moved into place; first removes the staging folders of `name` whose process has ended (a
    killed run's), never those of a run still going."""
    pattern = re.compile(rf"^\.tmp-{re.escape(name)}-(\d+)-")
    for entry in os.listdir(parent):
        match = pattern.match(entry)
        if match and not psutil.pid_exists(int(match.group(1))):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f".tmp-{name}-{os.getpid()}-", dir=parent)


def _temporary_name(path, suffix):
    """A new temporary file beside path, `.tmp-<name>.<pid>.<random>`: the writer's pid, so that a
    later write of the same name can tell a killed writer's leftover from a live one's file."""
    folder, name = os.path.split(os.path.abspath(path))
    _remove_dead_writers_files(folder, name)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{name}.{os.getpid()}.", suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


def _remove_dead_writers_files(folder, name):
    """Remove the temporary files of `name` whose writer's process has ended (killed mid-write)."""
    pattern = re.compile(rf"^\.tmp-{re.escape(name)}\.(\d+)\.")
    for entry in os.listdir(folder):
        match = pattern.match(entry)
        if match and not psutil.pid_exists(int(match.group(1))):
            _remove_if_there(os.path.join(folder, entry))


def _written_temporary(path, write, suffix=""):
    """write(temporary_path) for a new temporary file beside path, given the usual mode (mkstemp
    makes owner-only files); returns its name. Removed again when the write fails."""
    tmp = _temporary_name(path, suffix)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
    except BaseException:
        _remove_if_there(tmp)
        raise
    return tmp


def _remove_if_there(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def atomic_write(path, write, suffix=""):
    """Call write(temporary_path) for a temporary file in path's folder, then rename it to path.
    `suffix` keeps an extension writers insist on (Keras wants `.h5`, matplotlib `.png`)."""
    tmp = _written_temporary(path, write, suffix)
    try:
        os.replace(tmp, path)
    except BaseException:
        _remove_if_there(tmp)
        raise


def npz_writer(*arrays, **named):
    """write(path): np.savez_compressed of these arrays (positional ones as arr_0, arr_1, ...)."""

    def write(path):
        with open(path, "wb") as f:
            np.savez_compressed(f, *arrays, **named)

    return write


def save_npz(path, array):
    """np.savez_compressed(path, array) (one array under `arr_0`), atomically."""
    atomic_write(path, npz_writer(array))


def save_arrays(path, **arrays):
    """Several named arrays in one compressed `.npz`, atomically."""
    atomic_write(path, npz_writer(**arrays))


def json_writer(value, indent=2):
    """write(path): value as JSON text."""

    def write(path):
        with open(path, "w") as f:
            json.dump(value, f, indent=indent)

    return write


def file_digest(path):
    """(size in bytes, sha256 in hex) of a file's content."""
    digest, size = hashlib.sha256(), 0
    with open_regular(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


# ---------------------------------------------------------------- sets of files written as one
# A manifest written last, rather than one folder renamed into place: the prepared arrays sit
# in a data folder beside the raw images, the attribute table and the runs' results, at paths
# that commands and run_config.json name, and a folder swap would move them all.


def save_file_set(folder, manifest, writers, suffixes=None):
    """Write files that belong together ({name: write(path)}) into folder as one set. Each is
    written whole under a temporary name (ending in suffixes[name] where given: atomic_write's
    suffix); then `manifest` lists the new files' sizes and
    sha256; then they are renamed into place. Killed before the manifest, the old set stands
    untouched; after it, until the renames are done, the files differ from the manifest and
    check_file_set refuses them. Temporary files a killed earlier write of these names left
    are removed first (_temporary_name)."""
    written = {}
    try:
        for name, write in writers.items():
            written[name] = _written_temporary(os.path.join(folder, name), write, (suffixes or {}).get(name, ""))
        files = {name: dict(zip(("bytes", "sha256"), file_digest(tmp))) for name, tmp in written.items()}
        atomic_write(os.path.join(folder, manifest), json_writer({"files": files}))
        for name, tmp in written.items():
            os.replace(tmp, os.path.join(folder, name))
    except BaseException:
        for tmp in written.values():
            _remove_if_there(tmp)
        raise


def check_file_set(folder, manifest, names, made_by):
    """InputError unless the named files of folder are, byte for byte, those its manifest lists
    (save_file_set). A folder without the manifest (files made before manifests were written,
    or by hand) is taken as it is."""
    path = os.path.join(folder, manifest)
    if not os.path.lexists(path):
        return
    listed = _manifest_files(path)
    again = f"make the set again with {made_by}"
    for name in names:
        if name not in listed:
            raise InputError(f"{path} does not list {name}: {again}")
        try:
            now = file_digest(os.path.join(folder, name))
        except OSError as e:
            raise InputError(f"{os.path.join(folder, name)}: {e.strerror}; {again}") from e
        if now != (listed[name]["bytes"], listed[name]["sha256"]):
            raise InputError(f"{os.path.join(folder, name)} is not the file {manifest} lists with the rest of its set "
                             f"(a write stopped halfway, or a file replaced by hand): {again}")


def _manifest_files(path):
    """{name: {"bytes", "sha256"}} of a manifest; InputError when it is not one."""
    try:
        with open_regular(path) as f:
            files = parse_json(f)["files"]
        if not all(isinstance(r["bytes"], int) and isinstance(r["sha256"], str) for r in files.values()):
            raise TypeError("a size that is not a whole number or a hash that is not text")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(f"{path}: not a manifest of prepared files ({type(e).__name__}: {e})") from e
    return files


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


def stored_shape(path, key="arr_0"):
    """The shape of one array of a `.npz`, read from its header without loading it; None when
    the file or the array cannot be read (load_arrays then says why)."""
    try:
        with open_regular(path, "rb") as f, np.load(f) as data:
            return _header(data, key)[0]
    except (InputError, OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


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
        with open_regular(path, "rb") as f, np.load(f) as data:
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
        with open_regular(path, "rb") as f, np.load(f) as data:
            return set(data.files)
    except InputError:
        raise
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
