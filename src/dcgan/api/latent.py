"""Seeds to images and the latent space of §6: samples, walks, arithmetic, vectors."""

from __future__ import annotations

import os

import numpy as np
import torch

from dcgan import sampling
from dcgan.api.common import (
    GeneratorLike,
    Latents,
    PathLike,
    Seeds,
    latents,
    load_generator,
    seeds,
)
from dcgan.images import to_uint8
from dcgan.report import latent


def sample(
    g: GeneratorLike,
    which: Seeds = "0-63",
    *,
    bn: str = "running",
    batch: int = 256,
    spatial: int = 1,
    drop: PathLike | None = None,
) -> np.ndarray:
    """Images (N, H, W, C) uint8 of G for seeds; image k of seed s is the same at any batch size with
    bn="running". spatial=K feeds a K×K field of z per seed (larger images from a convolutional G). `drop`,
    a drops.json of `dcgan forget`, draws them with those feature maps of G removed.

    >>> dcgan.save_grid(dcgan.sample("runs/fmnist32", "0-63"), "grid.png")
    """
    g = load_generator(g)
    dropped = sampling.read_drops(str(drop), g) if drop is not None else None
    return to_uint8(sampling.generate(g, seeds(which), bn=bn, batch=batch, spatial=spatial, drop=dropped))


def interpolate(
    g: GeneratorLike, points: Latents, *, steps: int = 8, mode: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """A walk through the points (the paper walks through 9): (grid with one row per segment, the frames
    of a looping GIF). mode "auto": linear for uniform z, spherical for Gaussian z.

    >>> grid, frames = dcgan.interpolate("runs/fmnist32", "3,17,42", steps=8)
    >>> dcgan.save_png(grid, "walk.png"); dcgan.save_gif(frames, "walk.gif")
    """
    g = load_generator(g)
    return latent.interpolation(g, latents(g, points), steps, mode)


def sheet(g: GeneratorLike, which: Seeds = "0-99", *, cols: int = 10) -> np.ndarray:
    """A contact sheet (H, W, 3) uint8: every seed's image captioned with its seed, to pick exemplars.

    >>> dcgan.save_png(dcgan.sheet("runs/fmnist32", "0-99"), "sheet.png")
    """
    return latent.sheet(load_generator(g), seeds(which), cols)


def arithmetic(
    g: GeneratorLike, a: Latents, b: Latents, c: Latents, *, noise: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, torch.Tensor]:
    """The paper's vector arithmetic Y = mean(A) − mean(B) + mean(C): (figure, the 9 latents with Y at
    index 4 and Y + U(−noise, noise) around it).

    >>> fig, z = dcgan.arithmetic("runs/faces", a="12,40,77", b="5,9,31", c="2,8,63")
    """
    g = load_generator(g)
    return latent.arithmetic(g, latents(g, a), latents(g, b), latents(g, c), noise, seed)


def vector(g: GeneratorLike, start: Latents, end: Latents) -> torch.Tensor:
    """An attribute or turn vector (z_dim,): mean(z of `end`) − mean(z of `start`).

    >>> turn = dcgan.vector("runs/fmnist32", start="3,14,15", end="9,26,53")
    """
    g = load_generator(g)
    return sampling.direction(latents(g, start), latents(g, end))


def walk(
    g: GeneratorLike,
    v: torch.Tensor | np.ndarray | PathLike,
    which: Latents = "0-5",
    *,
    steps: int = 7,
    scale: float = 2.0,
) -> np.ndarray:
    """A grid with one row per starting point: z + t·v for t from −scale to +scale.

    >>> dcgan.save_png(dcgan.walk("runs/fmnist32", turn, "0-5"), "turn.png")
    """
    g = load_generator(g)
    z = latents(g, which)
    v = (
        sampling.load_vector(str(v))
        if isinstance(v, (str, os.PathLike))
        else torch.as_tensor(v, dtype=torch.float32)
    )
    return latent.along_vector(g, sampling.along(z, v, steps, scale))
