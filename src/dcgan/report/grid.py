"""Image grids: many (H, W, C) uint8 images tiled into one PNG, written atomically."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from dcgan.fileio import atomic_path


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """(N, H, W, C) uint8 → one (rows·(H+pad)+pad, cols·(W+pad)+pad, C) uint8 image, row-major order."""
    if images.ndim != 4:
        raise ValueError(f"expected images as (N, H, W, C), got shape {images.shape}")
    n, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """(H, W, C) uint8 with C in 1, 3 → PNG at `path`, atomically."""
    img = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_grid(images: np.ndarray, path: str | os.PathLike, ncols: int | None = None, scale: int = 1) -> None:
    """Tile `images` (N, H, W, C) uint8 and save as a PNG; `scale` enlarges small images (nearest neighbour)."""
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    save_png(make_grid(images, ncols), path)
