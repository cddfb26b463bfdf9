"""The command lines: --help and a bad flag answer before TensorFlow loads, every flag has help
that shows its default, TensorFlow's start-up chatter stays out of stderr unless the user sets
TF_CPP_MIN_LOG_LEVEL, and lines printed while a progress bar runs stand whole on their own line."""

import glob
import json
import os
import re
import subprocess

import pytest

from cganlib import cli
from cganlib.storage import InputError
from conftest import FILES, run_python, run_script

SCRIPTS = sorted(os.path.basename(path) for path in glob.glob(os.path.join(FILES, "*.py")))
BAD_FLAG = "--no_such_flag"

# Runs a script as `python <script> <flag>` does, for --help and a bad flag, with every import of
# TensorFlow, keras or mtcnn stopped; prints each run's exit status and what it tried to import.
NO_TENSORFLOW_PROBE = """
import json, runpy, sys
sys.path.insert(0, {files!r})

class Loaded(BaseException):  # not an Exception: no `except Exception` in the scripts hides it
    pass

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "mtcnn"):
            raise Loaded(name)
        return None

sys.meta_path.insert(0, Refuse())
found = {{}}
for flag in ("--help", {bad_flag!r}):
    sys.argv = [{script!r}, flag]
    try:
        runpy.run_path({script!r}, run_name="__main__")
        found[flag] = "no exit"
    except SystemExit as e:
        found[flag] = e.code
    except Loaded as e:
        found[flag] = "loaded " + e.args[0]
print(json.dumps(found))
"""


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_a_bad_flag_answer_without_loading_tensorflow(script):
    code = NO_TENSORFLOW_PROBE.format(files=FILES, script=os.path.join(FILES, script), bad_flag=BAD_FLAG)
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"--help": 0, BAD_FLAG: 2}
    assert done.stderr.strip().splitlines()[-1].startswith(f"{script}: error: ")


# ---------------------------------------------------------------- every flag's help


class Parsed(Exception):
    pass


def parser_of(script, monkeypatch):
    """The script's parser, caught as its main() parses."""

    def catch(parser, args=None, namespace=None):
        raise Parsed(parser)

    monkeypatch.setattr(cli.Parser, "parse_args", catch)
    module = __import__(script[:-3])
    with pytest.raises(Parsed) as caught:
        module.main([])
    return caught.value.args[0]


def shown(default):
    return " ".join(map(str, default)) if isinstance(default, list) else str(default)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_has_help_that_shows_its_default(script, monkeypatch):
    """A default set in the parser is shown by value; one worked out later (None in the parser:
    `<data_dir>/results`) is said in words where there is one, which a test cannot tell from
    an input that is simply left out, like --ground_truth."""
    parser = parser_of(script, monkeypatch)
    formatter = parser._get_formatter()
    for action in parser._actions:
        name = "/".join(action.option_strings)
        assert action.help, f"{name} has no help"
        switch = action.nargs == 0  # --help and the store_true flags: off unless given
        if not (switch or action.required or action.default is None):
            text = formatter._expand_help(action)
            assert "default" in text and shown(action.default) in text, f"{name}: {text}"


# ---------------------------------------------------------------- TensorFlow's start-up chatter

ABSL_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] )")


def heatmaps_on_a_bad_model_file(tmp_path, **env):
    """heatmaps.py, which loads TensorFlow, on a model file that is not one: its stderr."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "generator_model_001.h5").write_bytes(b"not a model")
    done = run_script("heatmaps.py", "--dataset", "xray", "--models_dir", models, "--out_dir", tmp_path / "out",
                      env={"TF_CPP_MIN_LOG_LEVEL": None, **env})  # the user's environment, without a log level
    assert done.returncode == 2
    return done.stderr.splitlines()


@pytest.mark.parametrize("level", [None, "1", "3"])  # unset: the scripts' own level; set: the user's
def test_tensorflow_start_up_lines_are_not_printed(tmp_path, level):
    lines = heatmaps_on_a_bad_model_file(tmp_path, TF_CPP_MIN_LOG_LEVEL=level)  # here all the lines are I lines
    assert not [line for line in lines if ABSL_LINE.match(line) or "cuInit" in line or "cudart" in line], lines
    errors = [line for line in lines if line.startswith("heatmaps.py: error: ")]
    assert len(errors) == 2 and "1 of 1 model files could not be used" in errors[-1], lines


def test_tensorflow_start_up_lines_are_printed_when_the_user_sets_the_log_level_0(tmp_path):
    lines = heatmaps_on_a_bad_model_file(tmp_path, TF_CPP_MIN_LOG_LEVEL="0")
    assert any(ABSL_LINE.match(line) for line in lines), lines  # oneDNN's "custom operations are on", at least


# ---------------------------------------------------------------- the shared pieces


def test_bad_input_found_later_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info, cli.exit_on_bad_input():
        raise InputError("the models folder is empty")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(": error: the models folder is empty")


# the bar redrawn at every step (miniters=1, mininterval=0), however fast the steps come
BAR_WITH_LINES = """
import sys
sys.path.insert(0, {files!r})
from tqdm import tqdm
from cganlib import cli
for k in tqdm(range(3), desc="work", mininterval=0, miniters=1):
    cli.print_beside_bars(f"line {{k}} of the work")
"""


def test_lines_printed_during_a_progress_bar_stand_whole_in_a_log_of_both_streams():
    """stdout and stderr into one pipe, as `2>&1 | tee log` does, stdout buffered as Python
    buffers a pipe: what a terminal shows of each line of the log (after its last carriage
    return) is a printed line, whole and in its place, or the bar."""
    done = run_python("-c", BAR_WITH_LINES.format(files=FILES), env={"PYTHONUNBUFFERED": None}, stderr=subprocess.STDOUT)
    assert done.returncode == 0, done.stdout[-2000:]
    shown_lines = [line.split("\r")[-1] for line in done.stdout.splitlines()]
    assert [line for line in shown_lines if "of the work" in line] == [f"line {k} of the work" for k in range(3)]
    assert shown_lines[-1].startswith("work: 100%"), done.stdout  # the lines came while the bar ran
