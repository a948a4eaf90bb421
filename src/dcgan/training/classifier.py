"""The supervised loop: a classifier trained by cross-entropy on labelled uint8 images.

Two callers: the §5 supervised control (probes/supervised.py: D's architecture with a linear head, chosen by
random search) and the metrics' domain extractors (metrics/extractors.py: a small CNN whose features are the
space FID is measured in). Each minibatch is a random set of rows read in ascending order (a memmap is read
front to back; BatchNorm and the mean loss do not depend on the order inside a batch).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcgan.data.dataset import as_nchw, read_rows, to_unit_range
from dcgan.errors import DcganError


def check_recipe(n: int, epochs: int, batch: int, drop_last: bool) -> None:
    """The numbers a supervised run needs, checked before any work: say which one is wrong. With drop_last
    a minibatch larger than the set would never run."""
    if epochs < 1:
        raise DcganError(f"--epochs must be at least 1, got {epochs}")
    if n < 2:
        raise DcganError(f"a classifier needs at least 2 labelled images, got {n}")
    if drop_last and not 2 <= batch <= n:
        raise DcganError(f"--batch must be between 2 and the training set's {n:,} images, got {batch}")
    if batch < 2:
        raise DcganError(f"--batch must be at least 2 (BatchNorm needs a batch), got {batch}")


def fit_classifier(
    net: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch: int,
    opt: torch.optim.Optimizer,
    seed: int,
    device: str | torch.device = "cpu",
    logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
    sched: torch.optim.lr_scheduler.LRScheduler | None = None,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    drop_last: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> None:
    """Minimize −log p(y | x) over `epochs` passes of minibatches of uint8 images (N, H, W, C) and labels
    (N,) in 0…K−1. `logits(x)` (default `net(x)`) gives (B, K). The order of the rows and the augmentation
    are drawn from `seed`; a last minibatch under 2 images (BatchNorm cannot train on one) is skipped, and
    with drop_last every partial one. `on_epoch(epoch, last loss)` runs after each pass, net in train mode."""
    if len(images) != len(labels):
        raise DcganError(f"expected one label per image, got {len(images)} images and {len(labels)} labels")
    check_recipe(len(images), epochs, batch, drop_last)
    logits = logits or net
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    stop = len(images) - batch + 1 if drop_last else len(images)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(images), generator=g)
        for i in range(0, stop, batch):
            idx = order[i : i + batch].sort().values
            if len(idx) < 2:
                continue
            x = to_unit_range(as_nchw(read_rows(images, idx.numpy())), device)  # (B, C, H, W) in [-1, 1]
            if augment is not None:
                x = augment(x, g)
            loss = F.cross_entropy(logits(x), y_all[idx].to(device))  # minimize −log p(y | x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        if on_epoch is not None:
            on_epoch(epoch, loss.item())
