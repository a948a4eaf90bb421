"""Pictures as uint8 arrays: G's output converted, tiled into grids, written as PNG and GIF atomically.

Every stage that shows images (training's sample grids, the probes' panels, the report's figures, the CLI)
uses these; images are (N, H, W, C) uint8 with C in 1, 3.
"""

from __future__ import annotations

import base64
import io
import math
import os

import numpy as np
import torch
from PIL import Image

from dcgan.fileio import atomic_path, atomic_paths


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → (N, H, W, C) uint8."""
    return (
        x.add(1)
        .mul(127.5)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        .permute(0, 2, 3, 1)
        .contiguous()
        .cpu()
        .numpy()
    )


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """(N, H, W, C) uint8 → one (rows·(H+pad)+pad, cols·(W+pad)+pad, C) uint8 image, row-major order.

    >>> grid = dcgan.make_grid(dcgan.sample("runs/fmnist32", "0-63"), ncols=8)
    """
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
    """(H, W, C) uint8 with C in 1, 3 → PNG at `path`, atomically.

    >>> dcgan.save_png(dcgan.sample("runs/fmnist32", 7)[0], "seed7.png")
    """
    with atomic_path(path) as tmp:
        _write_png(image, tmp)


def _write_png(image: np.ndarray, path: str | os.PathLike, level: int = 6) -> None:
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(
        path, format="PNG", compress_level=level
    )


BULK_LEVEL = 3  # zlib level of save_pngs: 2.4× faster than the default 6 for 11% larger files (64² samples)


def save_pngs(images: np.ndarray, paths: list[str | os.PathLike]) -> None:
    """Images (N, H, W, C) uint8 → one PNG each at `paths`, atomically as save_png does, but encoded on all
    cores (Pillow's zlib runs outside the GIL) at zlib level BULK_LEVEL and made durable together
    (fileio.atomic_paths) — a folder of samples at several times the speed of a save_png per image
    (docs/PERFORMANCE.md)."""
    from concurrent.futures import ThreadPoolExecutor

    from dcgan.threads import available_cores

    if len(images) != len(paths):
        raise ValueError(f"{len(images)} images for {len(paths)} paths")
    with atomic_paths(paths) as tmps, ThreadPoolExecutor(available_cores()) as pool:
        for _ in pool.map(_write_png, images, tmps, [BULK_LEVEL] * len(tmps)):  # (re-raises a worker's error)
            pass


def png_data_uri(image: np.ndarray) -> str:
    """(H, W, C) uint8 as a `data:image/png;base64,…` URI, for self-contained HTML pages."""
    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def save_grid(images: np.ndarray, path: str | os.PathLike, ncols: int | None = None) -> None:
    """Tile `images` (N, H, W, C) uint8 and save as a PNG; images under 64 px are enlarged (nearest).

    >>> dcgan.save_grid(dcgan.sample("runs/fmnist32", "0-63"), "grid.png", ncols=8)
    """
    save_png(make_grid(upscale(images), ncols), path)


def upscale(images: np.ndarray, min_side: int = 64) -> np.ndarray:
    """Nearest-neighbour enlarge (N, H, W, C) so small images stay visible; a whole factor, never smaller."""
    k = max(1, min_side // images.shape[1])
    return images.repeat(k, axis=1).repeat(k, axis=2) if k > 1 else images


def labelled_grid(images: np.ndarray, labels: list[str], ncols: int | None = None) -> np.ndarray:
    """A grid like make_grid with a caption strip under every cell (e.g. the seed), RGB."""
    from PIL import ImageDraw, ImageFont

    images = upscale(images)
    if images.shape[3] == 1:
        images = images.repeat(3, axis=3)
    n, h, w, _ = images.shape
    strip = 14
    cells = np.full((n, h + strip, w, 3), 255, np.uint8)
    cells[:, :h] = images
    font = ImageFont.load_default()
    for i, text in enumerate(labels):
        cell = Image.fromarray(cells[i])
        ImageDraw.Draw(cell).text((2, h + 1), text, fill=(0, 0, 0), font=font)
        cells[i] = np.asarray(cell)
    return make_grid(cells, ncols)


def hstack(panels: list[np.ndarray], gap: int = 12, pad_value: int = 255) -> np.ndarray:
    """Panels (H_i, W_i, C) side by side, top-aligned, `gap` pixels apart."""
    h = max(p.shape[0] for p in panels)
    c = max(p.shape[2] for p in panels)
    out = np.full((h, sum(p.shape[1] for p in panels) + gap * (len(panels) - 1), c), pad_value, np.uint8)
    x = 0
    for p in panels:
        out[: p.shape[0], x : x + p.shape[1]] = p if p.shape[2] == c else p.repeat(c, axis=2)
        x += p.shape[1] + gap
    return out


def save_gif(frames: np.ndarray, path: str | os.PathLike, ms_per_frame: int = 80) -> None:
    """(T, H, W, C) uint8 frames → a looping GIF, atomically.

    >>> dcgan.save_gif(dcgan.interpolate("runs/fmnist32", [3, 17])[1], "walk.gif")
    """
    frames = upscale(frames, 128)
    images = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0
        )
