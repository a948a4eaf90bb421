"""Checkpoints that restore everything, and the small generator export.

RUN/checkpoints/step-00001000/
    G.safetensors, D.safetensors   weights and BN buffers (the model config in the metadata)
    state.pt                       optimizers, step, images seen, RNG states, fixed z, config, version —
                                   only tensors, dicts, lists, numbers and strings: loads with weights_only
A checkpoint is written into a hidden `.partial` folder and renamed: a crash mid-write leaves the previous
checkpoints as they were, and the next start removes the leftover.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dcgan.config import ModelConfig
from dcgan.errors import DcganError
from dcgan.fileio import atomic_path, fsync_dir
from dcgan.sampling import CONFIG_KEY

STEP_DIR = re.compile(r"^step-(\d{8})$")


def save_module(net: nn.Module, path: Path, cfg: ModelConfig) -> None:
    """Weights and buffers of `net` as safetensors, with the model config in the metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={CONFIG_KEY: json.dumps(cfg.to_dict())})


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name)), key=lambda p: p.name)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    run_dir: Path, step: int, g: nn.Module, d: nn.Module, state: dict[str, Any], cfg: ModelConfig, keep: int
) -> Path:
    """Write checkpoint `step` atomically, then delete all but the newest `keep`."""
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:08d}"
    tmp = root / f".step-{step:08d}.partial"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_module(g, tmp / "G.safetensors", cfg)
        save_module(d, tmp / "D.safetensors", cfg)
        with atomic_path(tmp / "state.pt") as f:
            torch.save(state, f)
        if final.exists():  # the same step saved again (e.g. after a rollback)
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(root)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        prev = latest_checkpoint(run_dir)
        raise DcganError(
            f"could not save the checkpoint for step {step} ({e.strerror or e}); "
            f"{'the previous checkpoint ' + str(prev) + ' is intact' if prev else 'no earlier checkpoint exists'}"
            " — free disk space or fix permissions, then run the same command to resume"
        ) from None
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def clear_partials(run_dir: Path) -> None:
    """Remove checkpoints left half-written by a crash."""
    root = Path(run_dir) / "checkpoints"
    for p in root.glob(".step-*.partial") if root.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)


def load_checkpoint(path: Path, g: nn.Module, d: nn.Module) -> dict[str, Any]:
    """Load weights into g and d (on their devices); return the rest of the state."""
    try:
        g.load_state_dict(load_file(str(path / "G.safetensors")))
        d.load_state_dict(load_file(str(path / "D.safetensors")))
        return torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError) as e:
        raise DcganError(
            f"checkpoint {str(path)!r} could not be loaded ({e}); delete it to resume from an earlier one"
        ) from None
