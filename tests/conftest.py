"""Shared test set-up: the scripts' folder on sys.path, helpers to run a script as a user
would (a subprocess), and the `slow` marker for end-to-end runs (run in CI all the same)."""

import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = os.path.join(ROOT, "files")
DATA = os.path.join(ROOT, "tests", "data")
sys.path.insert(0, FILES)

from cganlib import tensorflow_env  # noqa: F401  (in-process tests run TensorFlow as the scripts do)

SLOW_TIMEOUT = 1200  # seconds for a test marked slow (an end-to-end run); others: pyproject.toml's timeout


def pytest_configure(config):
    # pytest-xdist's workers ignore Ctrl-C (SIGINT), and a script they start would inherit that and
    # never stop; a handler is not inherited: the scripts hear Ctrl-C, as from a shell
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line("markers", "slow: end-to-end runs of the real scripts (run in CI too)")
    # Keras 3.15 calls np.array(tensor) the NumPy 1 way: hundreds of identical warnings per run
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


def script_env(env=None):
    """The environment a test runs Python in: the user's (TensorFlow's log level as the user has
    it), no GPU, no figure window, then `env` (a value of None removes that variable)."""
    merged = {**os.environ, "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return {key: value for key, value in merged.items() if value is not None}


def start_python(*argv, cwd=None, env=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """This Python on argv (a script's path and its arguments, or "-c" and code) in a subprocess,
    from the repository's root unless cwd is given, in a process group of its own (stop() ends
    it with the processes it started; so does the end of the test that started it); returns the
    Popen, text mode."""
    process = subprocess.Popen([sys.executable, *map(str, argv)], cwd=cwd or ROOT, env=script_env(env), stdout=stdout,
                               stderr=stderr, text=True, start_new_session=True)
    STARTED.append(process)
    return process


STARTED = []  # the processes start_python started during the running test


@pytest.fixture(autouse=True)
def stop_what_the_test_started():
    """A test that fails halfway leaves no script running (it would train on for ever)."""
    yield
    while STARTED:
        stop(STARTED.pop())


def stop(process):
    """Kill a process start_python started, and every process it started, unless it has ended;
    wait for it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # ended meanwhile, with its group
            pass
    process.wait()


def start_script(script, *args, **kwargs):
    """files/<script> with args in a subprocess, as a user runs it (start_python's keywords)."""
    return start_python(os.path.join(FILES, script), *args, **kwargs)


def start_logged(script, stderr_path, *args, **kwargs):
    """start_script with stderr written to the file stderr_path: stdout stays a pipe to read line
    by line (helpers.read_until) while stderr cannot fill a pipe nobody reads."""
    with open(stderr_path, "w") as err:
        return start_script(script, *args, stderr=err, **kwargs)


def finish(process):
    """Wait for process, reading its pipes; returns a CompletedProcess. No time limit of its own:
    the test's (pytest-timeout, however fast the machine) stops it, and then the process is killed."""
    try:
        out, err = process.communicate()
    except BaseException:
        stop(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def run_script(script, *args, cwd=None, env=None):
    """Run files/<script> with args in a subprocess to its end; returns the CompletedProcess."""
    return finish(start_script(script, *args, cwd=cwd, env=env))


def run_python(*argv, cwd=None, env=None, stderr=subprocess.PIPE):
    """Run this Python on argv (e.g. "-c", code) in a subprocess to its end; the CompletedProcess."""
    return finish(start_python(*argv, cwd=cwd, env=env, stderr=stderr))


@pytest.fixture
def run():
    return run_script
