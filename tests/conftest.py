"""Shared test set-up: the scripts' folder on sys.path, helpers to run a script as a user
would (a subprocess), and the `slow` marker for end-to-end runs (run in CI all the same)."""

import os
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
    config.addinivalue_line("markers", "slow: end-to-end runs of the real scripts (run in CI too)")
    # Keras 3.15 calls np.array(tensor) the NumPy 1 way: hundreds of identical warnings per run
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


def run_script(script, *args, cwd=None, timeout=600, env=None):
    """Run files/<script> with args in a subprocess, TensorFlow's log level as the user has it;
    returns the CompletedProcess."""
    full_env = dict(os.environ, MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, os.path.join(FILES, script), *map(str, args)],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


@pytest.fixture
def run():
    return run_script
