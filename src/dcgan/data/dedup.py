"""De-duplication by semantic hashing (PAPER.md §4.1.1): an autoencoder's binarized code as an image's hash.

The paper's recipe, which it never released: 32×32 downsampled centre crops, a 3072-128-3072 de-noising,
dropout-regularized ReLU autoencoder, the 128-unit code binarized by thresholding, and images whose codes
collide are duplicates. Two findings shape the defaults here:
- On uncentred [0, 1] pixels the code collapses (a bit or two vary; nearly everything collides). Inputs are
  centred on the dataset's mean image and scaled by its pixel standard deviation.
- Exact collisions catch only part of the re-encoded copies. `radius` r > 0 also joins codes within Hamming
  distance r, found by multi-index hashing: split the 128 bits into r + 1 parts, and any two codes within r
  agree exactly on at least one part (pigeonhole), so only codes sharing a part's bucket are compared.

The autoencoder trains on at most `HashConfig.train_images` images (100,000 by default, 1.2 GB of floats at
32²×3, held in memory); encoding streams over the memory-mapped images one chunk at a time. Groups are the connected
components of the duplicate pairs; each keeps its first image in dataset order.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcgan.errors import DcganError
from dcgan.progress import progress_bar

CHUNK = 4096  # images downsampled and encoded at a time
MAX_CANDIDATES = 50_000_000  # pairs compared at most: a coarser hash is a collapsed one, not a workload


@dataclass(frozen=True)
class HashConfig:
    """The autoencoder and how its code becomes bits. The paper's values where it gives them."""

    bits: int = 128
    side: int = 32  # centre crops downsampled to side × side
    epochs: int = 10
    min_steps: int = (
        3000  # small datasets: at least this many updates (at most 300 epochs), whatever `epochs` gives
    )
    batch: int = 256
    lr: float = 1e-3
    noise: float = 0.2  # de-noising: Gaussian noise added to the (standardized) input while training
    dropout: float = 0.5  # dropout on the code while training
    threshold: str = "zero"  # "zero": a bit is on when its ReLU unit is (the paper); "median": on for half
    train_images: int = 100_000  # the autoencoder sees at most this many (a random subset, held in memory)
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.bits <= 1024, f"bits must be 1…1024, got {self.bits}"),
            (4 <= self.side <= 256, f"side must be 4…256, got {self.side}"),
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.min_steps >= 0, f"min_steps must be 0 or more, got {self.min_steps}"),
            (self.batch >= 2, f"batch must be at least 2, got {self.batch}"),
            (self.lr > 0, f"lr must be positive, got {self.lr}"),
            (self.noise >= 0, f"noise must be ≥ 0, got {self.noise}"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (
                self.threshold in ("zero", "median"),
                f"threshold must be zero or median, got {self.threshold!r}",
            ),
            (self.train_images >= 1, f"train_images must be at least 1, got {self.train_images}"),
            (self.seed >= 0, f"--seed must be 0 or more, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DcganError(message)


class Hasher(nn.Module):
    """Standardize → Linear → ReLU is the code; Linear back to pixels only while training."""

    def __init__(self, dims: int, bits: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(dims, bits)
        self.decoder = nn.Linear(bits, dims)
        self.register_buffer("mean", torch.zeros(dims))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("cut", torch.zeros(bits))  # a bit is on when its unit exceeds this

    def code(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.encoder((x - self.mean) / self.scale))


def downsample(images: np.ndarray, side: int) -> torch.Tensor:
    """(B, S, S, C) uint8 → (B, C·side²) float32 in [0, 1]: the centre square, area-averaged to side²."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    h, w = x.shape[2:]
    s = min(h, w)
    x = x[:, :, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    if s != side:
        x = F.interpolate(x, size=(side, side), mode="area" if s > side else "bilinear")
    return x.reshape(len(x), -1)


def _chunks(images: np.ndarray, side: int, index: np.ndarray | None = None):
    """(offset, downsampled chunk) over all images, or over the sorted rows `index`."""
    rows = np.arange(len(images)) if index is None else index
    for i in range(0, len(rows), CHUNK):
        part = rows[i : i + CHUNK]
        yield i, downsample(images[part], side)  # an index is sorted: a memmap is read front to back


def train_steps(n: int, cfg: HashConfig) -> int:
    """Updates the autoencoder makes on n training images: `epochs` epochs, or `min_steps` if more (a small
    set), but never more than 300 epochs (a tiny one)."""
    per_epoch = max(1, n // cfg.batch)
    return max(cfg.epochs * per_epoch, min(cfg.min_steps, 300 * per_epoch))


def train_hasher(images: np.ndarray, cfg: HashConfig, progress: bool = True) -> Hasher:
    """Fit the de-noising autoencoder on (a random subset of) the uint8 images (N, S, S, C)."""
    g = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n = len(images)
    subset = np.sort(rng.choice(n, size=min(n, cfg.train_images), replace=False))
    x = torch.cat([chunk for _, chunk in _chunks(images, cfg.side, subset)])  # ≤ 100k × 3072 floats: 1.2 GB
    net = Hasher(x.shape[1], cfg.bits)
    with torch.no_grad():
        net.mean.copy_(x.mean(0))
        var = sum(float((part - net.mean).pow(2).sum()) for part in x.split(CHUNK))  # no second copy of x
        net.scale.fill_(max(math.sqrt(var / max(1, x.numel() - 1)), 1e-6))
        torch.manual_seed(cfg.seed)  # dropout draws from the global generator: seeded, the hash repeats
        for p in net.parameters():
            if p.ndim == 2:
                nn.init.normal_(p, 0.0, 1.0 / math.sqrt(p.shape[1]), generator=g)
            else:
                nn.init.zeros_(p)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    per_epoch, total = max(1, len(x) // cfg.batch), train_steps(len(x), cfg)
    bar = progress_bar(progress, total=total, unit="step", desc="dedup: train hash")
    with bar:
        for step in range(total):
            if step % per_epoch == 0:
                perm = torch.randperm(len(x), generator=g)
            s = step % per_epoch
            xb = x[perm[s * cfg.batch : (s + 1) * cfg.batch]]
            z = (xb - net.mean) / net.scale
            noisy = z + cfg.noise * torch.randn(z.shape, generator=g)
            h = F.dropout(F.relu(net.encoder(noisy)), cfg.dropout, training=True)
            loss = F.mse_loss(net.decoder(h), z)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update()
            if step % 100 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    if cfg.threshold == "median":
        with torch.no_grad():
            net.cut.copy_(net.code(x[: 20 * CHUNK]).median(0).values)  # the medians of ≤ 80k codes
    return net.eval()


@torch.no_grad()
def encode(net: Hasher, images: np.ndarray, side: int, progress: bool = True) -> np.ndarray:
    """The packed codes of all images: (N, bits/8) uint8, bit k of image i = unit k > its cut."""
    bits = net.cut.numel()
    out = np.empty((len(images), (bits + 7) // 8), np.uint8)
    bar = progress_bar(progress, total=len(images), unit="img", desc="dedup: hash")
    with bar:
        for i, x in _chunks(images, side):
            out[i : i + len(x)] = np.packbits((net.code(x) > net.cut).numpy(), axis=1)
            bar.update(len(x))
    return out


def health(codes: np.ndarray, bits: int) -> dict[str, Any]:
    """How much of the code carries information: per-bit on-rate, bits that vary (on for 1–99% of images),
    the sum of the bits' entropies, distinct codes, and the largest exact collision."""
    on = np.unpackbits(codes, axis=1, count=bits).mean(0) if len(codes) else np.zeros(bits)
    p = np.clip(on, 1e-12, 1 - 1e-12)
    entropy = float(np.sum(-(p * np.log2(p) + (1 - p) * np.log2(1 - p))))
    _, counts = np.unique(codes, axis=0, return_counts=True) if len(codes) else (None, np.zeros(1, int))
    return {
        "images": len(codes),
        "bits": bits,
        "active_bits": int(((on > 0.01) & (on < 0.99)).sum()),
        "bit_entropy": round(entropy, 2),
        "distinct_codes": len(counts) if len(codes) else 0,
        "largest_collision": int(counts.max()) if len(codes) else 0,
        "on_rate": [round(float(v), 4) for v in on],
    }


def collapsed(h: dict[str, Any]) -> str | None:
    """Why a hash is too coarse to de-duplicate with, or None: few varying bits, or one code shared by a
    large part of the dataset (more than 1% and 100 images), which no dataset has as real copies."""
    if h["images"] < 2:
        return None
    if h["active_bits"] < min(16, h["bits"] // 4):
        return f"only {h['active_bits']} of {h['bits']} bits vary"
    if h["largest_collision"] > max(100, h["images"] // 100):
        return f"one code is shared by {h['largest_collision']:,} of {h['images']:,} images"
    return None


def check_radius(radius: int, bits: int) -> None:
    if not 0 <= radius < bits:
        raise DcganError(f"--radius must be 0…{bits - 1}, got {radius}")


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between packed codes, row by row."""
    return np.bitwise_count(a ^ b).sum(axis=-1, dtype=np.int64)


def _bucket_pairs(keys: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j), i < j, of rows whose keys (N, k) uint8 are equal, grouped by bucket size to stay vectorized;
    more than `budget` pairs is refused: the hash is too coarse to search."""
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    total = int((counts * (counts - 1) // 2).sum())
    if total > budget:
        raise DcganError(
            f"the hash is too coarse to search within this radius: its largest bucket holds {counts.max():,} "
            f"images, more than {MAX_CANDIDATES:,} pairs to compare in all; use a smaller --radius"
        )
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    firsts, seconds = [], []
    for k in np.unique(counts[counts > 1]):
        members = order[starts[counts == k][:, None] + np.arange(k)]  # (buckets of size k, k)
        a, b = np.triu_indices(int(k), 1)
        firsts.append(members[:, a].reshape(-1))
        seconds.append(members[:, b].reshape(-1))
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j = np.concatenate(firsts), np.concatenate(seconds)
    return np.minimum(i, j), np.maximum(i, j)


def near_pairs(codes: np.ndarray, bits: int, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair of codes within `radius` bits, i < j, by multi-index hashing."""
    check_radius(radius, bits)
    unpacked = np.unpackbits(codes, axis=1, count=bits)
    edges = np.linspace(0, bits, radius + 2).astype(int)
    key = np.zeros(0, np.int64)
    for lo, hi in itertools.pairwise(edges):
        i, j = _bucket_pairs(np.packbits(unpacked[:, lo:hi], axis=1), MAX_CANDIDATES - len(key))
        key = np.union1d(key, i * len(codes) + j)  # a pair found through several parts counts once
    i, j = key // len(codes), key % len(codes)
    d = hamming(codes[i], codes[j]) if len(key) else np.zeros(0, np.int64)
    keep = d <= radius
    return i[keep], j[keep], d[keep]


def groups_of(n: int, i: np.ndarray, j: np.ndarray) -> list[np.ndarray]:
    """Connected components of the pairs with more than one image, each sorted, in order of first image."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not len(i):
        return []
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")
    bounds = np.flatnonzero(np.diff(label[order])) + 1
    groups = [g for g in np.split(order, bounds) if len(g) > 1]
    return sorted(groups, key=lambda g: int(g[0]))


@dataclass
class Duplicates:
    """What `find_duplicates` found: the groups (each keeps its first image), their pairs, the hash's health."""

    config: HashConfig
    radius: int
    codes: np.ndarray
    groups: list[np.ndarray]
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]
    health: dict[str, Any]
    seconds: dict[str, float]
    net: Hasher

    @property
    def removed(self) -> np.ndarray:
        return np.sort(np.concatenate([g[1:] for g in self.groups])) if self.groups else np.zeros(0, np.int64)

    def keep(self, n: int) -> np.ndarray:
        mask = np.ones(n, bool)
        mask[self.removed] = False
        return np.flatnonzero(mask)

    def summary(self) -> dict[str, Any]:
        return {
            "method": "semantic hashing (PAPER.md §4.1.1)",
            "config": dataclasses.asdict(self.config),
            "radius": self.radius,
            "health": self.health,
            "pairs": len(self.pairs[0]),
            "groups": len(self.groups),
            "removed": len(self.removed),
            "seconds": self.seconds,
            "kept_rule": "each group keeps its first image in dataset order",
            "group_list": [
                {
                    "kept": int(g[0]),
                    "removed": g[1:].tolist(),
                    "bits_from_kept": hamming(self.codes[g[0]], self.codes[g[1:]]).tolist(),
                }
                for g in self.groups
            ],
        }


def find_duplicates(
    images: np.ndarray,
    config: HashConfig | None = None,
    radius: int = 0,
    allow_collapsed: bool = False,
    progress: bool = True,
) -> Duplicates:
    """Train the hash on `images` (N, S, S, C) uint8, encode them all, and group the near-identical codes.
    A collapsed hash (see `collapsed`) is refused unless `allow_collapsed`."""
    cfg = config or HashConfig()
    if len(images) < 2:
        raise DcganError(f"de-duplication needs at least 2 images, got {len(images)}")
    check_radius(radius, cfg.bits)
    t0 = time.perf_counter()
    net = train_hasher(images, cfg, progress)
    t1 = time.perf_counter()
    codes = encode(net, images, cfg.side, progress)
    t2 = time.perf_counter()
    h = health(codes, cfg.bits)
    why = collapsed(h)
    if why and not allow_collapsed:
        raise DcganError(
            f"the hash looks collapsed: {why} (bit entropy {h['bit_entropy']} of {cfg.bits}), so it may call "
            "unrelated images duplicates; try --threshold median or more --epochs, or, if the dataset really is "
            "mostly copies, pass --allow-collapsed and check dedup-audit.html"
        )
    pairs = near_pairs(codes, cfg.bits, radius)
    groups = groups_of(len(codes), pairs[0], pairs[1])
    t3 = time.perf_counter()
    seconds = {"train": round(t1 - t0, 2), "encode": round(t2 - t1, 2), "group": round(t3 - t2, 2)}
    return Duplicates(cfg, radius, codes, groups, pairs, h, seconds, net)
