"""train_explainer.py's work: settle the run (fresh or --qRestart), train epoch by epoch, write each
epoch's files whole and its history row last; and load_explainer, which explain_image.py and the
demo use to read a run back.
"""

import os
import re
import shlex
import sys
import time

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before keras)

# isort: split
import keras
import numpy as np
import tensorflow as tf

from cganlib import cgan, plots, run_folder
from cganlib.classifier import ClassifierFileError, load_classifier_for
from cganlib.config import EXPLAINER_HYPERPARAMETERS, ExplainerConfig
from cganlib.datasets import load_prepared, training_rows
from cganlib.explainer import (
    REDRAWING,
    InversionTrainer,
    Trainer,
    batch_plan,
    build_explainer,
    build_inversion,
    switch,
    to_unit,
)
from cganlib.storage import InputError, atomic_write, open_h5, save_figure

HISTORY_FIELDS = ("epoch", "critic", "adversarial", "identity", "switch_l1", "switch_tv", "cycle", "guide", "latent_critic",
                  "latent", "reconstruction", "mse", "secs")
RUN_FLAGS = ("dataset", "data_dir", "held_out_from", "guide", "model", "seed")  # besides the config, what a restart keeps
SAMPLE_IMAGES = 4  # training images drawn switched in switched_eNNN.png


def weights_path(out_dir, epoch):
    return os.path.join(out_dir, f"explainer_{epoch:03d}.weights.h5")


def state_path(out_dir, epoch):
    return os.path.join(out_dir, f"explainer_state_{epoch:03d}.npz")


def load_weights(model, path):
    """model.load_weights of a .weights.h5 that is a regular, self-contained file (storage.open_h5)."""
    with open_h5(path):
        pass
    model.load_weights(path)


def complete_epochs(out_dir):
    """The epochs history.csv lists whose weights and state files are there, in order."""
    return [int(row["epoch"]) for row in run_folder.read_history(out_dir)
            if os.path.isfile(weights_path(out_dir, int(row["epoch"])))
            and os.path.isfile(state_path(out_dir, int(row["epoch"])))]


# ---------------------------------------------------------------- settling the run


def default_held_out(args):
    path = os.path.join(args.data_dir, "classifier", "held_out.npz")
    return path if os.path.isfile(path) else "none"


def given_config(args):
    return {name: getattr(args, name) for name in EXPLAINER_HYPERPARAMETERS if getattr(args, name) is not None}


def fresh_settings(args):
    """(flags, config) of a new run: the flags given, the config's defaults for the rest."""
    flags = {"dataset": args.dataset, "data_dir": args.data_dir,
             "held_out_from": args.held_out_from or default_held_out(args), "guide": args.guide, "model": args.model,
             "seed": 0 if args.seed is None else args.seed}
    return flags, ExplainerConfig(**given_config(args))


def restart_settings(args, record):
    """(flags, config) of run_config.json; InputError when a flag given contradicts them."""
    flags, recorded = record.get("flags", {}), record.get("config", {})
    try:
        config = ExplainerConfig(**recorded)
    except (TypeError, ValueError) as e:
        raise InputError(f"{os.path.join(args.out_dir, run_folder.RUN_CONFIG)}: not an explainer's run config ({e})") from e
    given = {**given_config(args), **{name: getattr(args, name) for name in ("held_out_from", "guide", "model", "seed")
                                      if getattr(args, name) is not None}}
    given.update(dataset=args.dataset, data_dir=args.data_dir)
    for name, value in given.items():
        before = flags.get(name, recorded.get(name))
        if value != before and not (name == "data_dir" and os.path.abspath(value) == os.path.abspath(before or "")):
            raise InputError(f"--{name} {value} contradicts the run in {args.out_dir} ({before}); leave it out to go on, "
                             f"or start again with --overwrite")
    return {name: flags.get(name) for name in RUN_FLAGS}, config


def data_files(args, flags):
    paths = [os.path.join(args.data_dir, args.settings.images_file), os.path.join(args.data_dir, args.settings.labels_file)]
    return paths + [path for path in (flags["held_out_from"], flags["guide"], flags["model"]) if path and path != "none"]


def load_inverted(path, n_classes):
    """--model's generator, which must draw the data's classes; InputError otherwise."""
    try:
        generator = cgan.load_generator(path)
    except cgan.ModelFileError as e:
        raise InputError(str(e)) from e
    if cgan.n_classes_of(generator) != n_classes:
        raise InputError(f"{path} draws {cgan.n_classes_of(generator)} classes, the data has {n_classes}")
    return generator


def load_guide(path, n_classes):
    try:
        return load_classifier_for(path, n_classes, "the data")
    except ClassifierFileError as e:
        raise InputError(str(e)) from e


# ---------------------------------------------------------------- an epoch's files


def change_image(change):
    """A change (H, W, C) in [-2, 2] as RGB in [0, 1]: white where nothing changes, red where the
    image gets brighter, blue where it gets darker."""
    m = np.clip(change.mean(axis=-1), -1.0, 1.0)
    fade = 1.0 - np.abs(m)
    return np.stack([np.where(m > 0, 1.0, fade), fade, np.where(m < 0, 1.0, fade)], axis=-1)


def samples_figure(trainer, images, labels, class_names, path):
    """switched_eNNN.png: per image, the image, then per other label the switched image and its change
    (a redrawing explainer's: from the image it draws under the image's own label, shown second)."""
    n_classes = len(class_names)
    rows, names = [], []
    for image, label in zip(images, labels):
        others = [j for j in range(n_classes) if j != label]
        switched, changes = switch(trainer.explainer, np.repeat(image[None], len(others), 0), np.array(others), n_classes)
        row = [(image + 1) / 2]
        if trainer.explainer.name in REDRAWING:
            own, _ = switch(trainer.explainer, image[None], np.array([label]), n_classes)
            changes = switched - own
            row.append((own[0] + 1) / 2)
        for s, c in zip(switched, changes):
            row += [(s + 1) / 2, change_image(c)]
        rows.append(row)
        names.append(f"{class_names[label]} ->\n" + ", ".join(class_names[j] for j in others))
    fig = plots.image_rows(rows, names, title=os.path.basename(path))
    save_figure(fig, path, dpi=plots.DPI)
    plots.show_or_close(fig, False)


def save_epoch(out_dir, trainer, epoch, history, samples):
    """The epoch's files, each whole, history.csv last (the epoch's commit)."""
    atomic_write(weights_path(out_dir, epoch), trainer.explainer.save_weights, suffix=".weights.h5")
    run_folder.save_state_file(state_path(out_dir, epoch), {"epoch": epoch}, trainer.state_arrays())
    samples_figure(trainer, *samples, os.path.join(out_dir, f"switched_e{epoch:03d}.png"))
    run_folder.write_history(out_dir, history, HISTORY_FIELDS)


# ---------------------------------------------------------------- the run


def clear_run(out_dir):
    """--overwrite: remove the run's own files (those this module names), nothing else."""
    own = re.compile(r"^(explainer_\d{3,}\.weights\.h5|explainer_state_\d{3,}\.npz|switched_e\d{3,}\.png|"
                     r"history\.csv|run_config\.json)$")
    for name in os.listdir(out_dir):
        if own.match(name):
            os.remove(os.path.join(out_dir, name))


def restore(trainer, out_dir, epoch):
    path = state_path(out_dir, epoch)
    try:
        load_weights(trainer.explainer, weights_path(out_dir, epoch))
        _, arrays = run_folder.load_state_file(path)
        trainer.restore_arrays(arrays, path)
    except (OSError, ValueError) as e:
        raise InputError(f"epoch {epoch} of {out_dir} cannot be restored: {e}") from e


def resume_command(args, epoch_goal):
    return shlex.join(["python", "files/train_explainer.py", "--dataset", args.dataset, "--data_dir", args.data_dir,
                       f"--out_dir={args.out_dir}", "--qRestart", "--epochs_goal", str(epoch_goal)])


def train(trainer, images, labels, config, seed, first, goal, out_dir, history, samples):
    """Epochs first+1 .. goal; each epoch's batches from (seed, epoch), so a restart repeats them."""
    for epoch in range(first + 1, goal + 1):
        start = time.monotonic()
        rows, targets = batch_plan(labels, config.n_batch, trainer.n_classes, np.random.default_rng([seed, epoch]))
        sums = {}
        for batch_rows, batch_targets in zip(rows, targets):
            terms = trainer.step(tf.constant(images[batch_rows]), tf.constant(labels[batch_rows]),
                                 tf.constant(batch_targets))
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value)
        means = {name: value / len(rows) for name, value in sums.items()}
        seconds = time.monotonic() - start
        history.append({"epoch": epoch, **{name: f"{means.get(name, 0.0):.5f}" for name in HISTORY_FIELDS[1:-1]},
                        "secs": f"{seconds:.1f}"})
        save_epoch(out_dir, trainer, epoch, history, samples)
        print(f"epoch {epoch}/{goal}: " + ", ".join(f"{name} {means[name]:.4f}" for name in HISTORY_FIELDS[1:-1]
                                                     if name in means) + f", {seconds:.1f} s", flush=True)


def settle(args):
    """(flags, config, first epoch done) from the command line and the run folder; InputError
    for a folder that holds another run, a restart without a run, a flag that contradicts it."""
    record = run_folder.read_config(args.out_dir)
    done = complete_epochs(args.out_dir) if os.path.isdir(args.out_dir) else []
    if args.qRestart:
        if record is None:
            raise InputError(f"{args.out_dir} holds no explainer run (no {run_folder.RUN_CONFIG}) to go on with")
        flags, config = restart_settings(args, record)
        run_folder.check_data_files(record.get("data_files", []))
        first = done[-1] if done and args.epochs_done is None else args.epochs_done or 0
        if first and first not in done:
            raise InputError(f"epoch {first} of {args.out_dir} is not complete; complete: {done or 'none'}")
        return flags, config, first
    if (record is not None or done) and not args.overwrite:
        raise InputError(f"{args.out_dir} holds a run: go on with --qRestart, or start again with --overwrite")
    flags, config = fresh_settings(args)
    if config.guide_weight and not flags["guide"]:
        raise InputError("--guide_weight needs --guide, the classifier that guides the switch")
    if (config.architecture == "inversion") != bool(flags["model"]):
        raise InputError("--architecture inversion and --model go together: the encoder inverts --model's generator")
    if config.latent_weight and config.architecture != "encoder_decoder":
        raise InputError("--latent_weight needs --architecture encoder_decoder: the U-Net has no code to read")
    return flags, config, 0


def run(args):
    """train_explainer.py's work, once its flags are parsed."""
    with run_folder.locked(args.out_dir):
        flags, config, first = settle(args)
        images, labels = load_prepared(args.settings, args.data_dir, args.attributes)
        rows = training_rows(flags["held_out_from"], len(labels))
        if args.epochs_goal <= first:
            raise InputError(f"--epochs_goal {args.epochs_goal} is not past epoch {first}, where the run stands")
        if len(rows) < config.n_batch:
            raise InputError(f"{len(rows)} training images are fewer than one batch of {config.n_batch}")
        inverted = load_inverted(flags["model"], args.settings.n_classes) if config.architecture == "inversion" else None
        if not args.qRestart:
            record = {"flags": flags, "config": config.record(), "classes": list(args.settings.class_names),
                      "data_files": [run_folder.file_record(path) for path in data_files(args, flags)],
                      **run_folder.versions_and_time()}
            if args.overwrite:
                clear_run(args.out_dir)
            run_folder.write_config(args.out_dir, record)
        keras.utils.set_random_seed(flags["seed"])
        n_classes = args.settings.n_classes
        guide = load_guide(flags["guide"], n_classes) if flags["guide"] else None
        if inverted is not None:
            trainer = InversionTrainer(config, inverted)
        else:
            trainer = Trainer(config, n_classes, guide)
        if first:
            restore(trainer, args.out_dir, first)
        history = run_folder.read_history(args.out_dir, first)
        run_folder.write_history(args.out_dir, history, HISTORY_FIELDS)
        train_images, train_labels = to_unit(images[rows]), labels[rows].astype(np.int32)
        samples = (train_images[:SAMPLE_IMAGES], train_labels[:SAMPLE_IMAGES], args.settings.class_names)
        print(f"explainer: {len(rows)} training images ({len(labels) - len(rows)} held out: {flags['held_out_from']}), "
              f"epochs {first + 1}..{args.epochs_goal}, {len(rows) // config.n_batch} steps each; "
              + ", ".join(f"{k} {v if isinstance(v, str) else format(v, 'g')}" for k, v in config.record().items()) + f", seed {flags['seed']}", flush=True)
        try:
            train(trainer, train_images, train_labels, config, flags["seed"], first, args.epochs_goal, args.out_dir,
                  history, samples)
        except KeyboardInterrupt:
            done = complete_epochs(args.out_dir)
            then = f"resume with: {resume_command(args, args.epochs_goal)}" if done else "start again with --overwrite"
            print(f"\ninterrupted; {then}", file=sys.stderr)
            raise
    print(f"wrote {args.out_dir}: epochs {first + 1}..{args.epochs_goal}", flush=True)


# ---------------------------------------------------------------- reading a run back


def load_explainer(path):
    """(explainer model, class names, epoch) from a train_explainer.py run folder (its newest
    complete epoch) or one of its explainer_NNN.weights.h5 files; InputError otherwise."""
    folder, epoch = (path, None) if os.path.isdir(path) else (os.path.dirname(path) or ".", None)
    record = run_folder.read_config(folder)
    if record is None or "classes" not in record:
        raise InputError(f"{path}: not a train_explainer.py run (no {run_folder.RUN_CONFIG} with classes beside it)")
    done = complete_epochs(folder)
    if os.path.isdir(path):
        if not done:
            raise InputError(f"{path} holds no complete epoch")
        epoch = done[-1]
    else:
        name = os.path.basename(path)
        epoch = next((e for e in done if os.path.basename(weights_path(folder, e)) == name), None)
        if epoch is None:
            raise InputError(f"{path}: not a complete epoch's explainer_NNN.weights.h5 of its run")
    try:
        config = ExplainerConfig(**record["config"])
        if config.architecture == "inversion":
            model = build_inversion(load_inverted(record["flags"]["model"], len(record["classes"])), config.filters)
        else:
            model = build_explainer(len(record["classes"]), config.filters, grey=config.grey, architecture=config.architecture)
        load_weights(model, weights_path(folder, epoch))
    except (TypeError, ValueError, OSError) as e:
        raise InputError(f"{weights_path(folder, epoch)}: not this run's explainer ({e})") from e
    return model, list(record["classes"]), epoch
