"""train_cgan.py on several devices and machines (--strategy, --cpu_devices): one step on two
replicas is the step on one device; a mirrored run writes a single-device run's files, resumes
with another strategy, its optimizers' state and all, and feeds the heatmap scripts; two worker
processes start a run on the seed they share (TF_CONFIG's chief form), resume it (its worker
form), draw the same batches and only the chief writes. Two logical CPU devices need a fresh
process: TensorFlow sets its devices up once."""

import contextlib
import json
import os
import signal
import socket
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

import train_cgan
from cganlib import cgan, config, distribution, run_folder, training
from cganlib.collapse_guard import GAN_MODELS
from conftest import FILES, run_python, start_python, stop
from helpers import make_xray_data, one_error_line, read_until

TESTS = os.path.dirname(os.path.abspath(__file__))


def argv_for(data, results, *extra):
    return ["--dataset", "xray", "--data_dir", str(data), "--results_dir", str(results), "--summary_dir",
            str(data / "cgan"), "--filters", "4", "--n_batch", "16", "--real_plots", "1", *map(str, extra)]


def epoch_files(epochs):
    """The names a single-device run leaves in its results folder after these epochs."""
    names = {run_folder.RUN_CONFIG, run_folder.HISTORY, run_folder.LOSSES, run_folder.LOCK, "real_plots"}
    for epoch in epochs:
        paths = [*run_folder.model_paths("", epoch).values(), run_folder.plot_path("", epoch), run_folder.state_path("", epoch)]
        names |= {os.path.basename(path) for path in paths}
    return sorted(names)


# ---------------------------------------------------------------- one step, one device or two


def one_step(out):
    """Run in a fresh process: on two logical CPU devices, one training step with dropout off from
    the same weights and batch on one device, on two replicas, and on two replicas under the
    mixed-precision policy --mixed_precision sets on GPUs (on a CPU it sets a graph rewrite that
    needs bfloat16 instructions); the weights, Adamax variables and losses of each, and the
    weights after the guard's reload."""
    distribution.use_cpu_devices(2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, *cgan.IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, 3, 64).astype(np.int32)
    keras.utils.set_random_seed(5)
    start = cgan.build_generator(3, 100, 4).get_weights(), cgan.build_discriminator(3, 4, 4e-5).get_weights()
    results = {"start": start[0] + start[1]}
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name, strategy, policy in (("one", None, "float32"), ("two", two, "float32"), ("two_bf16", two, "mixed_bfloat16")):
        keras.mixed_precision.set_global_policy(policy)
        with (strategy or tf.distribute.get_strategy()).scope():
            g, d = cgan.build_generator(3, 100, 4), cgan.build_discriminator(3, 4, 4e-5)
            gan = cgan.build_gan(g, d)
        g.set_weights(start[0])
        d.set_weights(start[1])
        for layer in g.layers + d.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0  # the replicas would draw the same mask, each on its slice
        trainer = training.Trainer(g, d, gan, images, labels, config.resolve("xray", n_batch=16),
                                   np.random.default_rng(1), strategy)
        results[f"{name}_losses"] = [np.asarray(loss) for loss in trainer.train_batch(*trainer.draw_batch())]
        results[f"{name}_weights"] = g.get_weights() + d.get_weights()
        results[f"{name}_moments"] = [v.numpy() for v in d.optimizer.variables + gan.optimizer.variables]
        trainer.reload(GAN_MODELS)
        results[f"{name}_reloaded"] = g.get_weights() + d.get_weights()
    np.savez(out, **{f"{key}.{i:03d}": a for key, arrays in results.items() for i, a in enumerate(arrays)})


def load_lists(path):
    lists = {}
    with np.load(path) as data:
        for key in sorted(data.files):
            lists.setdefault(key.rsplit(".", 1)[0], []).append(data[key])
    return lists


def assert_close(a, b, rtol=1e-5):
    """Equal to float32 rounding: each array within rtol of its own largest value."""
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=rtol * max(float(np.abs(x).max()), 1e-30))


def test_one_step_on_two_replicas_is_the_step_on_one_device(tmp_path):
    out = tmp_path / "step.npz"
    code = f"import test_distribute; test_distribute.one_step({str(out)!r})"
    done = run_python("-c", code, cwd=TESTS, env={"PYTHONPATH": FILES})
    assert done.returncode == 0, done.stderr[-3000:]
    r = load_lists(out)
    assert not all(np.array_equal(x, y) for x, y in zip(r["start"], r["one_weights"]))
    # the batch's mean loss and mean gradient: weights, and Adamax moments, which a gradient
    # summed over the replicas without the 1/replicas share would double
    assert_close(r["one_losses"], r["two_losses"])
    for x, y in zip(r["one_weights"], r["two_weights"], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)  # Adamax moves a weight ~lr whatever its gradient
    assert_close(r["one_moments"], r["two_moments"])
    for name in ("one", "two", "two_bf16"):  # the guard's reload puts back the weights on every replica
        assert all(np.array_equal(x, y) for x, y in zip(r["start"], r[f"{name}_reloaded"], strict=True))
    np.testing.assert_allclose(r["two_bf16_losses"], r["one_losses"], rtol=0.02)  # bfloat16: 3 digits
    assert {w.dtype for w in r["two_bf16_weights"]} == {np.dtype("float32")}
    assert not all(np.array_equal(x, y) for x, y in zip(r["start"], r["two_bf16_weights"]))


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("extra, tf_config, message", [
    (["--cpu_devices", 2], None, "--cpu_devices goes with --strategy mirrored, not --strategy default"),
    (["--strategy", "multiworker", "--cpu_devices", 2], None,
     "--cpu_devices goes with --strategy mirrored, not --strategy multiworker"),
    (["--strategy", "multiworker"], None, "--strategy multiworker needs TF_CONFIG: the cluster and this worker's task"),
    (["--strategy", "multiworker"], '{"cluster": {}}', 'TF_CONFIG is not {"cluster": {...}, "task": {"type": ..., "index": ...}}'),
    (["--strategy", "multiworker"], '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
     "TF_CONFIG: task worker 1 is not in its cluster"),
])
def test_bad_strategy_flags_are_one_line(tmp_path, capsys, monkeypatch, extra, tf_config, message):
    data = make_xray_data(tmp_path / "data", n=32)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert message in one_error_line(train_cgan.main, argv_for(data, tmp_path / "results", *extra), capsys, tmp_path)


def test_cpu_devices_in_a_process_whose_devices_are_set_up_is_one_line(tmp_path, capsys):
    data = make_xray_data(tmp_path / "data", n=32)
    tf.zeros(1)  # TensorFlow sets up its devices on first use: this process has one CPU device now
    err = one_error_line(train_cgan.main, argv_for(data, tmp_path / "results", "--strategy", "mirrored", "--cpu_devices", 3),
                         capsys, tmp_path)
    assert err.endswith("--cpu_devices 3: TensorFlow's devices are already set up in this process (1 CPU device(s)); "
                        "start a fresh process")


def optimizer_steps(results, epoch):
    """(the discriminator's, the GAN's) Adamax step counts in epoch's training state."""
    _, arrays = run_folder.load_state(str(results), epoch)
    return int(arrays["d_optimizer"][0]), int(arrays["gan_optimizer"][0])


@pytest.mark.slow
def test_a_mirrored_run_writes_a_single_device_runs_files_resumes_on_one_device_and_feeds_heatmaps(tmp_path, run):
    data = make_xray_data(tmp_path / "data", n=32)  # 2 batches an epoch
    results = tmp_path / "results"
    refused = run("train_cgan.py", *argv_for(data, results, "--strategy", "mirrored", "--cpu_devices", 3))
    assert refused.returncode == 2 and refused.stderr.strip().endswith(
        "--n_batch 16 does not split across 3 replicas: each half batch goes to every replica alike, "
        "so it must be a multiple of 6")

    mirrored = run("train_cgan.py", *argv_for(data, results, "--strategy", "mirrored", "--cpu_devices", 2, "--epochs_goal", 2))
    assert mirrored.returncode == 0, mirrored.stderr[-3000:]
    assert "strategy mirrored: 2 replica(s), on this machine CPU:0, CPU:1; global batch 16 = 8 per replica" in mirrored.stdout
    assert sorted(os.listdir(results)) == epoch_files([1, 2])
    flags = run_folder.read_config(str(results))["flags"]
    assert (flags["strategy"], flags["cpu_devices"]) == ("mirrored", 2)
    # one update per batch, not one per replica: two discriminator steps and one GAN step a batch
    assert optimizer_steps(results, 1) == (2 * 2, 2) and optimizer_steps(results, 2) == (2 * 4, 4)
    epoch_2 = cgan.load_generator(run_folder.model_paths(str(results), 2)["generator"])

    # the strategy describes the machine: a restart may change it (and back: the two-worker test)
    resumed = run("train_cgan.py", "--dataset", "xray", "--results_dir", results, "--qRestart", "--epochs_goal", 3,
                  "--strategy", "default")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "training state of epoch 2 restored" in resumed.stdout and "strategy" not in resumed.stdout
    assert sorted(os.listdir(results)) == epoch_files([1, 2, 3])
    assert run_folder.complete_epochs(str(results)) == [1, 2, 3]
    assert sorted(os.listdir(results / "real_plots")) == ["real_plot_e001.png"]
    # it went on from the mirrored run's optimizers (fresh ones would count 4 and 2), and trained
    assert optimizer_steps(results, 3) == (2 * 6, 6)
    epoch_3 = cgan.load_generator(run_folder.model_paths(str(results), 3)["generator"])
    assert not all(np.array_equal(a, b) for a, b in zip(epoch_2.get_weights(), epoch_3.get_weights()))

    drawn = run("heatmaps.py", "--dataset", "xray", "--data_dir", data, "--models_dir", results, "--epochs", 2)
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert sorted(os.listdir(data / "heatmaps")) == ["generator_model_002.h5.npz", "generator_model_002.h5.png"]
    with np.load(data / "heatmaps" / "generator_model_002.h5.npz") as heatmap:  # epoch 2's images, label by label
        for label, images in zip(heatmap["labels"], heatmap["images"]):
            expected = cgan.generate(epoch_2, heatmap["latents"], [label] * len(images))
            np.testing.assert_allclose(images, expected, atol=1e-5)


@contextlib.contextmanager
def reserved_ports(n):
    """n free ports of this machine, held until the block ends: bound (not listening) with
    SO_REUSEPORT, so no other process can take one meanwhile, while the workers' servers, told
    by TF_GRPC_REUSE_PORT=1 to set SO_REUSEPORT too, can bind them."""
    sockets = []
    try:
        for _ in range(n):
            sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sockets[-1].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sockets[-1].bind(("localhost", 0))
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# train_cgan.py as it runs, every batch it draws recorded (a digest of its arrays, a line each) in
# the file BATCH_RECORD names
RECORDING_WORKER = """
import hashlib, os, sys
sys.path.insert(0, {files!r})
from cganlib import training

draw = training.Trainer.draw_batch

def draw_and_record(self):
    batch = draw(self)
    with open(os.environ["BATCH_RECORD"], "a") as f:
        f.write(hashlib.sha256(b"".join(part.tobytes() for part in batch)).hexdigest() + "\\n")
    return batch

training.Trainer.draw_batch = draw_and_record
import train_cgan
sys.exit(train_cgan.main(sys.argv[1:]))
"""


def train_together(folder, tasks, argv):
    """train_cgan.py argv in one worker process per task of TF_CONFIG's cluster (tasks: (type,
    index) pairs, the cluster's jobs in their order) on this machine, each with its own
    temporary folder under folder. Returns (exit statuses, logs, recorded batches, temporary folders)."""
    jobs = {}
    for kind, _ in tasks:
        jobs[kind] = jobs.get(kind, 0) + 1
    workers, temps = [], [folder / f"tmp{k}" for k in range(len(tasks))]
    logs, records = [folder / f"worker{k}.log" for k in range(len(tasks))], [folder / f"batches{k}" for k in range(len(tasks))]
    with reserved_ports(len(tasks)) as ports:
        free = iter(ports)
        cluster = {kind: [f"localhost:{next(free)}" for _ in range(count)] for kind, count in jobs.items()}
        try:
            for (kind, index), temp, log, record in zip(tasks, temps, logs, records):
                os.makedirs(temp)
                record.write_text("")
                tf_config = json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})
                with open(log, "w") as out:
                    workers.append(start_python(
                        "-c", RECORDING_WORKER.format(files=FILES), *argv, stdout=out, stderr=subprocess.STDOUT,
                        env={"TF_CONFIG": tf_config, "TMPDIR": str(temp), "BATCH_RECORD": str(record),
                             "TF_GRPC_REUSE_PORT": "1"}))
            statuses = [worker.wait() for worker in workers]  # the test's own time limit stops a hung cluster
        finally:
            for worker in workers:
                stop(worker)
    return statuses, [log.read_text() for log in logs], [record.read_text().split() for record in records], temps


@pytest.mark.slow
def test_two_workers_start_a_run_on_a_shared_seed_resume_it_in_step_and_only_the_chief_writes(tmp_path):
    data = make_xray_data(tmp_path / "data", n=32)  # 2 batches an epoch
    results = tmp_path / "results"

    # a fresh run without --seed: every worker draws from the seed they share. TF_CONFIG's chief
    # form: a "chief" task beside a "worker" one, which is worker 0 but not the chief
    os.makedirs(tmp_path / "fresh")
    statuses, outputs, batches, temps = train_together(
        tmp_path / "fresh", [("chief", 0), ("worker", 0)],
        argv_for(data, results, "--epochs_goal", 1, "--strategy", "multiworker"))
    assert statuses == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    for out in outputs:
        assert "strategy multiworker: 2 replica(s), on this machine CPU:0; global batch 16 = 8 per replica" in out
        assert " seed=none " in out
    assert len(batches[0]) == 2 and batches[0] == batches[1]  # the same batches, each worker its slice of them
    said = [[line for line in out.splitlines() if line.startswith(">")] for out in outputs]
    assert said[0] == said[1] and said[0][-1].startswith(">Accuracy real: ")
    assert sorted(os.listdir(results)) == epoch_files([1])  # the chief's alone: the worker would hold its lock
    assert [os.listdir(temp) for temp in temps] == [[], []]  # the worker's folder went with it

    # resumed: TF_CONFIG's worker form, no chief task, worker 0 the chief; the state comes from the chief's folder
    os.makedirs(tmp_path / "resumed")
    statuses, outputs, batches, temps = train_together(
        tmp_path / "resumed", [("worker", 0), ("worker", 1)],
        ["--dataset", "xray", "--results_dir", results, "--qRestart", "--epochs_goal", 2, "--strategy", "multiworker"])
    # both ended well, though a run holds its folder's lock throughout: the other worker wrote elsewhere
    assert statuses == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    for out in outputs:
        assert "training state of epoch 1 restored" in out
    assert len(batches[0]) == 2 and batches[0] == batches[1]
    said = [[line for line in out.splitlines() if line.startswith(">")] for out in outputs]
    assert said[0] == said[1] and said[0][-1].startswith(">Accuracy real: ")
    assert sorted(os.listdir(results)) == epoch_files([1, 2])
    assert run_folder.complete_epochs(str(results)) == [1, 2]
    assert [os.listdir(temp) for temp in temps] == [[], []]


# train_cgan.py with the waiting's clock replaced by one that moves only when the worker sleeps
# between its calls to the others: --worker_timeout runs out after as many calls, however busy the machine
FAKE_CLOCK_WORKER = """
import sys, types
sys.path.insert(0, {files!r})
from cganlib import distribution

now = [0.0]

def sleep(seconds):
    now[0] += seconds

distribution.time = types.SimpleNamespace(monotonic=lambda: now[0], sleep=sleep)
sys.argv[0] = "train_cgan.py"  # the name its errors begin with
import train_cgan
sys.exit(train_cgan.main(sys.argv[1:]))
"""


def lone_worker(data, results, port, missing_port, *extra, fake_clock=False):
    """train_cgan.py as worker 0 of a two-worker cluster whose worker 1 never starts."""
    tf_config = json.dumps({"cluster": {"worker": [f"localhost:{port}", f"localhost:{missing_port}"]},
                            "task": {"type": "worker", "index": 0}})
    program = ["-c", FAKE_CLOCK_WORKER.format(files=FILES)] if fake_clock else [os.path.join(FILES, "train_cgan.py")]
    return start_python(*program, *argv_for(data, results, "--strategy", "multiworker", *extra),
                        env={"TF_CONFIG": tf_config, "TF_GRPC_REUSE_PORT": "1"})


def test_a_worker_whose_peer_never_comes_gives_up_naming_it_and_hears_ctrl_c(tmp_path):
    """TensorFlow would wait for the missing worker for ever, deaf to Ctrl-C. The timeout is
    counted on a fake clock (FAKE_CLOCK_WORKER), Ctrl-C sent once the worker says it waits."""
    data = make_xray_data(tmp_path / "data", n=32)
    with reserved_ports(2) as (port, missing):  # the second bound but not listening: nobody answers there
        worker = lone_worker(data, tmp_path / "results", port, missing, "--worker_timeout", 2, fake_clock=True)
        try:
            out, err = worker.communicate()
        finally:
            stop(worker)
        assert worker.returncode == 1, err[-2000:]
        assert f"worker 0: waiting up to 2 s for the cluster's other workers (worker 1 (localhost:{missing}))" in out
        (line,) = [line for line in err.splitlines() if ": error: " in line]
        assert line == (f"train_cgan.py: error: --strategy multiworker: after 2 s (--worker_timeout) no answer from "
                        f"worker 1 (localhost:{missing}): start them with the same TF_CONFIG cluster")
        assert "Traceback" not in err and not os.path.exists(tmp_path / "results" / run_folder.RUN_CONFIG)

        worker = lone_worker(data, tmp_path / "results", port, missing)  # the default: 600 s
        try:
            waiting = read_until(worker, lambda line: line.startswith("worker 0: waiting up to 600 s"))
            worker.send_signal(signal.SIGINT)
            out, err = worker.communicate()
        finally:
            stop(worker)
    assert worker.returncode == 130, err[-2000:]
    assert waiting[-1].endswith(f"(worker 1 (localhost:{missing}))")
    assert [line for line in err.splitlines() if ": error: " in line] == [
        "train_cgan.py: error: interrupted while waiting for the cluster's other workers; nothing written"]
    assert "Traceback" not in err


def test_worker_timeout_goes_with_multiworker_only(tmp_path, capsys):
    line = one_error_line(train_cgan.main, argv_for(tmp_path, tmp_path / "results", "--worker_timeout", 5), capsys)
    assert line.endswith("--worker_timeout goes with --strategy multiworker, not --strategy default")
