"""Benchmark PreparedDataset: random 64²×3 minibatches per second, memory-mapped and in memory.

Run: .venv/bin/python bench/dataset_speed.py [--n 20000] [--batch 128]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dcgan.data.dataset import PreparedDataset, to_unit_range
from dcgan.data.prepare import prepare


def rate(ds: PreparedDataset, batch: int, seconds: float = 2.0, normalize: bool = False) -> float:
    g = torch.Generator().manual_seed(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x = ds.random_batch(batch, g)
        if normalize:
            x = to_unit_range(x)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        np.save(tmp / "src.npy", rng.integers(0, 256, (args.n, 64, 64, 3), dtype=np.uint8))
        prepare(tmp / "src.npy", tmp / "ds", size=64, progress=False)
        mapped, loaded = PreparedDataset(tmp / "ds"), PreparedDataset(tmp / "ds", in_memory=True)
        rate(mapped, args.batch, 0.5)  # warm the page cache
        results = {
            "memmap_img_per_s": round(rate(mapped, args.batch)),
            "in_memory_img_per_s": round(rate(loaded, args.batch)),
            "memmap_plus_normalize_fp32_img_per_s": round(rate(mapped, args.batch, normalize=True)),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
