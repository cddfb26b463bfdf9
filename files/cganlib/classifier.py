"""The baseline the delta heatmaps are compared with: a small CNN classifier of the prepared
images, and the saliency maps researchers read off such a classifier.

The network ends in its last convolution -> global average pooling -> one dense layer (the
class scores), the architecture class activation maps need (CAM, Zhou et al. 2016); Grad-CAM
(Selvaraju et al. 2017) and Integrated Gradients (Sundararajan et al. 2017) are computed on
the same model with tf.GradientTape. The model takes uint8 pixel values (as floats) and scales
them itself, so a saved `.keras` file is all a user needs, and the black image is IG's first
baseline (integrated_gradients_from adds two that keep dark regions).
"""

import io
import json
import math
import os
import zipfile

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cganlib import cgan
from cganlib.datasets import IMAGE_SIDE
from cganlib.faithfulness import blurred
from cganlib.flags import check_classifier_set
from cganlib.storage import InputError, check_memory, check_self_contained, open_regular

FILTERS = (8, 16, 32)  # per convolution; the last one is the one CAM and Grad-CAM read
LEARNING_RATE = 0.005
BATCH_SIZE = 16  # small batches: more steps per epoch, and 100% on the phantoms in about 6 epochs
MIN_IMPROVEMENT = 0.01  # a validation loss that falls by less does not count as better
IG_STEPS = 32  # Integrated Gradients' Riemann steps from the black baseline
IG_IMAGES_PER_BATCH = 8  # images whose IG paths go through the model at once (8 x 32 inputs)
IG_BLUR_SIGMA = 5.0  # pixels at 80x80: the blurred baseline keeps the brightness, loses a finding's shape
# what build_classifier's models are made of; a saved model of other layers is refused before Keras builds it
CLASSIFIER_LAYERS = ("InputLayer", "Rescaling", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Dense")
CONFIG_BYTES = 1 << 20  # a classifier's config.json takes a few KB


# ---------------------------------------------------------------- the model


def build_classifier(n_classes, filters=FILTERS, learning_rate=LEARNING_RATE):
    """A 5x5 convolution with stride 2 (80 -> 40 pixels), a 3x3 one, 2x2 max pooling, a last 3x3
    convolution at 20x20 (ReLU after each); then global average pooling and a dense layer of
    class scores (logits). Compiled with Adam and cross-entropy on the logits. The stride-2
    start keeps an epoch of the demo's 630 images at a few seconds on 2 CPU cores."""
    pixels = keras.Input(cgan.IMAGE_SHAPE, name="pixels")  # 0..255
    x = layers.Rescaling(1.0 / cgan.PIXEL_SCALE, offset=-1.0)(pixels)  # the GAN's [-1, 1]
    first, second, last = filters
    x = layers.Conv2D(first, 5, strides=2, padding="same", activation="relu", name="conv1")(x)
    x = layers.Conv2D(second, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(last, 3, padding="same", activation="relu", name="last_conv")(x)
    return _scored_model(pixels, x, n_classes, "classifier", learning_rate)


def build_vgg_classifier(n_classes, filters=FILTERS, learning_rate=LEARNING_RATE):
    """Another architecture, for a judge of the maps computed from build_classifier's model:
    VGG-like blocks of a 3x3 convolution at full resolution and 2x2 max pooling, one block per
    width (80 -> 40 -> 20 -> 10 pixels), a last 3x3 convolution of the last width at 10x10
    (ReLU after each); then the same global average pooling and dense layer of class scores, so
    load_classifier reads it, and the same Rescaling of 0..255 pixels. About as many
    multiply-adds as build_classifier's at the same widths: a few seconds an epoch."""
    pixels = keras.Input(cgan.IMAGE_SHAPE, name="pixels")  # 0..255
    x = layers.Rescaling(1.0 / cgan.PIXEL_SCALE, offset=-1.0)(pixels)  # the GAN's [-1, 1]
    for block, width in enumerate(filters, start=1):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{block}_conv")(x)
        x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
    x = layers.Conv2D(filters[-1], 3, padding="same", activation="relu", name="last_conv")(x)
    return _scored_model(pixels, x, n_classes, "classifier_vgg", learning_rate)


def _scored_model(pixels, features, n_classes, name, learning_rate):
    """The model from pixels to class scores (logits): global average pooling of the last
    features and one dense layer, compiled with Adam and cross-entropy on the logits."""
    x = layers.GlobalAveragePooling2D()(features)
    scores = layers.Dense(n_classes, name="class_scores")(x)
    model = keras.Model(pixels, scores, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


# train_classifier.py --architecture's choices; the architecture's name is also the model's
# ("classifier", "classifier_vgg"), so a saved file says which it is
ARCHITECTURES = {"cam": build_classifier, "vgg": build_vgg_classifier}


def stratified_split(labels, held_out, validation, seed):
    """Indices (train, validation, held_out), each sorted: from every class, the shares
    `held_out` and `validation` of its images (rounded, at least one each when the class has
    three or more) drawn at random with this seed; the rest is for training."""
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_held = max(round(held_out * len(members)), 1 if len(members) >= 3 else 0)
        n_validation = max(round(validation * len(members)), 1 if len(members) >= 3 else 0)
        parts[2].append(members[:n_held])
        parts[1].append(members[n_held : n_held + n_validation])
        parts[0].append(members[n_held + n_validation :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in parts)


def fit_classifier(model, images, labels, train, validation, max_epochs, patience, verbose=2):
    """Train on images[train], stopping when the validation loss has not fallen by
    MIN_IMPROVEMENT for `patience` epochs, and keep the best epoch's weights; returns Keras's History."""
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=MIN_IMPROVEMENT, patience=patience,
                                         restore_best_weights=True)
    return model.fit(
        images[train], labels[train], validation_data=(images[validation], labels[validation]),
        epochs=max_epochs, batch_size=BATCH_SIZE, callbacks=[stop], verbose=verbose,
    )


def confusion_matrix(labels, predictions, n_classes):
    """counts[true, predicted]."""
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts


def predict_classes(model, images, batch_size=256):
    return np.argmax(model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0), axis=1)


def features_model(model):
    """A model giving (pooled features, class scores): the global average pooling's output, what
    gan_metrics measures on, beside the classifier's scores. Build it once: each new model's
    predict traces its function again."""
    return keras.Model(model.input, [model.layers[-2].output, model.output])


def features_and_classes(both, pixels, batch_size=256):
    """(pooled features (N, last convolution's width), predicted classes (N,)) from features_model's
    model, of images given as 0..255 pixel values."""
    features, scores = both.predict(np.asarray(pixels, np.float32), batch_size=batch_size, verbose=0)
    return features, np.argmax(scores, axis=1)


class ClassifierFileError(ValueError):
    """A file that cannot be read as a classifier of this module's kind."""


def check_archive(path):
    """What a .keras file declares, checked before Keras builds the model its config.json
    describes and then reads the weights into it: a regular file (open_regular), a zip of
    config.json and model.weights.h5, made of build_classifier's layers, for 80x80 RGB input;
    each Conv2D's filters and kernel size and each Dense's units are those of the weights the
    file stores, which fit in memory and read no other file (storage.check_self_contained).
    ClassifierFileError or InputError otherwise: a config of a few KB may declare a model of
    gigabytes."""
    try:
        with open_regular(path, "rb") as f, zipfile.ZipFile(f) as archive:
            if archive.getinfo("config.json").file_size > CONFIG_BYTES:
                raise ClassifierFileError(f"{path}: its config.json is over {CONFIG_BYTES} bytes")
            config = json.loads(archive.read("config.json"))
            stored = _stored_shapes(archive, path)
    except (ClassifierFileError, InputError):
        raise
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, EOFError, RecursionError, AttributeError, TypeError) as e:
        raise ClassifierFileError(f"{path}: not a readable Keras model ({type(e).__name__}: {e})") from e
    n_weights = sum(math.prod(shape) for layer in _declared_layers(config, path) for shape in
                    _checked_sizes(layer, stored, path))
    check_memory(cgan.MODEL_BYTES * n_weights, f"{path}'s model of {n_weights} weights")


def _stored_shapes(archive, path):
    """{layer name: [weight shapes]} of a .keras file's model.weights.h5 (the datasets' shapes, none of their data)."""
    import h5py

    name = "model.weights.h5"
    check_memory(archive.getinfo(name).file_size, f"{path}'s {name}")
    shapes = {}
    with h5py.File(io.BytesIO(archive.read(name)), "r") as h5:
        check_self_contained(h5, f"{path}'s {name}")
        for group in h5.get("layers", {}).values():
            variables = group.get("vars")
            if isinstance(variables, h5py.Group) and "name" in variables.attrs:
                layer = variables.attrs["name"]
                shapes[layer.decode() if isinstance(layer, bytes) else str(layer)] = [
                    variables[k].shape for k in sorted(variables, key=lambda k: int(k) if k.isdigit() else -1)]
    return shapes


def _declared_layers(config, path):
    """The layers a saved model's config declares; ClassifierFileError for a layer build_classifier never makes."""
    model = config.get("config") if isinstance(config, dict) else None
    layers_ = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers_, list) or config.get("class_name") not in ("Functional", "Sequential"):
        raise ClassifierFileError(f"{path}: its config.json declares no model of layers")
    for layer in layers_:
        kind = layer.get("class_name") if isinstance(layer, dict) else None
        if kind not in CLASSIFIER_LAYERS or not isinstance(layer.get("config"), dict):
            raise ClassifierFileError(f"{path}: a layer of kind {kind!r}: a classifier of train_classifier.py is made "
                                      f"of {', '.join(CLASSIFIER_LAYERS)}")
    return layers_


def _whole_numbers(values):
    return all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in values)


def _checked_sizes(layer, stored, path):
    """The weight shapes of one declared layer, its declared sizes checked against them: the
    input 80x80 RGB, a Conv2D's filters and kernel size, a Dense layer's units."""
    kind, config = layer["class_name"], layer["config"]
    name = str(config.get("name"))
    if kind == "InputLayer" and config.get("batch_shape") != [None, *cgan.IMAGE_SHAPE]:
        raise ClassifierFileError(f"{path}: built for input {config.get('batch_shape')}, not 80x80 RGB images "
                                  f"{[None, *cgan.IMAGE_SHAPE]}")
    if kind not in ("Conv2D", "Dense"):
        return []
    key = "filters" if kind == "Conv2D" else "units"
    size, kernel_size = config.get(key), config.get("kernel_size") if kind == "Conv2D" else []
    if not (_whole_numbers([size]) and isinstance(kernel_size, list) and _whole_numbers(kernel_size)):
        raise ClassifierFileError(f"{path}: layer {name!r} declares {key} {size!r}"
                                  f"{f', kernel {kernel_size!r}' if kind == 'Conv2D' else ''}: not whole numbers from 1")
    shapes = stored.get(name, [])
    kernel = list(shapes[0]) if shapes else None
    if not kernel or kernel[-1] != size or (kind == "Conv2D" and kernel[:2] != kernel_size):
        what = f"{key} {size}" + (f", kernel {kernel_size}" if kind == "Conv2D" else "")
        raise ClassifierFileError(f"{path}: layer {name!r} declares {what}, but the weights it stores are "
                                  f"{kernel if shapes else 'none'}")
    return shapes


def load_classifier(path):
    """A classifier saved by train_classifier.py, its file checked first (check_archive) and the
    held_out.npz beside it the one saved with it (flags.check_classifier_set); ClassifierFileError
    for a file that is not one."""
    check_archive(path)
    check_classifier_set(path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many kinds for a damaged or foreign file
        raise ClassifierFileError(f"{path}: not a readable Keras model ({type(e).__name__}: {e})") from e
    if not isinstance(model.layers[-1], layers.Dense) or not isinstance(model.layers[-2], layers.GlobalAveragePooling2D):
        raise ClassifierFileError(f"{path}: not a classifier ending in global average pooling and one dense layer")
    return model


def load_classifier_for(path, n_classes, dataset):
    """load_classifier of a file that must exist and know n_classes classes (those of dataset);
    ClassifierFileError otherwise."""
    if not os.path.exists(path):
        raise ClassifierFileError(f"{path} not found (make it with train_classifier.py)")
    model = load_classifier(path)
    if model.output.shape[-1] != n_classes:
        raise ClassifierFileError(f"{path} has {model.output.shape[-1]} classes, {dataset} has {n_classes}")
    shapes = [tuple(tensor.shape[1:]) for tensor in model.inputs]
    if shapes != [cgan.IMAGE_SHAPE]:
        raise ClassifierFileError(f"{path} takes inputs of shape {', '.join(map(str, shapes))}; the prepared images "
                                  f"are {cgan.IMAGE_SHAPE}")
    return model


# ---------------------------------------------------------------- saliency maps


def last_conv(model):
    return [layer for layer in model.layers if isinstance(layer, layers.Conv2D)][-1]


def _features_and_scores(model):
    """A model giving (last convolution's output, class scores) for the same input."""
    return keras.Model(model.input, [last_conv(model).output, model.output])


def _upsample(maps):
    """(N, h, w) -> (N, 80, 80), bilinear, as Grad-CAM and CAM are drawn over the image."""
    resized = tf.image.resize(tf.convert_to_tensor(maps)[..., None], (IMAGE_SIDE, IMAGE_SIDE), method="bilinear")
    return resized[..., 0].numpy()


def class_activation_maps(model, images, target, batch_size=64):
    """CAM: the last convolution's channels weighted by the dense layer's weights for class
    `target` (no bias, no ReLU), upsampled: (N, 80, 80), signed. The class score is the
    spatial mean of this map plus the bias."""
    kernel = model.layers[-1].kernel.numpy()[:, target]
    features_and_scores = _features_and_scores(model)
    maps = []
    for start in range(0, len(images), batch_size):
        features, _ = features_and_scores(np.asarray(images[start : start + batch_size], np.float32), training=False)
        maps.append(np.tensordot(features.numpy(), kernel, axes=([3], [0])))
    return _upsample(np.concatenate(maps).astype(np.float32))


def grad_cam(model, images, target, batch_size=64):
    """Grad-CAM: the last convolution's channels weighted by the spatial mean of the gradient of
    class `target`'s score, summed, ReLU, upsampled: (N, 80, 80), at least 0. With global average
    pooling and one dense layer the gradient is the dense weight over the map's area, so this is
    the positive part of CAM, scaled."""
    features_and_scores = _features_and_scores(model)
    maps = []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(np.asarray(images[start : start + batch_size], np.float32))
        with tf.GradientTape() as tape:
            features, scores = features_and_scores(batch, training=False)
            score = tf.reduce_sum(scores[:, target])
        weights = tf.reduce_mean(tape.gradient(score, features), axis=(1, 2))  # (n, channels)
        maps.append(tf.nn.relu(tf.einsum("nhwc,nc->nhw", features, weights)).numpy())
    return _upsample(np.concatenate(maps))


def integrated_gradients(model, images, target, steps=IG_STEPS, images_per_batch=IG_IMAGES_PER_BATCH,
                         baselines=None):
    """Integrated Gradients from a baseline b (default the black image, all pixels 0): (x - b) times
    the mean gradient of class `target`'s score at b + (x - b) * k/steps, k = 1..steps (the paper's
    right Riemann sum), summed over the RGB channels: (N, 80, 80), signed. The maps sum to about
    score(x) - score(b). baselines: one per image, (N, 80, 80, 3), or one for all, (80, 80, 3)."""
    alphas = tf.reshape(tf.range(1, steps + 1, dtype=tf.float32) / steps, (1, steps, 1, 1, 1))
    images = np.asarray(images, np.float32)
    baselines = np.broadcast_to(np.zeros(1, np.float32) if baselines is None else np.asarray(baselines, np.float32),
                                images.shape)
    maps = []
    for start in range(0, len(images), images_per_batch):
        batch = tf.convert_to_tensor(images[start : start + images_per_batch])
        base = tf.convert_to_tensor(baselines[start : start + images_per_batch])
        path = tf.reshape(base[:, None] + (batch - base)[:, None] * alphas, (-1, *cgan.IMAGE_SHAPE))  # (n * steps, ...)
        with tf.GradientTape() as tape:
            tape.watch(path)
            score = tf.reduce_sum(model(path, training=False)[:, target])
        mean_gradient = tf.reduce_mean(tf.reshape(tape.gradient(score, path), (-1, steps, *cgan.IMAGE_SHAPE)), axis=1)
        maps.append(tf.reduce_sum((batch - base) * mean_gradient, axis=-1).numpy())
    return np.concatenate(maps)


def blurred_baselines(images):
    """IG's blurred baseline of each image (edges reflected)."""
    return blurred(images, IG_BLUR_SIGMA, mode="reflect")


def integrated_gradients_from(model, images, target, reference_mean):
    """IG from the two baselines that do not erase dark regions, as the black image does (a dark
    pixel is near black, so its attribution is near 0 whatever the classifier reads there):
    {"ig_blur": from a blurred copy of each image (Sturmfels et al. 2020), "ig_reference": from
    the mean image of the reference class (for X-rays the healthy class: what the finding adds)}."""
    return {"ig_blur": integrated_gradients(model, images, target, baselines=blurred_baselines(images)),
            "ig_reference": integrated_gradients(model, images, target, baselines=reference_mean)}


METHODS = {"gradcam": grad_cam, "cam": class_activation_maps, "ig": integrated_gradients}
