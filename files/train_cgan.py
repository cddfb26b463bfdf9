"""Train the conditional GAN on prepared faces or chest X-rays, as the original did.

Reads   <data_dir>/img_align_celeba_attractive.npz + ids_align_celeba_attractive.npz
        + list_attr_celeba.csv (faces), or <data_dir>/img_align_xray.npz + labels_align_xray.npz
Writes  <results_dir>/generator_model_NNN.h5, generator_model_ganNNN.h5, generator_model_disNNN.h5,
        generated_plot_eNNN.png (every epoch), history.csv and losses.png (updated every epoch);
        <data_dir>/real_plots/real_plot_eNNN.png; <summary_dir>/*_summary.txt

    python files/train_cgan.py --dataset xray --epochs_goal 100
    python files/train_cgan.py --dataset xray --qRestart --epochs_done 405 --epochs_goal 410
"""

import argparse
import csv
import importlib.util
import os
import shlex
import shutil
import sys
import time
from functools import partial

import h5py
import keras
import numpy as np
import tensorflow as tf

import cgan
import datasets
import plots
from collapse_guard import (
    D_MODEL,
    G_MODEL,
    GAN_MODELS,
    LOG_FORMAT,
    CollapseGuard,
    should_print,
)
from storage import (
    InputError,
    atomic_write,
    fail,
    load_npz,
    save_model,
    writable_folder,
)

HISTORY_FIELDS = (
    "epoch", "d1", "d2", "g", "acc_real", "acc_fake", "nTryAgains", "nTripsOnSameSavedWts", "nSaves", "secs",
)
N_SUMMARY_SAMPLES = 100
GAN_PARTS = 2  # the GAN step's batch in parts: peak memory within the uint8 set + 2 GB at 50,000 images
EXIT_TOO_MANY_REBUILDS = 3
EXIT_INTERRUPTED = 130


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(datasets.DATASETS))
    p.add_argument("--data_dir", help="folder of the prepared .npz files (default files/<dataset>)")
    p.add_argument("--results_dir", help="where models, plots and history go (default <data_dir>/results)")
    p.add_argument("--attributes", help="faces only: attribute table (default <data_dir>/list_attr_celeba.csv, or .txt)")
    p.add_argument("--summary_dir", default="files/cgan", help="where the models' summaries go")
    p.add_argument("--qRestart", action="store_true", help="resume from saved models instead of starting fresh")
    p.add_argument("--epochs_done", "--epochs-done", type=int,
                   help="with --qRestart: the saved epoch to resume from (default: newest complete one)")
    p.add_argument("--epochs_goal", "--epochs-goal", type=int, default=100, help="train up to this epoch")
    p.add_argument("--n_batch", type=int, default=64, help="batch size (half real, half fake for d)")
    p.add_argument("--latent_dim", type=int, default=cgan.LATENT_DIM)
    p.add_argument("--filters", type=int, default=cgan.FILTERS, help="width of every conv layer (original: 128)")
    p.add_argument("--d_lr", type=float, help="discriminator learning rate (default per dataset: 0.00007 / 0.00004)")
    p.add_argument("--d_beta1", type=float, default=cgan.D_BETA_1, help="discriminator Adamax beta_1")
    p.add_argument("--g_lr", type=float, default=cgan.G_LR, help="GAN (generator) learning rate")
    p.add_argument("--mixed_precision", action="store_true",
                   help="compute in bfloat16 (weights and the guard's losses stay float32)")
    p.add_argument("--seed", type=int, help="seed for a reproducible run")
    p.add_argument("--real_plots", type=int, default=2, help="how many grids of real samples to draw first")
    args = p.parse_args(argv)
    args.data_dir = args.data_dir or os.path.join("files", args.dataset)
    args.results_dir = args.results_dir or os.path.join(args.data_dir, "results")
    if args.attributes is None:  # the Kaggle CSV, or else the original's space-separated .txt
        csv_table = os.path.join(args.data_dir, datasets.ATTRIBUTES_FILE)
        txt_table = os.path.splitext(csv_table)[0] + ".txt"
        args.attributes = txt_table if os.path.exists(txt_table) and not os.path.exists(csv_table) else csv_table
    args.settings = datasets.DATASETS[args.dataset]
    args.d_lr = args.d_lr if args.d_lr is not None else args.settings.d_lr
    return args


# ---------------------------------------------------------------- data


def load_dataset(args):
    """uint8 images (N, 80, 80, 3) and int32 labels (N,), checked; InputError otherwise."""
    s = args.settings
    images = load_npz(os.path.join(args.data_dir, s.images_file), s.prepare_script)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != cgan.IMAGE_SHAPE:
        raise InputError(f"images must be uint8 (N, 80, 80, 3), got {images.dtype} {images.shape}")
    labels = load_npz(os.path.join(args.data_dir, s.labels_file), s.prepare_script)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{s.labels_file} must hold integers of shape (N,), got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise InputError(f"{len(labels)} labels for {len(images)} images")
    if s.name == "celeb":
        if not os.path.exists(args.attributes):
            raise InputError(f"{args.attributes} not found (the CelebA attribute table)")
        try:
            labels = datasets.face_labels_from_rows(args.attributes, labels)
        except ValueError as e:
            raise InputError(str(e)) from e
    if labels.size and (labels.min() < 0 or labels.max() >= s.n_classes):
        raise InputError(f"labels must be in 0..{s.n_classes - 1}, found {labels.min()}..{labels.max()}")
    if args.n_batch < 2 or args.n_batch % 2:
        raise InputError(f"--n_batch must be even (two half batches), got {args.n_batch}")
    if len(images) < args.n_batch:
        raise InputError(f"{len(images)} images is fewer than one batch of {args.n_batch}")
    return images, labels.astype(np.int32)


# ---------------------------------------------------------------- checkpoints


def model_paths(results_dir, epoch):
    """The three files of an epoch, by the original's names."""
    return {
        "generator": os.path.join(results_dir, f"generator_model_{epoch:03d}.h5"),
        "gan": os.path.join(results_dir, f"generator_model_gan{epoch:03d}.h5"),
        "discriminator": os.path.join(results_dir, f"generator_model_dis{epoch:03d}.h5"),
    }


def _readable_h5(path):
    try:
        with h5py.File(path, "r") as f:
            return "model_weights" in f
    except OSError:
        return False


def complete_epochs(results_dir):
    """Epochs whose generator and discriminator files both exist and open."""
    if not os.path.isdir(results_dir):
        return []
    epochs = []
    for name in os.listdir(results_dir):
        digits = name[len("generator_model_"):-len(".h5")]
        if name.startswith("generator_model_") and name.endswith(".h5") and digits.isdigit():
            paths = model_paths(results_dir, int(digits))
            if _readable_h5(paths["generator"]) and _readable_h5(paths["discriminator"]):
                epochs.append(int(digits))
    return sorted(epochs)


def restart_epoch(args):
    """The epoch to resume from, checked; InputError listing the complete epochs otherwise."""
    complete = complete_epochs(args.results_dir)
    listing = ", ".join(map(str, complete)) or "none"
    if args.epochs_done is None:
        if not complete:
            raise InputError(f"--qRestart: no complete epoch in {args.results_dir} (need generator and dis files)")
        args.epochs_done = complete[-1]
    elif args.epochs_done not in complete:
        raise InputError(
            f"--qRestart: epoch {args.epochs_done} is missing or unreadable in {args.results_dir}; "
            f"complete epochs: {listing}"
        )
    return args.epochs_done


def build_models(args):
    """(generator, discriminator, gan): fresh, or loaded for a restart with a new GAN around them."""
    s = args.settings
    if not args.qRestart:
        g = cgan.build_generator(s.n_classes, args.latent_dim, args.filters)
        d = cgan.build_discriminator(s.n_classes, args.filters, args.d_lr, args.d_beta1)
    else:
        paths = model_paths(args.results_dir, args.epochs_done)
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
    weight snapshots the collapse guard reloads."""

    def __init__(self, g, d, gan, images, labels, n_batch, rng):
        self.g, self.d, self.gan = g, d, gan
        self.images, self.labels = images, labels
        self.cum = datasets.cumulative_fractions(labels, cgan.n_classes_of(d))
        self.n_batch, self.half = n_batch, n_batch // 2
        self.latent_dim = g.input_shape[0][1]
        self.rng = rng
        # Build the optimizers' slots outside tf.function, on exactly the variables each updates.
        if not d.optimizer.built:  # a restarted discriminator comes with its saved moments
            d.optimizer.build(d.trainable_variables)
        gan.optimizer.build(g.trainable_variables)
        self.train_batch = tf.function(self._train_batch)
        self.snapshot()

    def d_step(self, images, labels, target):
        """One discriminator update on images with a constant target; returns its loss."""
        with tf.GradientTape() as tape:
            p = self.d([images, labels], training=True)
            loss = keras.ops.mean(keras.losses.binary_crossentropy(tf.fill(tf.shape(p), target), p))
        grads = tape.gradient(loss, self.d.trainable_variables)
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
                part = tape.gradient(loss, self.g.trainable_variables)
            grads = [total + tf.convert_to_tensor(g) / GAN_PARTS for total, g in zip(grads, part)]
            losses.append(loss)
            after = grads
        self.gan.optimizer.apply_gradients(zip(grads, self.g.trainable_variables))
        return tf.add_n(losses) / GAN_PARTS

    def _train_batch(self, real_uint8, real_labels, fake_latents, fake_labels, gan_latents, gan_labels):
        real = cgan.scale_images(tf.cast(real_uint8, tf.float32))
        d1 = self.d_step(real, real_labels, 1.0)
        fakes = self.g([fake_latents, fake_labels], training=False)
        d2 = self.d_step(fakes, fake_labels, 0.0)
        with tf.control_dependencies([d2]):  # not alongside d's steps: their memory is free by then
            g = self.gan_step(gan_latents, gan_labels)
        return d1, d2, g

    def draw_batch(self):
        """Real half batch (uint8), fake half batch's latents and labels, the GAN's 64 of each."""
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
        self.saved = {
            D_MODEL: self.d.get_weights(), G_MODEL: self.g.get_weights(), GAN_MODELS: self.gan.get_weights()
        }

    def reload(self, which):
        {D_MODEL: self.d, G_MODEL: self.g, GAN_MODELS: self.gan}[which].set_weights(self.saved[which])

    def fakes(self, n):
        latents = cgan.training_latents(self.rng, n, self.latent_dim)
        labels = cgan.sample_labels(self.rng, n, self.cum)
        return cgan.generate(self.g, latents, labels), labels

    def accuracy(self, images, labels, target):
        """The discriminator's accuracy on images in [-1, 1] that are all real (target 1) or all fake (0)."""
        p = self.d.predict([images, labels.reshape(-1, 1)], verbose=0)
        return float(np.mean((p[:, 0] > 0.5) == bool(target)))


def save_real_plots(trainer, folder, count):
    writable_folder(folder)
    for k in range(count):
        idx = trainer.rng.integers(0, len(trainer.images), N_SUMMARY_SAMPLES)
        images = cgan.to_unit(cgan.scale_images(trainer.images[idx]))
        plots.labelled_grid(images, trainer.labels[idx], os.path.join(folder, f"real_plot_e{k + 1:03d}.png"))


def read_history(path, up_to_epoch):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) <= up_to_epoch]


def write_history(rows, path):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def summarize_performance(epoch, trainer, results_dir):
    """End of an epoch: accuracies, the sample grid, the three model files. Returns the accuracies."""
    idx = trainer.rng.integers(0, len(trainer.images), N_SUMMARY_SAMPLES)
    acc_real = trainer.accuracy(cgan.scale_images(trainer.images[idx]), trainer.labels[idx], 1)
    fakes, fake_labels = trainer.fakes(N_SUMMARY_SAMPLES)
    acc_fake = trainer.accuracy(cgan.from_unit(fakes), fake_labels, 0)
    print(f">Accuracy real: {acc_real * 100:.0f}%, fake: {acc_fake * 100:.0f}%", flush=True)
    plots.labelled_grid(fakes, fake_labels, os.path.join(results_dir, f"generated_plot_e{epoch + 1:03d}.png"))
    paths = model_paths(results_dir, epoch + 1)
    save_model(trainer.g, paths["generator"])
    save_model(trainer.gan, paths["gan"])
    save_model(trainer.d, paths["discriminator"])
    return acc_real, acc_fake


def restart_command(args, epochs_done):
    cmd = [
        "python", "files/train_cgan.py", "--dataset", args.dataset, "--data_dir", args.data_dir,
        "--results_dir", args.results_dir, "--qRestart", "--epochs_done", str(epochs_done),
        "--epochs_goal", str(args.epochs_goal),
    ]
    if args.filters != cgan.FILTERS:
        cmd += ["--filters", str(args.filters)]
    return shlex.join(cmd)


def train(args, trainer, guard, first_epoch):
    """Epochs first_epoch .. epochs_goal-1 (0-based), as the original's loop. Returns the exit status."""
    batches_per_epoch = len(trainer.images) // args.n_batch
    history_path = os.path.join(args.results_dir, "history.csv")
    history = read_history(history_path, first_epoch)
    start = time.time()
    ij = 0
    for epoch in range(first_epoch, args.epochs_goal):
        epoch_start = time.time()
        sums = np.zeros(3)
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
                print(f"LOADING {which} {j + 1} from {guard.ijSave}", flush=True)
                trainer.reload(which)
            if decision.abort:
                print("**********  Too many rebuilds  **************", flush=True)
                summarize_performance(epoch, trainer, args.results_dir)
                print(f"stopped: more than 20 reloads on the same saved weights in epoch {epoch + 1}; "
                      f"models saved as epoch {epoch + 1}", file=sys.stderr)
                return EXIT_TOO_MANY_REBUILDS
        acc_real, acc_fake = summarize_performance(epoch, trainer, args.results_dir)
        means = sums / batches_per_epoch
        history.append(dict(zip(HISTORY_FIELDS, (
            epoch + 1, *(f"{m:.5f}" for m in means), f"{acc_real:.3f}", f"{acc_fake:.3f}",
            guard.nTryAgains, guard.nTripsOnSameSavedWts, guard.nSaves, f"{time.time() - epoch_start:.1f}",
        ))))
        write_history(history, history_path)
        plots.loss_curves(history, os.path.join(args.results_dir, "losses.png"))
    return 0


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.qRestart:
            first_epoch = restart_epoch(args)
            if args.epochs_goal <= first_epoch:
                raise InputError(f"--epochs_goal {args.epochs_goal} must be above --epochs_done {first_epoch}")
        elif args.epochs_done is not None:
            raise InputError("--epochs_done needs --qRestart")
        else:
            first_epoch = 0
        for name in ("epochs_goal", "filters", "latent_dim"):
            if getattr(args, name) < 1:
                raise InputError(f"--{name} must be at least 1, got {getattr(args, name)}")
        if args.real_plots < 0:
            raise InputError(f"--real_plots must be 0 or more, got {args.real_plots}")
        images, labels = load_dataset(args)
        if args.mixed_precision:
            cgan.set_bfloat16()
        if args.seed is not None:
            keras.utils.set_random_seed(args.seed)
        g, d, gan = build_models(args)
        writable_folder(args.results_dir)
        writable_folder(args.summary_dir)
        real_plots_dir = writable_folder(os.path.join(args.data_dir, "real_plots"))
    except InputError as e:
        fail(str(e))
    print(f"{args.dataset}: {len(images)} images, classes {np.bincount(labels).tolist()}, "
          f"epochs {first_epoch + 1}..{args.epochs_goal}, d_lr={args.d_lr:g} d_beta1={args.d_beta1:g} "
          f"g_lr={args.g_lr:g} filters={args.filters}{' bfloat16' if args.mixed_precision else ''}", flush=True)
    try:
        write_summaries((d, g, gan), args.summary_dir)
        trainer = Trainer(g, d, gan, images, labels, args.n_batch, np.random.default_rng(args.seed))
        save_real_plots(trainer, real_plots_dir, args.real_plots)
        status = train(args, trainer, CollapseGuard(args.settings.gan_upper), first_epoch)
    except KeyboardInterrupt:
        done = complete_epochs(args.results_dir)
        if done:
            print(f"\ninterrupted; resume with:\n  {restart_command(args, done[-1])}", file=sys.stderr)
        else:
            print("\ninterrupted before the first epoch was saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


if __name__ == "__main__":
    sys.exit(main())
