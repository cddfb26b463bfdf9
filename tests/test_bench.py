"""Every benchmark under files/bench/ still runs, at its smallest settings, and reports what it
measured: the figures mean nothing at this size, but each RESULT value is a positive number,
the same number its readable line prints (to the digits printed), parts add up to the totals
they are said to add up to, and the checks the benchmarks make (every script's exit status,
the same crops) hold. No figure is compared with a time."""

import math
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
    "bench_explainer.py": ("--smoke",),
}
NUMBER = r"(-?\d+(?:\.\d+)?|nan)"


def result_of(lines):
    """The RESULT line's values, {key: float}, from the last line."""
    assert lines[-1].startswith("RESULT "), lines[-3:]
    return {key: value for key, value in (item.split("=") for item in lines[-1].split()[1:])}


def printed(lines, pattern):
    """The numbers pattern's groups match in the one line it matches, as floats."""
    found = [re.fullmatch(pattern, line) for line in lines]
    found = [match for match in found if match]
    assert len(found) == 1, (pattern, lines)
    return [float(x) for x in found[0].groups()]


def parts(lines, unit):
    """{name: value} of the indented `  name: value unit` lines."""
    return {match[1]: float(match[2]) for match in (re.fullmatch(rf"  (.+): {NUMBER} {unit}", line) for line in lines) if match}


def seconds(result, *keys):
    """The RESULT values named, each finite and not negative (a part of a millisecond prints as 0.000)."""
    values = [float(result[key]) for key in keys]
    assert all(value >= 0 and math.isfinite(value) for value in values), result
    return values


def check_prepare_xrays(lines):
    rates = {match[1].strip(): float(match[3]) for match in (
        re.fullmatch(r"(.+?) +([\d.]+) images/s +([\d.]+)x +([\d.]+) CPU ms/image", line) for line in lines) if match}
    (speed_up,) = printed(lines, rf"speed-up: {NUMBER}x")
    assert len(rates) == 3 and speed_up == pytest.approx(rates["ours, 2 threads"], abs=0.011)  # against the naive way's
    mean, largest = printed(lines, rf"difference from the naive pixels \(equalized\): mean {NUMBER}, max {NUMBER} grey levels")
    assert 0 <= mean <= largest <= 255


def check_prepare_faces(lines):
    assert lines[-1] == "faces found: 3 of 4; same crops as the naive way: True"


def check_train(lines):
    result = result_of(lines)
    step, vs_peak, vs_plain, rss, delta = seconds(result, "step_s", "vs_peak", "vs_plain_port", "peak_rss_gb", "delta_speedup")
    line_step, _, _, percent = printed(lines, rf"ours float32: {NUMBER} s/step, {NUMBER} images/s, {NUMBER} GFLOP/s = "
                                              rf"{NUMBER}% of the matrix-product rate")
    assert step == pytest.approx(line_step, abs=6e-4) and vs_peak == pytest.approx(percent / 100, abs=6e-4)
    assert vs_plain == pytest.approx(printed(lines, rf"plain port float32: {NUMBER} s/step, ours is {NUMBER}x faster")[1], abs=6e-3)
    assert rss == pytest.approx(printed(lines, rf"peak RSS with \d+ uint8 images \({NUMBER} GB\): {NUMBER} GB")[1], abs=6e-3)
    assert delta == pytest.approx(printed(lines, rf"heatmaps.py work per model file: {NUMBER} s; delta overlay per image "
                                                 rf"{NUMBER} ms vectorized vs {NUMBER} ms per-pixel loop \({NUMBER}x\)")[3], abs=0.6)
    if result["bf16_speedup"] != "nan":  # a CPU with bfloat16 arithmetic
        assert float(result["bf16_speedup"]) == pytest.approx(
            printed(lines, rf"ours --mixed_precision \(bfloat16\): {NUMBER} s/step, speed-up {NUMBER}x")[1], abs=6e-3)


def check_epoch(lines):
    step, end, before = seconds(result_of(lines), "step_s", "epoch_end_s", "epoch_end_before_s")
    assert step == pytest.approx(printed(lines, rf"training step: {NUMBER} s; an epoch's \d+ steps: {NUMBER} s")[0], abs=6e-4)
    assert [end, before] == pytest.approx(printed(lines, rf"end of epoch: {NUMBER} s \(with the two former ways: {NUMBER} s\)"),
                                          abs=6e-3)
    named = parts(lines, "ms")
    now = [ms for name, ms in named.items() if not name.startswith("before")]
    assert len(named) == 7 and end == pytest.approx(sum(now) / 1000, abs=len(now) * 5e-4)  # the end's parts add up


def check_evaluate(lines):
    result = result_of(lines)
    values = seconds(result, *result)
    named = parts(lines, "s")
    assert len(named) == 7 and values[1:] == pytest.approx(list(named.values()), abs=6e-3)  # the parts, in order
    epoch, total = printed(lines, rf"one epoch \(evaluation.evaluate_epoch\): {NUMBER} s; the parts add up to {NUMBER} s")
    assert values[0] == pytest.approx(epoch, abs=6e-3) and total == pytest.approx(sum(named.values()), abs=0.04)


def check_projection(lines):
    result = result_of(lines)
    values = seconds(result, "tf_ssim_step_s", "separable_ssim_step_s", "mse_step_s", "speedup")
    named = parts(lines, "ms")
    assert list(named) == ["tf.image.ssim", "separable window", "no SSIM term"]
    assert [1000 * v for v in values[:3]] == pytest.approx(list(named.values()), abs=0.06)


def check_cli(lines):
    listed = {match[1]: (float(match[2]), float(match[3])) for match in (
        re.fullmatch(rf"  (\S+\.py): --help {NUMBER} s, --no_such_flag {NUMBER} s", line) for line in lines) if match}
    scripts = sorted(name for name in os.listdir(FILES) if name.endswith(".py"))
    assert sorted(listed) == scripts  # every script, each with the exit status its flag asks for
    assert "wrong exit status" not in "\n".join(lines)
    slowest = seconds(result_of(lines), "slowest_help_s", "slowest_bad_flag_s")
    assert slowest == pytest.approx([max(times[k] for times in listed.values()) for k in (0, 1)], abs=6e-3)


def check_explainer(lines):
    step, switched = seconds(result_of(lines), "step_s_f4", "switch_500_s")
    ms, cycle_ms, coded_ms = printed(lines, rf"width 4: a step {NUMBER} ms, with the cycle term {NUMBER} ms, "
                                            rf"the encoder-decoder with its latent critic {NUMBER} ms")
    assert step * 1000 == pytest.approx(ms, abs=0.06) and cycle_ms >= 0 and coded_ms >= 0
    assert switched == pytest.approx(printed(lines, rf"width 4: switching 8 images {NUMBER} s")[0], abs=6e-3)


CHECKS = {
    "bench_prepare_xrays.py": check_prepare_xrays,
    "bench_prepare_faces.py": check_prepare_faces,
    "bench_train.py": check_train,
    "bench_epoch.py": check_epoch,
    "bench_evaluate.py": check_evaluate,
    "bench_projection.py": check_projection,
    "bench_cli.py": check_cli,
    "bench_explainer.py": check_explainer,
}


def test_every_benchmark_has_smallest_settings_and_a_check():
    assert BENCH_SCRIPTS == sorted(SMALLEST) == sorted(CHECKS)  # a new benchmark needs its entries here


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_benchmark_runs_and_reports_what_it_measured(run, script):
    done = run(os.path.join("bench", script), *SMALLEST[script])
    assert done.returncode == 0, done.stderr[-2000:]
    CHECKS[script](done.stdout.strip().splitlines())


@pytest.mark.slow
def test_bench_train_times_the_step_per_replica_count(run):
    done = run(os.path.join("bench", "bench_train.py"), "--smoke", "--cpu_devices", 2)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"RESULT default_step_s=[\d.]+ mirrored_step_s=1:[\d.]+,2:[\d.]+", lines[-1])
    result = result_of(lines)
    mirrored = dict(item.split(":") for item in result["mirrored_step_s"].split(","))
    one, one_replica, two_replicas = (float(result["default_step_s"]), float(mirrored["1"]), float(mirrored["2"]))
    assert min(one, one_replica, two_replicas) > 0
    assert one == pytest.approx(printed(lines, rf"one device \(--strategy default\): {NUMBER} s/step")[0], abs=6e-4)
    for n, images, value in ((1, 8, one_replica), (2, 4, two_replicas)):
        line_value, ratio = printed(lines, rf"mirrored, {n} replica\(s\) of {images} images: {NUMBER} s/step, "
                                           rf"{NUMBER}x the one-device step")
        assert value == pytest.approx(line_value, abs=6e-4)
        # the ratio of the unrounded times, printed to 2 decimals: within what the RESULT's 4 decimals allow
        assert (value - 5e-5) / (one + 5e-5) - 0.005 <= ratio <= (value + 5e-5) / (one - 5e-5) + 0.005
