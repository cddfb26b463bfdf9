"""Training on several devices or machines with TensorFlow's own engine (tf.distribute): the
strategy that train_cgan.py's --strategy and --cpu_devices ask for, which worker writes files,
and a seed every worker shares.

    default       one device, as the original trained
    mirrored      MirroredStrategy: every visible GPU of this machine, or --cpu_devices N
                  logical CPU devices (for testing without GPUs; not faster on a CPU)
    multiworker   MultiWorkerMirroredStrategy over the machines TF_CONFIG names; the chief
                  (task "chief", or worker 0 when the cluster has none) writes the run's files
"""

import contextlib
import json
import os
import socket
import time

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before it)

# isort: split
import numpy as np
import tensorflow as tf

from cganlib import cli
from cganlib.config import WORKER_TIMEOUT
from cganlib.storage import InputError, fail

STRATEGIES = ("default", "mirrored", "multiworker")


def use_cpu_devices(n):
    """Split this machine's CPU into n logical devices. TensorFlow allows it only before it has
    set up its devices; a process that already has n of them keeps them."""
    try:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != n:
            raise InputError(f"--cpu_devices {n}: TensorFlow's devices are already set up in this process "
                             f"({have} CPU device(s)); start a fresh process") from None


TRAINING_TASKS = ("chief", "worker")  # the task types MultiWorkerMirroredStrategy trains on


def tf_config():
    """(cluster, task) of the TF_CONFIG environment variable; InputError when unset or malformed."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise InputError("--strategy multiworker needs TF_CONFIG: the cluster and this worker's task (see README)")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, index = task["type"], task["index"]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f'TF_CONFIG is not {{"cluster": {{...}}, "task": {{"type": ..., "index": ...}}}}: {e}') from None
    problem = _cluster_problem(cluster) or _task_problem(cluster, task_type, index)
    if problem:
        raise InputError(f"TF_CONFIG: {problem}")
    return cluster, task


def _cluster_problem(cluster):
    """What is wrong with TF_CONFIG's cluster, or None: it maps chief and worker to lists of "host:port"."""
    if not isinstance(cluster, dict):
        return f"its cluster must map task types to lists of addresses, got {cluster!r}"
    for task_type, addresses in cluster.items():
        if task_type not in TRAINING_TASKS:
            return f"its cluster has {task_type!r} tasks; --strategy multiworker trains on chief and worker tasks only"
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            return f'its cluster\'s {task_type} must be a list of "host:port" addresses, got {addresses!r}'
    return None


def _task_problem(cluster, task_type, index):
    """What is wrong with TF_CONFIG's task, or None: a chief or worker of the cluster, by its index from 0."""
    if not isinstance(index, int) or isinstance(index, bool):
        return f"its task index must be a whole number, got {index!r}"
    if task_type not in cluster or not 0 <= index < len(cluster[task_type]):
        return f"task {task_type} {index} is not in its cluster"
    return None


def is_chief(strategy_name):
    """Whether this process writes the run's files: always, but in a multi-worker run where
    TF_CONFIG makes another task the chief."""
    if strategy_name != "multiworker":
        return True
    cluster, task = tf_config()
    return task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0 and "chief" not in cluster)


def make_strategy(strategy_name, cpu_devices=None, worker_timeout=WORKER_TIMEOUT):
    """The tf.distribute strategy asked for; call it before anything runs on TensorFlow's devices."""
    if strategy_name == "multiworker":
        return joined_strategy(worker_timeout)
    if cpu_devices:
        use_cpu_devices(cpu_devices)
    if strategy_name == "mirrored":
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_devices)] if cpu_devices else None)
    return tf.distribute.get_strategy()


def joined_strategy(timeout):
    """MultiWorkerMirroredStrategy, once every other worker of TF_CONFIG answers at its address.
    TensorFlow would wait for a missing worker inside C++, for ever and deaf to Ctrl-C, so the
    workers first wait for each other here, each listening on its own port meanwhile: Ctrl-C, or
    `timeout` seconds with a worker missing, end the process with one line, nothing written."""
    cluster, task = tf_config()
    peers = others(cluster, task)
    try:
        print(f"{task['type']} {task['index']}: waiting up to {timeout:g} s for the cluster's other workers "
              f"({', '.join(peers) or 'none'})", flush=True)
        with listening(cluster[task["type"]][task["index"]]):
            wait_for(peers, timeout)
    except KeyboardInterrupt:
        fail("interrupted while waiting for the cluster's other workers; nothing written", cli.EXIT_INTERRUPTED)
    return tf.distribute.MultiWorkerMirroredStrategy()


@contextlib.contextmanager
def listening(address):
    """A socket listening on this worker's port, closed before TensorFlow's server takes the port
    (with SO_REUSEPORT where TF_GRPC_REUSE_PORT asks TensorFlow's server for it)."""
    port = int(address.rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if os.environ.get("TF_GRPC_REUSE_PORT"):
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            listener.bind(("", port))
        except OSError as e:
            fail(f"--strategy multiworker: this worker's port {port} (TF_CONFIG) is taken: {e.strerror}", cli.EXIT_FAILED)
        listener.listen()
        yield


def wait_for(peers, timeout):
    """Return once every one of peers ({name: "host:port"}) answers; fail with one line when
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while missing := [name for name, address in peers.items() if not answers(address)]:
        if time.monotonic() > deadline:
            fail(f"--strategy multiworker: after {timeout:g} s (--worker_timeout) no answer from "
                 f"{', '.join(missing)}: start them with the same TF_CONFIG cluster", cli.EXIT_FAILED)
        time.sleep(0.5)


def others(cluster, task):
    """{"worker 1 (host:port)": "host:port"} for every task of the cluster but this one."""
    return {f"{task_type} {k} ({address})": address for task_type, addresses in cluster.items()
            for k, address in enumerate(addresses) if (task_type, k) != (task["type"], task["index"])}


def answers(address):
    """Whether something listens at "host:port" (a worker that has started its server)."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def describe(strategy_name, strategy, n_batch):
    """One line for the log: the strategy, its replicas and each one's share of the batch."""
    replicas = strategy.num_replicas_in_sync
    devices = ", ".join(name.rsplit("/device:", 1)[-1] for name in strategy.extended.worker_devices)
    return (f"strategy {strategy_name}: {replicas} replica(s), on this machine {devices}; "
            f"global batch {n_batch} = {n_batch // replicas} per replica")


def shared_seed(strategy):
    """A seed drawn afresh and the same on every worker: the first replica's draw, summed with
    the others' zeros. Workers that draw the same batches train on distinct slices of them, and
    draw the same end-of-epoch samples as the chief."""
    drawn = int(np.random.SeedSequence().generate_state(1)[0])

    def contribution():
        first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
        return tf.where(first, tf.constant(drawn, tf.int64), tf.constant(0, tf.int64))

    summed = tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(contribution), axis=None))
    return int(summed())
