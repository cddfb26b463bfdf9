"""Figures saved as files (headless Agg backend unless a script asks to show a window)."""

import matplotlib

if not matplotlib.get_backend().lower().startswith(("qt", "tk", "gtk", "wx", "macosx")):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from storage import save_figure


def labelled_grid(images, labels, path, columns=10):
    """The original's sample grid: images in [0, 1], axes off, each with its label as small
    white text in its corner; saved to path."""
    n = len(images)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(np.clip(images[k], 0.0, 1.0))
            ax.text(3, 10, str(int(labels[k])), color="white", fontsize=6)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0, right=1, bottom=0, top=1)
    save_figure(fig, path, dpi=100)
    plt.close(fig)


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
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


IMAGE_INCHES = 1.7  # at DPI 100 each 80x80 image is at least 160 pixels wide
GAP_INCHES = 0.06
NAME_INCHES = 2.0
GROUP_GAP_INCHES = 0.3
DPI = 100


def image_rows(rows, row_names, title="", captions=None, legend=(), legend_title="", group_size=0):
    """A figure of image rows (images in [0, 1]) with each row's name at its left in
    readable text, an optional title, per-image captions (small white text in the corner,
    as the original marked its images), a colour legend of (text, RGB) entries, and a gap
    after every group_size rows. Returns the figure; save it with save_figure(..., dpi=DPI)."""
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
        for c, image in enumerate(row):
            box = [(NAME_INCHES + c * cell) / width, bottom, IMAGE_INCHES / width, IMAGE_INCHES / height]
            ax = fig.add_axes(box)
            ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
            ax.axis("off")
            if captions is not None and captions[r][c]:
                ax.text(2, 2, captions[r][c], color="white", fontsize=8, va="top",
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


def show_or_close(fig, show):
    """Open the figure in a window (until the user closes it) if show, then free it."""
    if show:
        plt.show()
    plt.close(fig)
