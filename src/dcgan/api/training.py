"""Training a run and its report page."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcgan.api.common import (
    DatasetLike,
    PathLike,
)
from dcgan.config import TrainConfig, train_config
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.metrics.periodic import PeriodicEval
from dcgan.report import page
from dcgan.training import loop


def train(
    data: DatasetLike,
    out: PathLike,
    cfg: TrainConfig | None = None,
    *,
    preset: str = "paper64",
    max_minutes: float | None = None,
    report: bool = True,
    progress: bool = False,
    log: Callable[[str], None] = print,
    **overrides: Any,
) -> dict[str, Any]:
    """Train (or resume: the same call again continues) a DCGAN; returns where everything is and how it
    ended (`status`: finished | time-limit | interrupted). Either a full TrainConfig, or a preset with
    overrides of its fields (epochs or kimg, batch, lr, seed, precision, device, eval_every, …).
    With `report`, OUT/report.html is refreshed at every checkpoint.

    >>> dcgan.train("data/fashion-mnist/train", "runs/fm", preset="fmnist32", epochs=10, eval_every=500)
    """
    if cfg is not None and (overrides or preset != "paper64"):
        raise DcganError(
            "give either cfg or preset/overrides, not both (dataclasses.replace(cfg, …) edits one)"
        )
    cfg = cfg or train_config(preset, **overrides)
    path = data.path if isinstance(data, PreparedDataset) else data
    make = functools.partial(PeriodicEval, cfg) if cfg.eval_every else None

    def refresh(run: Path) -> None:  # the checkpoint is saved already: a report that fails costs nothing
        try:
            page.write_report(run)
        except Exception as e:  # whatever it is, training goes on; `dcgan report RUN` shows it in full
            log(f"report not refreshed ({type(e).__name__}: {e}); training goes on")

    return loop.train(
        cfg,
        path,
        out,
        make_evaluator=make,
        after_save=refresh if report else None,
        max_minutes=max_minutes,
        progress=progress,
        log=log,
    )


def write_report(run: PathLike, out: PathLike | None = None) -> Path:
    """Write the run's self-contained HTML report (default RUN/report.html); returns its path.

    >>> dcgan.write_report("runs/fm")   # then open runs/fm/report.html
    """
    return page.write_report(run, out)
