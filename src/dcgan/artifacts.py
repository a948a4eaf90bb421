"""The model files on disk: one owner for their layout, their writer and every reader.

RUN/
    config.json                      the run's TrainConfig and dataset (written by training)
    generator.safetensors            G's export: weights + BN buffers, the ModelConfig in the metadata
    checkpoints/step-00001000/       one checkpoint (see training/checkpoint.py for state.pt)
        G.safetensors, D.safetensors
    best.safetensors                 with --eval-every: G of the lowest FID so far, its record inside
    best.json                        a readable copy of that record

A weights file is safetensors (nothing in it can run code) whose metadata holds the ModelConfig as JSON, so
loading needs no flags. pytorch/examples `netG_epoch_N.pth` files are imported by reading their shapes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from dcgan.config import ModelConfig, get_preset
from dcgan.device import resolve
from dcgan.errors import DcganError, one_line
from dcgan.fileio import atomic_path, check_regular, parse_json, read_safetensors, read_torch, write_json
from dcgan.models import Discriminator, Generator

CONFIG_KEY = "dcgan_model_config"  # safetensors metadata key holding the ModelConfig JSON
GENERATOR_FILE = "generator.safetensors"
BEST_FILE, BEST_KEY = "best.safetensors", "dcgan_best"  # the file, and the metadata key of its record
CHECKPOINTS = "checkpoints"
CHECKPOINT_FILES = ("G.safetensors", "D.safetensors", "state.pt")  # state.pt: see training/checkpoint.py
STEP_DIR = re.compile(r"^step-(\d{8}|[1-9]\d{8,})$")  # step_name of a step: 8 digits, more past 10^8


def step_name(step: int) -> str:
    """'step-00001000': the folder of a checkpoint and the file stem of a sample grid."""
    return f"step-{step:08d}"


def save_weights(
    net: nn.Module, path: str | os.PathLike, cfg: ModelConfig, extra: dict[str, str] | None = None
) -> None:
    """Weights and buffers of `net` as safetensors, atomically, with the model config (and `extra`) in the
    metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={CONFIG_KEY: json.dumps(cfg.to_dict()), **(extra or {})})


def save_best(g: nn.Module, run: Path, cfg: ModelConfig, record: dict) -> None:
    """G of the best score so far with its record inside the same file — one atomic write, so the weights
    and what they scored can never disagree — then best.json, a readable copy."""
    save_weights(g, run / BEST_FILE, cfg, {BEST_KEY: json.dumps(record)})
    write_json(run / "best.json", record)


def read_best(run: Path) -> dict | None:
    """The record of RUN/best.safetensors (step, kimg, score), read from the file itself; None when there is
    none or it cannot be read (the next evaluation writes a new one)."""
    path = run / BEST_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if BEST_KEY in meta:
            record = parse_json(meta[BEST_KEY])
        else:  # written before the record went inside: best.json was its only description
            record = parse_json((run / "best.json").read_bytes())
    except (SafetensorError, OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def read_weights(
    path: str | os.PathLike, net: type[nn.Module] = Generator
) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """(state dict, model config) of a .safetensors of `net` written by dcgan. The config is read and the
    stored tensors' names and shapes checked against the network it describes (built on the meta device:
    nothing allocated) before any tensor is loaded — a config that asks for a huge model is refused."""
    meta, stored = safetensors_header(path)
    if CONFIG_KEY not in meta:
        raise DcganError(f"{str(path)!r} carries no {CONFIG_KEY} metadata; it was not written by dcgan")
    try:
        spec = parse_json(meta[CONFIG_KEY])
        cfg = ModelConfig.from_dict(spec) if isinstance(spec, dict) else None
    except (ValueError, TypeError):
        cfg = None
    if cfg is None:
        raise DcganError(
            f"{str(path)!r}: its {CONFIG_KEY} metadata is not a model config; it was not written by dcgan"
        )
    check_shapes(repr(str(path)), stored, lambda: net(cfg), "D" if net is Discriminator else "G")
    state, _ = read_safetensors(path)
    return state, cfg


def safetensors_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """(metadata, tensor name → shape) of a .safetensors, without reading a tensor."""
    check_regular(path, "the weights file")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise DcganError(f"{str(path)!r} is not a readable .safetensors file ({e})") from None
    return meta, shapes


def check_shapes(
    name: str, stored: dict[str, tuple[int, ...]], build: Callable[[], nn.Module], what: str
) -> None:
    """The stored tensors must be exactly the state of the network `build` makes — built on the meta device,
    so a config that claims a huge network allocates nothing before it is refused."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    if stored != expected:
        first = sorted(set(stored.items()) ^ set(expected.items()))[0]
        raise DcganError(
            f"{name} does not hold the weights of the {what} its own config describes (first difference: "
            f"{first[0]} {first[1]}); the file is damaged or not a {what}"
        )


def is_complete(ckpt: Path) -> bool:
    """A checkpoint folder with all its files (one that a kill left half-deleted is not)."""
    return ckpt.is_dir() and not ckpt.is_symlink() and all((ckpt / f).is_file() for f in CHECKPOINT_FILES)


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = (p for p in root.iterdir() if STEP_DIR.match(p.name) and is_complete(p))
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def weights_file(path: str | os.PathLike, net: str = "G") -> Path:
    """The .safetensors of G or D that `path` names: a run folder (the export for G, else the latest
    checkpoint), a checkpoint folder, or the file itself."""
    p = Path(path)
    if p.is_dir():
        candidates = ([p / GENERATOR_FILE] if net == "G" else []) + [p / f"{net}.safetensors"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            ckpt = latest_checkpoint(p)
            found = ckpt / f"{net}.safetensors" if ckpt else None
        if found is None:
            held = f"{GENERATOR_FILE} or checkpoint" if net == "G" else "checkpoint (D lives in checkpoints)"
            raise DcganError(f"{str(p)!r} holds no {held}; train first or give a .safetensors")
        p = found
    if not p.is_file():
        raise DcganError(
            f"{str(p)!r} does not exist; give a run folder, a checkpoint folder or a .safetensors file"
        )
    if p.suffix == ".pth":
        raise DcganError(f"{str(p)!r} looks like a pytorch/examples checkpoint; pass it with --from-examples")
    return p


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu", precision: str = "fp32"
) -> Generator:
    """G in eval mode (its config in `.cfg`) from a run folder, a checkpoint folder or a generator
    .safetensors, to sample in `precision` (auto: bf16 on CPUs that run it natively, else fp32)."""
    state, cfg = read_weights(weights_file(path, "G"), Generator)
    g = Generator(cfg)
    g.load_state_dict(state)
    return _for_sampling(g, device, precision)


def _for_sampling(g: Generator, device: str | torch.device, precision: str) -> Generator:
    """G on `device` in eval mode, to sample in `precision`: auto is bf16 on CPUs that run it natively
    (measured there, docs/PERFORMANCE.md) and fp32 elsewhere."""
    g = g.to(device, memory_format=torch.channels_last).eval()
    kind = next(g.parameters()).device.type
    if precision == "auto" and kind != "cpu":  # resolve's auto on CPU is the measured one; GPUs keep fp32
        precision = "fp32"
    g.precision = resolve(kind, precision).precision
    return g


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Discriminator:
    """D in eval mode (its config in `.cfg`) from a run folder (latest checkpoint), a checkpoint folder or
    a D.safetensors."""
    state, cfg = read_weights(weights_file(path, "D"), Discriminator)
    d = Discriminator(cfg)
    d.load_state_dict(state)
    return d.to(device, memory_format=torch.channels_last).eval()


# ---------------------------------------------------------------- pytorch/examples dcgan files


def load_examples_state_dict(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a pytorch/examples `netG_epoch_N.pth` / `netD_epoch_N.pth` state dict (DataParallel prefix ok)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = str(e).splitlines()
        first = lines[1].strip() if len(lines) > 1 else one_line(e)
        raise DcganError(
            f"the state dict does not fit this {type(net).__name__} ({first}); pytorch/examples weights "
            "load into the examples64 preset with the same --ngf/--ndf/--nz/--nc they were trained with"
        ) from None


def load_examples_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu", precision: str = "fp32"
) -> Generator:
    """G from a pytorch/examples `netG_epoch_N.pth`; nz, ngf and nc are read off the weight shapes."""
    state = read_torch(path)
    state = {str(k).removeprefix("module."): v for k, v in state.items()} if isinstance(state, dict) else {}
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DcganError(
            f"{str(path)!r} is not a pytorch/examples netG state dict (it holds more than tensors)"
        )
    if "main.0.weight" not in state or "main.12.weight" not in state:
        raise DcganError(
            f"{str(path)!r} is not a pytorch/examples netG state dict (no main.0/main.12 weights)"
        )
    if state["main.0.weight"].ndim != 4 or state["main.12.weight"].ndim != 4:
        raise DcganError(f"{str(path)!r} is not a pytorch/examples netG state dict (its weights are not 4-d)")
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
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    check_shapes(repr(str(path)), shapes, lambda: Generator(cfg), "pytorch/examples netG")
    g = Generator(cfg)
    load_examples_state_dict(g, state)
    return _for_sampling(g, device, precision)
