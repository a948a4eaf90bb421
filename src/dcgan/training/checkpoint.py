"""Checkpoints that restore everything (the folder layout and the weights files are artifacts.py's).

RUN/checkpoints/step-00001000/
    G.safetensors, D.safetensors   weights and BN buffers (the model config in the metadata)
    state.pt                       optimizers, step, images seen, RNG states, fixed z, config, version —
                                   only tensors, dicts, lists, numbers and strings: loads with weights_only
A checkpoint is written into a hidden `.step-N.partial` folder (state.pt last) and renamed into place; one
is removed by first renaming it to a hidden `.step-N.deleting`. So at any kill the listing holds only whole
checkpoints, and `recover_checkpoints` (run at every start) promotes a complete partial whose rename was
cut short and clears the rest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dcgan.artifacts import (
    CHECKPOINT_FILES,
    CHECKPOINTS,
    STEP_DIR,
    is_complete,
    latest_checkpoint,
    list_checkpoints,
    save_weights,
    step_name,
)
from dcgan.config import ModelConfig
from dcgan.errors import DcganError, one_line
from dcgan.fileio import atomic_path, fsync_dir, read_safetensors, read_torch

G_FILE, D_FILE, STATE_FILE = CHECKPOINT_FILES  # one checkpoint's files, as artifacts lists them


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
        save_weights(g, tmp / G_FILE, cfg)
        save_weights(d, tmp / D_FILE, cfg)
        with atomic_path(tmp / STATE_FILE) as f:
            torch.save(state, f)
        if final.exists():  # the same step saved again (e.g. after a rollback)
            shutil.rmtree(_hidden(final, "deleting"), ignore_errors=True)
            os.replace(final, _hidden(final, "deleting"))
        os.replace(tmp, final)
        fsync_dir(root)
        shutil.rmtree(_hidden(final, "deleting"), ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        prev = latest_checkpoint(run_dir)
        raise DcganError(
            f"could not save the checkpoint for step {step} ({e.strerror or e}); "
            f"{'the previous checkpoint ' + str(prev) + ' is intact' if prev else 'no earlier checkpoint exists'}"
            " — free disk space or fix permissions, then run the same command to resume"
        ) from None
    for old in list_checkpoints(run_dir)[:-keep]:
        remove_checkpoint(old)
    return final


def _hidden(ckpt: Path, what: str) -> Path:
    return ckpt.parent / f".{ckpt.name}.{what}"


def remove_checkpoint(ckpt: Path) -> None:
    """Hide it from the listing in one rename, then delete it: a kill mid-delete leaves no half checkpoint."""
    gone = _hidden(ckpt, "deleting")
    shutil.rmtree(gone, ignore_errors=True)
    os.replace(ckpt, gone)
    fsync_dir(ckpt.parent)
    shutil.rmtree(gone, ignore_errors=True)


def recover_checkpoints(run_dir: Path) -> None:
    """After a kill: a complete `.step-N.partial` with no whole step-N becomes step-N (its stats were
    flushed before the save began); other partials and every `.deleting` folder are removed."""
    root = Path(run_dir) / CHECKPOINTS
    for p in sorted(root.glob(".step-*.*")) if root.is_dir() else []:
        name = p.name[1:].rsplit(".", 1)[0]  # step-NNNNNNNN
        final = root / name
        if p.suffix == ".partial" and STEP_DIR.match(name) and is_complete(p) and not is_complete(final):
            if final.exists():  # a step-N that is not whole (not written by this protocol) makes way
                remove_checkpoint(final)
            os.replace(p, final)
            fsync_dir(root)
        elif p.suffix in (".partial", ".deleting") and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def load_checkpoint(path: Path, g: nn.Module, d: nn.Module) -> dict[str, Any]:
    """Load weights into g and d (on their devices); return the rest of the state (a dict)."""
    try:
        g.load_state_dict(read_safetensors(path / G_FILE)[0])
        d.load_state_dict(read_safetensors(path / D_FILE)[0])
        state = read_torch(path / STATE_FILE)
    except (DcganError, OSError, RuntimeError, ValueError) as e:
        raise DcganError(
            f"checkpoint {str(path)!r} could not be loaded ({one_line(e)}); "
            "delete it to resume from an earlier one"
        ) from None
    if not isinstance(state, dict):
        raise DcganError(f"checkpoint {str(path)!r} holds a state.pt that is not a training state; delete it")
    return state
