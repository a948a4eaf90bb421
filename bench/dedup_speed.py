"""Speed of de-duplication (docs/PERFORMANCE.md): training the hash, encoding (hashes/s), grouping.

Encoding and training run on 60,000 images (Fashion-MNIST's train split when it is prepared at 32² RGB,
else 60,000 smooth synthetic 64² pictures); grouping also runs on a synthetic array of 1,000,000 random
128-bit codes with 1% planted near-copies, at Hamming radius 0, 2 and 4. The aim: codes for 1M images in the
order of a CPU core-minute.

    .venv/bin/python bench/dedup_speed.py [--data data/fm3/train]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dcgan import api
from dcgan.data.dedup import HashConfig, encode, groups_of, near_pairs, train_hasher, train_steps


def synthetic_images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return low.repeat(size // 8, 1).repeat(size // 8, 2)


def synthetic_codes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    k = n // 100
    dst, src = rng.choice(n, size=k, replace=False), rng.integers(0, n, k)
    codes[dst] = codes[src]
    bit = rng.integers(0, 128, k)
    codes[dst, bit // 8] ^= (1 << (bit % 8)).astype(np.uint8)  # one bit off its source
    return codes


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="a prepared dataset of at least 60,000 images (default: synthetic)")
    a = p.parse_args()
    threads = torch.get_num_threads()
    images = np.asarray(api.dataset(a.data).images[:60_000]) if a.data else synthetic_images(60_000)
    cfg = HashConfig()
    net, t_train = timed(lambda: train_hasher(images, cfg, progress=False))
    codes, t_encode = timed(lambda: encode(net, images, cfg.side, progress=False))
    print(f"images {images.shape}, torch threads {threads}")
    steps = train_steps(min(len(images), cfg.train_images), cfg)
    print(f"train  {t_train:.1f} s ({steps:,} steps of {cfg.batch} on {len(images):,} images)")
    print(
        f"encode {len(images) / t_encode:,.0f} hashes/s "
        f"(1M in {1e6 / (len(images) / t_encode) / 60:.2f} min on {threads} threads)"
    )
    for name, c in (("60k real codes", codes), ("1M synthetic codes", synthetic_codes(1_000_000))):
        for r in (0, 2, 4):
            (i, j, _), t_pairs = timed(near_pairs, c, 128, r)
            groups, t_groups = timed(groups_of, len(c), i, j)
            print(
                f"group  {name}, r={r}: {t_pairs + t_groups:.2f} s ({len(i):,} pairs, {len(groups):,} groups)"
            )


if __name__ == "__main__":
    main()
