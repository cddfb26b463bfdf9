"""evaluate.py's work: saved generators measured against the real images, per epoch and class,
on the project's own classifier (gan_metrics.py says what each measure is); the measures'
table and figure, and the real and generated images in 2-D with TensorBoard's projector files.
"""

import csv
import os

from cganlib import tensorflow_env  # noqa: F401  (sets TensorFlow's environment, so before it)

# isort: split
import numpy as np
import tensorflow as tf
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from cganlib import cgan, cli, plots
from cganlib.classifier import (
    ClassifierFileError,
    features_and_classes,
    features_model,
    load_classifier_for,
)
from cganlib.datasets import IMAGE_SIDE, load_prepared
from cganlib.flags import HELD_OUT_FILE
from cganlib.gan_metrics import (
    ALL_CLASSES,
    FIELDS,
    FLOOR_EPOCH,
    KNN_K,
    MEASURES,
    collapsed,
    diversity,
    measures,
)
from cganlib.saved_generators import (
    check_generators_fit,
    check_labels,
    chosen_generators,
    for_each_model,
)
from cganlib.storage import InputError, atomic_write, load_arrays, save_figure

MIN_REAL_PER_CLASS = 2 * (KNN_K + 1)  # the floor's halves need more than k neighbours each
PIXEL_COMPONENTS = 50  # raw pixels -> 50 principal components before t-SNE and in the projector
SPRITE_SIDE = 40  # TensorBoard shows the sprite's thumbnails; 80x80 would pass its 8192-pixel bound at 10,000 points
FLOAT_BYTES = 4
REAL_STREAM = 1  # the real images' pairs are drawn from their own random stream, not the generated images'


# ---------------------------------------------------------------- inputs


def held_out_accuracy(path):
    """The accuracy train_classifier.py recorded in held_out.npz, or None without the file;
    InputError unless it is one number in [0, 1]."""
    if not os.path.lexists(path):
        return None

    def one_number(key, shape, dtype):
        if shape != () or dtype.kind not in "fiu":  # a float or an integer
            raise InputError(f"{path}: accuracy must be one number, got {dtype} {shape}")

    (accuracy,) = load_arrays(path, ("accuracy",), "train_classifier.py", check=one_number)
    if not 0 <= accuracy <= 1:
        raise InputError(f"{path}: accuracy must be in [0, 1], got {accuracy}")
    return float(accuracy)


def load_inputs(args):
    """(the classifier's features_model, its held-out accuracy or None, and by class: the real
    images in [0, 1], their features, the classes the classifier gives them), checked."""
    check_labels(args.labels, args.settings.n_classes, args.dataset, minimum=1)
    try:
        classifier = load_classifier_for(args.classifier, args.settings.n_classes, args.dataset)
    except ClassifierFileError as e:
        raise InputError(str(e)) from e
    accuracy = held_out_accuracy(os.path.join(os.path.dirname(args.classifier), HELD_OUT_FILE))
    images, labels = load_prepared(args.settings, args.data_dir, args.attributes)
    counts = {label: int(np.sum(labels == label)) for label in args.labels}
    short = [label for label, count in counts.items() if count < MIN_REAL_PER_CLASS]
    if short:
        raise InputError(f"class {short[0]} ({args.settings.class_names[short[0]]}) has {counts[short[0]]} real images; "
                         f"the measures need at least {MIN_REAL_PER_CLASS}")
    n_real, n_generated = sum(counts.values()), args.n * len(args.labels)
    cli.check_memory((2 * n_real + 2 * n_generated) * IMAGE_SIDE**2 * 3 * FLOAT_BYTES,
                     f"--n {args.n} for {len(args.labels)} classes and {n_real} real images")
    chosen = np.isin(labels, args.labels)
    features_and_scores = features_model(classifier)
    features, classes = features_and_classes(features_and_scores, images[chosen])
    by_class = {label: labels[chosen] == label for label in args.labels}
    real = {label: images[chosen][members].astype(np.float32) / 255.0 for label, members in by_class.items()}
    real_features = {label: features[members] for label, members in by_class.items()}
    real_classes = {label: classes[members] for label, members in by_class.items()}
    return features_and_scores, accuracy, real, real_features, real_classes


def generated_sets(generator, labels, n, seed):
    """{label: (n, 80, 80, 3) images in [0, 1]} from the same n training-style latents under each
    label, generated in one call."""
    latents = cgan.training_latents(np.random.default_rng(seed), n, generator.inputs[0].shape[1])
    images = cgan.generate(generator, np.tile(latents, (len(labels), 1)), np.repeat(labels, n))
    return dict(zip(labels, images.reshape(len(labels), n, *images.shape[1:])))


# ---------------------------------------------------------------- the measures


def pooled(by_class):
    return np.concatenate(list(by_class.values()))


def real_diversities(real, seed):
    """{label or `all`: diversity} of the real images, measured once for every epoch."""
    found = {label: diversity(images, np.random.default_rng([seed, REAL_STREAM])) for label, images in real.items()}
    return {**found, ALL_CLASSES: diversity(pooled(real), np.random.default_rng([seed, REAL_STREAM]))}


def measured_rows(epoch, real, real_features, real_diversity, generated, generated_features, accuracy, seed):
    """A row per class and the `all` row: measures of the generated sets against the real ones."""
    rows = []
    for label in generated:
        row = measures(real[label], real_features[label], generated[label], generated_features[label],
                       np.random.default_rng(seed))
        rows.append({"epoch": epoch, "label": label, "n": len(generated[label]), "label_accuracy": accuracy[label],
                     **row, "diversity_real": real_diversity[label]})
    row = measures(pooled(real), pooled(real_features), pooled(generated), pooled(generated_features),
                   np.random.default_rng(seed))
    n_all = sum(len(images) for images in generated.values())
    overall = sum(accuracy[label] * len(generated[label]) for label in generated) / n_all
    rows.append({"epoch": epoch, "label": ALL_CLASSES, "n": n_all, "label_accuracy": overall, **row,
                 "diversity_real": real_diversity[ALL_CLASSES]})
    return rows


def class_accuracy(classes, label):
    return float(np.mean(classes == label))


def floor_rows(real, real_features, real_classes, seed):
    """The real-against-real rows: each class's real images in two random halves, the second
    half measured against the first as if it were generated."""
    rng = np.random.default_rng(seed)
    first, second, first_features, second_features, accuracy = {}, {}, {}, {}, {}
    for label, images in real.items():
        order = rng.permutation(len(images))
        a, b = order[: len(images) // 2], order[len(images) // 2 :]
        first[label], second[label] = images[a], images[b]
        first_features[label], second_features[label] = real_features[label][a], real_features[label][b]
        accuracy[label] = class_accuracy(real_classes[label][b], label)
    return measured_rows(FLOOR_EPOCH, first, first_features, real_diversities(first, seed), second, second_features,
                         accuracy, seed)


def evaluate_epoch(epoch, generator, features, real, real_features, real_diversity, args):
    """The epoch's rows, its generated images and their features, by class."""
    generated = generated_sets(generator, args.labels, args.n, args.seed)
    all_features, all_classes = features_and_classes(features, pooled(generated) * 255.0)
    generated_features, accuracy = {}, {}
    for k, label in enumerate(generated):
        window = slice(k * args.n, (k + 1) * args.n)
        generated_features[label] = all_features[window]
        accuracy[label] = class_accuracy(all_classes[window], label)
    rows = measured_rows(epoch, real, real_features, real_diversity, generated, generated_features, accuracy, args.seed)
    return rows, generated, generated_features


# ---------------------------------------------------------------- output


def class_name(label, settings):
    return ALL_CLASSES if label == ALL_CLASSES else settings.class_names[label]


def row_line(row, settings):
    name = class_name(row["label"], settings)
    return (f"{row['epoch']!s:>5} {name:>10}  label_accuracy {row['label_accuracy']:.3f}  diversity "
            f"{row['diversity_gen']:.3f} (real {row['diversity_real']:.3f})  fd {row['fd']:.4g}  kid {row['kid']:.4g}  "
            f"precision {row['precision']:.3f}  recall {row['recall']:.3f}  nn_ssim {row['nn_ssim']:.3f}  "
            f"nn_psnr {row['nn_psnr']:.2f}")


def collapse_warning(row, settings):
    """The warning line for a class whose generated images are much less varied, or None."""
    if row["label"] == ALL_CLASSES or not collapsed(row["diversity_gen"], row["diversity_real"]):
        return None
    return (f"warning: epoch {row['epoch']}, class {row['label']} ({class_name(row['label'], settings)}): the generated "
            f"images are much less varied than the real ones (diversity {row['diversity_gen']:.3f} against "
            f"{row['diversity_real']:.3f}: less than half the real images' dissimilarity) - mode collapse")


def write_csv(rows, path):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({key: f"{value:.6g}" if isinstance(value, float) else value for key, value in row.items()})

    atomic_write(path, write, suffix=".csv")


def write_results(floor, rows, args):
    """evaluation.csv and evaluation.png of the epochs measured, if any."""
    if rows:
        write_csv(floor + rows, os.path.join(args.out_dir, "evaluation.csv"))
        fig = measure_figure(floor + rows, args.settings, os.path.join(args.out_dir, "evaluation.png"))
        plots.show_or_close(fig, args.show)


def measure_figure(rows, settings, path):
    """One panel per measure over the epochs: a line per class and `all`, the floor dashed."""
    series, floors = {}, {}
    for row in rows:
        name = class_name(row["label"], settings)
        if row["epoch"] == FLOOR_EPOCH:
            floors[name] = row
        else:
            series.setdefault(name, []).append(row)
    fig = plots.measure_panels(
        {name: ([r["epoch"] for r in rs], {m: [r[m] for r in rs] for m in MEASURES}) for name, rs in series.items()},
        {name: {m: row[m] for m in MEASURES} for name, row in floors.items()}, MEASURES,
        title="generated against real images per class (dashed: real against real)")
    save_figure(fig, path, dpi=100)
    return fig


# ---------------------------------------------------------------- the embedding


def embedding_points(real, real_features, generated, generated_features):
    """(pixels (N, 19200), features (N, d), images, sources, labels) of every real and generated image."""
    images, features, sources, labels = [], [], [], []
    for source, image_sets, feature_sets in (("real", real, real_features), ("generated", generated, generated_features)):
        for label, class_images in image_sets.items():
            images.append(class_images)
            features.append(feature_sets[label])
            sources += [source] * len(class_images)
            labels += [label] * len(class_images)
    images = np.concatenate(images)
    return images.reshape(len(images), -1), np.concatenate(features), images, np.array(sources), np.array(labels)


def two_d(points, seed):
    """(PCA 2-D, t-SNE 2-D) of the points; t-SNE with PCA's start, as scikit-learn advises."""
    perplexity = min(30.0, (len(points) - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return PCA(n_components=2, random_state=seed).fit_transform(points), tsne.fit_transform(points)


def pixel_components(pixels, seed):
    return PCA(n_components=min(PIXEL_COMPONENTS, *pixels.shape), random_state=seed).fit_transform(pixels)


def sprite(images, side=SPRITE_SIDE):
    """The images shrunk to side x side, in a square grid row by row (TensorBoard's sprite)."""
    small = tf.image.resize(images, (side, side), antialias=True).numpy()
    columns = int(np.ceil(np.sqrt(len(small))))
    grid = np.zeros((columns * side, columns * side, 3), np.float32)
    for k, image in enumerate(small):
        row, column = divmod(k, columns)
        grid[row * side : (row + 1) * side, column * side : (column + 1) * side] = image
    return np.clip(grid * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _write_lines(path, lines):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")

    atomic_write(path, write)


PROJECTOR_CONFIG = """embeddings {{
  tensor_name: "{name}"
  tensor_path: "{name}.tsv"
  metadata_path: "metadata.tsv"
  sprite {{
    image_path: "sprite.png"
    single_image_dim: {side}
    single_image_dim: {side}
  }}
}}
"""


def write_projector(folder, tensors, images, sources, names):
    """TensorBoard projector files: a TSV per tensor, one metadata TSV, the sprite and the config."""
    os.makedirs(folder, exist_ok=True)
    for name, values in tensors.items():
        _write_lines(os.path.join(folder, f"{name}.tsv"), ["\t".join(f"{v:.6g}" for v in point) for point in values])
    _write_lines(os.path.join(folder, "metadata.tsv"),
                 ["source\tclass", *(f"{source}\t{name}" for source, name in zip(sources, names))])
    atomic_write(os.path.join(folder, "sprite.png"), lambda tmp: Image.fromarray(sprite(images)).save(tmp, "PNG"),
                 suffix=".png")
    config = "".join(PROJECTOR_CONFIG.format(name=name, side=SPRITE_SIDE) for name in tensors)
    _write_lines(os.path.join(folder, "projector_config.pbtxt"), [config.rstrip("\n")])


def projector_folder(out_dir, epoch):
    return os.path.join(out_dir, f"projector_e{epoch:03d}")


def check_projector_folder(out_dir, epoch):
    """InputError, before any work, when the last epoch's projector folder is taken by a file."""
    folder = projector_folder(out_dir, epoch)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise InputError(f"{folder} is there and is not a folder; --embedding writes the projector files into a "
                         "folder of that name: move it, or pick another --out_dir")


def draw_embedding(epoch, real, real_features, generated, generated_features, args):
    """The embedding figure and the projector folder of one epoch; returns their paths."""
    pixels, features, images, sources, labels = embedding_points(real, real_features, generated, generated_features)
    components = pixel_components(pixels, args.seed)
    panels = {}
    for space, points in (("raw pixels", components), ("classifier features", features)):
        pca, tsne = two_d(points, args.seed)
        panels[f"PCA, {space}"], panels[f"t-SNE, {space}"] = pca, tsne
    names = [args.settings.class_names[label] for label in labels]
    figure_path = os.path.join(args.out_dir, f"embedding_e{epoch:03d}.png")
    fig = plots.scatter_panels(panels, sources, names, title=f"epoch {epoch}: real and generated images")
    save_figure(fig, figure_path, dpi=100)
    plots.show_or_close(fig, args.show)
    folder = projector_folder(args.out_dir, epoch)
    write_projector(folder, {"features": features, "pixels": components}, images, sources, names)
    return figure_path, folder


# ---------------------------------------------------------------- the run


def run(args):
    """evaluate.py's work, once its flags are parsed: the floor, every chosen epoch, the table
    and figure, and with --embedding the last epoch's embedding."""
    models = chosen_generators(args.models_dir, args.epochs)  # a missing epoch is named before the floor's work
    check_generators_fit(models, args.settings)
    if args.embedding:
        check_projector_folder(args.out_dir, models[-1][0])
    features, held_out_accuracy, real, real_features, real_classes = load_inputs(args)
    reference = f"{held_out_accuracy:.3f}" if held_out_accuracy is not None else f"unknown (no {HELD_OUT_FILE} beside it)"
    print(f"the classifier's accuracy on its held-out real images: {reference}", flush=True)
    floor = floor_rows(real, real_features, real_classes, args.seed)
    print("real against real (each class's real images in two halves), every measure's floor:")
    for row in floor:
        print(row_line(row, args.settings))
    real_diversity = real_diversities(real, args.seed)
    rows, last = [], {}

    def work(epoch, path, generator):
        epoch_rows, generated, generated_features = evaluate_epoch(epoch, generator, features, real, real_features,
                                                                   real_diversity, args)
        rows.extend(epoch_rows)
        for row in epoch_rows:
            cli.print_beside_bars(row_line(row, args.settings))
            warning = collapse_warning(row, args.settings)
            if warning:
                cli.print_beside_bars(warning)
        last.update(epoch=epoch, generated=generated, generated_features=generated_features)

    try:
        for_each_model(args, work, desc="evaluate", minimum_labels=1)
    except InputError:  # what was measured is kept when a model file fails; after Ctrl-C, nothing is written
        write_results(floor, rows, args)
        raise
    write_results(floor, rows, args)
    print(f"wrote {os.path.join(args.out_dir, 'evaluation.csv')} and evaluation.png", flush=True)
    if args.embedding:
        figure_path, folder = draw_embedding(last["epoch"], real, real_features, last["generated"],
                                             last["generated_features"], args)
        print(f"wrote {figure_path} and the TensorBoard projector files in {folder}")
