"""Train the conditional GAN on prepared faces, chest X-rays or your own classes, as the original did.

Reads   <data_dir>/img_align_celeba_attractive.npz + ids_align_celeba_attractive.npz
        + list_attr_celeba.csv (faces), <data_dir>/img_align_xray.npz + labels_align_xray.npz,
        or <data_dir>/img_align_folder.npz + labels_align_folder.npz + classes.json (folder)
Writes  <results_dir>/run_config.json (the run's settings, before epoch 1); every epoch
        generator_model_NNN.h5, generator_model_ganNNN.h5, generator_model_disNNN.h5,
        generated_plot_eNNN.png, train_state_NNN.npz, then its row of history.csv (the epoch is
        complete) and losses.png; <data_dir>/real_plots/real_plot_eNNN.png; <summary_dir>/*_summary.txt

    python files/train_cgan.py --dataset xray --epochs_goal 100
    python files/train_cgan.py --dataset xray --qRestart --epochs_goal 150     # with the run's own settings
    python files/train_cgan.py --dataset xray --qRestart --epochs_done 405 --epochs_goal 410
    python files/train_cgan.py --dataset xray --strategy mirrored    # on every GPU here; several machines: README
"""

import argparse
import importlib.util
import math
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import zipfile
from datetime import datetime
from functools import partial

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf

from cganlib import cgan, cli, datasets, distribution, plots, run_folder
from cganlib.collapse_guard import (
    D_MODEL,
    G_MODEL,
    GAN_MODELS,
    LOG_FORMAT,
    MAX_TRIPS,
    CollapseGuard,
    should_print,
)
from cganlib.storage import (
    InputError,
    atomic_write,
    fail,
    save_model,
    writable_folder,
)

N_SUMMARY_SAMPLES = 100
GAN_PARTS = 2  # the GAN step's batch in parts: peak memory within the uint8 set + 2 GB at 50,000 images
EXIT_WRITE_FAILED = 1  # a write failed (disk full, folder gone); the epochs before it are complete
REAL_PLOTS_STREAM = 1  # the real-sample grids draw from their own random stream, not training's
GUARD_COUNTERS = ("ijSave", "nTryAgains", "nTripsOnSameSavedWts", "nSaves")

# What a restart sets; every other flag belongs to the run and comes back from run_config.json.
RESTART_FLAGS = ("qRestart", "overwrite", "results_dir", "epochs_done", "epochs_goal")
# Flags that describe the machine rather than the experiment, which a restart may change too.
MACHINE_FLAGS = ("strategy", "cpu_devices")


def build_parser():
    p = cli.Parser(__doc__)
    p.add_argument("--dataset", required=True, choices=datasets.DATASET_NAMES,
                   help="celeb, xray, or folder (your own classes, from prepare_folders.py)")
    p.add_argument("--data_dir", help="folder of the prepared .npz files (default files/<dataset>)")
    p.add_argument("--results_dir", help="where models, plots and history go (default <data_dir>/results)")
    p.add_argument("--attributes", help="faces only: attribute table (default <data_dir>/list_attr_celeba.csv, or .txt)")
    p.add_argument("--summary_dir", default="files/cgan", help="where the models' summaries go")
    p.add_argument("--qRestart", action="store_true",
                   help="continue the run in --results_dir, with the settings in its run_config.json")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a --results_dir that holds a run, removing that run's files first")
    p.add_argument("--epochs_done", "--epochs-done", type=cli.POSITIVE,
                   help="with --qRestart: the complete epoch to resume from (default: the newest)")
    p.add_argument("--epochs_goal", "--epochs-goal", "--epochs", type=cli.POSITIVE, default=100,
                   help="train up to this epoch")
    p.add_argument("--n_batch", "--batch_size", type=cli.integer(2), default=datasets.N_BATCH,
                   help="batch size, even: half real, half generated for d")
    p.add_argument("--latent_dim", type=cli.POSITIVE, default=cgan.LATENT_DIM)
    p.add_argument("--filters", type=cli.POSITIVE, default=cgan.FILTERS, help="width of every conv layer (original: 128)")
    p.add_argument("--d_lr", type=cli.RATE,
                   help="discriminator learning rate (default per dataset: celeb and folder 0.00007, xray 0.00004)")
    p.add_argument("--gan_upper", type=cli.number(0, low_open=True),
                   help="reload the snapshot when the GAN loss is above this (default: celeb and folder 4.5, xray 3.0)")
    p.add_argument("--d_beta1", type=cli.BETA, default=cgan.D_BETA_1, help="discriminator Adamax beta_1")
    p.add_argument("--g_lr", type=cli.RATE, default=cgan.G_LR, help="GAN (generator) learning rate")
    p.add_argument("--label_smoothing", type=cli.number(0, 1, low_open=True), default=1.0, metavar="TARGET",
                   help="one-sided label smoothing: the discriminator's target for real images (e.g. 0.9; "
                        "default 1, none); the generator's targets stay 1")
    p.add_argument("--spectral_norm", action="store_true",
                   help="spectral normalization on the discriminator's convolution and dense layers")
    p.add_argument("--mixed_precision", action="store_true",
                   help="compute in bfloat16 (weights and the guard's losses stay float32)")
    p.add_argument("--seed", type=cli.SEED, help="seed for a reproducible run")
    p.add_argument("--real_plots", type=cli.integer(0), default=2, help="how many grids of real samples to draw first")
    p.add_argument("--strategy", choices=distribution.STRATEGIES, default="default",
                   help="default: one device; mirrored: this machine's GPUs (or --cpu_devices); "
                        "multiworker: the machines in TF_CONFIG (see README). A restart may change it")
    p.add_argument("--cpu_devices", type=cli.POSITIVE,
                   help="with --strategy mirrored: split the CPU into this many logical devices, one replica each")
    return p


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n_batch % 2:
        parser.error(f"--n_batch must be even (two half batches), got {args.n_batch}")
    if args.cpu_devices and args.strategy != "mirrored":
        parser.error(f"--cpu_devices goes with --strategy mirrored, not --strategy {args.strategy}")
    args.flag_names = tuple(vars(args))
    # The same command line again onto a namespace that has every flag already: argparse then
    # fills in no defaults, and what changed was typed.
    unset = object()
    typed = build_parser().parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(args.flag_names, unset)))
    args.given = {name for name, value in vars(typed).items() if value is not unset}
    try:
        resolve_defaults(args)
    except InputError as e:
        parser.error(str(e))
    args.has_config = False  # whether the run's settings are recorded in its run_config.json
    args.worker_folder = None  # a multi-worker run's worker beside the chief writes here (follow_the_chief)
    return args


def resolve_defaults(args):
    """The defaults that follow from other flags."""
    args.data_dir = args.data_dir or os.path.join("files", args.dataset)
    args.results_dir = args.results_dir or os.path.join(args.data_dir, "results")
    args.attributes = args.attributes or datasets.attribute_table(args.data_dir)
    args.settings = datasets.dataset_settings(args.dataset, args.data_dir)
    args.d_lr = args.d_lr if args.d_lr is not None else args.settings.d_lr
    args.gan_upper = args.gan_upper if args.gan_upper is not None else args.settings.gan_upper


# ---------------------------------------------------------------- the run's settings


def data_files(args):
    s = args.settings
    paths = [os.path.join(args.data_dir, s.images_file), os.path.join(args.data_dir, s.labels_file)]
    extra = {"celeb": [args.attributes], datasets.FOLDER: [os.path.join(args.data_dir, datasets.CLASSES_FILE)]}
    return paths + extra.get(s.name, [])


def run_config(args):
    """What run_config.json records: every flag, the data files with their sizes and hashes,
    the library versions, the start time."""
    return {
        "flags": {name: getattr(args, name) for name in args.flag_names},
        "data_files": [run_folder.file_record(path) for path in data_files(args)],
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _shown(value):
    """A flag's value as it reads in a message: on or off for a switch, none when unset."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else value


def _same_setting(a, b):
    if isinstance(a, str) and isinstance(b, str):
        return os.path.normpath(a) == os.path.normpath(b)
    return a == b and isinstance(a, bool) == isinstance(b, bool)  # True == 1 in Python


def take_run_settings(args, config):
    """Continue with the run's recorded settings. A flag typed now that contradicts one is refused."""
    path = os.path.join(args.results_dir, run_folder.RUN_CONFIG)
    recorded = config.get("flags", {})
    for name in args.flag_names:
        if name in RESTART_FLAGS or name in MACHINE_FLAGS or name not in recorded:
            continue
        if name in args.given and not _same_setting(getattr(args, name), recorded[name]):
            raise InputError(
                f"--{name} {_shown(getattr(args, name))} contradicts this run's --{name} {_shown(recorded[name])} "
                f"({path}); a restart keeps the run's settings: leave --{name} out"
            )
        setattr(args, name, recorded[name])
    args.settings = datasets.dataset_settings(args.dataset, args.data_dir)
    run_folder.check_data_files(config.get("data_files", []))


def settings_line(args, images, labels, first_epoch):
    source = "run_config.json" if args.has_config else "the command line"
    return (
        f"{args.dataset}: {len(images)} images, classes {np.bincount(labels).tolist()}, "
        f"epochs {first_epoch + 1}..{args.epochs_goal}, n_batch={args.n_batch} d_lr={args.d_lr:g} "
        f"d_beta1={args.d_beta1:g} g_lr={args.g_lr:g} gan_upper={args.gan_upper:g} filters={args.filters} latent_dim={args.latent_dim} "
        f"label_smoothing={args.label_smoothing:g} spectral_norm={_shown(args.spectral_norm)} "
        f"seed={_shown(args.seed)} precision={'bfloat16' if args.bfloat16 else 'float32'} "
        f"real_plots={args.real_plots} data_dir={args.data_dir} summary_dir={args.summary_dir} "
        f"(settings from {source})"
    )


def resume_command(args):
    """The command that continues this run: the machine flags typed besides the restart's own when
    run_config.json holds the run's settings, every setting spelled out otherwise."""
    cmd = ["python", "files/train_cgan.py", "--dataset", args.dataset, "--results_dir", args.results_dir,
           "--qRestart", "--epochs_goal", str(args.epochs_goal)]
    if args.has_config:
        spelled = [name for name in MACHINE_FLAGS if name in args.given]
    else:
        spelled = [name for name in args.flag_names if name not in RESTART_FLAGS and name != "dataset"]
    for name in spelled:
        value = getattr(args, name)
        if value is not None and value is not False:
            cmd += [f"--{name}"] if value is True else [f"--{name}", str(value)]
    return shlex.join(cmd)


def describe_epochs(epochs):
    """'no complete epoch', 'complete epoch 4', 'complete epochs 1-5' or 'complete epochs 2, 5'."""
    if not epochs:
        return "no complete epoch"
    if len(epochs) == 1:
        return f"complete epoch {epochs[0]}"
    if epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"complete epochs {epochs[0]}-{epochs[-1]}"
    return f"complete epochs {', '.join(map(str, epochs))}"


def settle_run(args):
    """Check the flags against the results folder; a restart takes the run's settings from its
    run_config.json. Returns the number of epochs done. Writes nothing."""
    results = args.results_dir
    run_folder.check_not_in_use(results)
    if not args.qRestart:
        if args.epochs_done is not None:
            raise InputError("--epochs_done needs --qRestart")
        if run_folder.run_files(results) and not args.overwrite:
            raise InputError(
                f"{results} already holds a training run ({describe_epochs(run_folder.complete_epochs(results))}); "
                "use --qRestart to continue it or --overwrite to start again"
            )
        first_epoch = 0
    else:
        if args.overwrite:
            raise InputError("--overwrite starts a fresh run; it cannot go with --qRestart")
        config = run_folder.read_config(results)
        if config is not None:
            take_run_settings(args, config)
            args.has_config = True
        first_epoch = restart_epoch(args)
    if args.epochs_goal <= first_epoch:
        raise InputError(f"--epochs_goal {args.epochs_goal} must be above --epochs_done {first_epoch}")
    return first_epoch


def restart_epoch(args):
    """The epoch to resume from, checked; InputError listing the complete epochs otherwise."""
    complete = run_folder.complete_epochs(args.results_dir)
    if args.epochs_done is None:
        if not complete:
            again = "; start again with --overwrite" if run_folder.run_files(args.results_dir) else ""
            raise InputError(f"--qRestart: no complete epoch in {args.results_dir}{again}")
        args.epochs_done = complete[-1]
    elif args.epochs_done not in complete:
        raise InputError(
            f"--qRestart: epoch {args.epochs_done} is missing, unreadable or incomplete in {args.results_dir}; "
            f"{describe_epochs(complete)}"
        )
    return args.epochs_done


# ---------------------------------------------------------------- data


def stored_rows(path):
    """The length of a .npz's arr_0, read from its header without loading it; None if unreadable."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("arr_0.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape = read(f)[0]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return shape[0] if shape else None


def memory_needed(n_images, args):
    """A lower bound on training's memory in bytes: the uint8 images; the weights of both models
    with their two Adamax moments and the guard's snapshot; one activation map per conv layer of
    both models for every sample of a GAN step part."""
    f, side = args.filters, cgan.IMAGE_SHAPE[0]
    images = n_images * math.prod(cgan.IMAGE_SHAPE)
    params = 4 * 4 * 4 * f * f + 4 * 5 * 5 * f * f + 25 * f * args.latent_dim  # the convolutions and the latent Dense
    maps = 2 * f * sum((side // 2**k) ** 2 for k in range(4))
    return images + 4 * 4 * params + 4 * maps * (args.n_batch // GAN_PARTS)


def load_dataset(args):
    """uint8 images (N, 80, 80, 3) and int32 labels (N,), checked; InputError otherwise."""
    s = args.settings
    images_path = os.path.join(args.data_dir, s.images_file)
    n_images = stored_rows(images_path)
    if n_images is not None:
        cli.check_memory(
            memory_needed(n_images, args),
            f"training {n_images} images at --n_batch {args.n_batch} --filters {args.filters} --latent_dim {args.latent_dim}",
        )
    images, labels = datasets.load_prepared(s, args.data_dir, args.attributes)
    if len(images) < args.n_batch:
        raise InputError(f"{len(images)} images is fewer than one batch of {args.n_batch}")
    return images, labels


# ---------------------------------------------------------------- models


def build_models(args):
    """(generator, discriminator, gan): fresh, or loaded for a restart with a new GAN around them."""
    s = args.settings
    if not args.qRestart:
        g = cgan.build_generator(s.n_classes, args.latent_dim, args.filters)
        d = cgan.build_discriminator(s.n_classes, args.filters, args.d_lr, args.d_beta1, args.spectral_norm)
    else:
        paths = run_folder.model_paths(args.results_dir, args.epochs_done)
        try:
            g = cgan.load_generator(paths["generator"])
            d = cgan.load_discriminator(paths["discriminator"], args.d_lr, args.d_beta1)
        except cgan.ModelFileError as e:
            raise InputError(str(e)) from e
        n_classes, latent_dim, filters = cgan.n_classes_of(d), g.input_shape[0][1], _conv_width(g)
        if n_classes != s.n_classes or cgan.n_classes_of(g) != s.n_classes:
            raise InputError(f"saved models have {n_classes} classes, --dataset {s.name} has {s.n_classes}")
        if latent_dim != args.latent_dim or filters != args.filters:
            raise InputError(
                f"saved models have latent_dim {latent_dim} and filters {filters}; "
                f"pass --latent_dim {latent_dim} --filters {filters}"
            )
        if cgan.has_spectral_norm(d) != args.spectral_norm:
            raise InputError(f"the saved discriminator has spectral normalization {_shown(cgan.has_spectral_norm(d))}; "
                             f"--spectral_norm is {_shown(args.spectral_norm)}")
    return g, d, cgan.build_gan(g, d, args.g_lr)


def _conv_width(model):
    return next(layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose))


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_summaries(models, folder):
    """Each model's summary() as text, and its diagram when pydot and graphviz are installed."""
    for model in models:
        lines = []
        model.summary(print_fn=lambda line, **kwargs: lines.append(line), line_length=110)  # noqa: B023
        text = "\n".join(lines) + "\n"
        atomic_write(os.path.join(folder, f"{model.name}_summary.txt"), partial(_write_text, text=text))
        if importlib.util.find_spec("pydot") and shutil.which("dot"):
            keras.utils.plot_model(model, os.path.join(folder, f"{model.name}_plot.png"), show_shapes=True)


# ---------------------------------------------------------------- training


class Trainer:
    """The three updates of a batch (d1: d on real, d2: d on fake, g: the GAN) as one compiled step, and the
    weight snapshots the collapse guard reloads. With a tf.distribute strategy (models and optimizers made
    in its scope) the step runs on every replica, each on its slice of the batch."""

    def __init__(self, g, d, gan, images, labels, n_batch, rng, strategy=None, real_target=1.0):
        self.g, self.d, self.gan = g, d, gan
        self.real_target = real_target  # below 1: one-sided label smoothing (Salimans et al. 2016)
        self.images, self.labels = images, labels
        self.cum = datasets.cumulative_fractions(labels, cgan.n_classes_of(d))
        self.n_batch, self.half = n_batch, n_batch // 2
        self.latent_dim = g.input_shape[0][1]
        self.rng = rng
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        # Grappler's remapper fails on this step's graph under oneDNN (an error line in every log,
        # the graph left as it was): off, at no cost to the step's time (measured).
        tf.config.optimizer.set_experimental_options({"remapping": False})
        # Build the optimizers' slots outside tf.function, on exactly the variables each updates.
        with self.strategy.scope():
            if not d.optimizer.built:  # a restarted discriminator comes with its saved moments
                d.optimizer.build(d.trainable_variables)
            gan.optimizer.build(g.trainable_variables)
        self.train_batch = tf.function(self._train_batch if strategy is None else self._replicated_batch)
        # the end of an epoch's 100 images in one compiled call each: predict() costs more than the work
        self.generate = tf.function(lambda z, y: self.g([z, y], training=False))
        self.discriminate = tf.function(lambda x, y: self.d([x, y], training=False))
        self.snapshot()

    def replica_share(self, loss):
        """This replica's part of the batch's mean loss. The optimizers sum the replicas'
        gradients, so each scales its slice's mean by 1/replicas: the sum is then the gradient of
        the mean over the global batch, as on one device (whose loss stays as it is)."""
        return loss if self.replicas == 1 else loss / self.replicas

    def _replicated_batch(self, *batch):
        """The step on every replica, each on its slice of the batch every worker drew alike; the
        losses averaged over all replicas, so every worker's guard takes the same decision."""
        losses = self.strategy.run(self._replica_batch, args=batch)
        return tuple(self.strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None) for loss in losses)

    def _replica_batch(self, *batch):
        """On one replica: the step on its slice of every part of the batch."""
        context = tf.distribute.get_replica_context()
        k, n = context.replica_id_in_sync_group, context.num_replicas_in_sync
        return self._train_batch(*(part[k * (len(part) // n):(k + 1) * (len(part) // n)] for part in batch))

    def d_step(self, images, labels, target):
        """One discriminator update on images with a constant target; returns its loss."""
        with tf.GradientTape() as tape:
            p = self.d([images, labels], training=True)
            loss = keras.ops.mean(keras.losses.binary_crossentropy(tf.fill(tf.shape(p), target), p))
            share = self.replica_share(loss)
        grads = tape.gradient(share, self.d.trainable_variables)
        self.d.optimizer.apply_gradients(zip(grads, self.d.trainable_variables))
        return loss

    def gan_step(self, latents, labels):
        """One generator update through the discriminator (target 1); d's weights stay.
        The batch's gradient is summed over GAN_PARTS parts taken one after the other (the
        same mean gradient), so only one part's activations are held at a time."""
        n_vars = len(self.g.trainable_variables)
        grads, losses, after = [0.0] * n_vars, [], []
        for z, y in zip(tf.split(latents, GAN_PARTS), tf.split(labels, GAN_PARTS)):
            with tf.control_dependencies(after):  # the part before is done and its memory free
                with tf.GradientTape() as tape:
                    p = self.d([self.g([z, y], training=True), y], training=True)
                    loss = keras.ops.mean(keras.losses.binary_crossentropy(tf.ones_like(p), p))
                    share = self.replica_share(loss)
                part = tape.gradient(share, self.g.trainable_variables)
            grads = [total + tf.convert_to_tensor(g) / GAN_PARTS for total, g in zip(grads, part)]
            losses.append(loss)
            after = grads
        self.gan.optimizer.apply_gradients(zip(grads, self.g.trainable_variables))
        return tf.add_n(losses) / GAN_PARTS

    def _train_batch(self, real_uint8, real_labels, fake_latents, fake_labels, gan_latents, gan_labels):
        real = cgan.scale_images(tf.cast(real_uint8, tf.float32))
        d1 = self.d_step(real, real_labels, self.real_target)
        fakes = self.g([fake_latents, fake_labels], training=False)
        d2 = self.d_step(fakes, fake_labels, 0.0)
        with tf.control_dependencies([d2]):  # not alongside d's steps: their memory is free by then
            g = self.gan_step(gan_latents, gan_labels)
        return d1, d2, g

    def draw_batch(self):
        """Real half batch (uint8), fake half batch's latents and labels, the GAN's n_batch of each."""
        idx = self.rng.integers(0, len(self.images), self.half)
        return (
            self.images[idx], self.labels[idx].reshape(-1, 1),
            cgan.training_latents(self.rng, self.half, self.latent_dim),
            cgan.sample_labels(self.rng, self.half, self.cum).reshape(-1, 1),
            cgan.training_latents(self.rng, self.n_batch, self.latent_dim),
            cgan.sample_labels(self.rng, self.n_batch, self.cum).reshape(-1, 1),
        )

    def step(self):
        losses = self.train_batch(*self.draw_batch())
        return tuple(float(x) for x in losses)

    def snapshot(self):
        """The guard's copy of the weights. The GAN is the generator and the discriminator, all
        snapshotted at once, so its copy is theirs."""
        self.saved = {D_MODEL: self.d.get_weights(), G_MODEL: self.g.get_weights()}

    def reload(self, which):
        if which in (D_MODEL, GAN_MODELS):
            self.d.set_weights(self.saved[D_MODEL])
        if which in (G_MODEL, GAN_MODELS):
            self.g.set_weights(self.saved[G_MODEL])

    def seed_states(self):
        """The Dropout layers' random states (Keras SeedGenerator variables), generator's first."""
        return [layer.seed_generator.state for model in (self.g, self.d) for layer in model.layers
                if hasattr(layer, "seed_generator")]

    def fakes(self, n):
        """n generated images in [-1, 1] (no dropout) and their labels, drawn as in training."""
        latents = cgan.training_latents(self.rng, n, self.latent_dim)
        labels = cgan.sample_labels(self.rng, n, self.cum)
        images = self.generate(latents, labels.reshape(-1, 1).astype(np.int32))
        return keras.ops.convert_to_numpy(keras.ops.cast(images, "float32")), labels

    def accuracy(self, images, labels, target):
        """The discriminator's accuracy on images in [-1, 1] that are all real (target 1) or all fake (0)."""
        p = keras.ops.convert_to_numpy(self.discriminate(images, labels.reshape(-1, 1).astype(np.int32)))
        return float(np.mean((p[:, 0] > 0.5) == bool(target)))


def training_state(trainer, guard, ij, stopped):
    """(info, arrays): the training state beside the weights in the .h5 files, all a restart needs to
    go on exactly: both optimizers' variables, the random states (NumPy's and the Dropout layers'),
    the guard's counters and snapshot, the batch count."""
    info = {
        "ij": ij,
        "guard": {name: getattr(guard, name) for name in GUARD_COUNTERS},
        "stopped_by_guard": stopped,
        "numpy_rng": trainer.rng.bit_generator.state,
    }
    arrays = {
        "d_optimizer": [v.numpy() for v in trainer.d.optimizer.variables],
        "gan_optimizer": [v.numpy() for v in trainer.gan.optimizer.variables],
        "seed_states": [v.numpy() for v in trainer.seed_states()],
        "saved_d": trainer.saved[D_MODEL],
        "saved_g": trainer.saved[G_MODEL],
    }
    return info, arrays


def restore_state(trainer, guard, info, arrays, path):
    """Put a saved training state back; returns the batch count ij. After a stop by the guard,
    nTripsOnSameSavedWts starts again at 0, as it did when the original was restarted."""
    pairs = [
        (trainer.d.optimizer.variables, arrays.get("d_optimizer", [])),
        (trainer.gan.optimizer.variables, arrays.get("gan_optimizer", [])),
        (trainer.seed_states(), arrays.get("seed_states", [])),
    ]
    for variables, values in pairs:
        if [tuple(v.shape) for v in variables] != [a.shape for a in values]:
            raise InputError(f"{path}: its training state does not fit these models")
        for variable, value in zip(variables, values):
            if not variable.path.endswith("learning_rate"):  # the rate stays the one asked for now
                variable.assign(value)
    for name, model, key in ((D_MODEL, trainer.d, "saved_d"), (G_MODEL, trainer.g, "saved_g")):
        if [w.shape for w in model.get_weights()] != [a.shape for a in arrays.get(key, [])]:
            raise InputError(f"{path}: its guard snapshot does not fit these models")
        trainer.saved[name] = arrays[key]
    trainer.rng.bit_generator.state = info["numpy_rng"]
    for name in GUARD_COUNTERS:
        setattr(guard, name, info["guard"][name])
    if info["stopped_by_guard"]:
        guard.nTripsOnSameSavedWts = 0
    return info["ij"]


def real_plots_folder(args):
    """Where the real-sample grids go: <data_dir>/real_plots, or a worker's own folder beside the chief."""
    return os.path.join(args.worker_folder or args.data_dir, "real_plots")


def summary_folder(args):
    """Where the models' summaries go: --summary_dir, or a worker's own folder beside the chief."""
    return os.path.join(args.worker_folder, "summaries") if args.worker_folder else args.summary_dir


def save_real_plots(images, labels, folder, count, rng):
    for k in range(count):
        idx = rng.integers(0, len(images), N_SUMMARY_SAMPLES)
        grid = cgan.to_unit(cgan.scale_images(images[idx]))
        plots.labelled_grid(grid, labels[idx], os.path.join(folder, f"real_plot_e{k + 1:03d}.png"))


def summarize_performance(epoch, trainer, results_dir):
    """End of an epoch: accuracies, the sample grid, the three model files. Returns the accuracies."""
    idx = trainer.rng.integers(0, len(trainer.images), N_SUMMARY_SAMPLES)
    acc_real = trainer.accuracy(cgan.scale_images(trainer.images[idx]), trainer.labels[idx], 1)
    fakes, fake_labels = trainer.fakes(N_SUMMARY_SAMPLES)
    acc_fake = trainer.accuracy(fakes, fake_labels, 0)
    print(f">Accuracy real: {acc_real * 100:.0f}%, fake: {acc_fake * 100:.0f}%", flush=True)
    plots.labelled_grid(cgan.to_unit(fakes), fake_labels, run_folder.plot_path(results_dir, epoch + 1))
    paths = run_folder.model_paths(results_dir, epoch + 1)
    save_model(trainer.g, paths["generator"])
    save_model(trainer.gan, paths["gan"])
    save_model(trainer.d, paths["discriminator"])
    return acc_real, acc_fake


def end_epoch(args, trainer, guard, ij, epoch, history, means, seconds, stopped):
    """Epoch epoch+1's files in commit order: plot and models, training state, then its history
    row, which makes it complete; losses.png after."""
    acc_real, acc_fake = summarize_performance(epoch, trainer, args.results_dir)
    run_folder.save_state(args.results_dir, epoch + 1, *training_state(trainer, guard, ij, stopped))
    history.append(dict(zip(run_folder.HISTORY_FIELDS, (
        epoch + 1, *(f"{m:.5f}" for m in means), f"{acc_real:.3f}", f"{acc_fake:.3f}",
        guard.nTryAgains, guard.nTripsOnSameSavedWts, guard.nSaves, f"{seconds:.1f}",
    ))))
    run_folder.write_history(args.results_dir, history)
    plots.loss_curves(history, os.path.join(args.results_dir, run_folder.LOSSES))


def train(args, trainer, guard, first_epoch, ij=0):
    """Epochs first_epoch .. epochs_goal-1 (0-based), as the original's loop; ij counts the batches
    trained before. Returns the exit status."""
    batches_per_epoch = len(trainer.images) // args.n_batch
    history = run_folder.read_history(args.results_dir, first_epoch)
    start = time.time()
    for epoch in range(first_epoch, args.epochs_goal):
        epoch_start = time.time()
        sums = np.zeros(3)
        stopped = False
        for j in range(batches_per_epoch):
            ij += 1
            d1, d2, g = trainer.step()
            sums += (d1, d2, g)
            if should_print(j, d1, d2, g):
                print(LOG_FORMAT % (
                    epoch + 1, args.epochs_goal, j + 1, batches_per_epoch, d1, d2, g,
                    int(time.time() - start), guard.nTryAgains, guard.nTripsOnSameSavedWts, guard.nSaves,
                ), flush=True)
            decision = guard.check(ij, d1, d2, g)
            if decision.snapshot:
                trainer.snapshot()
            for which in decision.reloads:
                print("LOADING", which, j + 1, " from ", guard.ijSave, flush=True)  # the original's print
                trainer.reload(which)
            if decision.abort:
                print("**********  Too many rebuilds  **************", flush=True)
                stopped = True
                break
        end_epoch(args, trainer, guard, ij, epoch, history, sums / (j + 1), time.time() - epoch_start, stopped)
        if stopped:
            print(f"stopped: more than {MAX_TRIPS} reloads on the same saved weights in epoch {epoch + 1}; "
                  f"models saved as epoch {epoch + 1}", file=sys.stderr)
            return cli.EXIT_TOO_MANY_REBUILDS
    return 0


# ---------------------------------------------------------------- the run


def prepare_folder(args, first_epoch):
    """Under the lock: clear what killed writes left, the old run for --overwrite; record a fresh
    run's settings; a restart from an earlier epoch takes the later ones out of the history.
    Returns how many temporary files it removed."""
    results = args.results_dir
    removed = run_folder.remove_temporary_files(results)
    removed += run_folder.remove_temporary_files(real_plots_folder(args), ("real_plot_e",))
    removed += run_folder.remove_temporary_files(summary_folder(args), ("generator_", "discriminator_", "gan_"))
    if not args.qRestart:
        if args.overwrite:
            run_folder.clear_run(results)
        run_folder.write_config(results, run_config(args))
        args.has_config = True
    else:
        kept = run_folder.read_history(results, first_epoch)
        if len(kept) < len(run_folder.read_history(results)):
            run_folder.write_history(results, kept)
    return removed


def start_training(args, images, labels, first_epoch, models, strategy):
    """Summaries and real-sample grids, then the epochs, the state of a restart put back first."""
    g, d, gan = models
    write_summaries((d, g, gan), summary_folder(args))
    real_plots_rng = np.random.default_rng(None if args.seed is None else [REAL_PLOTS_STREAM, args.seed])
    save_real_plots(images, labels, real_plots_folder(args), args.real_plots, real_plots_rng)
    seed = args.seed
    if seed is None and args.strategy == "multiworker":
        seed = distribution.shared_seed(strategy)  # every worker draws the same batches
    replicated = None if args.strategy == "default" else strategy
    trainer = Trainer(g, d, gan, images, labels, args.n_batch, np.random.default_rng(seed), replicated,
                      real_target=args.label_smoothing)
    guard = CollapseGuard(args.gan_upper)
    ij = 0
    if args.qRestart:
        saved = run_folder.load_state(args.results_dir, first_epoch)
        path = run_folder.state_path(args.results_dir, first_epoch)
        if saved is not None:
            ij = restore_state(trainer, guard, *saved, path)
            print(f"training state of epoch {first_epoch} restored from {path}", flush=True)
        else:
            moments = "come from its .h5" if int(d.optimizer.iterations) else "start afresh too (a Keras 2 file)"
            print(f"no {os.path.basename(path)}: the GAN's optimizer, the random generators and the collapse "
                  f"guard start afresh; the discriminator's Adamax moments {moments}", flush=True)
    return train(args, trainer, guard, first_epoch, ij)


def follow_the_chief(args, folder):
    """A worker beside the chief of a multi-worker run trains as the chief does, in step with it,
    and writes into folder, a temporary one: the run's files are the chief's. A restart reads the
    chief's run in --results_dir (a shared folder, or a copy on each machine) through links, so
    every worker resumes from the same checkpoint."""
    if args.qRestart:
        for path in run_folder.run_files(args.results_dir):
            os.symlink(os.path.abspath(path), os.path.join(folder, os.path.basename(path)))
    args.results_dir = folder
    args.worker_folder = folder


def check_replicas(args, strategy):
    """InputError unless both half batches split evenly across the replicas."""
    replicas = strategy.num_replicas_in_sync
    if args.n_batch % (2 * replicas):
        raise InputError(f"--n_batch {args.n_batch} does not split across {replicas} replicas: "
                         f"each half batch goes to every replica alike, so it must be a multiple of {2 * replicas}")


def run(args):
    if distribution.is_chief(args.strategy):
        return run_here(args)
    with tempfile.TemporaryDirectory(prefix="cgan-worker-") as folder:
        follow_the_chief(args, folder)
        return run_here(args)


def run_here(args):
    first_epoch = settle_run(args)
    images, labels = load_dataset(args)
    strategy = distribution.make_strategy(args.strategy, args.cpu_devices)
    check_replicas(args, strategy)
    args.bfloat16 = args.mixed_precision and cgan.set_bfloat16()
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)
    with strategy.scope():  # the models' and optimizers' variables live on every replica
        models = build_models(args)
    writable_folder(summary_folder(args))
    writable_folder(real_plots_folder(args))
    with run_folder.locked(args.results_dir):
        removed = prepare_folder(args, first_epoch)
        print(settings_line(args, images, labels, first_epoch), flush=True)
        if args.mixed_precision and not args.bfloat16:
            print("--mixed_precision: this CPU has no bfloat16 arithmetic (AVX-512 BF16 or AMX) and oneDNN would "
                  "emulate it, several times slower than float32; this run computes in float32", flush=True)
        if args.strategy != "default":
            print(distribution.describe(args.strategy, strategy, args.n_batch), flush=True)
        if args.qRestart and not args.has_config:
            print(f"{args.results_dir} has no {run_folder.RUN_CONFIG} (a run begun before it was written): "
                  "the settings come from the command line", flush=True)
        if removed:
            print(f"removed {removed} temporary file(s) of writes a killed run left", flush=True)
        return start_training(args, images, labels, first_epoch, models, strategy)


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except InputError as e:
        fail(str(e))
    except KeyboardInterrupt:
        done = run_folder.complete_epochs(args.results_dir)
        if done:
            print(f"\ninterrupted; resume with:\n  {resume_command(args)}", file=sys.stderr)
        else:
            print("\ninterrupted before the first epoch was complete; start again with --overwrite", file=sys.stderr)
        return cli.EXIT_INTERRUPTED
    except OSError as e:  # a full disk, a folder gone or made read-only
        where = e.filename2 or e.filename
        done = run_folder.complete_epochs(args.results_dir)
        then = f"resume with: {resume_command(args)}" if done else "start again with --overwrite"
        fail(f"writing {where or args.results_dir} failed: {e.strerror or ' '.join(str(e).split())}; "
             f"{describe_epochs(done)} in {args.results_dir}; make room, then {then}", status=EXIT_WRITE_FAILED)


if __name__ == "__main__":
    sys.exit(main())
