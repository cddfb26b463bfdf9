"""The discriminator's options against mode collapse (issue 31): the minibatch standard deviation
layer (--mbstd_group) on batches built by hand, the R1 penalty (--r1_weight) on a linear
discriminator whose gradient is its kernel, several discriminator updates per generator update
(--d_steps) drawn from training's one random stream, the projection discriminator (--projection)
by its formula; each option recorded in run_config.json, restored
by --qRestart, refused with one line when bad. Resuming bit for bit with each option on:
test_train_resume.py."""

import json

import h5py
import keras
import numpy as np
import pytest

import train_cgan
from cganlib import cgan, config, datasets, run_folder, storage, training
from helpers import bad_input, history, make_xray_data, train_argv

# ---------------------------------------------------------------- the minibatch standard deviation


def group_std(images):
    """One group's statistic by hand: each feature's population standard deviation over the
    group, averaged over features and pixels."""
    return np.mean(np.sqrt(np.var(images.astype(np.float64), axis=0) + cgan.MBSTD_EPSILON))


def appended(x, group_size):
    """The MinibatchStdDev layer's output on x, checked to keep x's own channels."""
    out = np.asarray(cgan.MinibatchStdDev(group_size)(x))
    np.testing.assert_array_equal(out[..., :-1], x)
    return out[..., -1]


def test_the_minibatch_standard_deviation_of_groups_built_by_hand():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2, 3, 5)).astype(np.float32)
    x[1::2] *= 3.0  # the second group (images 1, 3, 5, 7: i mod 2) three times as varied
    feature = appended(x, 4)
    for image in range(8):
        members = x[image % 2::2]  # as StyleGAN: image i in group i mod (batch / group)
        np.testing.assert_allclose(feature[image], group_std(members), rtol=1e-5)  # constant over the map
    # identical images: only the epsilon's root is left
    same = np.repeat(x[:1], 4, axis=0)
    np.testing.assert_allclose(appended(same, 4), np.sqrt(cgan.MBSTD_EPSILON), rtol=1e-3)


@pytest.mark.parametrize("batch, group_size", [(6, 4), (3, 4), (5, 1)])
def test_a_batch_the_group_does_not_divide_is_one_group_and_a_group_of_one_gives_the_epsilon(batch, group_size):
    x = np.random.default_rng(1).normal(size=(batch, 2, 2, 3)).astype(np.float32)
    expected = group_std(x) if group_size > 1 else np.sqrt(cgan.MBSTD_EPSILON)
    np.testing.assert_allclose(appended(x, group_size), expected, rtol=1e-5)


def test_a_discriminator_with_the_layer_saves_and_loads_back(tmp_path):
    """Through the project's loader (as --qRestart) and through Keras's own (the layer is registered)."""
    d = cgan.build_discriminator(3, filters=4, lr=1e-3, mbstd_group=2)
    assert cgan.mbstd_group_of(d) == 2 and cgan.mbstd_group_of(cgan.build_discriminator(3, 4, 1e-3)) == 0
    # the dense layer sees one more map of 5 x 5
    assert d.count_params() - cgan.build_discriminator(3, 4, 1e-3).count_params() == 25
    path = str(tmp_path / "generator_model_dis001.h5")
    storage.save_model(d, path)
    images = np.random.default_rng(2).uniform(-1, 1, (4, 80, 80, 3)).astype(np.float32)
    labels = np.array([[0], [1], [2], [0]], np.int32)
    expected = d.predict_on_batch([images, labels])
    for loaded in (cgan.load_discriminator(path, 1e-3), keras.models.load_model(path)):
        assert cgan.mbstd_group_of(loaded) == 2
        np.testing.assert_allclose(loaded.predict_on_batch([images, labels]), expected, rtol=1e-5)


@pytest.mark.parametrize("group_size", [0, "4", True, None])
def test_a_saved_discriminator_declaring_a_group_that_is_not_one_is_refused(tmp_path, group_size):
    path = str(tmp_path / "generator_model_dis001.h5")
    storage.save_model(cgan.build_discriminator(3, filters=4, lr=1e-3, mbstd_group=2), path)
    with h5py.File(path, "r+") as f:
        model_config = json.loads(f.attrs["model_config"])
        for layer in model_config["config"]["layers"]:
            if "group_size" in layer["config"]:
                layer["config"]["group_size"] = group_size
        f.attrs["model_config"] = json.dumps(model_config)
    with pytest.raises(cgan.ModelFileError, match="not a discriminator: its minibatch standard deviation layers "
                                                  r"\[.*\] are not one whole group size from 1"):
        cgan.load_discriminator(path, 1e-3)


# ---------------------------------------------------------------- the R1 penalty


@pytest.mark.parametrize("options", [{}, {"spectral_norm": True}, {"mbstd_group": 2},
                                     {"projection": True, "spectral_norm": True, "mbstd_group": 2}])
def test_the_logit_is_the_one_under_the_discriminators_sigmoid(options):
    """In training: dropout drawn once, and the kernel spectral normalization assigns in the call."""
    d = cgan.build_discriminator(3, filters=4, lr=1e-3, **options)
    images = np.random.default_rng(3).uniform(-1, 1, (4, 80, 80, 3)).astype(np.float32)
    logit, output = cgan.logit_and_output(d)([images, np.array([[0], [1], [2], [1]])], training=True)
    np.testing.assert_allclose(1 / (1 + np.exp(-np.asarray(logit))), np.asarray(output), rtol=1e-5)


def linear_discriminator(n_classes, lr):
    """logit = <kernel, image and label embedding> + bias, under a sigmoid; plain SGD, so an update
    is the gradient times lr. Its logit's gradient at an image is the kernel's image part."""
    image, label = keras.Input(cgan.IMAGE_SHAPE), keras.Input((1,))
    embedded = keras.layers.Flatten()(keras.layers.Embedding(n_classes, 1)(label))
    features = keras.layers.Concatenate()([keras.layers.Flatten()(image), embedded])
    d = keras.Model([image, label], keras.layers.Dense(1, activation="sigmoid")(features))
    d.compile(optimizer=keras.optimizers.SGD(learning_rate=lr))
    rng = np.random.default_rng(4)
    n_pixels = int(np.prod(cgan.IMAGE_SHAPE))
    d.layers[-1].set_weights([rng.normal(0, 0.01, (n_pixels + 1, 1)).astype(np.float32), np.array([0.3], np.float32)])
    next(layer for layer in d.layers if isinstance(layer, keras.layers.Embedding)).set_weights(
        [rng.normal(0, 1, (n_classes, 1)).astype(np.float32)])
    return d


def test_the_r1_penalty_on_a_linear_discriminator_is_its_kernels_squared_norm(tmp_path):
    gamma, lr, target = 4.0, 0.5, 1.0
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(make_xray_data(tmp_path, n=16)))
    d = linear_discriminator(3, lr)
    g = cgan.build_generator(3, filters=4)
    train_config = config.resolve("xray", filters=4, n_batch=16, r1_weight=gamma)
    trainer = training.Trainer(g, d, cgan.build_gan(g, d), images, labels, train_config, np.random.default_rng(0))
    kernel, bias = (w.astype(np.float64) for w in d.layers[-1].get_weights())
    w_image = kernel[:-1, 0]
    embedding = next(layer for layer in d.layers if isinstance(layer, keras.layers.Embedding))
    per_class = embedding.get_weights()[0][:, 0].astype(np.float64)

    x = cgan.scale_images(images[:8])
    y = tf_constant(labels[:8].reshape(-1, 1))
    _, penalty = trainer.r1_penalty(tf_constant(x), y)
    assert float(penalty) == pytest.approx(np.sum(w_image**2), rel=1e-5)

    # one update: the cross-entropy's gradient plus gamma/2 times the penalty's, gamma * w, on the image part
    flat = x.reshape(8, -1).astype(np.float64)
    p = 1 / (1 + np.exp(-(flat @ w_image + kernel[-1, 0] * per_class[labels[:8]] + bias[0])))
    returned = float(trainer.d_step(tf_constant(x), y, target, gamma))
    assert returned == pytest.approx(np.mean(-np.log(p)), rel=1e-5)  # the cross-entropy alone
    kernel_after, bias_after = d.layers[-1].get_weights()
    expected = w_image - lr * ((p - target) @ flat / 8 + gamma * w_image)
    np.testing.assert_allclose(kernel_after[:-1, 0], expected, rtol=1e-4, atol=1e-7)
    assert bias_after[0] == pytest.approx(bias[0] - lr * np.mean(p - target), rel=1e-5)


def record_d_steps(trainer, calls):
    """Each d_step the trainer's step makes appends its (target, r1_weight) to calls (as it is traced)."""
    d_step = trainer.d_step

    def recorded(images, labels, target, r1_weight=0.0):
        calls.append((target, r1_weight))
        return d_step(images, labels, target, r1_weight)

    trainer.d_step = recorded


def test_the_training_step_penalizes_the_real_images_only_and_logs_the_cross_entropy(tmp_path):
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(make_xray_data(tmp_path, n=16)))
    losses, weights = [], []
    for gamma in (0.0, 4.0):
        d, g = linear_discriminator(3, lr=0.5), cgan.build_generator(3, filters=4)
        train_config = config.resolve("xray", filters=4, n_batch=16, r1_weight=gamma)
        trainer = training.Trainer(g, d, cgan.build_gan(g, d), images, labels, train_config, np.random.default_rng(0))
        record_d_steps(trainer, weights)
        losses.append(trainer.step()[0])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)  # the same batch, the same d before: the same d1
    assert weights == [(1.0, 0.0), (0.0, 0.0), (1.0, 4.0), (0.0, 0.0)]  # (target, r1_weight) of d1, d2 in each


def tf_constant(x):
    return keras.ops.convert_to_tensor(x)


# ---------------------------------------------------------------- several discriminator updates


def test_each_discriminator_update_draws_fresh_images_from_the_one_random_stream(tmp_path):
    """In the order a single update draws them, so --d_steps 1 draws today's batches."""
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(make_xray_data(tmp_path, n=32)))
    g, d = cgan.build_generator(3, filters=4), cgan.build_discriminator(3, filters=4, lr=1e-3)
    for d_steps in (1, 3):
        train_config = config.resolve("xray", filters=4, n_batch=16, d_steps=d_steps)
        trainer = training.Trainer(g, d, cgan.build_gan(g, d), images, labels, train_config, np.random.default_rng(5))
        batch = trainer.draw_batch()
        rng, cum = np.random.default_rng(5), datasets.cumulative_fractions(labels, 3)
        expected = []
        for _ in range(d_steps):
            idx = rng.integers(0, 32, 8)
            expected += [images[idx], labels[idx].reshape(-1, 1), cgan.training_latents(rng, 8),
                         cgan.sample_labels(rng, 8, cum).reshape(-1, 1)]
        expected += [cgan.training_latents(rng, 16), cgan.sample_labels(rng, 16, cum).reshape(-1, 1)]
        assert len(batch) == len(expected) == 4 * d_steps + 2
        for part, want in zip(batch, expected):
            np.testing.assert_array_equal(part, want)


def test_the_step_makes_every_discriminator_update_and_reports_the_last(tmp_path):
    images, labels = datasets.load_prepared(datasets.DATASETS["xray"], str(make_xray_data(tmp_path, n=32)))
    g, d = cgan.build_generator(3, filters=4), cgan.build_discriminator(3, filters=4, lr=1e-3)
    train_config = config.resolve("xray", filters=4, n_batch=16, d_steps=3, r1_weight=2.0)
    trainer = training.Trainer(g, d, cgan.build_gan(g, d), images, labels, train_config, np.random.default_rng(0))
    calls, d_step = [], trainer.d_step

    def recorded(images, labels, target, r1_weight=0.0):
        loss = d_step(images, labels, target, r1_weight)
        calls.append((target, r1_weight, float(loss), np.asarray(images).tobytes()))
        return loss

    trainer.d_step = recorded
    d1, d2, _ = trainer._train_batch(*map(tf_constant, trainer.draw_batch()))  # eagerly: losses are numbers
    assert [call[:2] for call in calls] == [(1.0, 2.0), (0.0, 0.0)] * 3
    assert (float(d1), float(d2)) == (calls[-2][2], calls[-1][2])
    assert len({call[3] for call in calls[::2]}) == 3  # three real half batches


# ---------------------------------------------------------------- the projection discriminator


def test_the_projection_discriminators_logit_is_dense_plus_the_labels_inner_product():
    d = cgan.build_discriminator(3, filters=4, lr=1e-3, projection=True)
    assert cgan.is_projection(d) and not cgan.is_projection(cgan.build_discriminator(3, 4, 1e-3))
    flatten = next(layer for layer in d.layers if isinstance(layer, keras.layers.Flatten)
                   and layer.input.shape[1:] == (5, 5, 4))  # the image's features, not the embedding
    dense = next(layer for layer in d.layers if isinstance(layer, keras.layers.Dense))
    embedding = next(layer for layer in d.layers if isinstance(layer, keras.layers.Embedding))
    rng = np.random.default_rng(6)
    embedding.set_weights([rng.normal(size=(3, 100)).astype(np.float32)])
    images = rng.uniform(-1, 1, (4, 80, 80, 3)).astype(np.float32)
    labels = np.array([[0], [1], [2], [2]], np.int32)
    features = keras.Model(d.inputs, flatten.output).predict_on_batch([images, labels]).astype(np.float64)
    kernel, bias = dense.get_weights()
    logit = features @ kernel[:, 0] + bias[0] + np.sum(embedding.get_weights()[0][labels[:, 0]] * features, axis=1)
    np.testing.assert_allclose(d.predict_on_batch([images, labels])[:, 0], 1 / (1 + np.exp(-logit)), rtol=1e-5)
    # the image alone through the convolutions: the label reaches only the projection
    assert d.get_layer(index=0).output.shape[1:] == cgan.IMAGE_SHAPE
    assert not [layer for layer in d.layers if isinstance(layer, keras.layers.Concatenate)]


def test_a_projection_discriminator_with_every_option_saves_and_loads_back(tmp_path):
    d = cgan.build_discriminator(3, filters=4, lr=1e-3, spectral_norm=True, mbstd_group=2, projection=True)
    path = str(tmp_path / "generator_model_dis001.h5")
    storage.save_model(d, path)
    loaded = cgan.load_discriminator(path, 1e-3)
    assert (cgan.is_projection(loaded), cgan.has_spectral_norm(loaded), cgan.mbstd_group_of(loaded)) == (True, True, 2)
    for a, b in zip(d.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_projection_discriminator_claiming_more_classes_than_memory_holds_is_refused(tmp_path):
    """Its embedding is as long as the features for each class: 3,225 numbers at 128 filters."""
    path = str(tmp_path / "generator_model_dis001.h5")
    storage.save_model(cgan.build_discriminator(3, filters=128, lr=1e-3, projection=True, mbstd_group=4), path)
    with h5py.File(path, "r+") as f:
        model_config = json.loads(f.attrs["model_config"])
        for layer in model_config["config"]["layers"]:
            if layer["class_name"] == "Embedding":
                layer["config"]["input_dim"] = 10**7  # 516 GB of weights and moments; a label map's would be 1.3 GB
        f.attrs["model_config"] = json.dumps(model_config)
    with pytest.raises(storage.InputError, match="a projection discriminator of 128 filters and 10000000 classes would "
                                                 "need 516.0 GB of memory"):
        cgan.load_discriminator(path, 1e-3)


# ---------------------------------------------------------------- recorded, restored, refused


OPTIONS = [
    # (flags, run_config.json's values, the settings line's words, a contradicting flag on restart)
    (["--mbstd_group", "4"], {"mbstd_group": 4}, "mbstd_group=4", ["--mbstd_group", "2"]),
    (["--r1_weight", "2.5"], {"r1_weight": 2.5}, "r1_weight=2.5", ["--r1_weight", "1"]),
    (["--d_steps", "2"], {"d_steps": 2}, "d_steps=2", ["--d_steps", "1"]),
    (["--projection"], {"projection": True}, "projection=on", None),  # a switch: no value to contradict it
]


@pytest.mark.slow
@pytest.mark.parametrize("flags, recorded, shown, contrary", OPTIONS)
def test_each_option_is_recorded_and_a_restart_takes_it_from_run_config(tmp_path, capsys, flags, recorded, shown,
                                                                        contrary):
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    assert train_cgan.main(train_argv(data, results, "--seed", 1, "--epochs_goal", 1, *flags)) == 0
    assert shown in capsys.readouterr().out.splitlines()[0]
    saved = run_folder.read_config(str(results))
    assert {name: saved["flags"][name] for name in recorded} == recorded
    assert {name: saved["config"][name] for name in recorded} == recorded
    assert train_cgan.main(train_argv(data, results, "--qRestart", "--epochs_goal", 2)) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert shown in first and first.endswith("(settings from run_config.json)")
    if contrary:
        err = bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart", "--epochs_goal", 3, *contrary))
        assert f"contradicts this run's {flags[0]} {flags[1]} " in err


@pytest.mark.parametrize("flags, message", [
    (["--mbstd_group", -1], "--mbstd_group: must be at least 0, got -1"),
    (["--mbstd_group", 3], "--mbstd_group 3 does not divide the discriminator's batch of 8 (half of --n_batch 16)"),
    (["--r1_weight", -1], "--r1_weight: must be at least 0, got -1"),
    (["--r1_weight", "nan"], "--r1_weight: must be at least 0, got nan"),
    (["--d_steps", 0], "--d_steps: must be at least 1, got 0"),
    (["--projection=yes"], "--projection: ignored explicit argument 'yes'"),
])
def test_bad_values_are_refused_with_one_line(tmp_path, capsys, flags, message):
    data = make_xray_data(tmp_path / "data", n=32)
    assert message in bad_input(tmp_path, capsys, train_argv(data, tmp_path / "results", *flags))


@pytest.mark.parametrize("options, message", [
    ({"mbstd_group": 2}, "the saved discriminator has a minibatch standard deviation group of 2; --mbstd_group is 0"),
    ({"projection": True}, "the saved discriminator is a projection discriminator; --projection is off"),
])
def test_a_restart_whose_saved_discriminator_was_built_otherwise_is_refused(tmp_path, capsys, options, message):
    """A run without run_config.json takes its settings from the command line: they must fit its models."""
    data = make_xray_data(tmp_path / "data", n=32)
    results = tmp_path / "results"
    results.mkdir()
    run_folder.write_config(str(results), {"flags": {}})
    paths = run_folder.model_paths(str(results), 1)
    storage.save_model(cgan.build_generator(3, filters=4), paths["generator"])
    storage.save_model(cgan.build_discriminator(3, filters=4, lr=4e-5, **options), paths["discriminator"])
    history(results, [1])
    err = bad_input(tmp_path, capsys, train_argv(data, results, "--qRestart", "--epochs_goal", 2))
    assert err.endswith(message)
