"""What the benchmarks time with: the median of repeated calls, and whether TensorFlow runs its
oneDNN kernels."""

import statistics
import time


def median_seconds(fn, steps, warmup=2):
    """The median wall time of `steps` calls of fn, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN kernels (it decides once, at import)."""
    from tensorflow.python.util import _pywrap_util_port

    return _pywrap_util_port.IsMklEnabled()
