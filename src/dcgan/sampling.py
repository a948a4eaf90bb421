"""Seeds → z → images. Image k of seed s is the same at any batch size: every seed has its own generator.

BatchNorm statistics when generating: `running` (eval mode; what makes a seed's image independent of the
other seeds in the batch — the default) or `batch` (each call's own statistics, as the original code and
pytorch/examples generate; an image then depends on which seeds are generated together).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dcgan.config import ModelConfig, get_preset
from dcgan.errors import DcganError
from dcgan.models import Discriminator, Generator, load_examples_state_dict

BN_MODES = ("running", "batch")
CONFIG_KEY = "dcgan_model_config"  # safetensors metadata key holding the ModelConfig JSON


def parse_seeds(text: str) -> list[int]:
    """'0-63' or '3,17,42' or '0-3,9' → [0, 1, 2, 3, 9]."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise DcganError(f"expected seeds as 0-63 or 3,17,42 (non-negative integers), got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise DcganError(f"seed range {part.strip()!r} runs backwards; write it as {hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise DcganError("no seeds given")
    return seeds


def sample_z(
    cfg: ModelConfig, n: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """n latent vectors (n, z_dim) from the config's prior: U(-1, 1) or N(0, 1)."""
    if cfg.z_dist == "uniform":
        return torch.rand(n, cfg.z_dim, generator=generator, device=device).mul_(2).sub_(1)
    return torch.randn(n, cfg.z_dim, generator=generator, device=device)


def z_for_seeds(cfg: ModelConfig, seeds: Iterable[int]) -> torch.Tensor:
    """(len(seeds), z_dim) on CPU; row k depends on seeds[k] alone."""
    return torch.cat([sample_z(cfg, 1, torch.Generator().manual_seed(int(s))) for s in seeds])


def z_for_seeds_spatial(cfg: ModelConfig, seeds: Iterable[int], k: int) -> torch.Tensor:
    """(len(seeds), z_dim, k, k): a k×k field of independent z per seed, for convolutional large images."""
    if k < 1:
        raise DcganError(f"--spatial must be at least 1, got {k}")
    fields = [sample_z(cfg, k * k, torch.Generator().manual_seed(int(s))) for s in seeds]  # (k·k, z_dim) each
    return torch.stack([f.T.reshape(cfg.z_dim, k, k) for f in fields])


@contextlib.contextmanager
def batch_stats(net: nn.Module) -> Iterator[None]:
    """Run BN layers on the batch's own statistics without touching their running averages."""
    saved = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    was_training = net.training
    net.train()
    try:
        yield
    finally:
        net.load_state_dict(saved, strict=False)
        net.train(was_training)


@torch.no_grad()
def run_generator(g: Generator, z: torch.Tensor, bn: str = "running", batch: int = 256) -> torch.Tensor:
    """z (N, z_dim) → images (N, C, H, W) float32 in [-1, 1] on CPU, `batch` at a time."""
    if bn not in BN_MODES:
        raise DcganError(f"--bn must be one of {', '.join(BN_MODES)}, got {bn!r}")
    device = next(g.parameters()).device
    out = []
    ctx = batch_stats(g) if bn == "batch" else contextlib.nullcontext()
    was_training = g.training
    with ctx:
        if bn == "running":
            g.eval()
        for i in range(0, len(z), batch):
            out.append(g(z[i : i + batch].to(device)).float().cpu())
    g.train(was_training)
    return torch.cat(out)


def generate(
    g: Generator, seeds: Iterable[int], bn: str = "running", batch: int = 256, spatial: int = 1
) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] for `seeds`; with bn="running" image k depends on seeds[k] alone.
    spatial > 1 feeds a spatial×spatial field of z per seed to a convolutional G: larger images."""
    z = z_for_seeds(g.cfg, seeds) if spatial == 1 else z_for_seeds_spatial(g.cfg, seeds, spatial)
    return run_generator(g, z, bn, batch)


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


def weights_file(path: str | os.PathLike, net: str = "G") -> Path:
    """The .safetensors of G or D that `path` names: a run folder (the export for G, else the latest
    checkpoint), a checkpoint folder, or the file itself."""
    p = Path(path)
    if p.is_dir():
        candidates = ([p / "generator.safetensors"] if net == "G" else []) + [p / f"{net}.safetensors"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            from dcgan.training.checkpoint import latest_checkpoint

            ckpt = latest_checkpoint(p)
            found = ckpt / f"{net}.safetensors" if ckpt else None
        if found is None:
            held = (
                "generator.safetensors or checkpoint" if net == "G" else "checkpoint (D lives in checkpoints)"
            )
            raise DcganError(f"{str(p)!r} holds no {held}; train first or give a .safetensors")
        p = found
    if not p.is_file():
        raise DcganError(
            f"{str(p)!r} does not exist; give a run folder, a checkpoint folder or a .safetensors file"
        )
    if p.suffix == ".pth":
        raise DcganError(f"{str(p)!r} looks like a pytorch/examples checkpoint; pass it with --from-examples")
    return p


def read_weights(p: Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """(state dict, model config) of a .safetensors file written by dcgan."""
    from dcgan.fileio import read_safetensors

    state, meta = read_safetensors(p)
    if CONFIG_KEY not in meta:
        raise DcganError(f"{str(p)!r} carries no {CONFIG_KEY} metadata; it was not written by dcgan")
    return state, ModelConfig.from_dict(json.loads(meta[CONFIG_KEY]))


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[Generator, ModelConfig]:
    """G in eval mode from a run folder, a checkpoint folder, or a generator .safetensors (config inside)."""
    state, cfg = read_weights(weights_file(path, "G"))
    g = Generator(cfg)
    g.load_state_dict(state)
    return g.to(device, memory_format=torch.channels_last).eval(), cfg


def load_discriminator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[Discriminator, ModelConfig]:
    """D in eval mode from a run folder (latest checkpoint), a checkpoint folder, or a D.safetensors."""
    state, cfg = read_weights(weights_file(path, "D"))
    d = Discriminator(cfg)
    try:
        d.load_state_dict(state)
    except RuntimeError as e:
        raise DcganError(
            f"{str(path)!r} does not hold the weights of a discriminator ({str(e).splitlines()[0]})"
        ) from None
    return d.to(device, memory_format=torch.channels_last).eval(), cfg


def load_examples_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[Generator, ModelConfig]:
    """A pytorch/examples `netG_epoch_N.pth`; nz, ngf and nc are read off the weight shapes."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise DcganError(f"{str(path)!r} is not a readable PyTorch state dict ({e})") from None
    state = {k.removeprefix("module."): v for k, v in state.items()} if isinstance(state, dict) else {}
    if "main.0.weight" not in state or "main.12.weight" not in state:
        raise DcganError(
            f"{str(path)!r} is not a pytorch/examples netG state dict (no main.0/main.12 weights)"
        )
    nz, ngf8 = state["main.0.weight"].shape[:2]
    ngf, nc = state["main.12.weight"].shape[:2]
    base = get_preset("examples64")
    cfg = ModelConfig(
        **{
            **base.to_dict(),
            "z_dim": nz,
            "channels": nc,
            "g_base": ngf8,
            "g_layers": ((2, ngf * 4), (2, ngf * 2), (2, ngf), (2, nc)),
        }
    )
    g = Generator(cfg)
    load_examples_state_dict(g, state)
    return g.to(device, memory_format=torch.channels_last).eval(), cfg


# ---------------------------------------------------------------- walks, arithmetic, vectors (PAPER.md §6)

INTERP_MODES = ("auto", "lerp", "slerp")


def z_from_spec(cfg: ModelConfig, spec: str) -> torch.Tensor:
    """Latents from seeds ('3,17,42', '0-9') or a saved .npy of shape (z_dim,) or (k, z_dim) → (k, z_dim)."""
    if spec.endswith(".npy"):
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
    """Spherical interpolation (a, b: (D,), t: (T,)) → (T, D); the norm moves smoothly from |a| to |b|."""
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na, b / nb).clamp(-1, 1)
    omega = torch.acos(cos)
    if omega.abs() < 1e-4:  # (anti)parallel directions: the arc is a line
        return lerp(a, b, t)
    t = t[:, None]
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)


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
    try:
        v = torch.from_numpy(np.load(path, allow_pickle=False)).float()
    except (OSError, ValueError) as e:
        raise DcganError(f"could not read the vector {path!r} ({e}); save one with `dcgan vector`") from None
    if v.ndim != 1:
        raise DcganError(f"{path!r} holds an array of shape {tuple(v.shape)}; expected one vector (z_dim,)")
    return v
