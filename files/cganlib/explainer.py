"""The label switch applied to the patient's own image: an image-to-image explainer E(x, target)
whose output is a change Δ, the switched image being clip(x + Δ, -1, 1). The map is Δ itself: the
same anatomy, only the label switched, so the pixels that change are the finding of that image.

    explainer  a small U-Net (three scales, skip connections), the image and the target label's
               one-hot as extra planes in, the change out: one head per target label (tanh x
               CHANGE_SCALE; the heads start at zero, so an untrained explainer changes nothing)
    encoder_decoder  (architecture "encoder_decoder", design b: cVAE-GAN, Zhu et al. 2017; Fader
               Networks, Lample et al. 2017) the image alone through an encoder to a code at a
               quarter of its side, no skips, and a decoder that draws the image from the code and
               the target; Δ is the drawn image minus the given one. A latent critic reads the label
               from the code and the encoder pays for what it reads (latent_weight), so the label
               can come only from the target
    inversion  (architecture "inversion", design c: in-domain inversion, Zhu et al. 2020) a trained
               cGAN's generator, frozen, and an encoder trained on the real images to give the
               latent from which the generator draws each image under its own label (the
               projection's loss); Δ is the generator's drawing of that latent under the target
               minus the image. explain_image.py starts its projection there and can tune the
               generator to the patient (--tune_steps: pivotal tuning, Roich et al. 2022)
    critic     four stride-2 convolutions, global average pooling, a dense output plus a
               projection term (Miyato & Koyama 2018): the class embedding dotted with the pooled
               features; hinge loss

The losses of one batch (ExplainerConfig names the weights): the first half of the batch keeps
its own label as the target, the identity term (Fixed-Point GAN, Siddiquee et al. 2019) pulls
their change to 0; the second half is switched to another label, and the critic judges those
images as their target class against the batch's real images of their own class; their change
pays an L1 and a total-variation price (VA-GAN, Baumgartner et al. 2018), optionally a cycle
back to the image (StarGAN, Choi et al. 2018) and a frozen classifier's cross-entropy for the
target (`guide`). No horizontal flips anywhere: they would move the heart.
"""

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cganlib import cgan
from cganlib.cgan import IMAGE_SHAPE, PIXEL_SCALE
from cganlib.projection import LATENT_RANGE, reconstruction_losses

CHANGE_SCALE = 2.0  # the change spans [-2, 2]: enough to turn black into white in [-1, 1]
CRITIC_KERNEL = 4
INVERSION_SSIM_WEIGHT = 0.2  # explain_image.py's --ssim_weight default: the encoder learns the projection's loss
REDRAWING = ("encoder_decoder", "inversion")  # explainers that redraw every pixel: maps start from the own-label drawing
RAMP_START = 0.1  # the penalties' factor at the first step with ExplainerConfig.ramp_steps


def _target_planes(target, side, n_classes, name):
    """The one-hot target (B, n_classes) as n_classes constant planes of side x side."""
    return layers.UpSampling2D(side, name=name)(layers.Reshape((1, 1, n_classes))(target))


def _conv(x, width, name, strides=1):
    return layers.Conv2D(width, 3, strides=strides, padding="same", activation="relu", name=name)(x)


def build_explainer(n_classes, filters, image_shape=IMAGE_SHAPE, grey=False, architecture="unet"):
    """E(x, target) -> Δ; x in [-1, 1] (B, H, W, C), target one-hot (B, n_classes): the U-Net or
    the encoder-decoder. grey: one change plane, the same in every channel."""
    if architecture == "encoder_decoder":
        return build_encoder_decoder(n_classes, filters, image_shape, grey)
    side, _, channels = image_shape
    image = keras.Input(image_shape, name="image")
    target = keras.Input((n_classes,), name="target")
    x = layers.Concatenate()([image, _target_planes(target, side, n_classes, "target_in")])
    full = _conv(_conv(x, filters, "e1a"), filters, "e1b")
    half = _conv(_conv(full, 2 * filters, "e2a", strides=2), 2 * filters, "e2b")
    quarter = _conv(half, 4 * filters, "e3a", strides=2)
    quarter = layers.Concatenate()([quarter, _target_planes(target, side // 4, n_classes, "target_mid")])
    quarter = _conv(quarter, 4 * filters, "e3b")
    up = _conv(layers.Concatenate()([layers.UpSampling2D(2)(quarter), half]), 2 * filters, "d2")
    up = _conv(layers.Concatenate()([layers.UpSampling2D(2)(up), full]), filters, "d1")
    planes = 1 if grey else channels
    heads = layers.Conv2D(planes * n_classes, 1, activation="tanh", kernel_initializer="zeros", name="change")(up)
    change = TargetHead(n_classes, CHANGE_SCALE, name="scaled_change")([heads, target])
    if grey:
        change = layers.Concatenate(name="grey_change")([change] * channels)
    return keras.Model([image, target], change, name="explainer")


def build_encoder_decoder(n_classes, filters, image_shape=IMAGE_SHAPE, grey=False, with_code=False):
    """Design b: Δ = D(C(x), target) - x, the code C(x) (side/4, side/4, 2 filters) from the image
    alone (the sub-model "encoder", which the latent critic reads), D drawing the image in [-1, 1]
    from it and the target's planes. Under the image's own label D(C(x), label) is its
    reconstruction; explain_image.py's map is the switched image's difference from it.
    with_code: the outputs are [Δ, C(x)], for training the latent critic in the same pass."""
    side, _, channels = image_shape
    image = keras.Input(image_shape, name="image")
    target = keras.Input((n_classes,), name="target")
    x = _conv(_conv(image, filters, "e1"), 2 * filters, "e2", strides=2)
    x = _conv(_conv(x, 4 * filters, "e3", strides=2), 4 * filters, "e4")
    code = layers.Conv2D(2 * filters, 1, name="code")(x)
    encoder = keras.Model(image, code, name="encoder")
    code = encoder(image)
    x = layers.Concatenate()([code, _target_planes(target, side // 4, n_classes, "target_code")])
    x = _conv(_conv(x, 4 * filters, "d3"), 4 * filters, "d3b")
    x = layers.Concatenate()([layers.UpSampling2D(2)(x), _target_planes(target, side // 2, n_classes, "target_half")])
    x = _conv(x, 2 * filters, "d2")
    x = _conv(layers.UpSampling2D(2)(x), filters, "d1")
    drawn = layers.Conv2D(1 if grey else channels, 3, padding="same", activation="tanh", name="drawn")(x)
    if grey:
        drawn = layers.Concatenate(name="grey_drawn")([drawn] * channels)
    change = layers.Subtract(name="change")([drawn, image])
    return keras.Model([image, target], [change, code] if with_code else change, name="encoder_decoder")


class LabelOf(layers.Layer):
    """The label (B, 1) a one-hot target (B, n_classes) names: the generator's label input."""

    def call(self, target):
        return keras.ops.expand_dims(keras.ops.argmax(target, axis=-1), -1)


def build_inversion(generator, filters, image_shape=IMAGE_SHAPE):
    """Design c: Δ = G(C(x), target) - x, C the encoder (sub-model "encoder": four stride-2
    convolutions and a dense layer to the generator's latent, in its range [-3, 3]) and G the
    given generator, frozen (sub-model "generator"); G's output and x in [-1, 1]."""
    n_classes, latent_dim = cgan.n_classes_of(generator), generator.inputs[0].shape[1]
    image = keras.Input(image_shape, name="image")
    target = keras.Input((n_classes,), name="target")
    x = image
    for k, width in enumerate((filters, 2 * filters, 4 * filters, 4 * filters)):
        x = layers.LeakyReLU(0.2)(layers.Conv2D(width, CRITIC_KERNEL, strides=2, padding="same", name=f"v{k + 1}")(x))
    latent = layers.Dense(latent_dim, activation="tanh", name="latent")(layers.Flatten()(x))
    encoder = keras.Model(image, layers.Rescaling(LATENT_RANGE)(latent), name="encoder")
    generator.trainable = False
    drawn = keras.Model(generator.inputs, generator.outputs[0], name="generator")([encoder(image), LabelOf()(target)])
    return keras.Model([image, target], layers.Subtract(name="change")([drawn, image]), name="inversion")


def build_latent_critic(n_classes, filters, code_shape):
    """Fader Networks' latent discriminator: the label's logits (B, n_classes) read from a code."""
    code = keras.Input(code_shape, name="code")
    x = layers.LeakyReLU(0.2)(layers.Conv2D(2 * filters, 3, strides=2, padding="same", name="l1")(code))
    x = layers.LeakyReLU(0.2)(layers.Conv2D(2 * filters, 3, strides=2, padding="same", name="l2")(x))
    return keras.Model(code, layers.Dense(n_classes, name="logits")(layers.GlobalAveragePooling2D()(x)),
                       name="latent_critic")


def latent_losses(logits, labels):
    """(latent critic's loss, encoder's loss) of the code's logits (B, n_classes) and the images'
    labels (B,): the critic's cross-entropy for the label; the encoder's for the uniform guess,
    least (log n_classes) when the critic can read nothing from the code."""
    critic = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    return critic, -tf.reduce_mean(tf.nn.log_softmax(logits))


class TargetHead(layers.Layer):
    """The target's own change: of the n_classes x C planes (one group of C per target label), the
    group the one-hot target picks, times `scale`. A head per target learns a switch of its own
    from the first step; one head for all would first have to learn to tell the targets apart,
    and until then every switch would also change the images kept at their own label."""

    def __init__(self, n_classes, scale, **kwargs):
        super().__init__(**kwargs)
        self.n_classes, self.scale = n_classes, scale

    def call(self, inputs):
        heads, target = inputs
        groups = keras.ops.reshape(heads, (-1, *heads.shape[1:3], self.n_classes, heads.shape[3] // self.n_classes))
        picked = keras.ops.sum(groups * keras.ops.reshape(target, (-1, 1, 1, self.n_classes, 1)), axis=3)
        return self.scale * picked

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes, "scale": self.scale}


class SavedState:
    """state_arrays and restore_arrays over a trainer's _state_variables() ({name: variables}):
    what its weights file lacks to go on exactly."""

    def state_arrays(self):
        return {name: [v.numpy() for v in variables] for name, variables in self._state_variables().items()}

    def restore_arrays(self, arrays, path):
        """Put state_arrays' values back; ValueError naming path when they do not fit."""
        for name, variables in self._state_variables().items():
            values = arrays.get(name, [])
            if [tuple(v.shape) for v in variables] != [a.shape for a in values]:
                raise ValueError(f"{path}: its arrays do not fit this run's models")
            for variable, value in zip(variables, values):
                variable.assign(value)


class InversionTrainer(SavedState):
    """Design c's training: the encoder learns, on real images, the latent from which the frozen
    generator draws each image under its own label, by the projection's loss (MSE on [0, 1]
    pixels + INVERSION_SSIM_WEIGHT x (1 - SSIM)); the batch's targets are not used."""

    def __init__(self, config, generator):
        self.config, self.n_classes = config, cgan.n_classes_of(generator)
        self.explainer = build_inversion(generator, config.filters)
        self.encoder, self.generator = self.explainer.get_layer("encoder"), self.explainer.get_layer("generator")
        self.optimizer = keras.optimizers.Adam(config.lr, beta_1=config.beta1, beta_2=config.beta2)
        self.optimizer.build(self.encoder.trainable_variables)
        self.step = tf.function(self._step, reduce_retracing=True)

    def losses(self, images, labels):
        total, mse, _ = reconstruction_losses(self.generator, self.encoder(images, training=True),
                                              tf.reshape(labels, (-1, 1)), (images + 1.0) / 2.0, INVERSION_SSIM_WEIGHT)
        return {"reconstruction": tf.reduce_mean(total), "mse": tf.reduce_mean(mse)}

    def _step(self, images, labels, targets):
        with tf.GradientTape() as tape:
            terms = self.losses(images, labels)
        grads = tape.gradient(terms["reconstruction"], self.encoder.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.encoder.trainable_variables))
        return terms

    def _state_variables(self):
        return {"encoder_optimizer": self.optimizer.variables}


def build_critic(n_classes, filters, image_shape=IMAGE_SHAPE):
    """D(x, label) -> (B, 1): a dense score of the pooled features plus their dot product with
    the label's embedding (the projection discriminator)."""
    image = keras.Input(image_shape, name="image")
    label = keras.Input((n_classes,), name="label")
    x = image
    for k, width in enumerate((filters, 2 * filters, 4 * filters, 4 * filters)):
        x = layers.Conv2D(width, CRITIC_KERNEL, strides=2, padding="same", name=f"c{k + 1}")(x)
        x = layers.LeakyReLU(0.2)(x)
    features = layers.GlobalAveragePooling2D()(x)
    embedding = layers.Dense(4 * filters, use_bias=False, name="class_embedding")(label)
    score = layers.Add()([layers.Dense(1, name="score")(features), layers.Dot(axes=1)([embedding, features])])
    return keras.Model([image, label], score, name="critic")


def to_unit(pixels):
    """uint8 0..255 -> float32 [-1, 1], the explainer's scale (the GAN's)."""
    return np.asarray(pixels, np.float32) / PIXEL_SCALE - 1.0


def switch(explainer, images, targets, n_classes, batch_size=64):
    """(switched images, changes), both (N, H, W, C): images in [-1, 1] switched to targets (N,)."""
    switched, changes = [], []
    for start in range(0, len(images), batch_size):
        x = tf.convert_to_tensor(images[start : start + batch_size], tf.float32)
        t = tf.one_hot(np.asarray(targets[start : start + batch_size]), n_classes)
        change = explainer([x, t], training=False)
        switched.append(tf.clip_by_value(x + change, -1.0, 1.0).numpy())
        changes.append(change.numpy())
    return np.concatenate(switched), np.concatenate(changes)


def total_variation(change):
    """The mean absolute difference between neighbouring pixels of a change (B, H, W, C): (B,)."""
    down = tf.abs(change[:, 1:] - change[:, :-1])
    across = tf.abs(change[:, :, 1:] - change[:, :, :-1])
    return tf.reduce_mean(down, axis=(1, 2, 3)) + tf.reduce_mean(across, axis=(1, 2, 3))


def penalty_scale(step, ramp_steps):
    """The penalties' factor at a step: RAMP_START at step 0, growing geometrically to 1 at
    ramp_steps, 1 after (and always, when ramp_steps is 0). Full penalties from the start hold the
    change at exactly 0 (the L1 term's pull outweighs what the critic asks of each pixel) for
    hundreds of steps; weak ones let it find the finding, then grow to keep the rest unchanged."""
    if not ramp_steps:
        return tf.constant(1.0)
    progress = tf.minimum(tf.cast(step, tf.float32) / float(ramp_steps), 1.0)
    return tf.pow(RAMP_START, 1.0 - progress)


def hinge_losses(real_scores, fake_scores):
    """(critic's loss, explainer's adversarial loss) of the hinge GAN."""
    critic = tf.reduce_mean(tf.nn.relu(1.0 - real_scores)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_scores))
    return critic, -tf.reduce_mean(fake_scores)


def mean_size(change):
    """The mean absolute change of each image (B, H, W, C) -> (B,)."""
    return tf.reduce_mean(tf.abs(change), axis=(1, 2, 3))


class Trainer(SavedState):
    """The explainer, its critic, their optimizers and one compiled training step."""

    def __init__(self, config, n_classes, guide=None):
        self.config, self.n_classes, self.guide = config, n_classes, guide
        # Grappler's remapper fails on the critic's fused gradient (as on the GAN's: training.py)
        tf.config.optimizer.set_experimental_options({"remapping": False})
        self.critic = build_critic(n_classes, config.filters)
        self.latent_critic = None
        if config.latent_weight:  # one pass gives the change and the code the latent critic reads
            self.coded = build_encoder_decoder(n_classes, config.filters, grey=config.grey, with_code=True)
            self.explainer = keras.Model(self.coded.inputs, self.coded.outputs[0], name="encoder_decoder")
            self.latent_critic = build_latent_critic(n_classes, config.filters, self.coded.outputs[1].shape[1:])
        else:
            self.explainer = build_explainer(n_classes, config.filters, grey=config.grey, architecture=config.architecture)
        self.e_optimizer, self.c_optimizer, self.l_optimizer = (
            keras.optimizers.Adam(config.lr, beta_1=config.beta1, beta_2=config.beta2) for _ in range(3))
        self.e_optimizer.build(self.explainer.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)
        if self.latent_critic is not None:
            self.l_optimizer.build(self.latent_critic.trainable_variables)
        self.step = tf.function(self._step, reduce_retracing=True)

    def losses(self, images, labels, targets):
        """{name: scalar} of one batch whose first half keeps its labels (targets == labels there)."""
        c = self.config
        half = images.shape[0] // 2
        y, t = tf.one_hot(labels, self.n_classes), tf.one_hot(targets, self.n_classes)
        if self.latent_critic is None:
            change = self.explainer([images, t], training=True)
        else:
            change, code = self.coded([images, t], training=True)
        switched = tf.clip_by_value(images[half:] + change[half:], -1.0, 1.0)
        critic_loss, adversarial = hinge_losses(self.critic([images, y], training=True),
                                                self.critic([switched, t[half:]], training=True))
        terms = {"critic": critic_loss, "adversarial": adversarial,
                 "identity": tf.reduce_mean(mean_size(change[:half])),
                 "switch_l1": tf.reduce_mean(mean_size(change[half:])),
                 "switch_tv": tf.reduce_mean(total_variation(change[half:]))}
        terms["penalty_scale"] = penalty_scale(self.e_optimizer.iterations, c.ramp_steps)
        explainer_loss = adversarial + terms["penalty_scale"] * (
            c.identity_weight * terms["identity"] + c.l1_weight * terms["switch_l1"] + c.tv_weight * terms["switch_tv"])
        if c.cycle_weight:
            back = self.explainer([switched, y[half:]], training=True)
            terms["cycle"] = tf.reduce_mean(mean_size(tf.clip_by_value(switched + back, -1.0, 1.0) - images[half:]))
            explainer_loss += c.cycle_weight * terms["cycle"]
        if self.latent_critic is not None:
            logits = self.latent_critic(code, training=True)
            terms["latent_critic"], terms["latent"] = latent_losses(logits, labels)
            explainer_loss += c.latent_weight * terms["latent"]
        if self.guide is not None and c.guide_weight:
            scores = self.guide((switched + 1.0) * PIXEL_SCALE, training=False)
            terms["guide"] = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(targets[half:], scores, from_logits=True))
            explainer_loss += c.guide_weight * terms["guide"]
        terms["explainer"] = explainer_loss
        return terms

    def _step(self, images, labels, targets):
        with tf.GradientTape(persistent=True) as tape:
            terms = self.losses(images, labels, targets)
        updates = [(terms["critic"], self.critic, self.c_optimizer), (terms["explainer"], self.explainer, self.e_optimizer)]
        if self.latent_critic is not None:
            updates.append((terms["latent_critic"], self.latent_critic, self.l_optimizer))
        for loss, model, optimizer in updates:
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        del tape
        return terms

    def _state_variables(self):
        """The critics and the optimizers."""
        state = {"critic": self.critic.weights, "explainer_optimizer": self.e_optimizer.variables,
                 "critic_optimizer": self.c_optimizer.variables}
        if self.latent_critic is not None:
            state.update(latent_critic=self.latent_critic.weights, latent_critic_optimizer=self.l_optimizer.variables)
        return state


def batch_plan(labels, n_batch, n_classes, rng):
    """One epoch's batches: (rows (S, n_batch), targets (S, n_batch)), the rows a permutation of
    the images (the last incomplete batch dropped), the first half of each batch keeping its
    labels as targets, the second half switched to another label drawn at random."""
    rows = rng.permutation(len(labels))[: (len(labels) // n_batch) * n_batch].reshape(-1, n_batch)
    targets = labels[rows].copy()
    half = n_batch // 2
    shift = rng.integers(1, n_classes, size=targets[:, half:].shape)
    targets[:, half:] = (targets[:, half:] + shift) % n_classes  # any label but its own
    return rows, targets
