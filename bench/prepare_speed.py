"""Benchmark `dcgan prepare`: Fashion-MNIST from IDX, and a folder of 256² JPEGs → 64², per core and on all cores.

Run: .venv/bin/python bench/prepare_speed.py [--jpegs 2000]   (results go to docs/PERFORMANCE.md by hand)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan.data.download import DEBIAN_DIR
from dcgan.data.prepare import default_workers, prepare


def make_jpegs(folder: Path, n: int) -> None:
    """Photo-like 256² JPEGs: smooth colour gradients with shapes and mild noise (not incompressible noise)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    folder.mkdir(parents=True)
    for i in range(n):
        c = rng.uniform(0, 1, (3, 3))
        img = np.stack(
            [c[k, 0] * xx + c[k, 1] * yy + c[k, 2] * np.sin(6 * xx * (k + 1)) for k in range(3)], -1
        )
        cy, cx = rng.integers(40, 216, 2).tolist()
        r = int(rng.integers(10, 60))
        img[(yy * 255 - cy) ** 2 + (xx * 255 - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
        img = np.clip(img * 200 + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i:05d}.jpg", quality=90)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jpegs", type=int, default=2000)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if DEBIAN_DIR.is_dir():
            s_train = timed(
                lambda: prepare(
                    DEBIAN_DIR / "train-images-idx3-ubyte.gz",
                    tmp / "fm-train",
                    size=32,
                    fit="pad",
                    progress=False,
                )
            )
            s_test = timed(
                lambda: prepare(
                    DEBIAN_DIR / "t10k-images-idx3-ubyte.gz",
                    tmp / "fm-test",
                    size=32,
                    fit="pad",
                    progress=False,
                )
            )
            results["fashion_mnist_70k_idx_to_32_pad_s"] = round(s_train + s_test, 2)
        make_jpegs(tmp / "jpegs", args.jpegs)
        for workers in sorted({1, default_workers()}):
            s = timed(
                lambda w=workers: prepare(tmp / "jpegs", tmp / f"j{w}", size=64, workers=w, progress=False)
            )
            results[f"jpeg256_to_64_workers{workers}_img_per_s"] = round(args.jpegs / s)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
