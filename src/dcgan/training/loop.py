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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from dcgan.config import TrainConfig
from dcgan.data.dataset import PreparedDataset
from dcgan.device import Placement, resolve
from dcgan.errors import DcganError
from dcgan.progress import progress_bar, silent
from dcgan.threads import tuned
from dcgan.training import distributed
from dcgan.training.run import (
    Saves,
    agreed_stop,
    graceful_signals,
    rank_threads,
    recover,
    row_reader,
    start,
    summary,
)
from dcgan.training.stats import Meter, StatsWriter, log_evaluation, log_record, log_threads
from dcgan.training.trainer import Trainer, TrainingDiverged


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
                    distributed.together(
                        lambda: log_evaluation(evaluator(trainer), evaluator.key, trainer, writer)
                    )
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
