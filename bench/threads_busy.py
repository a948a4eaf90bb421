"""Training throughput on a busy machine: `dcgan train` with 2 threads, 1 thread and adaptive threads
(the default), quiet and with busy neighbour processes, interleaved in one run.

Each measurement is a real `dcgan train` run (tcmalloc, the fmnist32 demo preset unless --preset) for
--seconds of training, started fresh; its throughput is the images shown over the seconds spent in training
steps (the `time` of stats.jsonl's last record), so the adaptive run pays for its own trials. Conditions:
quiet; 1 busy (one spinning Python process); 2 busy (two of them); arrives (one starts half-way through
the run). Rounds repeat every condition × variant in the same order, so machine noise hits all of them.

Run: .venv/bin/python bench/threads_busy.py [DATASET] [--preset fmnist32] [--seconds 30] [--rounds 2]
(the default dataset is data/fashion-mnist/train, made by `make demo`.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VARIANTS = {"2 threads": ["--threads", "2"], "1 thread": ["--threads", "1"], "adaptive": []}
CONDITIONS = {"quiet": (0, 0.0), "1 busy": (1, 0.0), "2 busy": (2, 0.0), "arrives": (1, 0.5)}
SPIN = "while True: pass"


def spinners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]


def timed_train(dataset: str, preset: str, seconds: float, args: list[str]) -> list[dict]:
    """The stats.jsonl records of a fresh `dcgan train` of `seconds` of steps (no grids, checkpoints or
    report; OMP_NUM_THREADS unset, so nothing pins the threads but `args`). bench/ddp_cpu.py uses it too."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dcgan.cli", "train", dataset, "--preset", preset, "--out", f"{tmp}/run",
               "--epochs", "100", "--max-minutes", str(seconds / 60), "--log-every", "10", "--sample-every",
               "100000", "--ckpt-every", "100000", "--no-report", "--quiet", *args]  # fmt: skip
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        return [json.loads(line) for line in Path(f"{tmp}/run/stats.jsonl").read_text().splitlines()]


def throughput(rows: list[dict]) -> float:
    """Images shown over the seconds spent in training steps, at the last loss record."""
    last = [r for r in rows if "loss_D" in r][-1]
    return last["images_seen"] / last["time"]


@contextmanager
def neighbours(condition: str, seconds: float) -> Iterator[None]:
    """The condition's busy processes beside the block: from the start, or arriving part-way (after the
    start-up, when the first step has been logged)."""
    busy, start_at = CONDITIONS[condition]
    procs: list[subprocess.Popen] = []
    timer = None
    if start_at == 0:
        procs = spinners(busy)
    else:
        timer = threading.Timer(8 + seconds * start_at, lambda: procs.extend(spinners(busy)))
        timer.start()
    try:
        yield
    finally:
        if timer:
            timer.cancel()
        for p in procs:
            p.kill()
            p.wait()


def one(dataset: str, preset: str, seconds: float, variant: str, condition: str) -> dict:
    with neighbours(condition, seconds):
        rows = timed_train(dataset, preset, seconds, VARIANTS[variant])
    changes = [f"{r['step']}: {r['threads_was']}→{r['threads']} ({r['threads_reason']})" for r in rows
               if "threads_was" in r]  # fmt: skip
    return {"img_per_s": throughput(rows), "changes": changes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", default="data/fashion-mnist/train")
    ap.add_argument("--preset", default="fmnist32")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    args = ap.parse_args()
    conditions = args.conditions.split(",")
    runs: dict[str, dict[str, list[float]]] = {c: {v: [] for v in VARIANTS} for c in conditions}
    for r in range(args.rounds):
        for c in conditions:
            for v in VARIANTS:
                res = one(args.dataset, args.preset, args.seconds, v, c)
                runs[c][v].append(res["img_per_s"])
                print(json.dumps({"round": r, "condition": c, "variant": v, **res}), flush=True)
    table = {}
    for c in conditions:
        med = {v: statistics.median(xs) for v, xs in runs[c].items()}
        better = max(med["2 threads"], med["1 thread"])
        table[c] = {
            **{v: round(x, 1) for v, x in med.items()},
            "adaptive / better fixed": round(med["adaptive"] / better, 3),
        }
    print(
        json.dumps(
            {"preset": args.preset, "seconds": args.seconds, "rounds": args.rounds, "median_img_per_s": table}
        )
    )


if __name__ == "__main__":
    main()
