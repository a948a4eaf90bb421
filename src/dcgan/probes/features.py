"""D as a feature extractor (PAPER.md §5): every conv layer max-pooled to 4×4, flattened, concatenated.

imagenet32's D gives (128+128+256+256+512+512) · 16 = 28,672 features per image, svhn32's 7,168. BatchNorm
runs in eval mode with statistics re-estimated on real training images, as the original SVHN analysis did:
D's running averages were tracked on minibatches that mixed nothing but one kind (all real or all fake).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcgan.data.dataset import unit_batches
from dcgan.models import Discriminator
from dcgan.threads import tuned


def feature_dim(d: Discriminator, grid: int = 4) -> int:
    """Length of one image's feature vector."""
    return d.cfg.d_feature_channels * grid * grid


@torch.no_grad()
def reestimate_bn(
    d: Discriminator, images: np.ndarray, batch: int = 256, device: str | torch.device = "cpu"
) -> None:
    """Replace D's BN running statistics with statistics over all of `images` (N, H, W, C) uint8: the running
    mean becomes the exact mean, the running variance the size-weighted mean of the batch variances."""
    bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
    d.train()
    seen = 0
    for x in unit_batches(images, batch, device):
        for m in bns:  # weight this batch by its share of the images so far: a running average, not an EMA
            m.momentum = len(x) / (seen + len(x))
        d.features(x)
        seen += len(x)
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    d.eval()


@torch.no_grad()
def extract(
    d: Discriminator,
    images: np.ndarray,
    batch: int = 256,
    grid: int = 4,
    device: str | torch.device = "cpu",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Features (N, feature_dim) float32 of uint8 images (N, H, W, C), D in eval mode. `out` may be a
    np.memmap of that shape, for feature sets larger than memory. On CPU the batches feed a thread Tuner."""
    d.eval()
    n = len(images)
    out = np.empty((n, feature_dim(d, grid)), np.float32) if out is None else out
    with tuned(device=torch.device(device)) as threads:
        for i, x in zip(range(0, n, batch), unit_batches(images, batch, device)):
            with threads.item(len(x)):
                pooled = [F.adaptive_max_pool2d(f, grid).flatten(1) for f in d.features(x)]  # (B, C_l·grid²)
                out[i : i + len(x)] = torch.cat(pooled, 1).float().cpu().numpy()
    return out
