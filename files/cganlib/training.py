"""The conditional GAN's training, as the original's loop: the three updates of a batch, the
collapse guard's snapshots and reloads, the end of an epoch (accuracies, sample grid, the three
model files), and the training state a restart puts back. train_cgan.py is its command line;
the benchmarks call it directly. Every hyperparameter comes from a config.TrainConfig.
"""

import importlib.util
import math
import os
import shutil
import sys
import time
from functools import partial

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf

from cganlib import augment, cgan, cli, datasets, distribution, plots, run_folder
from cganlib.collapse_guard import (
    D_MODEL,
    G_MODEL,
    GAN_MODELS,
    LOG_FORMAT,
    CollapseGuard,
    should_print,
)
from cganlib.storage import InputError, atomic_write, save_model, stored_shape

N_SUMMARY_SAMPLES = 100
GAN_PARTS = 2  # the GAN step's batch in parts: peak memory within the uint8 set + 2 GB at 50,000 images
REAL_PLOTS_STREAM = 1  # the real-sample grids draw from their own random stream, not training's
GUARD_COUNTERS = ("ijSave", "nTryAgains", "nTripsOnSameSavedWts", "nSaves")
FAKE_TARGET, GENERATOR_TARGET = 0.0, 1.0  # the real images' target is config.label_smoothing
ACCURACY_THRESHOLD = 0.5  # the discriminator calls an image real above this
D_PARTS = 4  # a discriminator update's parts of the batch: real images, their labels, fake latents, their labels
MODE_SEEKING_EPSILON = 1e-5  # MSGAN's, keeps the term finite when two latents draw the same image
AVERAGE = "average"  # the guard's snapshot of the generator's moving average (--ema), beside D_MODEL's and G_MODEL's


def loss(target, p):
    """The loss of every update: binary cross-entropy of the discriminator's outputs p against a
    constant target, the batch's mean."""
    return keras.ops.mean(keras.losses.binary_crossentropy(tf.fill(tf.shape(p), target), p))


def mode_seeking_term(images_a, images_b, latents_a, latents_b):
    """MSGAN's mode-seeking term (Mao et al. 2019), as its conditional DCGAN computes it: 1 / (ratio
    + 1e-5), ratio = mean|images_a - images_b| / mean|latents_a - latents_b| over pairs of latents
    drawn for the same labels. Large when different latents draw the same image: minimizing it
    spreads the images (the generator's modes)."""
    ratio = (keras.ops.mean(keras.ops.abs(images_a - images_b))
             / keras.ops.mean(keras.ops.abs(latents_a - latents_b)))
    return 1.0 / (ratio + MODE_SEEKING_EPSILON)


# ---------------------------------------------------------------- data


def memory_needed(n_images, config):
    """A lower bound on training's memory in bytes: the uint8 images; the weights of both models
    with their two Adamax moments and the guard's snapshot; one activation map per conv layer of
    both models for every sample of a GAN step part."""
    f, side = config.filters, cgan.IMAGE_SHAPE[0]
    images = n_images * math.prod(cgan.IMAGE_SHAPE)
    params = 4 * 4 * 4 * f * f + 4 * 5 * 5 * f * f + 25 * f * config.latent_dim  # the convolutions and the latent Dense
    maps = 2 * f * sum((side // 2**k) ** 2 for k in range(4))
    return images + 4 * 4 * params + 4 * maps * (config.n_batch // GAN_PARTS)


def load_dataset(run):
    """uint8 images (N, 80, 80, 3) and int32 labels (N,), checked; InputError otherwise."""
    s, c = run.dataset, run.config
    shape = stored_shape(os.path.join(run.data_dir, s.images_file))
    n_images = shape[0] if shape else None
    if n_images is not None:
        cli.check_memory(
            memory_needed(n_images, c),
            f"training {n_images} images at --n_batch {c.n_batch} --filters {c.filters} --latent_dim {c.latent_dim}",
        )
    images, labels = datasets.load_prepared(s, run.data_dir, run.attributes)
    if len(images) < c.n_batch:
        raise InputError(f"{len(images)} images is fewer than one batch of {c.n_batch}: "
                         f"use more images or a smaller --n_batch (even, at most {len(images) - len(images) % 2})")
    return images, labels


# ---------------------------------------------------------------- models


def build_models(run):
    """(generator, discriminator, gan): fresh, or loaded for a restart with a new GAN around them;
    with --label_fade, both models' label embeddings times one factor (Trainer.step sets it)."""
    s, c = run.dataset, run.config
    fade = tf.Variable(1.0, trainable=False, name="label_fade") if c.label_fade else None
    if not run.restart:
        g = cgan.build_generator(s.n_classes, c.latent_dim, c.filters, fade, c.resize_conv)
        d = cgan.build_discriminator(s.n_classes, c.filters, c.d_lr, c.d_beta1, c.spectral_norm, c.mbstd_group,
                                     c.projection, fade)
    else:
        paths = run_folder.model_paths(run.out_dir, run.epochs_done)
        try:
            g = cgan.load_generator(paths["generator"], fade)
            d = cgan.load_discriminator(paths["discriminator"], c.d_lr, c.d_beta1, fade)
        except cgan.ModelFileError as e:
            raise InputError(str(e)) from e
        check_saved_models(g, d, run)
    return g, d, cgan.build_gan(g, d, c.g_lr, c.g_beta1)


def check_saved_models(g, d, run):
    """InputError when a restart's saved models do not fit the run's dataset and config."""
    s, c = run.dataset, run.config
    n_classes, latent_dim, filters = cgan.n_classes_of(d), g.input_shape[0][1], conv_width(g)
    if n_classes != s.n_classes or cgan.n_classes_of(g) != s.n_classes:
        raise InputError(f"saved models have {n_classes} classes, --dataset {s.name} has {s.n_classes}")
    if latent_dim != c.latent_dim or filters != c.filters:
        # a run with run_config.json takes its settings from there, and would refuse the flags
        fix = (f"its {run_folder.RUN_CONFIG} says latent_dim {c.latent_dim} and filters {c.filters}: these are "
               "another run's models" if run.from_run_config else f"pass --latent_dim {latent_dim} --filters {filters}")
        raise InputError(f"saved models have latent_dim {latent_dim} and filters {filters}; {fix}")
    if cgan.has_spectral_norm(d) != c.spectral_norm:
        raise InputError(f"the saved discriminator has spectral normalization {cli.shown(cgan.has_spectral_norm(d))}; "
                         f"--spectral_norm is {cli.shown(c.spectral_norm)}")
    if cgan.mbstd_group_of(d) != c.mbstd_group:
        raise InputError(f"the saved discriminator has a minibatch standard deviation group of "
                         f"{cgan.mbstd_group_of(d)}; --mbstd_group is {c.mbstd_group}")
    if cgan.is_resize_conv(g) != c.resize_conv:
        upsampling = "resize and convolution" if cgan.is_resize_conv(g) else "transposed convolutions"
        raise InputError(f"the saved generator upsamples by {upsampling}; --resize_conv is {cli.shown(c.resize_conv)}")
    if cgan.is_projection(d) != c.projection:
        raise InputError(f"the saved discriminator is {'a' if cgan.is_projection(d) else 'not a'} projection "
                         f"discriminator; --projection is {cli.shown(c.projection)}")


def conv_width(model):
    """The generator's width: its first upsampling convolution's filters."""
    return next(layer.filters for layer in model.layers if isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.Conv2D)))


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


# ---------------------------------------------------------------- the step


class Trainer:
    """The three updates of a batch (d1: d on real, d2: d on fake, g: the GAN; d1 and d2 repeated
    --d_steps times, each on fresh images) as one compiled step, and the weight snapshots the
    collapse guard reloads. With a tf.distribute strategy (models and optimizers made in its scope)
    the step runs on every replica, each on its slice of the batch."""

    def __init__(self, g, d, gan, images, labels, config, rng, strategy=None):
        self.g, self.d, self.gan = g, d, gan
        self.real_target = config.label_smoothing  # below 1: one-sided label smoothing (Salimans et al. 2016)
        self.images, self.labels = images, labels
        self.cum = datasets.cumulative_fractions(labels, cgan.n_classes_of(d))
        self.n_batch, self.half = config.n_batch, config.n_batch // 2
        self.d_steps = config.d_steps  # discriminator updates per generator update
        self.latent_dim = g.input_shape[0][1]
        self.rng = rng
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        self.policy = config.diff_augment
        self.mode_seeking = config.mode_seeking
        # --ema: the generator's moving average, a copy of g that the epoch's plot and files show
        self.ema = config.ema
        self.sampler = keras.models.clone_model(g) if self.ema else g
        if self.ema:
            self.sampler.set_weights(g.get_weights())
            self.update_average = tf.function(self._update_average)
        # --label_fade: the factor on both models' label embeddings, which build_models shares
        self.label_fade = config.label_fade
        self.fade = next((layer.factor for layer in g.layers if isinstance(layer, cgan.LabelFade)), None)
        self.augment_seed = keras.random.SeedGenerator() if self.policy else None
        self.r1_weight = config.r1_weight
        self.logit_and_output = cgan.logit_and_output(d) if self.r1_weight else None
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
        self.generate = tf.function(lambda z, y: self.sampler([z, y], training=False))
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

    def augmented(self, images):
        """The images as d sees them in training: augmented by --diff_augment's policy, if any."""
        return augment.augment(images, self.policy, self.augment_seed) if self.policy else images

    def discriminated(self, images, labels):
        """The discriminator's outputs in training, on the images augmented (--diff_augment)."""
        return self.d([self.augmented(images), labels], training=True)

    def r1_penalty(self, images, labels):
        """(d's outputs in training, the R1 penalty's mean squared gradient norm): the gradient of
        d's pre-sigmoid logit (cgan.logit_and_output) with respect to the images in [-1, 1], taken
        before augmentation as StyleGAN2-ADA does; the logits summed first, as there, so a
        minibatch standard deviation layer's links between images count too."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits, outputs = self.logit_and_output([self.augmented(images), labels], training=True)
            summed = tf.reduce_sum(tf.cast(logits, tf.float32))
        grads = tape.gradient(summed, images)
        return outputs, tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))

    def d_step(self, images, labels, target, r1_weight=0.0):
        """One discriminator update on images with a constant target; returns its loss. r1_weight
        above 0 adds the R1 penalty (Mescheder et al. 2018), r1_weight/2 times r1_penalty's, to the
        loss it minimizes, not to the one it returns."""
        with tf.GradientTape() as tape:
            if r1_weight:
                outputs, penalty = self.r1_penalty(images, labels)
                d_loss = loss(target, outputs)
                share = self.replica_share(d_loss + r1_weight / 2 * penalty)
            else:
                d_loss = loss(target, self.discriminated(images, labels))
                share = self.replica_share(d_loss)
        grads = tape.gradient(share, self.d.trainable_variables)
        self.d.optimizer.apply_gradients(zip(grads, self.d.trainable_variables))
        return d_loss

    def gan_step(self, latents, labels):
        """One generator update through the discriminator; d's weights stay; returns the GAN loss.
        The batch's gradient is summed over GAN_PARTS parts taken one after the other (the
        same mean gradient), so only one part's activations are held at a time. With
        --mode_seeking, latents 2k and 2k+1 come with the same label (draw_batch), a pair in every
        part, and the generator minimizes the GAN loss plus the weighted mode-seeking term of each
        part; the loss returned (which the collapse guard reads) stays the GAN loss alone."""
        n_vars = len(self.g.trainable_variables)
        grads, losses, after = [0.0] * n_vars, [], []
        for z, y in zip(tf.split(latents, GAN_PARTS), tf.split(labels, GAN_PARTS)):
            with tf.control_dependencies(after):  # the part before is done and its memory free
                with tf.GradientTape() as tape:
                    fakes = self.g([z, y], training=True)
                    g_loss = loss(GENERATOR_TARGET, self.discriminated(fakes, y))
                    objective = g_loss
                    if self.mode_seeking:
                        objective += self.mode_seeking * mode_seeking_term(fakes[0::2], fakes[1::2], z[0::2], z[1::2])
                    share = self.replica_share(objective)
                part = tape.gradient(share, self.g.trainable_variables)
            grads = [total + tf.convert_to_tensor(g) / GAN_PARTS for total, g in zip(grads, part)]
            losses.append(g_loss)
            after = grads
        self.gan.optimizer.apply_gradients(zip(grads, self.g.trainable_variables))
        return tf.add_n(losses) / GAN_PARTS

    def _train_batch(self, *batch):
        """The d_steps discriminator updates (d1 on real, d2 on fake), each on its own four parts of
        the batch (draw_batch), then the GAN's update; returns the last d updates' losses and g's."""
        *d_parts, gan_latents, gan_labels = batch
        for k in range(0, len(d_parts), D_PARTS):
            real_uint8, real_labels, fake_latents, fake_labels = d_parts[k:k + D_PARTS]
            real = cgan.scale_images(tf.cast(real_uint8, tf.float32))
            d1 = self.d_step(real, real_labels, self.real_target, self.r1_weight)
            fakes = self.g([fake_latents, fake_labels], training=False)
            d2 = self.d_step(fakes, fake_labels, FAKE_TARGET)
        with tf.control_dependencies([d2]):  # not alongside d's steps: their memory is free by then
            g = self.gan_step(gan_latents, gan_labels)
        return d1, d2, g

    def draw_batch(self):
        """For each of the d_steps discriminator updates: a real half batch (uint8) and its labels, a
        fake half batch's latents and labels (D_PARTS parts); then the GAN's n_batch of each (with
        --mode_seeking, its labels drawn for pairs: 2k and 2k+1 alike)."""
        parts = []
        for _ in range(self.d_steps):
            idx = self.rng.integers(0, len(self.images), self.half)
            parts += [self.images[idx], self.labels[idx].reshape(-1, 1),
                      cgan.training_latents(self.rng, self.half, self.latent_dim),
                      cgan.sample_labels(self.rng, self.half, self.cum).reshape(-1, 1)]
        gan_latents = cgan.training_latents(self.rng, self.n_batch, self.latent_dim)
        if self.mode_seeking:
            gan_labels = np.repeat(cgan.sample_labels(self.rng, self.half, self.cum), 2)
        else:
            gan_labels = cgan.sample_labels(self.rng, self.n_batch, self.cum)
        return (*parts, gan_latents, gan_labels.reshape(-1, 1))

    def step(self):
        if self.label_fade:
            self.fade.assign(self.fade_factor())
        losses = self.train_batch(*self.draw_batch())
        if self.label_fade:
            self.fade.assign(1.0)  # below 1 only in the step: the epoch's plot and files show the label whole
        if self.ema:
            self.update_average()
        return tuple(float(x) for x in losses)

    def fade_factor(self):
        """--label_fade (transitional conditioning, Shahbazi et al. 2022): the factor on the label
        in batch t = 0, 1, ... (t batches trained before), min(1, t / label_fade): 0 trains both models
        unconditionally, then the label fades in."""
        return min(1.0, int(self.gan.optimizer.iterations) / self.label_fade)

    def _update_average(self):
        """--ema (Yazici et al. 2019), after generator update t = 0, 1, ...: average = decay * average
        + (1 - decay) * weights, decay = min(--ema, (1 + t) / (10 + t)). The ramp-up (TensorFlow's
        ExponentialMovingAverage's num_updates) lets the average leave the random initial weights
        within the first hundred updates rather than the 1 / (1 - decay) the decay alone would take."""
        t = tf.cast(self.gan.optimizer.iterations - 1, tf.float32)  # counted after this update
        decay = tf.minimum(self.ema, (1.0 + t) / (10.0 + t))
        for average, weights in zip(self.sampler.trainable_variables, self.g.trainable_variables, strict=True):
            average.assign(decay * average + (1.0 - decay) * weights)

    def snapshot(self):
        """The guard's copy of the weights. The GAN is the generator and the discriminator, all
        snapshotted at once, so its copy is theirs; with --ema the generator's average too."""
        self.saved = {D_MODEL: self.d.get_weights(), G_MODEL: self.g.get_weights()}
        if self.ema:
            self.saved[AVERAGE] = self.sampler.get_weights()

    def reload(self, which):
        """The snapshot's weights back. The average follows the generator's: it goes back to what
        it was at the snapshot, so it holds none of the updates the guard undid."""
        if which in (D_MODEL, GAN_MODELS):
            self.d.set_weights(self.saved[D_MODEL])
        if which in (G_MODEL, GAN_MODELS):
            self.g.set_weights(self.saved[G_MODEL])
            if self.ema:
                self.sampler.set_weights(self.saved[AVERAGE])

    def seed_states(self):
        """The random states (Keras SeedGenerator variables): the Dropout layers', generator's
        first, then the augmentation's."""
        states = [layer.seed_generator.state for model in (self.g, self.d) for layer in model.layers
                  if hasattr(layer, "seed_generator")]
        return states + ([self.augment_seed.state] if self.augment_seed else [])

    def fakes(self, n):
        """n generated images in [-1, 1] (no dropout; with --ema, the average's) and their labels,
        drawn as in training."""
        latents = cgan.training_latents(self.rng, n, self.latent_dim)
        labels = cgan.sample_labels(self.rng, n, self.cum)
        images = self.generate(latents, labels.reshape(-1, 1).astype(np.int32))
        return keras.ops.convert_to_numpy(keras.ops.cast(images, "float32")), labels

    def accuracy(self, images, labels, target):
        """The discriminator's accuracy on images in [-1, 1] that are all real (target 1) or all fake (0)."""
        p = keras.ops.convert_to_numpy(self.discriminate(images, labels.reshape(-1, 1).astype(np.int32)))
        return float(np.mean((p[:, 0] > ACCURACY_THRESHOLD) == bool(target)))


# ---------------------------------------------------------------- the training state


def training_state(trainer, guard, ij, stopped):
    """(info, arrays): the training state beside the weights in the .h5 files, all a restart needs to
    go on exactly: both optimizers' variables, the random states (NumPy's and the Dropout layers'),
    the guard's counters and snapshot, the batch count; with --ema, the generator's trained weights
    (its .h5 holds the average) and the guard's snapshot of the average."""
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
    if trainer.ema:
        arrays |= {"trained_g": trainer.g.get_weights(), "saved_average": trainer.saved[AVERAGE]}
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
    restore_average(trainer, arrays, path)
    trainer.rng.bit_generator.state = info["numpy_rng"]
    for name in GUARD_COUNTERS:
        setattr(guard, name, info["guard"][name])
    if info["stopped_by_guard"]:
        guard.nTripsOnSameSavedWts = 0
    return info["ij"]


def restore_average(trainer, arrays, path):
    """With --ema: the generator loaded from the .h5 is the average, which its copy (trainer.sampler)
    took; the generator takes its trained weights from the state. InputError for a state of a run
    trained with --ema restarted without it, or the other way round."""
    if bool(trainer.ema) != ("trained_g" in arrays):
        raise InputError(f"{path}: the run was trained {'without' if trainer.ema else 'with'} --ema; a restart "
                         f"{'cannot add' if trainer.ema else 'keeps'} it")
    if not trainer.ema:
        return
    shapes = [w.shape for w in trainer.g.get_weights()]
    if not all([a.shape for a in arrays.get(key, [])] == shapes for key in ("trained_g", "saved_average")):
        raise InputError(f"{path}: its generator's trained weights or average do not fit these models")
    trainer.g.set_weights(arrays["trained_g"])
    trainer.saved[AVERAGE] = arrays["saved_average"]


# ---------------------------------------------------------------- epochs


def save_real_plots(images, labels, folder, count, rng):
    for k in range(count):
        idx = rng.integers(0, len(images), N_SUMMARY_SAMPLES)
        grid = cgan.to_unit(cgan.scale_images(images[idx]))
        plots.labelled_grid(grid, labels[idx], os.path.join(folder, f"real_plot_e{k + 1:03d}.png"))


def summarize_performance(epoch, trainer, out_dir):
    """End of an epoch: accuracies, the sample grid, the three model files. Returns the accuracies.
    With --ema the fakes and the generator's file are the average's (what every later script
    reads); the GAN's file holds the trained generator."""
    idx = trainer.rng.integers(0, len(trainer.images), N_SUMMARY_SAMPLES)
    acc_real = trainer.accuracy(cgan.scale_images(trainer.images[idx]), trainer.labels[idx], 1)
    fakes, fake_labels = trainer.fakes(N_SUMMARY_SAMPLES)
    acc_fake = trainer.accuracy(fakes, fake_labels, 0)
    print(f">Accuracy real: {acc_real * 100:.0f}%, fake: {acc_fake * 100:.0f}%", flush=True)
    plots.labelled_grid(cgan.to_unit(fakes), fake_labels, run_folder.plot_path(out_dir, epoch + 1))
    paths = run_folder.model_paths(out_dir, epoch + 1)
    save_model(trainer.sampler, paths["generator"])
    save_model(trainer.gan, paths["gan"])
    save_model(trainer.d, paths["discriminator"])
    return acc_real, acc_fake


def end_epoch(out_dir, trainer, guard, ij, epoch, history, means, seconds, stopped):
    """Epoch epoch+1's files in commit order: plot and models, training state, then its history
    row, which makes it complete; losses.png after."""
    acc_real, acc_fake = summarize_performance(epoch, trainer, out_dir)
    run_folder.save_state(out_dir, epoch + 1, *training_state(trainer, guard, ij, stopped))
    history.append(dict(zip(run_folder.HISTORY_FIELDS, (
        epoch + 1, *(f"{m:.5f}" for m in means), f"{acc_real:.3f}", f"{acc_fake:.3f}",
        guard.nTryAgains, guard.nTripsOnSameSavedWts, guard.nSaves, f"{seconds:.1f}",
    ))))
    run_folder.write_history(out_dir, history)
    plots.loss_curves(history, os.path.join(out_dir, run_folder.LOSSES))


def train(run, trainer, guard, ij=0):
    """Epochs run.epochs_done .. epochs_goal-1 (0-based), as the original's loop; ij counts the
    batches trained before. Returns the exit status."""
    batches_per_epoch = len(trainer.images) // trainer.n_batch
    history = run_folder.read_history(run.out_dir, run.epochs_done)
    start = time.time()
    for epoch in range(run.epochs_done, run.epochs_goal):
        epoch_start = time.time()
        sums = np.zeros(3)
        stopped = False
        for j in range(batches_per_epoch):
            ij += 1
            d1, d2, g = trainer.step()
            sums += (d1, d2, g)
            if should_print(j, d1, d2, g):
                print(LOG_FORMAT % (
                    epoch + 1, run.epochs_goal, j + 1, batches_per_epoch, d1, d2, g,
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
        end_epoch(run.out_dir, trainer, guard, ij, epoch, history, sums / (j + 1), time.time() - epoch_start, stopped)
        if stopped:
            print(f"stopped: more than {guard.bands.max_trips} reloads on the same saved weights in epoch "
                  f"{epoch + 1}; models saved as epoch {epoch + 1}", file=sys.stderr)
            return cli.EXIT_TOO_MANY_REBUILDS
    return 0


# ---------------------------------------------------------------- the run


def settings_line(run, images, labels, bfloat16):
    c = run.config
    return (
        f"{run.dataset.name}: {len(images)} images, classes {np.bincount(labels).tolist()}, "
        f"epochs {run.epochs_done + 1}..{run.epochs_goal}, preset={run.preset} n_batch={c.n_batch} d_lr={c.d_lr:g} "
        f"d_beta1={c.d_beta1:g} g_lr={c.g_lr:g} gan_upper={c.gan_upper:g} filters={c.filters} latent_dim={c.latent_dim} "
        f"label_smoothing={c.label_smoothing:g} spectral_norm={cli.shown(c.spectral_norm)} "
        f"diff_augment={c.diff_augment or 'none'} mbstd_group={c.mbstd_group} r1_weight={c.r1_weight:g} d_steps={c.d_steps} "
        f"projection={cli.shown(c.projection)} mode_seeking={c.mode_seeking:g} ema={c.ema:g} label_fade={c.label_fade} "
        f"resize_conv={cli.shown(c.resize_conv)} "
        f"seed={cli.shown(run.seed)} precision={'bfloat16' if bfloat16 else 'float32'} "
        f"real_plots={run.real_plots} data_dir={run.data_dir} summary_dir={run.summary_dir} "
        f"(settings from {'run_config.json' if run.from_run_config else 'the command line'})"
    )


def set_up(run):
    """(strategy, bfloat16 on, (g, d, gan)): the device strategy, the precision, the seed and the
    models, made in the strategy's scope so their variables live on every replica."""
    if run.config.diff_augment and run.strategy != "default":
        raise InputError("--diff_augment trains on one device: use it with --strategy default")
    check_generator_options(run)
    strategy = distribution.make_strategy(run.strategy, run.cpu_devices, run.worker_timeout)
    check_replicas(run.config.n_batch, strategy)
    check_mbstd_group(run.config, strategy)
    check_mode_seeking(run.config, strategy)
    bfloat16 = run.mixed_precision and cgan.set_bfloat16()
    if run.seed is not None:
        keras.utils.set_random_seed(run.seed)
    with strategy.scope():
        models = build_models(run)
    return strategy, bfloat16, models


def check_generator_options(run):
    """InputError for a generator option the run cannot take: --ema and --label_fade train on one
    device."""
    c = run.config
    for name in ("ema", "label_fade"):
        if getattr(c, name) and run.strategy != "default":
            raise InputError(f"--{name} {getattr(c, name):g} trains on one device: use --strategy default, or "
                             f"--{name} 0 to turn it off")


def check_mode_seeking(c, strategy):
    """InputError unless --mode_seeking finds pairs of latents in each of the GAN step's parts on
    every replica (each replica takes a slice of the batch, then splits it in GAN_PARTS). On
    several replicas each computes the term over its own pairs: their mean, not the term of all
    the pairs one device would see (a ratio of means is not linear), so there a step differs
    slightly from the single device's."""
    pairs = 2 * GAN_PARTS * strategy.num_replicas_in_sync
    if c.mode_seeking and c.n_batch % pairs:
        raise InputError(f"--mode_seeking pairs the latents of each of the GAN step's {GAN_PARTS} parts on each of "
                         f"{strategy.num_replicas_in_sync} replica(s): --n_batch must be a multiple of {pairs}, "
                         f"got {c.n_batch} (or --mode_seeking 0 to turn it off)")


def check_replicas(n_batch, strategy):
    """InputError unless both half batches split evenly across the replicas."""
    replicas = strategy.num_replicas_in_sync
    if n_batch % (2 * replicas):
        raise InputError(f"--n_batch {n_batch} does not split across {replicas} replicas: "
                         f"each half batch goes to every replica alike, so it must be a multiple of {2 * replicas}")


def check_mbstd_group(c, strategy):
    """InputError unless --mbstd_group divides the batch d sees in training (a replica's half batch),
    or holds all of it: the groups are then of the size asked for."""
    seen = c.n_batch // 2 // strategy.num_replicas_in_sync
    if 0 < c.mbstd_group < seen and seen % c.mbstd_group:
        raise InputError(f"--mbstd_group {c.mbstd_group} does not divide the discriminator's batch of {seen} "
                         f"(half of --n_batch {c.n_batch}{' on each replica' if seen * 2 != c.n_batch else ''}): "
                         f"use a divisor of {seen}")


def start(run, images, labels, models, strategy):
    """Summaries and real-sample grids, then the epochs, the state of a restart put back first.
    Returns the exit status."""
    g, d, gan = models
    write_summaries((d, g, gan), run.summary_dir)
    real_plots_rng = np.random.default_rng(None if run.seed is None else [REAL_PLOTS_STREAM, run.seed])
    save_real_plots(images, labels, run.real_plots_dir, run.real_plots, real_plots_rng)
    seed = run.seed
    if seed is None and run.strategy == "multiworker":
        seed = distribution.shared_seed(strategy)  # every worker draws the same batches
    replicated = None if run.strategy == "default" else strategy
    trainer = Trainer(g, d, gan, images, labels, run.config, np.random.default_rng(seed), replicated)
    guard = CollapseGuard(run.config.gan_upper, run.config.guard)
    ij = 0
    if run.restart:
        saved = run_folder.load_state(run.out_dir, run.epochs_done)
        path = run_folder.state_path(run.out_dir, run.epochs_done)
        if saved is not None:
            ij = restore_state(trainer, guard, *saved, path)
            print(f"training state of epoch {run.epochs_done} restored from {path}", flush=True)
        else:
            moments = "come from its .h5" if int(d.optimizer.iterations) else "start afresh too (a Keras 2 file)"
            average = "; the generator's .h5 holds the --ema average, which training goes on from" if run.config.ema else ""
            print(f"no {os.path.basename(path)}: the GAN's optimizer, the random generators and the collapse "
                  f"guard start afresh; the discriminator's Adamax moments {moments}{average}", flush=True)
    return train(run, trainer, guard, ij)
