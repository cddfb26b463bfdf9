"""The conditional GAN shared by the training and explaining scripts: the three models (the
original's layers, widths and Adamax settings), latent and label sampling, pixel scaling, and
loading saved generators and discriminators (ours, or the original's Keras 2 files).
"""

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cganlib.config import TrainConfig
from cganlib.datasets import IMAGE_SIDE
from cganlib.storage import InputError, check_memory, open_h5, parse_json

IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 3)
PIXEL_SCALE = 127.5  # uint8 pixels p are scaled to (p - 127.5) / 127.5 in [-1, 1]
ORIGINAL = TrainConfig()  # the original's hyperparameters, the models' defaults
LATENT_DIM = ORIGINAL.latent_dim  # of the original's generators (and the latents drawn for them)
EMBEDDING_DIM = 8  # the architecture's fixed parts
LEAKY_SLOPE = 0.2
DROPOUT = 0.1
INTERPOLATION_STEPS = 10
MODEL_BYTES = 16  # per parameter when a model is built and trained: float32 weights, two moments, a snapshot
MBSTD_EPSILON = 1e-8  # under the minibatch standard deviation's square root, as ProGAN's and StyleGAN's


# ---------------------------------------------------------------- models


def adamax(lr, beta_1):
    return keras.optimizers.Adamax(learning_rate=lr, beta_1=beta_1, beta_2=ORIGINAL.beta_2, epsilon=ORIGINAL.epsilon)


@keras.saving.register_keras_serializable(package="cganlib")
class MinibatchStdDev(layers.Layer):
    """The minibatch standard deviation layer (Karras et al. 2018, ProGAN; StyleGAN2-ADA's default
    group of 4): the batch split into groups, each feature's standard deviation over its group
    (per pixel), averaged to one number per group, appended to each image of the group as one
    constant feature map. A discriminator that sees it can tell a batch of near-identical
    generated images from a varied real one.

    As StyleGAN's, group g = min(group_size, batch) and image i belongs to group i mod (batch / g).
    Where g does not divide the batch (evaluation batches of any size; training checks that its
    own half batches divide), the whole batch is one group: one statistic of every image rather
    than a smaller group (the greatest common divisor can be 1, a statistic of zero)."""

    def __init__(self, group_size, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, x):
        n = tf.shape(x)[0]
        group = tf.maximum(tf.minimum(self.group_size, n), 1)
        group = tf.where(n % group == 0, group, n)
        # [g, batch/g, ...]: row k holds images k*(batch/g) ... , so image i sits in column i mod (batch/g)
        y = tf.reshape(tf.cast(x, tf.float32), tf.concat([[group, -1], tf.shape(x)[1:]], axis=0))
        y -= tf.reduce_mean(y, axis=0)
        std = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + MBSTD_EPSILON)
        per_image = tf.tile(tf.reduce_mean(std, axis=[1, 2, 3]), [group])
        feature = tf.ones_like(x[..., :1]) * tf.cast(per_image, x.dtype)[:, None, None, None]
        return tf.concat([x, feature], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}



@keras.saving.register_keras_serializable(package="cganlib")
class LabelFade(layers.Layer):
    """The label's embedding times a factor (train_cgan.py --label_fade, transitional conditioning,
    Shahbazi et al. 2022): 0 makes the model unconditional, 1 is the identity. The factor is a
    tf.Variable the trainer sets, not a weight of the model: a saved model holds this layer without
    weights, and load_generator and load_discriminator rebuild the model without it (the identity)
    unless told the factor."""

    def __init__(self, factor=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, embedding):
        return embedding if self.factor is None else embedding * keras.ops.cast(self.factor, embedding.dtype)

    def get_config(self):
        return super().get_config()  # without the factor: a layer made from its config is the identity


def label_embedding(label, n_classes, label_fade, width=EMBEDDING_DIM):
    """The label's embedding, times the factor label_fade (a tf.Variable) when there is one."""
    embedding = layers.Embedding(n_classes, width)(label)
    return embedding if label_fade is None else LabelFade(label_fade)(embedding)


def build_discriminator(n_classes, filters, lr, beta_1=ORIGINAL.d_beta1, spectral_norm=False, mbstd_group=0,
                        projection=False, label_fade=None):
    """Label map as a 4th channel, five 5x5 convolutions (80 -> 5), a sigmoid; compiled with
    binary cross-entropy and Adamax at this learning rate (per dataset). spectral_norm wraps
    every convolution and dense layer in keras.layers.SpectralNormalization (Miyato et al. 2018),
    which adds one non-trainable vector per layer, as long as the layer's output width.
    mbstd_group above 0 appends the minibatch standard deviation of groups of that many images
    (MinibatchStdDev) to the last convolution's maps. projection: the projection discriminator
    (Miyato & Koyama 2018) in place of the label map: the image alone through the convolutions,
    logit = dense(features) + <embedding(label), features>, under the same sigmoid (the label's
    embedding is not spectrally normalized). label_fade: a factor on the label's embedding
    (LabelFade), or None."""
    normalized = layers.SpectralNormalization if spectral_norm else (lambda layer, **kwargs: layer)
    image = keras.Input(IMAGE_SHAPE)
    label = keras.Input((1,))
    x = image
    if not projection:
        h, w, _ = IMAGE_SHAPE
        label_map = label_embedding(label, n_classes, label_fade)
        label_map = normalized(layers.Dense(h * w))(label_map)
        label_map = layers.Reshape((h, w, 1))(label_map)
        x = layers.Concatenate()([image, label_map])
    x = normalized(layers.Conv2D(filters, 5, padding="same"))(x)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.Dropout(DROPOUT)(x)
    for _ in range(4):
        x = normalized(layers.Conv2D(filters, 5, strides=2, padding="same"))(x)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    if mbstd_group:
        x = MinibatchStdDev(mbstd_group)(x)
    x = layers.Flatten()(x)
    # float32 output keeps the loss the collapse guard reads in float32 under mixed precision
    if projection:
        unconditional = normalized(layers.Dense(1, dtype="float32"), dtype="float32")(x)
        embedded = layers.Flatten()(label_embedding(label, n_classes, label_fade, x.shape[-1]))
        logit = layers.Add(dtype="float32")([unconditional, layers.Dot(axes=1, dtype="float32")([embedded, x])])
        out = layers.Activation("sigmoid", dtype="float32")(logit)
    else:
        out = normalized(layers.Dense(1, activation="sigmoid", dtype="float32"), dtype="float32")(x)
    model = keras.Model([image, label], out, name="discriminator")
    model.compile(loss="binary_crossentropy", optimizer=adamax(lr, beta_1), metrics=["accuracy"])
    return model


def logit_and_output(discriminator):
    """A function of (inputs, training) giving a discriminator's pre-sigmoid logit beside its
    output, in one pass through its layers: its dropout drawn once and its spectral normalization
    updated once, as in a call of the model. The logit is its output layer's dense part, computed
    from the features that layer sees with the kernel it has just used; a projection
    discriminator's is its sigmoid's input."""
    head = discriminator.layers[-1]
    body = keras.Model(discriminator.inputs, head.input)
    if isinstance(head, layers.Activation):

        def sigmoid_of(inputs, training=False):
            logit = body(inputs, training=training)
            return logit, head(logit)

        return sigmoid_of
    dense = head.layer if isinstance(head, layers.SpectralNormalization) else head

    def call(inputs, training=False):
        features = body(inputs, training=training)
        output = head(features, training=training)  # spectral normalization assigns its kernel here, read after
        logit = keras.ops.matmul(keras.ops.cast(features, dense.kernel.dtype), dense.kernel) + dense.bias
        return logit, output

    return call


def _upsampled(x, filters, resize_conv):
    """Twice the side: the original's 4x4 transposed convolution of stride 2, or (resize_conv) a
    nearest-neighbour resize and a 3x3 convolution, which cannot draw the transposed one's
    checkerboard of uneven overlaps (Odena, Dumoulin & Olah 2016)."""
    if not resize_conv:
        return layers.Conv2DTranspose(filters, 4, strides=2, padding="same")(x)
    return layers.Conv2D(filters, 3, padding="same")(layers.UpSampling2D(2)(x))


def build_generator(n_classes, latent_dim=ORIGINAL.latent_dim, filters=ORIGINAL.filters, label_fade=None,
                    resize_conv=False):
    """label_fade: a factor on the label's embedding (LabelFade), or None; resize_conv: _upsampled's."""
    latent = keras.Input((latent_dim,))
    label = keras.Input((1,))
    side = IMAGE_SHAPE[0] // 16
    label_map = label_embedding(label, n_classes, label_fade)
    label_map = layers.Dense(side * side)(label_map)
    label_map = layers.Reshape((side, side, 1))(label_map)
    x = layers.Dense(filters * side * side)(latent)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.Reshape((side, side, filters))(x)
    x = layers.Concatenate()([x, label_map])
    x = _upsampled(x, filters, resize_conv)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.Dropout(DROPOUT)(x)
    for _ in range(3):
        x = _upsampled(x, filters, resize_conv)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    out = layers.Conv2D(IMAGE_SHAPE[2], 5, activation="tanh", padding="same", dtype="float32")(x)
    model = keras.Model([latent, label], out, name="generator")
    model.compile(loss="binary_crossentropy", optimizer=adamax(ORIGINAL.g_lr, ORIGINAL.g_beta1))
    return model


def build_gan(generator, discriminator, lr=ORIGINAL.g_lr, beta_1=ORIGINAL.g_beta1):
    """Generator -> discriminator, for saving and for the GAN step's optimizer. The training
    step updates only the generator's variables here, so the discriminator needs no freezing:
    the original's `d.trainable = False` would, in Keras 3, also stop it learning in its own step."""
    latent, label = generator.inputs
    validity = discriminator([generator([latent, label]), label])
    model = keras.Model([latent, label], validity, name="gan")
    model.compile(loss="binary_crossentropy", optimizer=adamax(lr, beta_1))
    return model


def reinitialized(model, seed):
    """The same architecture with freshly drawn weights: the model-randomization test of Adebayo
    et al. 2018 ("Sanity checks for saliency maps"). A map that explains what the model learnt
    must change, and stop pointing at the finding, when the learnt weights are gone."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def cpu_has_bfloat16():
    """Whether the CPU does bfloat16 arithmetic itself (AVX-512 BF16 or AMX, read from
    /proc/cpuinfo; False where that cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def set_bfloat16(on=True, emulated=False):
    """bfloat16 arithmetic with float32 weights for the models built and the functions traced
    from now on; returns whether it is on. On a GPU: Keras's mixed_bfloat16 policy. On a CPU
    with bfloat16 arithmetic (cpu_has_bfloat16): oneDNN's graph rewrite, which leaves the models
    float32 (saved files as usual) and measured 1.7x faster than float32 on a training step, against
    1.5x for the Keras policy. On other CPUs oneDNN emulates bfloat16, many times slower than
    float32 (files/bench/README.md), so it stays off unless `emulated` (the tests' way to check
    the arithmetic on any machine)."""
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if on else "float32")
        return on
    on = on and (emulated or cpu_has_bfloat16())
    tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": on})
    return on


# ---------------------------------------------------------------- sampling


def scale_images(images):
    """uint8 pixels (a NumPy array, or a float32 tensor of them) -> float32 in [-1, 1]."""
    if isinstance(images, np.ndarray):
        images = images.astype(np.float32)
    return (images - PIXEL_SCALE) / PIXEL_SCALE


def to_unit(images):
    """Generator output in [-1, 1] -> [0, 1]."""
    return (np.asarray(images, dtype=np.float32) + 1.0) / 2.0


def from_unit(images):
    """Images in [0, 1] -> [-1, 1], the discriminator's input."""
    return np.asarray(images, dtype=np.float32) * 2.0 - 1.0


def sample_labels(rng, n, cum):
    """Label i where cum[i] <= u < cum[i+1] for u uniform in [0, 1)."""
    u = rng.random(n)
    return np.searchsorted(np.asarray(cum)[1:], u, side="right").astype(np.int32)


def training_latents(rng, n, latent_dim=LATENT_DIM):
    """The n*latent_dim evenly spaced values in [-3, 3), shuffled, as (n, latent_dim)."""
    size = n * latent_dim
    grid = -3.0 + np.arange(size) * (6.0 / size)
    return rng.permutation(grid).reshape(n, latent_dim).astype(np.float32)


def heatmap_latents(rng, n_samples, latent_dim=LATENT_DIM, steps=INTERPOLATION_STEPS):
    """For each sample, `steps` latents interpolated between two shuffled copies of the
    latent_dim values -3 + k*6/latent_dim; shape (n_samples*steps, latent_dim)."""
    grid = -3.0 + np.arange(latent_dim) * (6.0 / latent_dim)
    ends = np.stack([rng.permutation(grid) for _ in range(2 * n_samples)])
    ratios = np.linspace(0.0, 1.0, steps)[None, :, None]
    p1, p2 = ends[0::2, None, :], ends[1::2, None, :]
    return ((1.0 - ratios) * p1 + ratios * p2).reshape(-1, latent_dim).astype(np.float32)


def generate(generator, latents, labels, batch_size=256):
    """Generator output in [0, 1] for these latents and labels (no dropout). A batch at a time
    through predict_on_batch: predict() sets up a data pipeline on every call, which costs more
    than generating a few hundred images at a small width (measured: twice the time)."""
    labels = np.asarray(labels, dtype=np.int32).reshape(-1, 1)
    latents = np.asarray(latents, dtype=np.float32)
    out = [generator.predict_on_batch([latents[k : k + batch_size], labels[k : k + batch_size]])
           for k in range(0, len(latents), batch_size)]
    return to_unit(np.concatenate(out) if out else np.zeros((0, *generator.output_shape[1:]), np.float32))


def generate_exaggerated(generator, latents, own_labels, target, amount):
    """generate()'s images of latents under label `target`, its embedding pushed past the class,
    away from each latent's own label: e_target + amount * (e_target - e_own) (one step of Singla
    et al. 2020's exaggeration); amount 0, or an own label equal to the target, is generate()'s."""
    own_labels = np.asarray(own_labels).reshape(-1)
    if not amount:
        return generate(generator, latents, [target] * len(own_labels))
    embedding = next(layer for layer in generator.layers if isinstance(layer, layers.Embedding))
    table = embedding.get_weights()[0]
    drawn = np.zeros((len(own_labels), *generator.output_shape[1:]), np.float32)
    try:
        for own in np.unique(own_labels):
            pushed = table.copy()
            pushed[target] = table[target] + amount * (table[target] - table[own])
            embedding.set_weights([pushed])
            rows = own_labels == own
            drawn[rows] = generate(generator, np.asarray(latents)[rows], [target] * int(rows.sum()))
    finally:
        embedding.set_weights([table])
    return drawn


# ---------------------------------------------------------------- loading saved models


class ModelFileError(ValueError):
    """A .h5 file that cannot be read as one of this project's models."""


def _h5_layers(path):
    """(model config layers, {layer name: [weight arrays]}) from a Keras 2 or Keras 3 .h5 that
    reads no other file (storage.open_h5). The weights' sizes are checked against the free
    memory before they are read."""
    try:
        with open_h5(path) as f:
            config_layers = _config_layers(parse_json(f.attrs["model_config"]))
            group = f.get("model_weights", f)
            stored = {}
            for name in group.attrs["layer_names"]:
                name = name.decode() if isinstance(name, bytes) else name
                stored[name] = [group[name][w] for w in group[name].attrs["weight_names"]]
            n_bytes = sum(d.size * d.dtype.itemsize for datasets in stored.values() for d in datasets)
            check_memory(n_bytes, f"{path}'s weights")
            weights = {name: [np.asarray(d) for d in datasets] for name, datasets in stored.items()}
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ModelFileError(f"{path}: not a readable Keras .h5 model ({type(e).__name__}: {e})") from e
    return config_layers, weights


def saved_classes(path):
    """The number of classes a saved generator's config declares, read without its weights; None
    when the file cannot tell (load_generator then says why)."""
    try:
        with open_h5(path) as h5:
            config_layers = _config_layers(parse_json(h5.attrs["model_config"]))
        return _architecture(config_layers)[0]
    except (InputError, OSError, KeyError, ValueError, TypeError, AttributeError):
        return None


def _config_layers(config):
    """The layers of a saved model_config; ModelFileError unless laid out as Keras writes them."""
    try:
        config_layers = config["config"]["layers"]
    except (KeyError, TypeError, IndexError):
        config_layers = None
    if not isinstance(config_layers, list) or not all(map(_layer_entry, config_layers)):
        raise ModelFileError("its model_config holds no list of layers")
    return config_layers


def _layer_entry(layer):
    """Whether a saved layer reads {"class_name": text, "config": {...}}, as does the layer inside
    a SpectralNormalization wrapper."""
    if not (isinstance(layer, dict) and isinstance(layer.get("class_name"), str) and isinstance(layer.get("config"), dict)):
        return False
    return layer["class_name"] != "SpectralNormalization" or _layer_entry(layer["config"].get("layer"))


def _input_widths(config_layers):
    widths = []
    for layer in config_layers:
        if layer["class_name"] == "InputLayer":
            cfg = layer["config"]
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            widths.append(tuple(shape[1:]) if isinstance(shape, list) else ())
    return widths


def _unwrapped(layer):
    """(class name, config) of a saved layer, of the layer inside a SpectralNormalization wrapper."""
    if layer["class_name"] == "SpectralNormalization":
        return layer["config"]["layer"]["class_name"], layer["config"]["layer"]["config"]
    return layer["class_name"], layer["config"]


def _architecture(config_layers):
    """(n_classes, filters, latent_dim or None) read off a saved generator or discriminator."""
    by_class = {}
    for layer in config_layers:
        class_name, config = _unwrapped(layer)
        by_class.setdefault(class_name, []).append(config)
    try:
        n_classes = by_class["Embedding"][0]["input_dim"]
        convs = by_class.get("Conv2DTranspose") or by_class["Conv2D"]
        filters = convs[0]["filters"]
    except (KeyError, IndexError) as e:
        raise ModelFileError(f"no embedding or convolution layer ({e})") from e
    latent = [w[0] for w in _input_widths(config_layers) if len(w) == 1 and w[0] not in (1, None)]
    latent_dim = latent[0] if latent else None
    for name, value in (("classes", n_classes), ("filters", filters), ("latent size", latent_dim or 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ModelFileError(f"its {name}, {value!r}, is not a whole number from 1")
    # a config may claim any width: 60,000 filters would take terabytes to build
    check_memory(MODEL_BYTES * (164 * filters**2 + 25 * filters * (latent_dim or 0) + EMBEDDING_DIM * n_classes),
                 f"a model of {filters} filters, latent size {latent_dim} and {n_classes} classes")
    return n_classes, filters, latent_dim


def _stored_order(layer):
    """A layer's weights in the order .h5 files store them: trainable first (Keras's legacy order;
    a SpectralNormalization layer's own order puts its non-trainable vector between kernel and bias)."""
    return layer.trainable_weights + layer.non_trainable_weights


def _copy_weights(model, config_layers, saved, path):
    """Copy saved weights into `model`, matching layers by type and weight shapes in
    topological order (layer names differ between Keras versions)."""
    queues = {}
    for layer in config_layers:
        arrays = saved.get(layer["config"].get("name"), [])
        if arrays:
            key = (layer["class_name"], tuple(a.shape for a in arrays))
            queues.setdefault(key, []).append(arrays)
    for layer in model.layers:
        weights = _stored_order(layer)
        if not weights:
            continue
        key = (type(layer).__name__, tuple(tuple(w.shape) for w in weights))
        if not queues.get(key):
            raise ModelFileError(f"{path}: no saved weights fit layer {layer.name} {key}")
        for variable, value in zip(weights, queues[key].pop(0)):
            variable.assign(value)
    left = sum(len(q) for q in queues.values())
    if left:
        raise ModelFileError(f"{path}: {left} saved layers have no place in the model")


def has_spectral_norm(model):
    return any(isinstance(layer, layers.SpectralNormalization) for layer in model.layers)


def is_resize_conv(generator):
    """Whether a generator upsamples by resize and convolution (build_generator's resize_conv)."""
    return any(isinstance(layer, layers.UpSampling2D) for layer in generator.layers)


def is_projection(model):
    """Whether a discriminator is a projection discriminator (its label meets the features in a Dot)."""
    return any(isinstance(layer, layers.Dot) for layer in model.layers)


def mbstd_group_of(model):
    """The group size of a discriminator's minibatch standard deviation layer; 0 without one."""
    return next((layer.group_size for layer in model.layers if isinstance(layer, MinibatchStdDev)), 0)


def _saved_mbstd_group(config_layers):
    """The group size a saved discriminator's MinibatchStdDev layer declares; 0 without one."""
    saved = [layer["config"].get("group_size") for layer in config_layers
             if layer["class_name"] == keras.saving.get_registered_name(MinibatchStdDev)]
    if not saved:
        return 0
    group = saved[0]
    if len(saved) > 1 or not isinstance(group, int) or isinstance(group, bool) or group < 1:
        raise ModelFileError(f"its minibatch standard deviation layers {saved!r} are not one whole group size from 1")
    return group


def n_classes_of(model):
    """The number of classes a generator or discriminator was built for (its label embedding's size)."""
    return next(layer.input_dim for layer in model.layers if isinstance(layer, layers.Embedding))


def load_generator(path, label_fade=None):
    """A generator saved by our training or by the original's Keras 2 scripts, rebuilt with
    build_generator (with label_fade's factor, a restart's) and given the saved weights (Keras 3's
    load_model refuses Keras 2 files)."""
    config_layers, saved = _h5_layers(path)
    inputs = _input_widths(config_layers)
    try:
        n_classes, filters, latent_dim = _architecture(config_layers)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: not a generator: {e}") from e
    classes = {c["class_name"] for c in config_layers}
    if len(inputs) != 2 or latent_dim is None or not classes & {"Conv2DTranspose", "UpSampling2D"}:
        raise ModelFileError(f"{path}: not a generator (inputs {inputs}, want a latent vector and a label)")
    model = build_generator(n_classes, latent_dim, filters, label_fade, resize_conv="UpSampling2D" in classes)
    _copy_weights(model, config_layers, saved, path)
    return model


def load_discriminator(path, lr, beta_1=ORIGINAL.d_beta1, label_fade=None):
    """A discriminator saved by our training (or Keras 2's), trainable, freshly compiled; with
    spectral normalization, the minibatch standard deviation layer and the label's projection when
    it was saved with them; with label_fade's factor when given."""
    config_layers, saved = _h5_layers(path)
    try:
        n_classes, filters, _ = _architecture(config_layers)
        mbstd_group = _saved_mbstd_group(config_layers)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: not a discriminator: {e}") from e
    projection = any(layer["class_name"] == "Dot" for layer in config_layers)
    if projection:  # one embedding row as long as the features for each class
        width = (IMAGE_SHAPE[0] // 16) ** 2 * (filters + bool(mbstd_group))
        check_memory(MODEL_BYTES * n_classes * width,
                     f"a projection discriminator of {filters} filters and {n_classes} classes")
    model = build_discriminator(n_classes, filters, lr, beta_1, spectral_norm=any(
        layer["class_name"] == "SpectralNormalization" for layer in config_layers), mbstd_group=mbstd_group,
        projection=projection, label_fade=label_fade)
    _copy_weights(model, config_layers, saved, path)
    _copy_optimizer_state(model, path)
    return model


def _copy_optimizer_state(model, path):
    """Restore the Adamax moments that Keras 3 saved beside the weights, so a restart goes on
    where training stopped (the learning rate stays the one asked for now). Keras 2 files
    store theirs in another order: those restart with fresh moments. Returns whether it did."""
    try:
        with open_h5(path) as f:
            if "optimizer_weights" not in f or not str(f.attrs.get("keras_version", "")).startswith("3."):
                return False
            group = f["optimizer_weights"]
            saved = [np.asarray(group[name]) for name in group.attrs["weight_names"]]
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ModelFileError(f"{path}: its optimizer state is not readable ({type(e).__name__}: {e})") from e
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    if [s.shape for s in saved] != [tuple(v.shape) for v in optimizer.variables]:
        return False
    for variable, value in zip(optimizer.variables, saved):
        if not variable.path.endswith("learning_rate"):
            variable.assign(value)
    return True
