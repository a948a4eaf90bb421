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
from dcgan.models import Generator, load_examples_state_dict

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


def generate(g: Generator, seeds: Iterable[int], bn: str = "running", batch: int = 256) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] for `seeds`; with bn="running" image k depends on seeds[k] alone."""
    return run_generator(g, z_for_seeds(g.cfg, seeds), bn, batch)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → (N, H, W, C) uint8."""
    return x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[Generator, ModelConfig]:
    """G in eval mode from a run folder, a checkpoint folder, or a generator .safetensors (config inside)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    p = Path(path)
    if p.is_dir():
        candidates = [p / "generator.safetensors", p / "G.safetensors"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            from dcgan.training.checkpoint import latest_checkpoint

            ckpt = latest_checkpoint(p)
            found = ckpt / "G.safetensors" if ckpt else None
        if found is None:
            raise DcganError(
                f"{str(p)!r} holds no generator.safetensors or checkpoint; train first or give a .safetensors"
            )
        p = found
    if not p.is_file():
        raise DcganError(
            f"{str(p)!r} does not exist; give a run folder, a checkpoint folder or a .safetensors file"
        )
    if p.suffix == ".pth":
        raise DcganError(f"{str(p)!r} looks like a pytorch/examples checkpoint; pass it with --from-examples")
    try:
        with safe_open(str(p), "pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise DcganError(f"{str(p)!r} is not a readable .safetensors file ({e})") from None
    if CONFIG_KEY not in meta:
        raise DcganError(f"{str(p)!r} carries no {CONFIG_KEY} metadata; it was not written by dcgan")
    cfg = ModelConfig.from_dict(json.loads(meta[CONFIG_KEY]))
    g = Generator(cfg)
    g.load_state_dict(state)
    return g.to(device).eval(), cfg


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
    return g.to(device).eval(), cfg
