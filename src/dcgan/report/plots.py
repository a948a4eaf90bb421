"""Training curves from stats.jsonl, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from dcgan.fileio import atomic_path


def read_stats(path: str | os.PathLike) -> list[dict]:
    """The records of a stats.jsonl; a torn last line (a crash mid-write) is ignored."""
    rows = []
    p = Path(path)
    if not p.is_file():
        return rows
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot_losses(stats_path: str | os.PathLike, out: str | os.PathLike) -> None:
    """Losses (top) and D's mean outputs against thousands of images shown; with --eval-every, FID below."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    records = read_stats(stats_path)
    rows = [r for r in records if "loss_D" in r or "loss_G" in r]
    evals = [r for r in records if any(k.startswith("fid[") for k in r)]
    if not rows:
        return
    kimg = [r["kimg"] for r in rows]

    def col(key: str) -> list[float]:  # a missing value (None) is a gap in the curve
        return [math.nan if r.get(key) is None else r[key] for r in rows]

    fig, axes = plt.subplots(3 if evals else 2, 1, figsize=(8, 8.5 if evals else 6), sharex=True)
    a, b = axes[0], axes[1]
    a.plot(kimg, col("loss_D"), label="loss D")
    a.plot(kimg, col("loss_G"), label="loss G")
    a.set_ylabel("BCE loss")
    a.legend()
    a.grid(alpha=0.3)
    b.plot(kimg, col("D_x"), label="D(x)")
    b.plot(kimg, col("D_G_z"), label="D(G(z))")
    b.set_ylim(0, 1)
    b.set_ylabel("mean D output")
    b.legend()
    b.grid(alpha=0.3)
    if evals:
        c = axes[2]
        key = next(k for k in evals[-1] if k.startswith("fid["))
        points = [(r["kimg"], r[key]) for r in evals if key in r]
        c.plot(*zip(*points), "o-", label=key)
        best = min(points, key=lambda p: p[1])
        c.plot(*best, "*", markersize=14, label=f"best {best[1]:.2f}")
        c.set_yscale("log")
        c.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())  # 40, not 4×10¹
        c.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
        c.set_ylabel("FID (log)")
        c.legend()
        c.grid(alpha=0.3, which="both")
    axes[-1].set_xlabel("thousands of images shown")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
