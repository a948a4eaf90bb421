"""What a feature extractor is to the metrics: uint8 images in, features (and class logits) out, under a
name that labels every number computed in its space.

Two kinds implement it: the small domain classifiers of extractors.py and the FID InceptionV3 of
inception.py. Both run their network through `net_outputs`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from dcgan.data.dataset import unit_batches
from dcgan.threads import tuned

Images = np.ndarray | torch.Tensor  # uint8: (N, H, W, C) array or memmap, or an (N, C, H, W) tensor


@runtime_checkable
class FeatureExtractor(Protocol):
    """The contract every metric relies on."""

    @property
    def name(self) -> str:
        """NAME-HASH (HASH: the first 4 hex digits of the weights' sha256), as in `fid[fmnist-94bc]`."""
        ...

    @property
    def sha256(self) -> str:
        """The weights file's sha256: part of every cache key computed with this extractor."""
        ...

    @property
    def image_size(self) -> int | None:
        """The side of the images it takes; None when it resizes any size itself (Inception)."""
        ...

    @property
    def num_features(self) -> int:
        """Width D of the feature vectors."""
        ...

    @property
    def trained_on(self) -> dict[str, Any]:
        """Where its weights came from (dataset, recipe, accuracy), recorded beside every result."""
        ...

    def check_images(self, size: int, channels: int, what: str) -> None:
        """Raise a DcganError naming `what` when images of this size and channel count cannot go in."""
        ...

    def features(self, images: Images, batch: int = ...) -> np.ndarray:
        """Features (N, D) float64 of uint8 images, read batch by batch."""
        ...

    def outputs(self, images: Images, batch: int = ...) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, D) and class logits (N, K), float64."""
        ...


@torch.no_grad()
def net_outputs(net: nn.Module, images: Images, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Run a network (images in [−1, 1] → (features, logits), `num_features` wide) over uint8 images;
    float64 features (N, D) and logits (N, K) on the CPU."""
    device = next(net.parameters()).device
    feats, outs = [], []
    with tuned(device=device) as threads:  # on CPU, the thread count fastest now
        for x in unit_batches(images, batch, device):
            with threads.item(len(x)):
                f, y = net(x)
                feats.append(f.double().cpu().numpy())
                outs.append(y.double().cpu().numpy())
    if not feats:
        return np.empty((0, net.num_features)), np.empty((0, 0))
    return np.concatenate(feats), np.concatenate(outs)
