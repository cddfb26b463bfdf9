"""The sample grid training draws every epoch: the original's 10x10 layout, each image in its
cell, one picture however it is drawn."""

import numpy as np
from PIL import Image

from cganlib import plots


def test_the_grid_puts_image_k_in_row_k_div_10_column_k_mod_10(tmp_path):
    shades = np.linspace(0.05, 0.95, 100)
    images = np.repeat(shades, 80 * 80 * 3).reshape(100, 80, 80, 3).astype(np.float32)
    plots.labelled_grid(images, np.zeros(100, int), tmp_path / "grid.png")
    picture = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).astype(float) / 255
    assert picture.shape == (1000, 1000, 3)  # 10 x 10 cells of 100 px (the original's figure: 640x480 px)
    cell = 1000 / 10
    for k in (0, 9, 10, 57, 99):
        y, x = int((k // 10 + 0.6) * cell), int((k % 10 + 0.6) * cell)  # inside the image, off its label
        assert abs(picture[y, x, 0] - shades[k]) < 0.02, k


def test_a_part_filled_grid_leaves_the_rest_white(tmp_path):
    images = np.zeros((12, 80, 80, 3), np.float32)
    plots.labelled_grid(images, np.arange(12) % 3, tmp_path / "grid.png")
    picture = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    assert picture.shape == (200, 1000)
    assert picture[50, 50] < 20 and picture[150, 150] < 20 and picture[150, 550] > 235


def test_each_image_carries_its_label_as_white_text_in_its_corner(tmp_path):
    images = np.zeros((3, 80, 80, 3), np.float32)
    plots.labelled_grid(images, [0, 1, 2], tmp_path / "grid.png")
    picture = np.asarray(Image.open(tmp_path / "grid.png").convert("L")).astype(int)
    cells = [picture[10:90, 10 + 100 * k : 90 + 100 * k] for k in range(3)]  # each image's 80x80 pixels
    corners = [cell[:14, :12] for cell in cells]
    assert all((corner > 128).sum() >= 4 for corner in corners)  # a digit's strokes
    assert all((cell[20:, 20:] > 128).sum() == 0 for cell in cells)  # nothing else painted
    assert not np.array_equal(corners[0] > 128, corners[1] > 128)  # the digits differ
