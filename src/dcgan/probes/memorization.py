"""Is G copying its training set? Nearest neighbours in pixel space or in D's feature space, and the
original code's `nnd`.

The search is exact and chunked: ‖q − b‖² = ‖q‖² − 2 q·b + ‖b‖², one matrix product per block of the base
set, keeping a running top-k, so memory stays at (queries × chunk) floats whatever the dataset's size.
Pixel distance finds copies; near-copies (shifted, recoloured, re-drawn) can be far in pixels. D's features
(every conv layer max-pooled to 1×1, unit length, BN re-estimated on the training images) compare what D
sees instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.images import make_grid, to_uint8, upscale
from dcgan.models import Discriminator, Generator
from dcgan.probes.features import extract, reestimate_bn
from dcgan.sampling import generate

Embed = Callable[[np.ndarray, torch.device], torch.Tensor]


def _flat(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W, C) uint8 → (N, H·W·C) float32 in [0, 1] on `device`."""
    # np.array copies: memmaps are read-only
    return torch.from_numpy(np.array(images)).to(device).flatten(1).float().div_(255)


def d_embedding(d: Discriminator, real: np.ndarray) -> Embed:
    """Unit-length D features of uint8 images, D's BN statistics re-estimated on `real` first."""
    where = next(d.parameters()).device
    reestimate_bn(d, real, device=where)

    def embed(images: np.ndarray, device: torch.device) -> torch.Tensor:
        f = torch.from_numpy(extract(d, np.asarray(images), grid=1, device=where)).to(device)
        return torch.nn.functional.normalize(f, dim=1)

    return embed


@torch.no_grad()
def nearest(
    queries: np.ndarray,
    base: np.ndarray,
    k: int = 5,
    chunk: int = 4096,
    device: str | torch.device = "cpu",
    embed: Embed = _flat,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query image its k nearest base images: (distances (Q, k), indices (Q, k)), closest first.
    Images are uint8 (N, H, W, C); distances are Euclidean between their `embed`dings (default: the pixels
    scaled to [0, 1])."""
    if queries.shape[1:] != base.shape[1:]:
        raise DcganError(f"images of shape {queries.shape[1:]} cannot be compared with {base.shape[1:]}")
    device = torch.device(device)
    q = embed(queries, device)  # (Q, D)
    q_sq = q.pow(2).sum(1, keepdim=True)  # (Q, 1)
    k = min(k, len(base))
    best_d = torch.full((len(q), k), float("inf"), device=device)
    best_i = torch.zeros((len(q), k), dtype=torch.long, device=device)
    for start in range(0, len(base), chunk):
        b = embed(base[start : start + chunk], device)  # (c, D)
        d2 = (q_sq - 2 * q @ b.T + b.pow(2).sum(1)[None]).clamp_min_(0)  # (Q, c)
        idx = torch.arange(start, start + len(b), device=device).expand(len(q), -1)
        best_d, pos = torch.cat([best_d, d2], 1).topk(k, dim=1, largest=False)
        best_i = torch.cat([best_i, idx], 1).gather(1, pos)
    return best_d.sqrt().cpu(), best_i.cpu()


def memorization(
    g: Generator,
    train: PreparedDataset,
    heldout: PreparedDataset | None = None,
    num: int = 10000,
    k: int = 5,
    panels: int = 8,
    device: str | torch.device = "cpu",
    d: Discriminator | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Samples of seeds 0…num−1 against the training set (and a held-out set), in pixel space, or in the
    feature space of `d` when given. Returns (summary, panel image): each panel row is a sample followed by
    its k nearest training images."""
    cfg = g.cfg
    for ds in (train, heldout) if heldout is not None else (train,):
        if (ds.image_size, ds.channels) != (cfg.image_size, cfg.channels):
            raise DcganError(
                f"{str(ds.path)!r} holds {ds.image_size}²×{ds.channels} images; this generator makes "
                f"{cfg.image_size}²×{cfg.channels}"
            )
    if num < 1:
        raise DcganError(f"--num must be at least 1, got {num}")
    samples = to_uint8(generate(g, range(num)))  # (num, H, W, C)
    embed = _flat if d is None else d_embedding(d, np.asarray(train.images[:10_000]))
    d_train, i_train = nearest(samples, train.images, k, device=device, embed=embed)
    summary: dict[str, Any] = {
        "samples": num,
        "train_images": len(train),
        "k": k,
        "distance": "Euclidean, pixels in [0, 1]"
        if d is None
        else "Euclidean between unit-length D features (every conv layer max-pooled to 1×1)",
        "sample_to_train": float(d_train[:, 0].mean()),
    }
    if heldout is not None:  # the original code's nnd, and the same distance for real images as a baseline
        real = heldout.images[: min(num, len(heldout))]
        summary["nnd_sample_to_heldout"] = float(
            nearest(samples, heldout.images, 1, device=device, embed=embed)[0].mean()
        )
        summary["heldout_to_train"] = float(
            nearest(real, train.images, 1, device=device, embed=embed)[0].mean()
        )
        summary["heldout_images"] = len(heldout)
    summary["closest_pairs"] = [
        {"seed": int(s), "train_index": int(i_train[s, 0]), "distance": float(d_train[s, 0])}
        for s in d_train[:, 0].argsort()[:10].tolist()
    ]
    n = min(panels, num)
    rows = [np.concatenate([samples[j : j + 1], train.images[i_train[j].numpy()]]) for j in range(n)]
    figure = make_grid(upscale(np.concatenate(rows)), ncols=k + 1)
    return summary, figure
