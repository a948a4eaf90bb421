"""Time and peak memory of `dcgan evaluate` (all four metrics, the shipped Fashion-MNIST extractor) for 10k
and 50k samples: each size and precision in its own process, first with an empty real-feature cache, then
with it warm; the precisions (fp32, and auto: bf16 where the CPU runs it natively) alternate. Reported:
wall time, images per second of the whole command (samples / wall) and of its generation + feature pass
(the "generated:" line), peak RSS and the FID.

Run: .venv/bin/python bench/evaluate_speed.py [RUN] [DATASET] [--num 10000,50000] [--precision fp32,auto]
(defaults: the demo run runs/fmnist32 and data/fashion-mnist/train, made by `make demo`.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def one(run: str, dataset: str, num: int, cache: str, precision: str) -> dict:
    env = {**os.environ, "DCGAN_CACHE": cache}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "dcgan.cli", "evaluate", run, "--dataset", dataset,
           "--num", str(num), "--device", "cpu", "--precision", precision]  # fmt: skip
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 2**20
    fid = re.search(r"^(fid\[\S+\])\s+(\S+)", r.stdout, re.M)
    generated = float(re.search(r"^generated: .* in (\S+) s", r.stderr, re.M).group(1))
    return {
        "wall_s": round(wall, 1),
        "img_per_s": round(num / wall),
        "generation_img_per_s": round(num / generated),
        "peak_rss_gib": round(rss, 2),
        fid.group(1): float(fid.group(2)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", default="runs/fmnist32")
    ap.add_argument("dataset", nargs="?", default="data/fashion-mnist/train")
    ap.add_argument("--num", default="10000,50000")
    ap.add_argument("--precision", default="fp32,auto")
    args = ap.parse_args()
    for num in (int(n) for n in args.num.split(",")):
        for precision in args.precision.split(","):
            with tempfile.TemporaryDirectory() as cache:
                out = {
                    "cold": one(args.run, args.dataset, num, cache, precision),
                    "warm": one(args.run, args.dataset, num, cache, precision),
                }
            print(json.dumps({"num": num, "precision": precision, **out}), flush=True)


if __name__ == "__main__":
    main()
