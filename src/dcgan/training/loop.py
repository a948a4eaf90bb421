"""The training loop (PAPER.md §3): Adam(2e-4, β1 0.5), BCE, non-saturating G, D sees real and fake separately.

Everything random is a function of (seed, restarts, step): the minibatch rows come from `batch_indices`
(seed, images seen), z from a generator seeded per step. So a checkpoint plus the same command continues
exactly where it stopped — resuming is running the same command again.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import dcgan
from dcgan.config import PRESETS, ModelConfig, TrainConfig, config_diff, train_config
from dcgan.data.dataset import PreparedDataset, batch_indices
from dcgan.device import Placement, resolve
from dcgan.errors import DcganError
from dcgan.fileio import write_bytes, write_json
from dcgan.progress import progress_bar
from dcgan.report.grid import save_grid
from dcgan.report.plots import plot_losses, read_stats
from dcgan.sampling import run_generator, to_uint8
from dcgan.training.checkpoint import (
    clear_partials,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_module,
)
from dcgan.training.trainer import Trainer, step_seed

# Keys that may change between invocations of one run: how long, how often, where. The rest is the run.
MUTABLE_KEYS = {
    "epochs",
    "kimg",
    "sample_every",
    "ckpt_every",
    "log_every",
    "keep",
    "on_nan",
    "device",
    "precision",
    "compile",
    "eval_every",
    "eval_num",
    "extractor",
    "eval_patience",
}
MAX_ROLLBACKS = 3


class TrainingDiverged(DcganError):
    """A loss or weight became NaN/Inf."""


class Meter:
    """Per-step statistics kept on the device; one stats.jsonl line (and NaN check) per flush."""

    def __init__(self, path: Path, tb: Any = None) -> None:
        self.path, self.tb, self.d_rows, self.g_rows = path, tb, [], []
        self.t0, self.images = time.perf_counter(), 0

    def add(self, step: int, d: torch.Tensor | None, g: torch.Tensor | None, images: int) -> None:
        if d is not None:
            self.d_rows.append((step, d))
        if g is not None:
            self.g_rows.append((step, g))
        self.images += images

    def flush(self, trainer: Trainer, n_data: int) -> dict[str, Any] | None:
        """Write one record; raise TrainingDiverged naming the first step whose loss is not finite."""
        if not self.d_rows and not self.g_rows:
            return None
        d = torch.stack([r for _, r in self.d_rows]).cpu() if self.d_rows else torch.zeros(0, 3)
        g = torch.stack([r for _, r in self.g_rows]).cpu() if self.g_rows else torch.zeros(0, 1)
        for rows, values, names in ((self.d_rows, d, "loss_D"), (self.g_rows, g, "loss_G")):
            bad = (~torch.isfinite(values)).any(1).nonzero()
            if len(bad):
                raise TrainingDiverged(
                    f"{names} became {values[bad[0, 0], 0].item()} at step {rows[bad[0, 0]][0] + 1}"
                )
        params = (*trainer.g.parameters(), *trainer.d.parameters())
        if not torch.stack(
            [torch.isfinite(p).all() for p in params]
        ).all():  # one device sync, not one per tensor
            raise TrainingDiverged(f"a weight became NaN/Inf by step {trainer.step}")
        dt = time.perf_counter() - self.t0
        d_mean = d.mean(0).tolist() if self.d_rows else [None] * 3  # `alternate` can log a G-only interval
        rec = {
            "step": trainer.step,
            "epoch": round(trainer.images_seen / n_data, 4),
            "kimg": trainer.images_seen / 1000,
            "images_seen": trainer.images_seen,
            "loss_D": d_mean[0],
            "loss_G": g[:, 0].mean().item() if self.g_rows else None,
            "D_x": d_mean[1],
            "D_G_z": d_mean[2],
            "img_per_s": round(self.images / dt, 1),
            "lr": trainer.opt_g.param_groups[0]["lr"],
            "time": round(trainer.elapsed, 2),
        }
        self.write(rec, ("loss_D", "loss_G", "D_x", "D_G_z", "img_per_s"))
        self.d_rows, self.g_rows, self.t0, self.images = [], [], time.perf_counter(), 0
        return rec

    def write(self, rec: dict[str, Any], scalars: tuple[str, ...]) -> None:
        """Append `rec` to stats.jsonl and its `scalars` (those not None) to TensorBoard."""
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for key in scalars:
                if rec.get(key) is not None:
                    self.tb.add_scalar(key, rec[key], rec["step"])
            self.tb.flush()


def _tensorboard(folder: Path) -> Any:
    """A SummaryWriter when the [tb] extra (tensorboard) is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))


@contextmanager
def graceful_signals() -> Iterator[dict[str, int]]:
    """SIGINT/SIGTERM set a flag the loop checks between steps (a second Ctrl-C interrupts at once)."""
    caught: dict[str, int] = {}

    def handler(signum: int, frame: Any) -> None:
        caught["signal"] = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in old:
            signal.signal(s, handler)
    except ValueError:  # not the main thread: no handlers, Ctrl-C behaves as usual
        old = {}
    try:
        yield caught
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def check_dataset_fits(model: ModelConfig, ds: PreparedDataset, preset: str) -> None:
    """The network's image size and channels must be the dataset's; say how to prepare it if not."""
    want = (model.image_size, model.channels)
    have = (ds.image_size, ds.channels)
    if have != want:
        fits = [name for name, c in PRESETS.items() if (c.image_size, c.channels) == have]
        raise DcganError(
            f"the dataset {str(ds.path)!r} holds {have[0]}×{have[0]}×{have[1]} images but preset {preset} needs "
            f"{want[0]}×{want[0]}×{want[1]}; prepare it with --size {want[0]} --channels {want[1]}"
            + (f", or use --preset {' / '.join(fits)}" if fits else "")
        )


def init_run(run: Path, cfg: TrainConfig, ds: PreparedDataset) -> list[str]:
    """Create RUN/config.json, or check that an existing run is the same run; returns the changed settings."""
    meta = {
        "train": cfg.to_dict(),
        "dataset": {
            "path": str(ds.path.resolve()),
            "images": len(ds),
            "images_sha256": ds.manifest["images_sha256"],
        },
        "dcgan_version": dcgan.__version__,
    }
    path = run / "config.json"
    if not path.is_file():
        run.mkdir(parents=True, exist_ok=True)
        write_json(path, meta)
        return []
    old = json.loads(path.read_text())
    if old["dataset"]["images_sha256"] != meta["dataset"]["images_sha256"]:
        raise DcganError(
            f"{str(run)!r} was trained on another dataset ({old['dataset']['path']}); use a new --out"
        )
    fixed = config_diff(
        {k: v for k, v in old["train"].items() if k not in MUTABLE_KEYS},
        {k: v for k, v in meta["train"].items() if k not in MUTABLE_KEYS},
    )
    if fixed:
        raise DcganError(
            f"{str(run)!r} was started with other settings ({'; '.join(fixed)}); "
            "run the original command to resume, or use a new --out"
        )
    changed = config_diff(old["train"], meta["train"])
    write_json(path, meta)
    return changed


def truncate_stats(path: Path, step: int) -> None:
    """Drop stats.jsonl records after `step` (written after the checkpoint a resume starts from)."""
    rows = read_stats(path)
    if rows and rows[-1]["step"] > step:
        write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows if r["step"] <= step).encode())


def save_samples(trainer: Trainer, run: Path) -> Path:
    """A grid of G(fixed z), with batch statistics as the original code (running stats left untouched)."""
    x = run_generator(
        trainer.g, trainer.fixed_z.to(trainer.place.device), bn="batch", batch=len(trainer.fixed_z)
    )
    images = to_uint8(x)
    path = run / "samples" / f"step-{trainer.step:08d}.png"
    path.parent.mkdir(exist_ok=True)
    save_grid(images, path, ncols=8)
    save_grid(images, run / "samples" / "latest.png", ncols=8)
    return path


def checkpoint(trainer: Trainer, run: Path) -> Path:
    """Full checkpoint, the generator export and the refreshed loss plot."""
    path = save_checkpoint(
        run, trainer.step, trainer.g, trainer.d, trainer.state_dict(), trainer.cfg.model, trainer.cfg.keep
    )
    save_module(trainer.g, run / "generator.safetensors", trainer.cfg.model)
    plot_losses(run / "stats.jsonl", run / "loss.png")
    return path


def rollback(trainer: Trainer, run: Path, rollbacks: int, err: TrainingDiverged) -> None:
    """Reload the last checkpoint and continue with a fresh data order and fresh z."""
    ckpt = latest_checkpoint(run)
    if ckpt is None or rollbacks > MAX_ROLLBACKS:
        why = "no checkpoint to roll back to" if ckpt is None else f"{MAX_ROLLBACKS} rollbacks did not help"
        raise TrainingDiverged(f"{err} ({why}); lower --lr or use --precision fp32") from None
    state = load_checkpoint(ckpt, trainer.g, trainer.d)
    trainer.load_state_dict(state)
    trainer.restarts = state["restarts"] + rollbacks
    truncate_stats(run / "stats.jsonl", trainer.step)


def describe(cfg: TrainConfig) -> str:
    """The resolved config (all of it is in RUN/config.json) and its differences from the preset's."""
    m = cfg.model
    length = (
        f"kimg {cfg.kimg:g}"
        if cfg.kimg is not None
        else f"epochs {cfg.epochs if cfg.epochs is not None else 5:g}"
    )
    lines = [
        f"model     {cfg.preset}: {m.image_size}×{m.image_size}×{m.channels}, z {m.z_dim} {m.z_dist}, {m.kernel_size}×"
        f"{m.kernel_size} kernels, G {m.g_base}→{'→'.join(str(c) for _, c in m.g_layers)}, "
        f"D {'→'.join(str(c) for _, c in m.d_layers)}→1",
        f"recipe    batch {cfg.batch}, Adam lr {cfg.lr:g} betas ({cfg.beta1:g}, {cfg.beta2:g}), schedule {cfg.schedule}, "
        f"{length}, seed {cfg.seed}, precision {cfg.precision}, device {cfg.device}",
    ]
    if cfg.preset in PRESETS:
        diff = config_diff(train_config(cfg.preset).to_dict(), cfg.to_dict())
        lines.append(f"vs preset {'; '.join(diff) or 'no changes'}")
    return "\n".join(lines)


def train(
    cfg: TrainConfig,
    dataset: str | Path,
    run_dir: str | Path,
    *,
    max_minutes: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or resume) the run in `run_dir` on a prepared dataset. Returns a summary with `status`:
    finished | time-limit | interrupted."""
    ds = PreparedDataset(dataset)
    check_dataset_fits(cfg.model, ds, cfg.preset)
    place = resolve(cfg.device, cfg.precision)
    run = Path(run_dir)
    changed = init_run(run, cfg, ds)
    clear_partials(run)
    trainer = Trainer(cfg, place)
    ckpt = latest_checkpoint(run)
    if ckpt is not None:
        trainer.load_state_dict(load_checkpoint(ckpt, trainer.g, trainer.d))
        truncate_stats(run / "stats.jsonl", trainer.step)
    if trainer.compiled:
        log(
            "compiling G and D's training step for this GPU (once per start, ~10-30 s; --no-compile skips it)"
        )
    trainer.capture((cfg.model.channels, cfg.model.image_size, cfg.model.image_size))
    log(describe(cfg))
    log(
        f"device    {place.describe()}; dataset {ds.path} ({len(ds):,} images)"
        + (
            f"\nresume    from {ckpt.name}" + (f" with {'; '.join(changed)}" if changed else "")
            if ckpt
            else ""
        )
    )
    status, signum = _loop(trainer, ds, run, max_minutes, progress, log)
    if not (run / "samples" / f"step-{trainer.step:08d}.png").exists():
        save_samples(trainer, run)
    last = latest_checkpoint(run)
    if last is None or last.name != f"step-{trainer.step:08d}":  # the loop may have just saved this step
        checkpoint(trainer, run)
    summary = {
        "status": status,
        "signal": signum,
        "step": trainer.step,
        "kimg": trainer.images_seen / 1000,
        "minutes": round(trainer.elapsed / 60, 2),
        "run": str(run),
        "samples": str(run / "samples" / "latest.png"),
        "loss_plot": str(run / "loss.png"),
        "stats": str(run / "stats.jsonl"),
        "generator": str(run / "generator.safetensors"),
    }
    if (run / "best.json").is_file():
        summary["best"] = {
            "path": str(run / "best.safetensors"),
            **json.loads((run / "best.json").read_text()),
        }
    return summary


def _fetcher(ds: PreparedDataset, place: Placement) -> Callable[[np.ndarray], torch.Tensor]:
    """rows → (B, C, H, W) uint8. On CUDA the whole dataset moves to the GPU when it takes < 1/4 of free memory."""
    if place.device.type == "cuda" and ds.images.nbytes < torch.cuda.mem_get_info(place.device)[0] // 4:
        resident = torch.from_numpy(np.array(ds.images)).to(place.device)  # (N, H, W, C); a writable copy
        return lambda idx: resident[torch.from_numpy(idx).to(place.device, non_blocking=True)].permute(
            0, 3, 1, 2
        )
    return ds.batch


def evaluate_now(evaluator: Any, trainer: Trainer, meter: Meter) -> dict[str, Any]:
    """One periodic evaluation: its record goes to stats.jsonl (and TensorBoard), its warnings to stderr."""
    rec = evaluator(trainer)
    meter.write(rec, (evaluator.key,))
    for w in rec.get("warnings", []):
        tqdm.write(f"warning at step {trainer.step:,}: {w}", file=sys.stderr)
    return rec


def _loop(
    trainer: Trainer,
    ds: PreparedDataset,
    run: Path,
    max_minutes: float | None,
    progress: bool,
    log: Callable[[str], None] = print,
) -> tuple[str, int | None]:
    """Steps until the run's length, a time limit or a signal; returns (status, signal number or None)."""
    cfg = trainer.cfg
    total_steps = math.ceil(cfg.total_images(len(ds)) / cfg.batch)
    tb = _tensorboard(run / "tensorboard")
    fetch, meter = _fetcher(ds, trainer.place), Meter(run / "stats.jsonl", tb)
    deadline = time.monotonic() + max_minutes * 60 if max_minutes else math.inf
    if trainer.place.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if trainer.step == 0:
        save_samples(trainer, run)  # what the untrained G makes, for comparison
    status, rollbacks = "finished", 0
    evaluator = None
    if cfg.eval_every:
        from dcgan.training.evaluation import PeriodicEval

        evaluator = PeriodicEval(cfg, ds, run, trainer.place.device, log)
    bar = progress_bar(progress, total=total_steps, initial=trainer.step, unit="step", desc="train")
    with bar, graceful_signals() as caught, contextlib.closing(tb) if tb else contextlib.nullcontext():
        while trainer.step < total_steps:
            t0 = time.perf_counter()
            data_seed = step_seed(cfg.seed, trainer.restarts, 0)
            idx = batch_indices(len(ds), trainer.images_seen, cfg.batch, data_seed)
            d_stats, g_stats = trainer.train_step(fetch(idx))
            meter.add(trainer.step, d_stats, g_stats, cfg.batch)
            trainer.step += 1
            trainer.images_seen += cfg.batch
            trainer.elapsed += time.perf_counter() - t0
            bar.update()
            stop = "interrupted" if caught else "time-limit" if time.monotonic() > deadline else None
            try:
                if trainer.step % cfg.log_every == 0 or trainer.step == total_steps or stop:
                    rec = meter.flush(trainer, len(ds))
                    if rec:
                        losses = "  ".join(
                            f"{k} {rec[k]:.3f}" for k in ("loss_D", "loss_G") if rec[k] is not None
                        )
                        bar.set_postfix_str(f"{rec['img_per_s']:.0f} img/s  {losses}", refresh=False)
                if trainer.step % cfg.sample_every == 0:
                    save_samples(trainer, run)
                if trainer.step % cfg.ckpt_every == 0:
                    meter.flush(trainer, len(ds))  # never save a checkpoint without checking its steps
                    checkpoint(trainer, run)
                if evaluator and trainer.step % cfg.eval_every == 0:
                    meter.flush(trainer, len(ds))
                    evaluate_now(evaluator, trainer, meter)
                    meter.t0 = time.perf_counter()  # evaluation time is not training throughput
            except TrainingDiverged as e:
                last = latest_checkpoint(run)
                if cfg.on_nan == "stop":
                    raise TrainingDiverged(
                        f"{e}; {'the last good checkpoint ' + last.name + ' is untouched' if last else 'no checkpoint yet'}"
                        " — lower --lr, try --precision fp32, or pass --on-nan rollback"
                    ) from None
                rollbacks += 1
                rollback(trainer, run, rollbacks, e)
                meter = Meter(run / "stats.jsonl", tb)
                bar.n = trainer.step
                continue
            if stop:
                status = stop
                break
    return status, caught.get("signal")
