"""RUN/stats.jsonl: one JSON record per line — a loss record every --log-every steps (with the CPU threads in
use), an evaluation record every --eval-every steps, a record at each change of the CPU thread count
(`threads_was`, `threads_reason`) — mirrored to TensorBoard when it is installed, and drawn as RUN/loss.png.

The writer (training, with what the loop shows of each record on the progress bar and stderr: `log_record`,
`log_threads`, `log_evaluation`) and every reader (the loss figure, the periodic evaluation's history, the
report) use this module.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from dcgan.fileio import atomic_path, parse_json, write_bytes
from dcgan.threads import Change
from dcgan.training import distributed
from dcgan.training.trainer import Trainer, TrainingDiverged

STATS_FILE = "stats.jsonl"
LOSS_SCALARS = ("loss_D", "loss_G", "D_x", "D_G_z", "img_per_s")


class Meter:
    """Per-step statistics kept on the device until a flush turns them into one record (one sync)."""

    def __init__(self) -> None:
        self.d_rows: list[tuple[int, torch.Tensor]] = []
        self.g_rows: list[tuple[int, torch.Tensor]] = []
        self.restart_clock()

    def restart_clock(self) -> None:
        """Throughput counts from now (after an evaluation, whose time is not training's)."""
        self.t0, self.images = time.perf_counter(), 0

    def add(self, step: int, d: torch.Tensor | None, g: torch.Tensor | None, images: int) -> None:
        """Stats of update number `step` (1-based): D's [loss, D(x), D(G(z))] and G's [loss], either None."""
        if d is not None:
            self.d_rows.append((step, d))
        if g is not None:
            self.g_rows.append((step, g))
        self.images += images

    def flush(self, trainer: Trainer, n_data: int) -> dict[str, Any] | None:
        """The record of the steps since the last flush (None if there were none); raises TrainingDiverged
        naming the first step whose loss, or any weight, is not finite. With several processes the values
        are the global batch's (the mean of the ranks'), so every rank sees the same record and stops alike."""
        if not self.d_rows and not self.g_rows:
            return None
        d, g = torch.zeros(0, 3), torch.zeros(0, 1)
        if self.d_rows:
            d = distributed.average(torch.stack([r for _, r in self.d_rows])).cpu()
        if self.g_rows:
            g = distributed.average(torch.stack([r for _, r in self.g_rows])).cpu()
        for rows, values, name in ((self.d_rows, d, "loss_D"), (self.g_rows, g, "loss_G")):
            bad = (~torch.isfinite(values)).any(1).nonzero()
            if len(bad):
                raise TrainingDiverged(
                    f"{name} became {values[bad[0, 0], 0].item()} at step {rows[bad[0, 0]][0]}"
                )
        trainer.check_weights()
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
            "img_per_s": round(self.images / (time.perf_counter() - self.t0), 1),
            "lr": trainer.opt_g.param_groups[0]["lr"],
            "time": round(trainer.elapsed, 2),
            # CPU intra-op threads in use (a Tuner may change it; see dcgan/threads.py); None on a GPU
            "threads": torch.get_num_threads() if trainer.place.device.type == "cpu" else None,
        }
        self.d_rows, self.g_rows = [], []
        self.restart_clock()
        return rec


class StatsWriter:
    """Appends records to RUN/stats.jsonl and their scalars to RUN/tensorboard (with the [tb] extra); a
    disabled writer (ranks other than 0) writes nothing."""

    def __init__(self, run: Path, enabled: bool = True) -> None:
        self.path = run / STATS_FILE
        self.enabled = enabled
        if not enabled:
            self.tb = None
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.tb = None
        else:
            self.tb = SummaryWriter(str(run / "tensorboard"))

    def write(self, rec: dict[str, Any], scalars: tuple[str, ...] = LOSS_SCALARS) -> None:
        """Append `rec` to stats.jsonl and its `scalars` (those not None) to TensorBoard."""
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb is not None:
            for key in scalars:
                if rec.get(key) is not None:
                    self.tb.add_scalar(key, rec[key], rec["step"])
            self.tb.flush()

    def __enter__(self) -> StatsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tb is not None:
            self.tb.close()


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def read_stats(path: str | os.PathLike) -> list[dict]:
    """The records of a stats.jsonl: JSON objects with a step and kimg. A torn last line (a crash mid-write)
    or a damaged one is left out; readers check the type of any other value they use."""
    rows = []
    p = Path(path)
    if not p.is_file():
        return rows
    for line in p.read_text(errors="replace").splitlines():
        try:
            rec = parse_json(line)
        except ValueError:
            continue
        if (
            isinstance(rec, dict)
            and is_number(rec.get("step"))
            and rec["step"] >= 0
            and is_number(rec.get("kimg"))
        ):
            rows.append(rec)
    return rows


def truncate_stats(path: str | os.PathLike, step: int) -> None:
    """Drop records after `step` (written after the checkpoint a resume or a rollback starts from)."""
    rows = read_stats(path)
    if rows and rows[-1]["step"] > step:
        write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows if r["step"] <= step).encode())


def plot_losses(stats_path: str | os.PathLike, out: str | os.PathLike) -> None:
    """The run's curves against thousands of images shown: losses, D's mean outputs, throughput, and with
    --eval-every the FID (log scale) with the generated/real diversity ratio, collapse warnings marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    records = read_stats(stats_path)
    rows = [r for r in records if "loss_D" in r or "loss_G" in r]
    evals = [r for r in records if any(k.startswith("fid[") and is_number(v) for k, v in r.items())]
    if not rows:
        return
    kimg = [r["kimg"] for r in rows]

    def col(key: str, of: list[dict] = rows) -> list[float]:  # a missing value (None) is a gap in the curve
        return [r[key] if is_number(r.get(key)) else math.nan for r in of]

    heights = [3, 2, 1.2] + ([3] if evals else [])
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(8, 1.2 * sum(heights) + 1),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
    )
    a, b, t = axes[0], axes[1], axes[2]
    a.plot(kimg, col("loss_D"), label="loss D")
    a.plot(kimg, col("loss_G"), label="loss G")
    a.set_ylabel("BCE loss")
    b.plot(kimg, col("D_x"), label="D(x)")
    b.plot(kimg, col("D_G_z"), label="D(G(z))")
    b.set_ylim(0, 1)
    b.set_ylabel("mean D output")
    t.plot(kimg, col("img_per_s"), label="images / s", color="tab:gray")
    t.set_ylim(bottom=0)
    t.set_ylabel("throughput")
    for r in records:  # where the CPU thread count changed, and to what
        if "threads_was" in r and is_number(r.get("threads")):
            t.axvline(r["kimg"], color="tab:purple", linestyle=":", alpha=0.7)
            t.text(
                r["kimg"], 0.05, f" {r['threads']} thr", transform=t.get_xaxis_transform(), color="tab:purple"
            )
    if evals:
        _plot_evals(axes[3], evals, col, matplotlib.ticker)
    for ax in axes:
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3, which="both")
    axes[-1].set_xlabel("thousands of images shown")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _plot_evals(c: Any, evals: list[dict], col: Any, ticker: Any) -> None:
    """FID (log scale, the best starred), the diversity ratio on a second axis, red marks where the
    evaluation warned of collapse."""
    key = next(k for k in evals[-1] if k.startswith("fid[") and is_number(evals[-1][k]))
    points = [(r["kimg"], r[key]) for r in evals if is_number(r.get(key))]
    c.plot(*zip(*points), "o-", label=key)
    best = min(points, key=lambda p: p[1])
    c.plot(*best, "*", markersize=14, label=f"best {best[1]:.2f}")
    warned = [(r["kimg"], r[key]) for r in evals if r.get("warnings") and is_number(r.get(key))]
    if warned:
        c.plot(*zip(*warned), "v", color="tab:red", markersize=10, label="collapse warning")
    c.set_yscale("log")
    c.yaxis.set_major_formatter(ticker.ScalarFormatter())  # 40, not 4×10¹
    c.yaxis.set_minor_formatter(ticker.ScalarFormatter())
    c.set_ylabel("FID (log)")
    name = key[len("fid[") : -1]
    spread, real = col(f"diversity[{name}]", evals), col(f"diversity_real[{name}]", evals)
    ratio = [s / r if r else math.nan for s, r in zip(spread, real)]
    if any(not math.isnan(x) for x in ratio):
        d = c.twinx()
        d.plot(
            [r["kimg"] for r in evals], ratio, "s--", color="tab:green", alpha=0.6, label="diversity / real"
        )
        d.set_ylim(0, max(1.2, *(x for x in ratio if not math.isnan(x))))
        d.set_ylabel("diversity, generated / real")
        d.legend(loc="upper center", fontsize="small")


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


def log_evaluation(rec: dict[str, Any] | None, key: str, trainer: Trainer, writer: StatsWriter) -> None:
    """A periodic evaluation's record (None on ranks other than 0): to stats.jsonl and TensorBoard with `key`
    as its headline scalar, and its warnings to stderr."""
    if rec is None:
        return
    writer.write(rec, (key,))
    for w in rec.get("warnings", []):
        tqdm.write(f"warning at step {trainer.step:,}: {w}", file=sys.stderr)
