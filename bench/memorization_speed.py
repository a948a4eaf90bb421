"""Nearest-neighbour search of `dcgan memorization`: 10k samples × 60k training images, 32² grey, on CPU.

Run: .venv/bin/python bench/memorization_speed.py [--queries 10000] [--base 60000] [--size 32] [--chunk 4096]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from dcgan.probes.memorization import nearest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=10000)
    ap.add_argument("--base", type=int, default=60000)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=4096)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    q = rng.integers(0, 256, (args.queries, args.size, args.size, 1), dtype=np.uint8)
    b = rng.integers(0, 256, (args.base, args.size, args.size, 1), dtype=np.uint8)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    nearest(q, b, k=5, chunk=args.chunk)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "queries": args.queries,
                "base": args.base,
                "size": args.size,
                "chunk": args.chunk,
                "seconds": round(seconds, 2),
                "peak_rss_mib": round(peak / 1024),
                "rss_growth_mib": round((peak - rss0) / 1024),
                "inputs_mib": round((q.nbytes + b.nbytes) / 2**20),
            }
        )
    )


if __name__ == "__main__":
    main()
