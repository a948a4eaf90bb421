"""Seeds → z → images, and the latent algebra of PAPER.md §6: walks, arithmetic, attribute vectors.

Image k of seed s is the same at any batch size: every seed has its own generator (models.z_for_seeds).
BatchNorm statistics when generating: `running` (eval mode; what makes a seed's image independent of the
other seeds in the batch — the default) or `batch` (each call's own statistics, as the original code and
pytorch/examples generate; an image then depends on which seeds are generated together).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np
import torch

from dcgan.config import ModelConfig
from dcgan.errors import DcganError
from dcgan.fileio import check_regular, read_small_json
from dcgan.models import Generator, dropping, run_generator, z_for_seeds, z_for_seeds_spatial

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer
MAX_SEEDS = 10_000_000  # seeds in one list: 10M images is already far past any use of a list


def parse_seeds(text: str) -> list[int]:
    """'0-63' or '3,17,42' or '0-3,9' → [0, 1, 2, 3, 9]."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d{1,19})\s*(?:-\s*(\d{1,19})\s*)?", part)
        if not m:
            raise DcganError(
                f"expected seeds as 0-63 or 3,17,42 (integers from 0 to {MAX_SEED}), got {text[:80]!r}"
            )
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi > MAX_SEED:
            raise DcganError(f"seeds go up to {MAX_SEED} (2^63 − 1), got {hi}")
        if hi < lo:
            raise DcganError(f"seed range {part.strip()!r} runs backwards; write it as {hi}-{lo}")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise DcganError(f"{text[:80]!r} names more than {MAX_SEEDS:,} seeds; ask for fewer")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise DcganError("no seeds given")
    return seeds


def generate(
    g: Generator,
    seeds: Iterable[int],
    bn: str = "running",
    batch: int = 256,
    spatial: int = 1,
    drop: tuple[int, list[int]] | None = None,
) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] for `seeds`; with bn="running" image k depends on seeds[k] alone.
    spatial > 1 feeds a spatial×spatial field of z per seed to a convolutional G: larger images.
    drop=(layer, channels) zeroes those feature maps of G's hidden layer (see read_drops)."""
    z = z_for_seeds(g.cfg, seeds) if spatial == 1 else z_for_seeds_spatial(g.cfg, seeds, spatial)
    if drop is None:
        return run_generator(g, z, bn, batch)
    with dropping(g, *drop):
        return run_generator(g, z, bn, batch)


# ---------------------------------------------------------------- drops files (`dcgan forget` writes them)

MAX_DROPS_BYTES = 1 << 20


def _integer(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)  # JSON true is not layer 1


def read_drops(path: str, g: Generator) -> tuple[int, list[int]]:
    """(layer, channels) of a drops file — {"layer": L, "width": C, "channels": [...]} as `dcgan forget`
    writes it — checked against G: the layer exists and has the width the file was made for."""
    want = '{"layer": L, "width": C, "channels": [c, ...]} as `dcgan forget` writes it'
    doc = read_small_json(path, MAX_DROPS_BYTES, "--drop")
    fields = ("layer", "width", "channels")
    if not isinstance(doc, dict) or not all(k in doc for k in fields):
        raise DcganError(f"--drop {path!r} is not a drops file: expected {want}")
    layer, width, channels = (doc[k] for k in fields)
    if not (
        _integer(layer)
        and _integer(width)
        and isinstance(channels, list)
        and all(_integer(c) for c in channels)
    ):
        raise DcganError(f"--drop {path!r}: layer and width must be integers and channels a list of them")
    layers = g.hidden_layers()
    if not 1 <= layer <= len(layers) or layers[layer - 1][1] != width:
        has = ", ".join(f"{k + 1}: {c}" for k, (_, c, _) in enumerate(layers))
        raise DcganError(
            f"--drop {path!r} is for a layer {layer} of {width} channels; this G's hidden layers are {has} — "
            "it was made for another architecture"
        )
    if any(not 0 <= c < width for c in channels):
        raise DcganError(f"--drop {path!r}: channels must be 0…{width - 1}")
    return layer, sorted(set(channels))


# ---------------------------------------------------------------- walks, arithmetic, vectors (PAPER.md §6)

INTERP_MODES = ("auto", "lerp", "slerp")


def z_from_spec(cfg: ModelConfig, spec: str) -> torch.Tensor:
    """Latents from seeds ('3,17,42', '0-9') or a saved .npy of shape (z_dim,) or (k, z_dim) → (k, z_dim)."""
    if spec.endswith(".npy"):
        check_regular(spec, "the latents file")
        try:
            z = torch.from_numpy(np.load(spec, allow_pickle=False)).float()
        except (OSError, ValueError) as e:
            raise DcganError(f"could not read latents from {spec!r} ({e})") from None
        z = z.reshape(1, -1) if z.ndim == 1 else z
        if z.ndim != 2 or z.shape[1] != cfg.z_dim:
            raise DcganError(
                f"{spec!r} holds latents of shape {tuple(z.shape)}; this generator's z has {cfg.z_dim} values"
            )
        return z
    return z_for_seeds(cfg, parse_seeds(spec))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (a, b: (D,), t: (T,)) → (T, D); the norm moves smoothly from |a| to |b|.

    Computed in float64: near-opposite directions divide by a small sin(ω). For exactly opposite ones every
    great circle joins them; the one through the coordinate axis least aligned with a is taken."""
    dtype, a, b, t = a.dtype, a.double(), b.double(), t.double()
    na, nb = a.norm(), b.norm()
    ua, ub = a / na, b / nb
    omega = torch.acos(torch.dot(ua, ub).clamp(-1, 1))
    if omega < 1e-6:  # parallel directions: the arc is a line
        return lerp(a, b, t).to(dtype)
    t = t[:, None]
    if math.pi - omega < 1e-6:  # opposite: rotate through a fixed perpendicular
        axis = torch.zeros_like(ua)
        axis[ua.abs().argmin()] = 1.0
        perp = axis - ua.dot(axis) * ua
        direction = torch.cos(t * math.pi) * ua + torch.sin(t * math.pi) * perp / perp.norm()
    else:
        direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).to(dtype)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation (a, b: (D,), t: (T,)) → (T, D)."""
    return a[None] + t[:, None] * (b - a)[None]


def interpolation_mode(cfg: ModelConfig, mode: str) -> str:
    """auto: linear for the paper's uniform z (a straight line stays inside the cube that G was trained on),
    spherical for Gaussian z (the midpoint of a line falls inside the shell where Gaussian samples live)."""
    if mode not in INTERP_MODES:
        raise DcganError(f"--mode must be one of {', '.join(INTERP_MODES)}, got {mode!r}")
    return ("lerp" if cfg.z_dist == "uniform" else "slerp") if mode == "auto" else mode


def walk_latents(cfg: ModelConfig, z: torch.Tensor, steps: int, mode: str = "auto") -> torch.Tensor:
    """A walk through the points z (K, z_dim): (K-1, steps, z_dim), each row from one point to the next."""
    if len(z) < 2:
        raise DcganError(f"a walk needs at least 2 points, got {len(z)}")
    if steps < 2:
        raise DcganError(f"--steps must be at least 2 (the two end points), got {steps}")
    fn = slerp if interpolation_mode(cfg, mode) == "slerp" else lerp
    t = torch.linspace(0, 1, steps)
    return torch.stack([fn(z[i], z[i + 1], t) for i in range(len(z) - 1)])


def arithmetic_latents(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, noise: float = 0.25, seed: int = 0
) -> torch.Tensor:
    """The paper's protocol: Y = mean(A) − mean(B) + mean(C); (9, z_dim) with Y at index 4 (the centre of a
    3×3 grid) and Y + U(−noise, noise) in the other 8 cells."""
    if noise < 0:
        raise DcganError(f"--noise must be non-negative, got {noise}")
    y = a.mean(0) - b.mean(0) + c.mean(0)
    gen = torch.Generator().manual_seed(seed)
    out = y[None] + (torch.rand(9, len(y), generator=gen) * 2 - 1) * noise
    out[4] = y
    return out


def direction(z_from: torch.Tensor, z_to: torch.Tensor) -> torch.Tensor:
    """An attribute or turn vector: mean(to) − mean(from), (z_dim,)."""
    return z_to.mean(0) - z_from.mean(0)


def along(z: torch.Tensor, v: torch.Tensor, steps: int, scale: float) -> torch.Tensor:
    """Rows z_k + t·v for t evenly from −scale to +scale: (K, steps, z_dim); the middle column is z_k itself
    when steps is odd."""
    if v.shape != (z.shape[1],):
        raise DcganError(f"the vector has shape {tuple(v.shape)}; this generator's z has {z.shape[1]} values")
    t = torch.linspace(-scale, scale, steps)
    return z[:, None, :] + t[None, :, None] * v[None, None, :]


def load_vector(path: str) -> torch.Tensor:
    """A vector saved by `dcgan vector`: (z_dim,) float32."""
    check_regular(path, "the vector file")
    try:
        v = torch.from_numpy(np.load(path, allow_pickle=False)).float()
    except (OSError, ValueError) as e:
        raise DcganError(f"could not read the vector {path!r} ({e}); save one with `dcgan vector`") from None
    if v.ndim != 1:
        raise DcganError(f"{path!r} holds an array of shape {tuple(v.shape)}; expected one vector (z_dim,)")
    return v
