"""Every benchmark under files/bench/ still runs, at its smallest settings (the figures they
print mean nothing at this size; only that each part ran and reported)."""

import os
import re

import pytest

from conftest import FILES

BENCH_SCRIPTS = sorted(name for name in os.listdir(os.path.join(FILES, "bench")) if name.startswith("bench_"))
SMALLEST = {
    "bench_prepare_xrays.py": ("--n", 3, "--workers", 2),
    "bench_prepare_faces.py": ("--n", 4, "--batch", 2),
    "bench_train.py": ("--smoke",),
    "bench_epoch.py": ("--smoke",),
    "bench_evaluate.py": ("--smoke",),
    "bench_projection.py": ("--smoke",),
    "bench_cli.py": ("--smoke",),
}
LAST_LINES = {
    "bench_prepare_xrays.py": ("speed-up: ", "difference from the naive pixels (equalized): mean "),
    "bench_prepare_faces.py": ("speed-up: ", "faces found: 3 of 4; same crops as the naive way: True"),
    "bench_train.py": ("heatmaps.py work per model file: ", "RESULT step_s="),
    "bench_epoch.py": ("end of epoch: ", "RESULT step_s="),
    "bench_evaluate.py": ("one epoch (evaluation.evaluate_epoch): ", "RESULT epoch_s="),
    "bench_projection.py": ("  no SSIM term: ", "RESULT tf_ssim_step_s="),
    "bench_cli.py": ("slowest: --help ", "RESULT slowest_help_s="),
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


@pytest.mark.slow
def test_bench_train_times_the_step_per_replica_count(run):
    done = run(os.path.join("bench", "bench_train.py"), "--smoke", "--cpu_devices", 2)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-4].startswith("one device (--strategy default): ")
    assert lines[-3].startswith("mirrored, 1 replica(s) of 8 images: ")
    assert lines[-2].startswith("mirrored, 2 replica(s) of 4 images: ")
    assert re.fullmatch(r"RESULT default_step_s=[\d.]+ mirrored_step_s=1:[\d.]+,2:[\d.]+", lines[-1])
