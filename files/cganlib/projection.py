"""Projecting a given image into a generator's latent space: the latent whose image under a
given label is closest to it. Adam moves a batch of latents from several starting points at
once, minimizing the mean squared error plus a weighted SSIM term (ssim.py's separable window:
tf.image.ssim's numbers, its gradient cheaper); each image keeps its best start. Latents stay in
[-3, 3], the range training drew them from.

Pivotal tuning (Roich et al. 2022), after the projection: per image, a copy of the generator
whose weights Adam moves, the latent held (the pivot), until it draws that image under its own
label; the image under the other labels comes from that copy. The projection alone returns what
the generator can draw (the class template, when it covers its data poorly); the tuned copy
returns the patient, and its label switch acts on the patient's own drawing.
"""

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from cganlib import cgan
from cganlib.ssim import ssim as separable_ssim

LATENT_RANGE = 3.0


def reconstruction_losses(generator, latents, labels, targets01, ssim_weight):
    """Per latent: MSE on [0, 1] pixels + ssim_weight * (1 - SSIM), and the two parts."""
    images = (generator([latents, labels], training=False) + 1.0) / 2.0
    mse = tf.reduce_mean(tf.square(images - targets01), axis=[1, 2, 3])
    ssim = separable_ssim(images, targets01)
    return mse + ssim_weight * (1.0 - ssim), mse, ssim


def _loss(generator, latents, labels, targets01, ssim_weight):
    """The loss Adam minimizes. Without an SSIM weight the SSIM is left out altogether."""
    if ssim_weight == 0:
        images = (generator([latents, labels], training=False) + 1.0) / 2.0
        return tf.reduce_mean(tf.square(images - targets01), axis=[1, 2, 3])
    return reconstruction_losses(generator, latents, labels, targets01, ssim_weight)[0]


def _project_batch(generator, x, y, steps, starts, lr, ssim_weight, rng, progress, desc, initial=None):
    """Best latent, its MSE and SSIM, of each image in one batch (from `initial`, one start each, if given)."""
    n, latent_dim = len(x), generator.inputs[0].shape[1]
    # start s of image i sits at row s * n + i, so a reshape to (starts, n) lines them up
    targets, labels = tf.constant(np.tile(x, (starts, 1, 1, 1))), tf.constant(np.tile(y, starts).reshape(-1, 1))
    z = tf.Variable(cgan.training_latents(rng, starts * n, latent_dim) if initial is None else initial)
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    optimizer.build([z])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(_loss(generator, z, labels, targets, ssim_weight))  # each latent's gradient is its own loss's
        optimizer.apply_gradients([(tape.gradient(total, z), z)])
        z.assign(tf.clip_by_value(z, -LATENT_RANGE, LATENT_RANGE))

    for _ in tqdm(range(steps), desc=desc, unit="step", disable=not progress, leave=False):
        step()
    loss, mse, ssim = (t.numpy().reshape(starts, n) for t in reconstruction_losses(generator, z, labels, targets, ssim_weight))
    best, columns = loss.argmin(axis=0), np.arange(n)
    return z.numpy().reshape(starts, n, latent_dim)[best, columns], mse[best, columns], ssim[best, columns]


def project(generator, images01, labels, steps, starts, lr, ssim_weight, seed=0, batch_size=32, progress=True,
            initial=None):
    """For images (N, 80, 80, 3) in [0, 1] and their labels (N,): (latents (N, d), the
    reconstructions (N, 80, 80, 3) in [0, 1], their MSE (N,) and SSIM (N,)), from Adam's `steps`
    steps at learning rate lr from `starts` starting points per image (explain_image.py's flags
    give the defaults), or from one given per image, initial (N, d): an encoder's latents."""
    rng = np.random.default_rng(seed)
    starts = starts if initial is None else 1
    parts = []
    for start in range(0, len(images01), batch_size):
        x = np.asarray(images01[start : start + batch_size], dtype=np.float32)
        y = np.asarray(labels[start : start + batch_size], dtype=np.int32)
        desc = f"projecting {start + 1}-{start + len(x)} of {len(images01)}"
        first = None if initial is None else np.asarray(initial[start : start + batch_size], np.float32)
        parts.append(_project_batch(generator, x, y, steps, starts, lr, ssim_weight, rng, progress, desc, first))
    latents, mse, ssim = (np.concatenate(arrays) for arrays in zip(*parts))
    return latents, cgan.generate(generator, latents, labels), mse, ssim


def pivotal_tuning(generator, latents, labels, images01, targets, steps, lr, ssim_weight, exaggerate=0.0, progress=True):
    """For projected latents (N, d) of images (N, 80, 80, 3) in [0, 1] with labels (N,): per image
    the generator's weights tuned `steps` Adam steps at rate lr (the projection's loss, the latent
    held), then (reconstructions (N, 80, 80, 3), relabelled (N, T, 80, 80, 3) under targets (T,),
    both in [0, 1], the reconstructions' MSE (N,) and SSIM (N,)), all drawn by each image's copy
    (the targets' with the label pushed `exaggerate` past them: cgan.generate_exaggerated)."""
    tuned = keras.models.clone_model(generator)
    for layer in tuned.layers:  # an inversion's generator is frozen; its tuned copy is not
        layer.trainable = True
    pivot_weights = generator.get_weights()
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    optimizer.build(tuned.trainable_variables)
    fresh_state = [v.numpy() for v in optimizer.variables]  # Adam starts anew for each image

    @tf.function
    def step(z, y, x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(_loss(tuned, z, y, x, ssim_weight))
        optimizer.apply_gradients(zip(tape.gradient(loss, tuned.trainable_variables), tuned.trainable_variables))

    reconstructions = np.zeros(images01.shape, np.float32)
    relabelled = np.zeros((len(labels), len(targets), *images01.shape[1:]), np.float32)
    for i in tqdm(range(len(labels)), desc="pivotal tuning", unit="image", disable=not progress, leave=False):
        tuned.set_weights(pivot_weights)
        for variable, value in zip(optimizer.variables, fresh_state):
            variable.assign(value)
        z = tf.constant(latents[i : i + 1], tf.float32)
        y = tf.constant(labels[i : i + 1].reshape(1, 1), tf.int32)
        x = tf.constant(images01[i : i + 1], tf.float32)
        for _ in range(steps):
            step(z, y, x)
        reconstructions[i] = cgan.generate(tuned, latents[i : i + 1], labels[i : i + 1])[0]
        for t, target in enumerate(targets):
            relabelled[i, t] = cgan.generate_exaggerated(tuned, latents[i : i + 1], labels[i : i + 1], target, exaggerate)[0]
    mse = np.mean((reconstructions - images01) ** 2, axis=(1, 2, 3))
    return reconstructions, relabelled, mse, separable_ssim(reconstructions, images01).numpy()
