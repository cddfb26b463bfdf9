"""TensorFlow's settings that only take effect when made before TensorFlow is imported, and the
import itself: every module that imports keras, tensorflow or mtcnn imports this first.

- oneDNN kernels on every x86 CPU. TensorFlow turns them on by itself only on CPUs with AVX-512
  VNNI or BF16 or AMX; on an AVX2-only CPU it runs Eigen's kernels instead, which made the
  demo's training step 2 to 3.5 times slower on our 2-core AMD EPYC (bench/bench_epoch.py).
  TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps Eigen's (`TF_ENABLE_ONEDNN_OPTS=0 python
  files/bench/bench_epoch.py` measures them).
- Start-up chatter out of stderr. TensorFlow reads TF_CPP_MIN_LOG_LEVEL once, while it loads,
  and hides its C++ log lines below it for the whole run: unset, the import runs at level 3
  (below FATAL: such as `failed call to cuInit` on a machine with CUDA's libraries but no GPU)
  and the environment is put back afterwards, so the processes a script starts decide for
  themselves; set, the user's level rules. No level hides what TensorFlow's libraries print
  while they load, before their logging has read it (absl's "WARNING: All log messages before
  absl::InitializeLog() is called are written to STDERR", then lines like port.cc's "oneDNN
  custom operations are on" and cudart_stub's "Could not find cuda drivers"): those lines are
  taken out of what `import tensorflow` writes to stderr by the same rule (level 1 hides the I
  lines, 2 the W too, 3 the E too), and everything else it writes is passed on (but for a
  crash inside the import, which never returns: TF_CPP_MIN_LOG_LEVEL=0 shows all there is).
"""

import os
import re
import sys
import tempfile

# an absl log line: severity (INFO, WARNING, ERROR: hidden from level 1, 2, 3 on), date, time,
# thread id, file:line]
_ABSL_LINE = re.compile(r"([IWE])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_SEVERITIES = "IWE"
_ABSL_NOT_INITIALIZED = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def _user_level():
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (its leading whole number, else 0); None when unset."""
    text = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if text is None:
        return None
    number = re.match(r"\s*[+-]?\d+", text)
    return int(number.group()) if number else 0


def _is_chatter(line, level):
    """Whether a line printed while TensorFlow loads is one the log level hides; the notice that
    announces such lines goes with the least of them."""
    if line.startswith(_ABSL_NOT_INITIALIZED):
        return level > 0
    absl = _ABSL_LINE.match(line)
    return bool(absl) and _SEVERITIES.index(absl.group(1)) < level


def _import_tensorflow_quietly(user_level):
    """import tensorflow with stderr (the file descriptor, which C++ writes to) caught in a file,
    at the user's log level or else at 3; then pass on all but the chatter that level hides,
    also when the import fails."""
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        stderr = os.dup(2)
        os.dup2(caught.fileno(), 2)
        if user_level is None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        try:
            import tensorflow  # noqa: F401
        finally:
            if user_level is None:
                del os.environ["TF_CPP_MIN_LOG_LEVEL"]
            sys.stderr.flush()
            os.dup2(stderr, 2)
            os.close(stderr)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            level = 3 if user_level is None else user_level
            sys.stderr.write("".join(line for line in lines if not _is_chatter(line, level)))


os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
_level = _user_level()
if _level is not None and _level <= 0:  # the user asks for every line: nothing to take out, nothing caught
    import tensorflow  # noqa: F401
else:
    _import_tensorflow_quietly(_level)
