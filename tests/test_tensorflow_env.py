"""Every script runs TensorFlow's oneDNN kernels, also on CPUs where TensorFlow would not choose
them by itself (AVX2-only: 2 to 3.5 times slower training there), unless the user says otherwise:
every module that loads TensorFlow sets its environment first."""

import glob
import json
import os

from conftest import FILES, run_python

# Imports every script and module in one process; at the moment one first imports TensorFlow (or
# keras or mtcnn, which import it) it records TF_ENABLE_ONEDNN_OPTS and stops that import, so that
# no TensorFlow is loaded, and the next starts with the project's modules not yet imported.
FIRST_IMPORT_PROBE = """
import importlib, json, os, sys
sys.path.insert(0, {files!r})
TENSORFLOW = ("tensorflow", "keras", "mtcnn")

class Seen(Exception):
    pass

class Finder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in TENSORFLOW:
            raise Seen(os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
        return None

sys.meta_path.insert(0, Finder())
found = {{}}
for module in {modules!r}:
    os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
    try:
        importlib.import_module(module)
        found[module] = "no tensorflow"
    except Seen as seen:
        found[module] = seen.args[0]
    for name, module in list(sys.modules.items()):  # the project's modules, imported afresh for the next
        if (getattr(module, "__file__", None) or "").startswith({files!r}) or name.split(".")[0] in TENSORFLOW:
            del sys.modules[name]
print(json.dumps(found))
"""

IS_ENABLED_PROBE = """
import sys
sys.path.insert(0, {files!r})
from cganlib import training  # what train_cgan.py loads once its flags are checked
from tensorflow.python.util import _pywrap_util_port
print("onednn", _pywrap_util_port.IsMklEnabled())
"""


def is_script(path):
    with open(path) as f:
        return "def main(" in f.read()


SCRIPTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(FILES, "*.py")) if is_script(p))
LIBRARY = sorted("cganlib." + os.path.basename(p)[:-3] for p in glob.glob(os.path.join(FILES, "cganlib", "[!_]*.py")))
# these must load TensorFlow, or the test would pass without looking
TENSORFLOW_MODULES = tuple(f"cganlib.{name}" for name in (
    "tensorflow_env", "cgan", "classifier", "distribution", "projection", "saved_generators", "delta_heatmaps",
    "latent_space", "evaluation", "explanation", "held_out_saliency", "classifier_training", "face_crops"))


def probe(code, **env):
    done = run_python("-c", code, env={"TF_ENABLE_ONEDNN_OPTS": None, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_every_module_turns_onednn_on_before_it_loads_tensorflow():
    modules = SCRIPTS + LIBRARY
    found = json.loads(probe(FIRST_IMPORT_PROBE.format(files=FILES, modules=modules)))
    assert set(found) == set(modules) and set(TENSORFLOW_MODULES) <= set(LIBRARY)
    for module in TENSORFLOW_MODULES:
        assert found[module] == "1", module
    assert {value for value in found.values()} <= {"1", "no tensorflow"}, found


def test_tensorflow_then_runs_onednn_and_the_user_can_turn_it_off():
    assert probe(IS_ENABLED_PROBE.format(files=FILES)) == "onednn True"
    assert probe(IS_ENABLED_PROBE.format(files=FILES), TF_ENABLE_ONEDNN_OPTS="0") == "onednn False"
