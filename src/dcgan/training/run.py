"""The run folder around the loop: is this the same run (config.json), what it prints at the start, where
the minibatch rows come from, the grids and checkpoints it leaves, and stopping cleanly on a signal (at the
same step on every rank); `start` opens the dataset and the folder and resumes the Trainer.

RUN/config.json holds the resolved TrainConfig and the dataset's identity. Running the same command again
resumes; settings in MUTABLE_KEYS (how long, how often, where) may change between invocations, the rest
may not.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dcgan
from dcgan.artifacts import BEST_FILE, GENERATOR_FILE, latest_checkpoint, read_best, save_weights, step_name
from dcgan.config import DEFAULT_EPOCHS, PRESETS, ModelConfig, TrainConfig, config_diff, train_config
from dcgan.data.dataset import PreparedDataset
from dcgan.device import Placement
from dcgan.errors import DcganError, one_line
from dcgan.fileio import parse_json, write_json
from dcgan.images import save_grid, to_uint8
from dcgan.models import run_generator
from dcgan.threads import available_cores, pinned_by_environment
from dcgan.training import distributed
from dcgan.training.checkpoint import load_checkpoint, recover_checkpoints, save_checkpoint
from dcgan.training.stats import STATS_FILE, plot_losses, truncate_stats
from dcgan.training.trainer import Trainer, TrainingDiverged, local_batch

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
    "threads",
    "bn",
    "compile",
    "eval_every",
    "eval_num",
    "extractor",
    "eval_patience",
}
MAX_ROLLBACKS = 3


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
    if path.exists() and not path.is_file():  # a folder, pipe or device where the run's record belongs
        raise DcganError(
            f"{str(path)!r} is not a run's config.json (not a file); use a new --out, or restore it"
        )
    if not path.is_file():
        run.mkdir(parents=True, exist_ok=True)
        write_json(path, meta)
        return []
    try:
        old = parse_json(path.read_bytes())
        old_sha, old_train = old["dataset"]["images_sha256"], dict(old["train"])
    except (ValueError, KeyError, TypeError) as e:  # not JSON, not UTF-8, not an object, keys missing
        raise DcganError(
            f"{str(path)!r} is not a run's config.json ({type(e).__name__}: {e}); use a new --out, or "
            "restore the file"
        ) from None
    if old_sha != meta["dataset"]["images_sha256"]:
        raise DcganError(
            f"{str(run)!r} was trained on another dataset ({old['dataset'].get('path', 'see its config.json')}); use a new --out"
        )
    for key in MUTABLE_KEYS - old_train.keys():  # a setting newer than the run: not a change
        old_train[key] = meta["train"][key]
    fixed = config_diff(
        {k: v for k, v in old_train.items() if k not in MUTABLE_KEYS},
        {k: v for k, v in meta["train"].items() if k not in MUTABLE_KEYS},
    )
    if fixed:
        raise DcganError(
            f"{str(run)!r} was started with other settings ({'; '.join(fixed)}); "
            "run the original command to resume, or use a new --out"
        )
    changed = config_diff(old_train, meta["train"])
    write_json(path, meta)
    return changed


def describe(cfg: TrainConfig) -> str:
    """The resolved config (all of it is in RUN/config.json) and its differences from the preset's."""
    m = cfg.model
    length = (
        f"kimg {cfg.kimg:g}"
        if cfg.kimg is not None
        else f"epochs {cfg.epochs if cfg.epochs is not None else DEFAULT_EPOCHS:g}"
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


def row_reader(ds: PreparedDataset, place: Placement) -> Callable[[np.ndarray], torch.Tensor]:
    """rows → (B, C, H, W) uint8. On CUDA the whole dataset moves to the GPU when it takes < 1/4 of free memory."""
    if place.device.type == "cuda" and ds.images.nbytes < torch.cuda.mem_get_info(place.device)[0] // 4:
        resident = torch.from_numpy(np.array(ds.images)).to(place.device)  # (N, H, W, C); a writable copy
        return lambda idx: resident[torch.from_numpy(idx).to(place.device, non_blocking=True)].permute(
            0, 3, 1, 2
        )
    return ds.batch


def save_samples(trainer: Trainer, run: Path) -> Path:
    """RUN/samples/step-N.png (and latest.png): G(fixed z) with batch statistics, as the original code
    (running statistics left untouched)."""
    x = run_generator(
        trainer.g, trainer.fixed_z.to(trainer.place.device), bn="batch", batch=len(trainer.fixed_z)
    )
    images = to_uint8(x)
    path = run / "samples" / f"{step_name(trainer.step)}.png"
    path.parent.mkdir(exist_ok=True)
    save_grid(images, path, ncols=8)
    save_grid(images, run / "samples" / "latest.png", ncols=8)
    return path


def save_run(trainer: Trainer, run: Path) -> Path:
    """The full checkpoint, the generator export and the refreshed loss plot."""
    path = save_checkpoint(
        run, trainer.step, trainer.g, trainer.d, trainer.state_dict(), trainer.cfg.model, trainer.cfg.keep
    )
    save_weights(trainer.g, run / GENERATOR_FILE, trainer.cfg.model)
    plot_losses(run / STATS_FILE, run / "loss.png")
    return path


class Saves:
    """What a run leaves behind as it goes — sample grids, checkpoints (and `after_save(run)`, the report,
    after each), the last of both — written by rank 0 alone through distributed.together, so a failure
    there (a full disk) stops every rank with its one line. Every rank calls each method."""

    def __init__(self, trainer: Trainer, run: Path, after_save: Callable[[Path], None] | None) -> None:
        self.trainer, self.run, self.after_save = trainer, run, after_save

    def samples(self) -> None:
        distributed.together(lambda: save_samples(self.trainer, self.run), main_only=True)

    def checkpoint(self) -> None:
        distributed.together(self._checkpoint, main_only=True)

    def last(self) -> None:
        """The final grid and checkpoint, unless the loop has just written them."""
        distributed.together(self._last, main_only=True)

    def _checkpoint(self) -> None:
        save_run(self.trainer, self.run)
        if self.after_save:
            self.after_save(self.run)

    def _last(self) -> None:
        name = step_name(self.trainer.step)
        if not (self.run / "samples" / f"{name}.png").exists():
            save_samples(self.trainer, self.run)
        last = latest_checkpoint(self.run)
        if last is None or last.name != name:
            self._checkpoint()


def resume(trainer: Trainer, run: Path) -> Path | None:
    """Load the run's latest checkpoint into the trainer (and drop the stats written after it). With several
    processes rank 0 picks it (a filesystem's listing may lag on another machine) and every rank loads it."""
    ckpt = distributed.together(lambda: latest_checkpoint(run), main_only=True)
    if ckpt is not None:
        state = load_checkpoint(ckpt, trainer.g, trainer.d)
        try:
            trainer.load_state_dict(state)
        except (
            KeyError,
            TypeError,
            ValueError,
            RuntimeError,
            IndexError,
            AttributeError,
            OverflowError,
        ) as e:
            raise DcganError(
                f"checkpoint {str(ckpt)!r} holds a training state that cannot be resumed ({type(e).__name__}: "
                f"{one_line(e, 200)}); delete it to resume from an earlier one"
            ) from None
        if trainer.world.main:  # the one writer
            truncate_stats(run / STATS_FILE, trainer.step)
    return ckpt


def rollback(trainer: Trainer, run: Path, rollbacks: int, err: TrainingDiverged) -> None:
    """After a NaN (--on-nan rollback): reload the last checkpoint and continue with fresh random streams."""
    why = f"{MAX_ROLLBACKS} rollbacks did not help" if rollbacks > MAX_ROLLBACKS else None
    if why is None and resume(trainer, run) is None:
        why = "no checkpoint to roll back to"
    if why:
        raise TrainingDiverged(f"{err} ({why}); lower --lr or use --precision fp32") from None
    trainer.rollbacks += rollbacks


def recover(err: TrainingDiverged, trainer: Trainer, run: Path, rollbacks: int) -> None:
    """After a NaN: stop naming the step and the intact checkpoint (--on-nan stop), or roll back (the
    `rollbacks`-th time). Every rank saw the same global numbers and acts alike; rank 0 says why it stops."""
    try:
        if trainer.cfg.on_nan == "stop":
            raise stop_on_nan(err, run) from None
        rollback(trainer, run, rollbacks, err)
    except TrainingDiverged as e:
        e.speak = trainer.world.main
        raise


def stop_on_nan(err: TrainingDiverged, run: Path) -> TrainingDiverged:
    """The error to stop with (--on-nan stop): what happened, what is left, what to try."""
    last = latest_checkpoint(run)
    kept = f"the last good checkpoint {last.name} is untouched" if last else "no checkpoint yet"
    return TrainingDiverged(f"{err}; {kept} — lower --lr, try --precision fp32, or pass --on-nan rollback")


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


def summary(run: Path, trainer: Trainer, status: str, signum: int | None) -> dict[str, Any]:
    """What train() returns: how it ended and where everything is."""
    out = {
        "status": status,
        "signal": signum,
        "step": trainer.step,
        "kimg": trainer.images_seen / 1000,
        "minutes": round(trainer.elapsed / 60, 2),
        "run": str(run),
        "samples": str(run / "samples" / "latest.png"),
        "loss_plot": str(run / "loss.png"),
        "stats": str(run / STATS_FILE),
        "generator": str(run / GENERATOR_FILE),
    }
    best = read_best(run)
    if best is not None:
        out["best"] = {"path": str(run / BEST_FILE), **best}
    return out


TIME_UP = 1  # what the ranks agree on after each step: 0 go on, 1 the time limit, else the signal's number


def agreed_stop(caught: dict[str, int], deadline: float) -> tuple[str | None, int | None]:
    """Whether to stop after this step — (None, None), ("time-limit", None) or ("interrupted", signal) —
    agreed by every rank, so all of them stop at the same step."""
    halt = distributed.agree(caught.get("signal", TIME_UP if time.monotonic() > deadline else 0))
    if not halt:
        return None, None
    return ("time-limit", None) if halt == TIME_UP else ("interrupted", halt)


def rank_threads(cfg: TrainConfig, world: distributed.World, device: torch.device) -> int:
    """The CPU threads of this process's loop: --threads, else with several processes on a machine an even
    share of its cores (pinned: a rank's step time includes waiting for the others, which would mislead a
    tuner), else 0 (tune)."""
    if cfg.threads or world.size == 1 or device.type != "cpu" or pinned_by_environment():
        return cfg.threads
    return max(1, available_cores() // distributed.local_size())


def start(
    cfg: TrainConfig,
    dataset: str | Path,
    run: Path,
    place: Placement,
    world: distributed.World,
    log: Callable[[str], None],
) -> tuple[PreparedDataset, Trainer]:
    """Open the dataset and the run folder (checked against each other), build the Trainer and resume it
    from the newest whole checkpoint, and say what is about to run. With several processes every check
    fails on all of them alike (distributed.together), and only rank 0 writes the run folder."""

    def open_dataset() -> PreparedDataset:
        ds = PreparedDataset(dataset)
        check_dataset_fits(cfg.model, ds, cfg.preset)
        local_batch(cfg, world)
        return ds

    def init_folder() -> list[str]:
        changed = init_run(run, cfg, ds)
        recover_checkpoints(run)
        return changed

    ds = distributed.together(open_dataset)
    changed = distributed.together(init_folder, main_only=True)
    trainer = Trainer(cfg, place, world)
    ckpt = distributed.together(lambda: resume(trainer, run))
    if trainer.compiled:
        log(
            "compiling G and D's training step for this GPU (once per start, ~10-30 s; --no-compile skips it)"
        )
    trainer.capture((cfg.model.channels, cfg.model.image_size, cfg.model.image_size))
    log(describe(cfg))
    resumed = (
        f"\nresume    from {ckpt.name}" + (f" with {'; '.join(changed)}" if changed else "") if ckpt else ""
    )
    log(f"device    {trainer.place.describe()}; dataset {ds.path} ({len(ds):,} images){resumed}")
    if world.size > 1:
        graph = f"; no CUDA graph: {trainer.no_graph_reason}" if trainer.no_graph_reason else ""
        log(
            f"processes {world.size}, batch {trainer.local_batch} each (global {cfg.batch}), "
            f"BatchNorm statistics of the {'global batch' if cfg.bn == 'global' else 'rank'}{graph}"
        )
    return ds, trainer
