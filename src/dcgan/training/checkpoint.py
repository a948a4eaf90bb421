"""Checkpoints that restore everything (the folder layout and the weights files are artifacts.py's).

RUN/checkpoints/step-00001000/
    G.safetensors, D.safetensors   weights and BN buffers (the model config in the metadata)
    state.pt                       optimizers, step, images seen, RNG states, fixed z, config, version —
                                   only tensors, dicts, lists, numbers and strings: loads with weights_only
A checkpoint is written into a hidden `.partial` folder and renamed: a crash mid-write leaves the previous
checkpoints as they were, and the next start removes the leftover.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from dcgan.artifacts import CHECKPOINTS, latest_checkpoint, list_checkpoints, save_weights, step_name
from dcgan.config import ModelConfig
from dcgan.errors import DcganError
from dcgan.fileio import atomic_path, fsync_dir


def save_checkpoint(
    run_dir: Path, step: int, g: nn.Module, d: nn.Module, state: dict[str, Any], cfg: ModelConfig, keep: int
) -> Path:
    """Write checkpoint `step` atomically, then delete all but the newest `keep`."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / step_name(step)
    tmp = root / f".{step_name(step)}.partial"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_weights(g, tmp / "G.safetensors", cfg)
        save_weights(d, tmp / "D.safetensors", cfg)
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
    root = Path(run_dir) / CHECKPOINTS
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
