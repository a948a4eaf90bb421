"""`evaluate`: generate N images from G by seed, compare them with real images in an extractor's space.

The real side (features and logits of a fixed subset of the dataset) is cached on disk under a key hashed
from everything that affects it — the dataset's image hash, the extractor's file hash, the count, the
subset's seed, the format — and written atomically, so a cached number can never come from other inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcgan.device import Placement
from dcgan.errors import DcganError
from dcgan.fileio import write_bytes
from dcgan.images import to_uint8
from dcgan.metrics import fid as M
from dcgan.metrics.interface import FeatureExtractor
from dcgan.sampling import generate
from dcgan.threads import tuned
from dcgan.training import distributed

METRICS = ("fid", "kid", "pr", "score")
CACHE_FORMAT = 1
REAL_SEED = 0  # the real subset does not depend on the evaluation's seed: one cache entry serves all runs


def cache_dir() -> Path:
    return Path(os.environ.get("DCGAN_CACHE", Path.home() / ".cache" / "dcgan")) / "real-features"


def real_features(
    dataset, ex: FeatureExtractor, num: int, cache: bool = True, log=None, place: Placement | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Features and logits of min(num, N) real images (a seeded subset when num < N), cached on disk.
    `place`: the extractor's precision (None: fp32), part of the cache key."""
    n = min(num, len(dataset))
    key = {
        "format": CACHE_FORMAT,
        "images_sha256": dataset.manifest["images_sha256"],
        "extractor_sha256": ex.sha256,
        "num": n,
        "subset_seed": REAL_SEED,
        # bf16 features depend on the kernels that computed them (oneDNN, cuDNN): precision and device
        **(
            {"precision": place.precision, "device": place.device.type}
            if place and place.precision != "fp32"
            else {}
        ),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{ex.name}-{digest}.npz"
    info = {"images": n, "dataset": str(dataset.path), "cache": str(path)}
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                if json.loads(str(z["key"])) == key:
                    return z["features"], z["logits"], {**info, "cached": True}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # unreadable or foreign: recompute and replace it
    images = dataset.images
    if n < len(dataset):
        images = images[np.sort(np.random.default_rng(REAL_SEED).choice(len(dataset), n, False))]
    t = time.perf_counter()
    with place.autocast() if place else contextlib.nullcontext():
        feats, logits = ex.outputs(images)
    if log:
        log(f"real: {n:,} images through {ex.name} in {time.perf_counter() - t:.1f} s")
    if cache:
        buf = io.BytesIO()
        np.savez(buf, features=feats, logits=logits, key=json.dumps(key, sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, buf.getvalue())
    return feats, logits, {**info, "cached": False}


@torch.no_grad()
def generated_features(
    g,
    ex: FeatureExtractor,
    num: int,
    seed: int = 0,
    batch: int = 500,
    bn: str = "running",
    place: Placement | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and logits of images of seeds seed … seed+num−1, quantized to uint8 as a saved PNG would be.
    G runs in its own precision, the extractor in `place`'s (None: fp32); on CPU the batches feed a thread
    Tuner."""
    feats, logits = [], []
    extracting = place.autocast if place else contextlib.nullcontext
    with tuned(device=next(g.parameters()).device) as threads:
        for i in range(0, num, batch):
            seeds = range(seed + i, seed + min(i + batch, num))
            with threads.item(len(seeds)):
                pictures = to_uint8(generate(g, list(seeds), bn=bn, batch=batch))  # (B, H, W, C)
                images = torch.from_numpy(pictures)
                with extracting():
                    f, y = ex.outputs(images.permute(0, 3, 1, 2))
            feats.append(f)
            logits.append(y)
    return np.concatenate(feats), np.concatenate(logits)


def shared_generated_features(
    g, ex: FeatureExtractor, num: int, seed: int = 0, batch: int = 500, **kw: Any
) -> tuple[np.ndarray, np.ndarray] | None:
    """generated_features (same arguments), split over the processes of a multi-process run: each rank takes
    its share of the batches (whole batches, so even BN "batch" sees the same groups of seeds as one process
    would) and rank 0 gets every feature in seed order; None on the other ranks. One process: all of it."""
    mine = distributed.share(math.ceil(num / batch))
    lo, hi = mine.start * batch, min(mine.stop * batch, num)
    part = generated_features(g, ex, hi - lo, seed + lo, batch, **kw) if hi > lo else None
    parts = distributed.gather_to_main(part)
    if parts is None:
        return None
    done = [p for p in parts if p is not None]
    return np.concatenate([f for f, _ in done]), np.concatenate([y for _, y in done])


def compare(
    real: tuple[np.ndarray, np.ndarray],
    fake: tuple[np.ndarray, np.ndarray],
    metrics: list[str],
    name: str,
    seed: int = 0,
) -> dict[str, float]:
    """The chosen metrics between (features, logits) of real and generated images, named `metric[name]`."""
    out: dict[str, float] = {}
    if "fid" in metrics:
        out[f"fid[{name}]"] = M.fid(real[0], fake[0])
    if "kid" in metrics:
        out[f"kid[{name}]"], out[f"kid_std[{name}]"] = M.kid(real[0], fake[0], seed=seed)
    if "pr" in metrics:
        out[f"precision[{name}]"], out[f"recall[{name}]"] = M.precision_recall(real[0], fake[0])
    if "score" in metrics:
        out[f"score[{name}]"], out[f"score_std[{name}]"] = M.classifier_score(fake[1])
        out[f"score_real[{name}]"] = M.classifier_score(real[1])[0]
    out[f"diversity[{name}]"] = M.diversity(fake[0], seed=seed)
    out[f"diversity_real[{name}]"] = M.diversity(real[0], seed=seed)
    return out


def parse_metrics(text: str) -> list[str]:
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METRICS]
    if unknown or not chosen:
        raise DcganError(f"--metrics takes a comma-separated subset of {','.join(METRICS)}; got {text!r}")
    return chosen


def evaluate(
    g,
    dataset,
    ex: FeatureExtractor,
    num: int = 10_000,
    metrics: list[str] | tuple[str, ...] = METRICS,
    seed: int = 0,
    bn: str = "running",
    cache: bool = True,
    log=None,
) -> dict[str, Any] | None:
    """Metrics of `num` generated images against the dataset, with what they were computed from. The
    extractor runs in G's precision (bf16: FID within ~1% of fp32's, docs/PERFORMANCE.md). Under torchrun
    every rank generates a share of the images and rank 0 computes the metrics; the others return None."""
    if num < 10:
        raise DcganError(f"--num must be at least 10 samples for the metrics to mean anything, got {num}")
    ex.check_images(g.cfg.image_size, g.cfg.channels, "the generator")
    ex.check_images(dataset.image_size, dataset.channels, f"dataset {str(dataset.path)!r}")
    t0 = time.perf_counter()
    place = Placement(next(g.parameters()).device, g.precision)
    if distributed.is_main():
        real_f, real_l, real_info = real_features(dataset, ex, num, cache, log, place)
    t = time.perf_counter()
    fake = shared_generated_features(g, ex, num, seed, bn=bn, place=place)
    if fake is None:  # not rank 0: its share is with rank 0
        return None
    if log:
        log(f"generated: {num:,} images (seeds {seed}…{seed + num - 1}) in {time.perf_counter() - t:.1f} s")
    values = compare((real_f, real_l), fake, list(metrics), ex.name, seed)
    return {
        "metrics": values,
        "samples": num,
        "seeds": [seed, seed + num - 1],
        "bn": bn,
        "precision": g.precision,
        "reference": real_info,
        "extractor": {"name": ex.name, "sha256": ex.sha256, "trained_on": ex.trained_on},
        "seconds": round(time.perf_counter() - t0, 1),
    }
