"""Every script runs TensorFlow's oneDNN kernels, also on CPUs where TensorFlow would not choose
them by itself (AVX2-only: 3.5x slower training there), unless the user says otherwise."""

import glob
import os
import subprocess
import sys

import pytest

from conftest import FILES

PROBE = """
import importlib, sys
sys.path.insert(0, {files!r})
importlib.import_module({module!r})
if "tensorflow" in sys.modules:
    from tensorflow.python.util import _pywrap_util_port
    print("onednn", _pywrap_util_port.IsMklEnabled())
else:
    print("no tensorflow")
"""



def is_script(path):
    with open(path) as f:
        return "def main(" in f.read()


SCRIPTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(FILES, "*.py")) if is_script(p))
# these must load TensorFlow, or the test below would pass without looking
TENSORFLOW_SCRIPTS = ("train_cgan", "heatmaps", "saliency", "train_classifier", "prepare_faces", "explain_image")


def imported(module, **env):
    """What importing files/<module>.py does to TensorFlow, in a fresh process."""
    clean = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    out = subprocess.run([sys.executable, "-c", PROBE.format(files=FILES, module=module)], capture_output=True,
                         text=True, env={**clean, "TF_CPP_MIN_LOG_LEVEL": "2", **env}, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_that_loads_tensorflow_loads_it_with_onednn(script):
    expected = ("onednn True",) if script in TENSORFLOW_SCRIPTS else ("onednn True", "no tensorflow")
    assert imported(script) in expected


def test_the_user_can_turn_onednn_off():
    assert imported("train_cgan", TF_ENABLE_ONEDNN_OPTS="0") == "onednn False"

