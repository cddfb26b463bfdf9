"""Every benchmark under files/bench/ still runs, at its smallest settings (the figures they
print mean nothing at this size; only that each part ran and reported)."""

import os

import pytest

from conftest import FILES

BENCH_SCRIPTS = sorted(name for name in os.listdir(os.path.join(FILES, "bench")) if name.startswith("bench_"))
SMALLEST = {
    "bench_prepare_xrays.py": ("--n", 3, "--workers", 2),
    "bench_prepare_faces.py": ("--n", 4, "--batch", 2),
    "bench_train.py": ("--smoke",),
}
LAST_LINES = {
    "bench_prepare_xrays.py": ("speed-up: ", "difference from the naive pixels (equalized): mean "),
    "bench_prepare_faces.py": ("speed-up: ", "faces found: 3 of 4; same crops as the naive way: True"),
    "bench_train.py": ("heatmaps.py work per model file: ", "RESULT step_s="),
}


def test_every_benchmark_has_smallest_settings():
    assert BENCH_SCRIPTS == sorted(SMALLEST)  # a new benchmark needs its entry here


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_benchmark_runs(run, script):
    done = run(os.path.join("bench", script), *SMALLEST[script])
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    for line, start in zip(lines[-2:], LAST_LINES[script]):
        assert line.startswith(start), lines[-2:]
