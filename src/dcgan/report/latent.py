"""Figures of the latent-space experiments (PAPER.md §6): walks, contact sheets, vector arithmetic, vectors.

Each function takes a generator and latents and returns uint8 pictures; the CLI only saves them.
"""

from __future__ import annotations

import numpy as np
import torch

from dcgan.images import hstack, labelled_grid, make_grid, to_uint8, upscale
from dcgan.models import Generator, run_generator
from dcgan.sampling import arithmetic_latents, generate, walk_latents


def images(g: Generator, z: torch.Tensor) -> np.ndarray:
    """G(z) for (N, z_dim) → (N, H, W, C) uint8, with running BN statistics (independent of the batch)."""
    return to_uint8(run_generator(g, z))


def interpolation(
    g: Generator, z: torch.Tensor, steps: int, mode: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """A walk through the points z (K, z_dim): a grid with one row per segment, and the frames of a GIF that
    loops (every segment without its last frame, then the way back from the last point to the first)."""
    rows = walk_latents(g.cfg, z, steps, mode)  # (K-1, steps, z_dim)
    walk = images(g, rows.reshape(-1, g.cfg.z_dim))  # ((K-1)·steps, H, W, C)
    grid = make_grid(upscale(walk), ncols=steps)
    back = walk_latents(g.cfg, torch.stack([z[-1], z[0]]), steps, mode)[0, :-1]
    per_row = walk.reshape(len(rows), steps, *walk.shape[1:])
    frames = np.concatenate([per_row[:, :-1].reshape(-1, *walk.shape[1:]), images(g, back)])
    return grid, frames


def sheet(g: Generator, seeds: list[int], ncols: int = 10) -> np.ndarray:
    """A contact sheet: G(seed) for every seed, each cell captioned with its seed."""
    return labelled_grid(to_uint8(generate(g, seeds)), [str(s) for s in seeds], ncols)


def arithmetic(
    g: Generator, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, noise: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, torch.Tensor]:
    """The paper's figure: the exemplars of A, B, C (one row each, their mean-z image last); the 3×3 grid of
    Y = A − B + C at the centre and Y + U(−noise, noise) around it; and the same arithmetic on pixels, for
    contrast. Returns (figure, the 9 latents)."""
    rows = []
    for z in (a, b, c):  # exemplars, then G(mean z) of the concept
        rows.append(images(g, torch.cat([z, z.mean(0, keepdim=True)])))
    width = max(len(r) for r in rows)
    blank = np.full_like(rows[0][:1], 255)
    exemplars = np.concatenate([np.concatenate([r, *[blank] * (width - len(r))]) for r in rows])
    left = make_grid(upscale(exemplars), ncols=width)
    zs = arithmetic_latents(a, b, c, noise, seed)
    result = make_grid(upscale(images(g, zs)), ncols=3)
    # pixel space: mean exemplar image of A − of B + of C, clipped (the paper shows it gives noisy overlaps)
    mean = [r[:-1].astype(np.float32).mean(0) for r in rows]
    pixels = np.clip(mean[0] - mean[1] + mean[2], 0, 255).round().astype(np.uint8)[None]
    right = make_grid(upscale(pixels), ncols=1)
    return hstack([left, result, right]), zs


def along_vector(g: Generator, rows: torch.Tensor) -> np.ndarray:
    """rows (K, steps, z_dim) of z + t·v → a grid with one row per starting point."""
    return make_grid(upscale(images(g, rows.reshape(-1, rows.shape[-1]))), ncols=rows.shape[1])
