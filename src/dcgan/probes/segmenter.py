"""A small per-pixel classifier trained on a dataset's class maps (`dcgan data rooms`' masks.npy): what tells,
for G's samples, where the windows, beds and doors are. `dcgan forget` finds the filters that draw an object
with it and measures how much of the object is gone when they are dropped.

A U-Net of three scales (full, ½, ¼; the coarsest with dilated convolutions for context), trained with a
class-balanced cross-entropy on real images that are randomly blurred, since G's samples are softer than the
data. Its held-out per-class IoU is measured on images it did not train on and stored with the weights.
Its pooled coarsest features also serve as the feature space of the KID that `forget` reports.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcgan.artifacts import check_shapes, safetensors_header
from dcgan.data.dataset import PreparedDataset, unit_batches
from dcgan.errors import DcganError
from dcgan.fileio import atomic_path, parse_json, read_safetensors
from dcgan.progress import silent

META_KEY = "dcgan_segmenter"
WIDTHS = (16, 32, 64)


def _block(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, dilation, dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Segmenter(nn.Module):
    """uint8-range images (B, C, S, S) in [-1, 1] → class logits (B, K, S, S); `features` → (B, 2·W₃)."""

    def __init__(self, channels: int, classes: int, widths: tuple[int, int, int] = WIDTHS) -> None:
        super().__init__()
        a, b, c = widths
        self.classes = classes
        self.enc1 = nn.Sequential(_block(channels, a), _block(a, a))
        self.enc2 = nn.Sequential(_block(a, b, 2), _block(b, b))
        self.enc3 = nn.Sequential(_block(b, c, 2), _block(c, c, dilation=2), _block(c, c, dilation=4))
        self.dec2 = _block(c + b, b)
        self.dec1 = _block(b + a, a)
        self.head = nn.Conv2d(a, classes, 1)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        return e1, e2, self.enc3(e2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1, e2, e3 = self._encode(x)
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[2:], mode="nearest"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[2:], mode="nearest"), e1], 1))
        return self.head(d1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        e3 = self._encode(x)[2]
        return torch.cat([e3.mean((2, 3)), e3.amax((2, 3))], 1)


def _soften(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blur half of the batch a little (3×3 box, mixed with the original by a random amount)."""
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
    amount = torch.rand(len(x), 1, 1, 1, generator=gen) * (torch.rand(len(x), 1, 1, 1, generator=gen) < 0.5)
    return x + amount * (blurred - x)


def train_segmenter(
    ds: PreparedDataset,
    *,
    num: int = 20_000,
    heldout: int = 1_000,
    epochs: int = 3,
    min_steps: int = 300,
    batch: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    log: Callable[[str], None] = silent,
) -> tuple[Segmenter, dict[str, Any]]:
    """Train on the first `num` images of `ds` with masks.npy (`epochs`, more on a small set so that it takes
    at least `min_steps` steps); measure IoU per class on the `heldout` images after them. Returns the net
    (eval mode) and what it was trained on, with the held-out IoUs."""
    masks, classes = ds.class_maps()
    n = min(num, len(ds) - heldout)
    if n < batch or heldout < 1:
        raise DcganError(
            f"the segmenter needs at least {batch + 1} images beside {heldout} held out; {str(ds.path)!r} has "
            f"{len(ds)}"
        )
    counts = np.bincount(masks[: min(n, 2000)].ravel(), minlength=len(classes)).astype(np.float64)
    weight = torch.tensor((counts.sum() / np.maximum(counts, 1)) ** 0.5, dtype=torch.float32)
    weight /= weight.mean()  # rare classes (windows, lamps) count more, by the square root of their rarity
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = Segmenter(ds.channels, len(classes))
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    epochs = max(epochs, math.ceil(min_steps / (n // batch)))
    steps = epochs * (n // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    t0 = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).numpy()
        total = 0.0
        for i in range(n // batch):
            rows = np.sort(order[i * batch : (i + 1) * batch])
            (x,) = unit_batches(ds.images[rows], batch)
            y = torch.from_numpy(masks[rows]).long()
            loss = F.cross_entropy(net(_soften(x, gen)), y, weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(
            f"segmenter epoch {epoch + 1}/{epochs}: loss {total / (n // batch):.3f} ({time.perf_counter() - t0:.0f} s)"
        )
    net.eval()
    held = slice(n, n + heldout)
    pred = predict(net, ds.images[held])
    iou = class_iou(pred, masks[held], len(classes))
    info = {
        "classes": classes,
        "channels": ds.channels,
        "image_size": ds.image_size,
        "dataset": str(ds.path),
        "images_sha256": ds.manifest["images_sha256"],
        "trained_on": n,
        "heldout_iou": {c: (None if np.isnan(v) else round(float(v), 4)) for c, v in zip(classes, iou)},
        "recipe": {"epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "widths": list(WIDTHS)},
    }
    return net, info


@torch.no_grad()
def predict(net: Segmenter, images: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
    """Class maps (N, S, S) uint8 of uint8 images ((N, H, W, C) array or (N, C, H, W) tensor)."""
    net.eval()
    out = [net(x).argmax(1).to(torch.uint8).numpy() for x in unit_batches(images, batch)]
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:3]), np.uint8)


@torch.no_grad()
def features(net: Segmenter, images: np.ndarray | torch.Tensor, batch: int = 256) -> np.ndarray:
    net.eval()
    out = [net.features(x).numpy() for x in unit_batches(images, batch)]
    return np.concatenate(out)


def class_iou(pred: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """(K,) intersection over union per class over all pixels; NaN for a class in neither."""
    inter = np.bincount(truth[pred == truth].ravel(), minlength=classes)[:classes].astype(np.float64)
    union = (
        np.bincount(pred.ravel(), minlength=classes)[:classes]
        + np.bincount(truth.ravel(), minlength=classes)[:classes]
    ) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def save_segmenter(net: Segmenter, info: dict[str, Any], path: str | os.PathLike) -> None:
    """The weights with `info` (classes, held-out IoU, what it was trained on) in the metadata, atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(info)})


def load_segmenter(path: str | os.PathLike) -> tuple[Segmenter, dict[str, Any]]:
    """A segmenter written by save_segmenter, and its info."""
    meta, shapes = safetensors_header(path)
    try:
        info = parse_json(meta[META_KEY])
        names, iou, channels = info["classes"], info["heldout_iou"], info["channels"]
        classes = len(names)
        ok = (
            isinstance(names, list)
            and type(channels) is int
            and channels in (1, 3)
            and isinstance(info["image_size"], int)
            and 8 <= info["image_size"] <= 4096
            and 2 <= classes <= 256
            and all(isinstance(c, str) for c in names)
            and isinstance(info["images_sha256"], str)
            and isinstance(iou, dict)
            and all(v is None or isinstance(v, (int, float)) for v in iou.values())
        )
        if not ok:
            raise ValueError
    except (KeyError, ValueError, TypeError):
        raise DcganError(f"{str(path)!r} is not a segmenter written by `dcgan forget`") from None
    check_shapes(repr(str(path)), shapes, lambda: Segmenter(channels, classes), "segmenter")
    state, _ = read_safetensors(path)
    net = Segmenter(channels, classes)
    net.load_state_dict(state)
    return net.eval(), info
