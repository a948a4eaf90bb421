"""The training run (PAPER.md §3), top to bottom: open the dataset and the run folder, build or resume the
Trainer, step until the run's length, a time limit or a signal, and leave a checkpoint behind.

Everything random is a function of (seed, rollbacks, step) — see trainer.py — so a checkpoint plus the same
command continues exactly where it stopped: resuming is running the same command again.

Under torchrun every process runs this same loop on its share of each global minibatch (see
distributed.py); only rank 0 writes (stats, grids, checkpoints, the report), and all ranks agree after
every step whether to stop, so they stop at the same step.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from dcgan.config import TrainConfig
from dcgan.data.dataset import PreparedDataset
from dcgan.device import Placement, resolve
from dcgan.errors import DcganError
from dcgan.progress import progress_bar, silent
from dcgan.threads import Change, available_cores, pinned_by_environment, tuned
from dcgan.training import distributed
from dcgan.training.checkpoint import recover_checkpoints
from dcgan.training.run import (
    Saves,
    check_dataset_fits,
    describe,
    graceful_signals,
    init_run,
    recover,
    resume,
    row_reader,
    summary,
)
from dcgan.training.stats import Meter, StatsWriter
from dcgan.training.trainer import Trainer, TrainingDiverged, local_batch

TIME_UP = 1  # what the ranks agree on after each step: 0 go on, 1 the time limit, else the signal's number


class Evaluator(Protocol):
    """What --eval-every runs (metrics/periodic.py builds one): a record for stats.jsonl per call. Every
    rank calls it (each may do a share of the work); rank 0 gets the record, the others None."""

    key: str  # the record's headline scalar, e.g. "fid[fmnist-94bc]"

    def __call__(self, trainer: Trainer) -> dict[str, Any] | None: ...


# make_evaluator(dataset, run folder, device, log) → Evaluator, called once the run is set up
EvaluatorFactory = Callable[[PreparedDataset, Path, torch.device, Callable[[str], None]], Evaluator]


def train(
    cfg: TrainConfig,
    dataset: str | Path,
    run_dir: str | Path,
    *,
    make_evaluator: EvaluatorFactory | None = None,
    after_save: Callable[[Path], None] | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or resume) the run in `run_dir` on a prepared dataset. Returns a summary with `status`:
    finished | time-limit | interrupted. With cfg.eval_every, `make_evaluator` builds the evaluator;
    `after_save(run)` runs after every checkpoint (the report refresh)."""
    if cfg.eval_every and make_evaluator is None:
        raise DcganError("eval_every needs an evaluator: call dcgan.train, which builds one from the config")
    then = "it stops without saving; the run's last checkpoint is intact: run the same command to resume"
    with distributed.joined(resolve(cfg.device, "fp32").device.type, then) as world:
        place = resolve(cfg.device, cfg.precision)  # after joining: on CUDA, this process's GPU
        return _train(
            cfg, dataset, run_dir, place, world, make_evaluator, after_save, max_minutes, progress, log
        )


def _train(
    cfg: TrainConfig,
    dataset: str | Path,
    run_dir: str | Path,
    place: Placement,
    world: distributed.World,
    make_evaluator: EvaluatorFactory | None,
    after_save: Callable[[Path], None] | None,
    max_minutes: float | None,
    progress: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    run, main = Path(run_dir), world.main  # rank 0: the one process that writes and talks
    log = log if main else silent
    ds, trainer = start(cfg, dataset, run, place, world, log)
    saves = Saves(trainer, run, after_save)
    total_steps = math.ceil(cfg.total_images(len(ds)) / cfg.batch)
    fetch, meter = row_reader(ds, trainer.place), Meter()
    deadline = time.monotonic() + max_minutes * 60 if max_minutes else math.inf
    device = trainer.place.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if trainer.step == 0:
        saves.samples()  # what the untrained G makes, for comparison
    evaluator = None
    if make_evaluator and cfg.eval_every:  # every rank: each generates a share of an evaluation's images
        evaluator = distributed.together(lambda: make_evaluator(ds, run, device, log))
    status, signum, rollbacks, timed_from = "finished", None, 0, trainer.elapsed
    bar = progress_bar(progress and main, total=total_steps, initial=trainer.step, unit="step", desc="train")
    writer, threads = StatsWriter(run, enabled=main), tuned(rank_threads(cfg, world, device), device)
    with bar, graceful_signals() as caught, writer, threads as tuner:
        while trainer.step < total_steps:
            d_stats, g_stats = trainer.train_step(fetch(trainer.rows(len(ds))))
            meter.add(trainer.step, d_stats, g_stats, cfg.batch)
            bar.update()
            # on CPU, the thread count fastest now, timed per step (per G+D pair of `alternate` steps)
            if cfg.schedule == "both" or trainer.step % 2 == 0:
                change = tuner.observe(trainer.elapsed - timed_from, cfg.batch)
                timed_from = trainer.elapsed
                if change:
                    log_threads(change, trainer, writer)
            stop, signum = agreed_stop(caught, deadline)
            try:
                if trainer.step % cfg.log_every == 0 or trainer.step == total_steps or stop:
                    log_record(meter.flush(trainer, len(ds)), writer, bar)
                if trainer.step % cfg.sample_every == 0:
                    saves.samples()
                if trainer.step % cfg.ckpt_every == 0:
                    log_record(meter.flush(trainer, len(ds)), writer, bar)  # check the steps before saving
                    saves.checkpoint()
                if evaluator and trainer.step % cfg.eval_every == 0:
                    log_record(meter.flush(trainer, len(ds)), writer, bar)
                    distributed.together(lambda: evaluate_now(evaluator, trainer, writer))
                    meter.restart_clock()  # evaluation time is not training throughput
            except TrainingDiverged as e:
                rollbacks += 1
                recover(e, trainer, run, rollbacks)  # or stop: raises
                meter, timed_from = Meter(), trainer.elapsed
                bar.n = trainer.step
                continue
            if stop:
                status = stop
                break

    saves.last()
    return summary(run, trainer, status, signum)


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


def log_record(rec: dict[str, Any] | None, writer: StatsWriter, bar: tqdm) -> None:
    """A loss record (if the interval had steps): to stats.jsonl, and its throughput and losses to the bar."""
    if rec is None:
        return
    writer.write(rec)
    losses = "  ".join(f"{k} {rec[k]:.3f}" for k in ("loss_D", "loss_G") if rec[k] is not None)
    threads = f"  {rec['threads']} thr" if rec["threads"] else ""
    bar.set_postfix_str(f"{rec['img_per_s']:.0f} img/s{threads}  {losses}", refresh=False)


def log_threads(change: Change, trainer: Trainer, writer: StatsWriter) -> None:
    """A change of the CPU thread count: a record in stats.jsonl and a line above the progress bar."""
    writer.write(
        {
            "step": trainer.step,
            "kimg": trainer.images_seen / 1000,
            "threads": change.threads,
            "threads_was": change.was,
            "threads_reason": change.reason,
            "threads_trial_ms": {str(n): round(t * 1e3, 4) for n, t in sorted(change.trial.items())},
        },
        (),
    )
    tqdm.write(f"step {trainer.step:,}: {change.describe()}", file=sys.stderr)


def evaluate_now(evaluator: Evaluator, trainer: Trainer, writer: StatsWriter) -> None:
    """One periodic evaluation: its record goes to stats.jsonl (and TensorBoard), its warnings to stderr."""
    rec = evaluator(trainer)
    if rec is None:  # not rank 0
        return
    writer.write(rec, (evaluator.key,))
    for w in rec.get("warnings", []):
        tqdm.write(f"warning at step {trainer.step:,}: {w}", file=sys.stderr)
