"""TensorFlow's settings that only take effect when made before TensorFlow is imported, and the
import itself: every module that imports keras, tensorflow or mtcnn imports this first.

- oneDNN kernels on every x86 CPU. TensorFlow turns them on by itself only on CPUs with AVX-512
  VNNI or BF16 or AMX; on an AVX2-only CPU it runs Eigen's kernels instead, which made the
  demo's training step 2 to 3.5 times slower on our 2-core AMD EPYC (bench/bench_epoch.py).
  TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps Eigen's (`TF_ENABLE_ONEDNN_OPTS=0 python
  files/bench/bench_epoch.py` measures them).
- Start-up chatter out of stderr, unless the user sets TF_CPP_MIN_LOG_LEVEL (then theirs
  rules, and nothing is hidden). TensorFlow reads the level once, while it loads: level 3
  then hides its C++ log lines below FATAL for the whole run, such as `failed call to cuInit`
  on a machine with CUDA's libraries but no GPU; the environment is put back afterwards, so
  the processes a script starts decide for themselves. The level cannot hide what TensorFlow's
  libraries print while they load, before their logging has read it (absl's "WARNING: All log
  messages before absl::InitializeLog() is called are written to STDERR", then lines like
  cudart_stub's "Could not find cuda drivers"): those are taken out of what `import
  tensorflow` writes to stderr, and everything else it writes is passed on (but for a crash
  inside the import, which never returns: TF_CPP_MIN_LOG_LEVEL=0 shows all there is).
"""

import os
import re
import sys
import tempfile

# an absl log line: severity, date, time, thread id, file:line]
_ABSL_LINE = re.compile(r"[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_ABSL_NOT_INITIALIZED = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def _is_chatter(line):
    return line.startswith(_ABSL_NOT_INITIALIZED) or bool(_ABSL_LINE.match(line))


def _import_tensorflow_quietly():
    """import tensorflow at log level 3 with stderr (the file descriptor, which C++ writes to)
    caught in a file; then pass on all but the chatter, also when the import fails."""
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        stderr = os.dup(2)
        os.dup2(caught.fileno(), 2)
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        try:
            import tensorflow  # noqa: F401
        finally:
            del os.environ["TF_CPP_MIN_LOG_LEVEL"]
            sys.stderr.flush()
            os.dup2(stderr, 2)
            os.close(stderr)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _is_chatter(line)))


os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
    import tensorflow  # noqa: F401
else:
    _import_tensorflow_quietly()
