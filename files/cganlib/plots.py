"""Figures saved as files (headless Agg backend unless a script asks to show a window)."""

import matplotlib

if not matplotlib.get_backend().lower().startswith(("qt", "tk", "gtk", "wx", "macosx")):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

from cganlib.storage import atomic_write, save_figure

GRID_GAP_PIXELS = 4  # white space between the grid's images, as the original's subplots left
GRID_CELL_PIXELS = 100  # the sample grid's cell per image: the 80-px image at full size, a white margin round it
GRID_LABEL_PIXELS = 8  # the label's text height, the original's 6-point text at 100 DPI


def montage(images, columns, gap=GRID_GAP_PIXELS):
    """Images (n, h, w, 3) in [0, 1] tiled in rows of `columns` on a white canvas, `gap` pixels
    apart; returns the canvas and each image's top-left corner (x, y)."""
    n, height, width = images.shape[:3]
    rows = int(np.ceil(n / columns))
    canvas = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), dtype=np.float32)
    corners = []
    for k, image in enumerate(images):
        y, x = (k // columns) * (height + gap), (k % columns) * (width + gap)
        canvas[y : y + height, x : x + width] = np.clip(image, 0.0, 1.0)
        corners.append((x, y))
    return canvas, corners


def labelled_grid(images, labels, path, columns=10):
    """The original's sample grid: images in [0, 1], axes off, each with its label as small
    white text in its corner; saved to path as PNG. Each image is shown at full size in a cell
    of GRID_CELL_PIXELS (1000x1000 px for 10x10), its pixels rounded to 8 bits; the original
    drew the grid in Matplotlib's default 6.4x4.8-inch figure at 100 DPI (640x480 px), each
    image at about 31 px, its pixels truncated. Every epoch draws one, so it is drawn with
    Pillow, pixel for pixel, and compressed fast: a fifth of matplotlib's time."""
    images = np.asarray(images)
    margin = (GRID_CELL_PIXELS - images.shape[2]) // 2
    canvas, corners = montage(images, columns, gap=2 * margin)
    canvas = np.pad(canvas, ((margin, margin), (margin, margin), (0, 0)), constant_values=1.0)
    picture = Image.fromarray(np.round(canvas * 255).astype(np.uint8))
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=GRID_LABEL_PIXELS)
    for (x, y), label in zip(corners, labels):
        draw.text((x + margin + 3, y + margin + 2), str(int(label)), fill="white", font=font)
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG", compress_level=1), suffix=".png")


def loss_curves(history, path):
    """Per-epoch mean d1, d2, g and the discriminator's accuracies from history.csv rows."""
    epochs = [int(r["epoch"]) for r in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for key in ("d1", "d2", "g"):
        top.plot(epochs, [float(r[key]) for r in history], marker=".", label=key)
    top.set_ylabel("mean loss")
    top.legend()
    for key in ("acc_real", "acc_fake"):
        bottom.plot(epochs, [float(r[key]) for r in history], marker=".", label=key)
    bottom.set_ylabel("discriminator accuracy")
    bottom.set_xlabel("epoch")
    bottom.set_ylim(-0.05, 1.05)
    bottom.legend()
    # fixed margins: tight_layout measured every text again, 40% of the figure's time, every epoch
    fig.subplots_adjust(left=0.09, right=0.98, top=0.97, bottom=0.09, hspace=0.08)
    save_figure(fig, path, dpi=100)
    plt.close(fig)


IMAGE_INCHES = 1.7  # at DPI 100 each 80x80 image is at least 160 pixels wide
GAP_INCHES = 0.06
NAME_INCHES = 2.0
GROUP_GAP_INCHES = 0.3
DPI = 100


def row_gap(image_width):
    """The white gap, in image pixels, between the images of an image_rows row: GAP_INCHES at
    the scale IMAGE_INCHES gives the image."""
    return max(1, round(image_width * GAP_INCHES / IMAGE_INCHES))


def image_rows(rows, row_names, title="", captions=None, legend=(), legend_title="", group_size=0):
    """A figure of image rows (images in [0, 1]) with each row's name at its left in
    readable text, an optional title, per-image captions (small white text in the corner,
    as the original marked its images), a colour legend of (text, RGB) entries, and a gap
    after every group_size rows. Each row is one montage in one axes (row_gap pixels apart):
    an axes per image made a heatmap figure of 270 images take seconds to build. Returns the
    figure; save it with save_figure(..., dpi=DPI)."""
    n_rows, n_columns = len(rows), max(len(row) for row in rows)
    n_gaps = (n_rows - 1) // group_size if group_size else 0
    top = 0.5 + (0.4 if title else 0) + (0.5 if legend else 0)
    cell = IMAGE_INCHES + GAP_INCHES
    width = NAME_INCHES + n_columns * cell + 0.2
    height = top + n_rows * cell + n_gaps * GROUP_GAP_INCHES + 0.2
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    for r, (row, name) in enumerate(zip(rows, row_names)):
        row_top = top + r * cell + (r // group_size if group_size else 0) * GROUP_GAP_INCHES
        bottom = 1 - (row_top + IMAGE_INCHES) / height
        images = np.stack(row)
        canvas, corners = montage(images, len(images), gap=row_gap(images.shape[2]))
        row_inches = IMAGE_INCHES * canvas.shape[1] / images.shape[2]
        ax = fig.add_axes([NAME_INCHES / width, bottom, row_inches / width, IMAGE_INCHES / height])
        ax.imshow(canvas, interpolation="nearest", aspect="auto")
        ax.axis("off")
        for (x, y), caption in zip(corners, captions[r] if captions is not None else ()):
            if caption:
                ax.text(x + 2, y + 2, caption, color="white", fontsize=8, va="top",
                        bbox={"facecolor": "black", "alpha": 0.4, "pad": 1, "linewidth": 0})
        fig.text((NAME_INCHES - 0.1) / width, bottom + IMAGE_INCHES / 2 / height, name,
                 ha="right", va="center", fontsize=13)
    if title:
        fig.text(0.5, 1 - 0.35 / height, title, ha="center", va="center", fontsize=16)
    if legend:
        handles = [Patch(facecolor=colour, edgecolor="black", label=text) for text, colour in legend]
        fig.legend(handles=handles, title=legend_title, loc="center", ncol=len(handles), frameon=False,
                   fontsize=11, title_fontsize=11, bbox_to_anchor=(0.5, 1 - (top - 0.4) / height))
    return fig


HEAT_COLOURS = "inferno"  # a map of positive values: dark where 0, bright yellow at its largest


def heat_overlay(image, saliency, alpha=0.5):
    """An (H, W, 3) image in [0, 1] half covered by a positive map (H, W) in HEAT_COLOURS,
    scaled to the map's largest value (negative values count as 0)."""
    positive = np.clip(np.asarray(saliency, np.float64), 0, None)
    top = positive.max()
    heat = plt.get_cmap(HEAT_COLOURS)(positive / top if top > 0 else positive)[..., :3]
    return ((1 - alpha) * np.asarray(image) + alpha * heat).astype(np.float32)


SIGNED_COLOURS = "RdBu_r"  # red where a map is positive, blue where negative, white at 0


def _signed(ax, saliency, limit=None):
    """Draw a signed map on a diverging scale symmetric about 0; returns the image for a colour bar."""
    limit = limit or float(np.abs(saliency).max()) or 1.0
    image = ax.imshow(saliency, cmap=SIGNED_COLOURS, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.axis("off")
    return image


def signed_maps(maps, titles, title="", colorbar_label=""):
    """One panel per signed (height, width) map, side by side, on one shared diverging scale
    symmetric about 0, with one colour bar. Returns the figure."""
    limit = max(float(np.abs(m).max()) for m in maps) or 1.0
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps) + 1.2, 3.8), squeeze=False)
    for ax, saliency, name in zip(axes[0], maps, titles):
        image = _signed(ax, saliency, limit)
        ax.set_title(name, fontsize=11)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85, label=colorbar_label)
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def panel_grid(rows, row_names, column_names, title=""):
    """A grid of panels; each cell is (kind, array): "grey" an image in [0, 1], "mask" a 0/1 mask,
    "signed" a map on its own diverging scale symmetric about 0 with its own colour bar (maps of
    different methods have different units). Returns the figure."""
    n_rows, n_columns = len(rows), len(column_names)
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(2.6 * n_columns + 1.0, 2.5 * n_rows + 0.8), squeeze=False)
    for r, (row, row_name) in enumerate(zip(rows, row_names)):
        for c, (kind, array) in enumerate(row):
            ax = axes[r, c]
            if kind == "signed":
                fig.colorbar(_signed(ax, array), ax=ax, fraction=0.046, pad=0.03)
            else:
                ax.imshow(array, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.axis("off")
            if r == 0:
                ax.set_title(column_names[c], fontsize=11)
        axes[r, 0].text(-0.08, 0.5, row_name, transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=12)
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def show_or_close(fig, show):
    """Open the figure in a window (until the user closes it) if show, then free it."""
    if show:
        plt.show()
    plt.close(fig)


def measure_panels(series, floors, measures, title=""):
    """One panel per measure: for each named series (epochs, {measure: values}) a line over the
    epochs, and the series' floor ({name: {measure: value}}) as a dashed line in its colour.
    Returns the figure."""
    columns = 3
    rows = int(np.ceil(len(measures) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows + 0.6), squeeze=False)
    colours = dict(zip(series, plt.rcParams["axes.prop_cycle"].by_key()["color"] * len(series)))
    for ax, measure in zip(axes.flat, measures):
        for name, (epochs, values) in series.items():
            ax.plot(epochs, values[measure], marker=".", color=colours[name], label=name)
            if name in floors and np.isfinite(floors[name][measure]):
                ax.axhline(floors[name][measure], color=colours[name], linestyle="--", linewidth=1)
        ax.set_title(measure, fontsize=11)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(measures):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def scatter_panels(panels, sources, classes, title=""):
    """One scatter panel per named (N, 2) point set, side by side in rows of two: points coloured
    by source (real / generated), marked by class, with one legend. Returns the figure."""
    markers = "osD^v<>ph*"
    names = list(dict.fromkeys(classes))
    colours = {"real": "tab:blue", "generated": "tab:orange"}
    rows = int(np.ceil(len(panels) / 2))
    fig, axes = plt.subplots(rows, 2, figsize=(12, 5.5 * rows), squeeze=False)
    sources, classes = np.asarray(sources), np.asarray(classes)
    for ax, (panel_title, points) in zip(axes.flat, panels.items()):
        for source, colour in colours.items():
            for k, name in enumerate(names):
                chosen = (sources == source) & (classes == name)
                ax.scatter(points[chosen, 0], points[chosen, 1], s=8, alpha=0.6, color=colour,
                           marker=markers[k % len(markers)], label=f"{source}, {name}")
        ax.set_title(panel_title, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=9, markerscale=2)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
