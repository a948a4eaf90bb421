"""Several processes on one CPU machine: `dcgan train` as 1 process × 2 threads against 2 processes × 1
thread (`--nproc 2`: DDP over gloo, global BatchNorm, and per-rank BatchNorm), at the same global batch,
interleaved in one run.

Each measurement is a real `dcgan train` run (tcmalloc, the fmnist32 demo preset unless --preset) for
--seconds of training, started fresh; throughput is the images shown over the seconds spent in training
steps (rank 0's `time` in stats.jsonl: it includes the waits for the other rank). Rounds repeat every
variant in the same order, so machine noise hits all of them.

Run: .venv/bin/python bench/ddp_cpu.py [DATASET] [--preset fmnist32] [--batch 128] [--seconds 30] [--rounds 2]
(the default dataset is data/fashion-mnist/train, made by `make demo`.)
"""

from __future__ import annotations

import argparse
import json
import statistics

from threads_busy import throughput, timed_train  # bench/ is the script's folder

VARIANTS = {
    "1 process x 2 threads": ["--threads", "2"],
    "2 processes x 1 thread, global BN": ["--nproc", "2"],
    "2 processes x 1 thread, rank BN": ["--nproc", "2", "--bn", "rank"],
}


def one(dataset: str, preset: str, batch: int, seconds: float, variant: str) -> float:
    return throughput(timed_train(dataset, preset, seconds, ["--batch", str(batch), *VARIANTS[variant]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", default="data/fashion-mnist/train")
    ap.add_argument("--preset", default="fmnist32")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for v in VARIANTS:
            runs[v].append(one(args.dataset, args.preset, args.batch, args.seconds, v))
            print(json.dumps({"round": r, "variant": v, "img_per_s": round(runs[v][-1], 1)}), flush=True)
    med = {v: statistics.median(xs) for v, xs in runs.items()}
    base = med["1 process x 2 threads"]
    table = {v: {"img_per_s": round(x, 1), "vs 1 process": round(x / base, 3)} for v, x in med.items()}
    print(json.dumps({"preset": args.preset, "batch": args.batch, "seconds": args.seconds, "median": table}))


if __name__ == "__main__":
    main()
