"""The supervised control of PAPER.md §5: D's architecture plus a linear head, trained from scratch on the
same labels, its hyperparameters chosen by random search on the same validation split (the paper: 64 trials).

The body is D's conv stack exactly (strided convs, BN after all but the first, LeakyReLU 0.2); D's 1-logit
output unit is replaced by dropout and a linear layer to K classes. PyTorch's default initialization is used:
the control is a classifier trained the usual way, not a GAN discriminator.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from dcgan.config import ModelConfig
from dcgan.data.dataset import unit_batches
from dcgan.errors import DcganError
from dcgan.models import Discriminator
from dcgan.training.classifier import fit_classifier


class Classifier(nn.Module):
    """images (B, C, S, S) in [-1, 1] → class logits (B, K) through D's conv body."""

    def __init__(self, cfg: ModelConfig, classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        d = Discriminator(cfg)
        self.body = d.main[: d.n_body]  # (B, C_last, 4, 4)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(cfg.d_layers[-1][1] * 16, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass(frozen=True)
class Hyper:
    """One trial's hyperparameters."""

    lr: float
    weight_decay: float
    dropout: float
    epochs: int
    batch: int
    beta1: float


def sample_hyper(rng: random.Random, max_epochs: int = 100) -> Hyper:
    """A random draw: log-uniform learning rate, weight decay and epochs; uniform dropout."""

    def log_uniform(lo: float, hi: float) -> float:
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))

    return Hyper(
        lr=log_uniform(1e-4, 3e-3),
        weight_decay=log_uniform(1e-6, 1e-2),
        dropout=rng.uniform(0.0, 0.6),
        epochs=round(log_uniform(min(10, max_epochs), max_epochs)),
        batch=rng.choice([32, 64, 128]),
        beta1=rng.choice([0.5, 0.9]),
    )


def train_classifier(
    cfg: ModelConfig,
    images: np.ndarray,
    labels: np.ndarray,
    hyper: Hyper,
    seed: int,
    device: str | torch.device = "cpu",
) -> Classifier:
    """Train on uint8 images (N, H, W, C) with labels (N,) in 0…K−1 by AdamW; returns the net in eval mode."""
    if len(images) != len(labels):
        raise DcganError(f"expected one label per image, got {len(images)} images and {len(labels)} labels")
    torch.manual_seed(seed)
    net = Classifier(cfg, int(labels.max()) + 1, hyper.dropout).to(device)
    opt = torch.optim.AdamW(
        net.parameters(), hyper.lr, betas=(hyper.beta1, 0.999), weight_decay=hyper.weight_decay
    )
    fit_classifier(
        net, images, labels, epochs=hyper.epochs, batch=hyper.batch, opt=opt, seed=seed, device=device
    )
    return net.eval()


@torch.no_grad()
def predict(
    net: Classifier, images: np.ndarray, batch: int = 512, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Predicted class (N,) of uint8 images (N, H, W, C); reads a memmap batch by batch."""
    out = [net(x).argmax(1).cpu().numpy() for x in unit_batches(images, batch, device)]
    return np.concatenate(out) if out else np.empty(0, np.int64)


def search(
    cfg: ModelConfig,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    trials: int,
    seed: int = 0,
    max_epochs: int = 100,
    device: str | torch.device = "cpu",
    log=None,
) -> list[dict]:
    """Random search: `trials` hyperparameter draws, each trained on `train` and scored on `val`.
    Returns one record per trial (hyperparameters, validation accuracy), best first."""
    rng = random.Random(seed)
    records = []
    for t in range(trials):
        hyper = sample_hyper(rng, max_epochs)
        net = train_classifier(cfg, *train, hyper, seed=seed * 1000 + t, device=device)
        acc = float((predict(net, val[0], device=device) == val[1]).mean())
        records.append({"trial": t, **asdict(hyper), "val_accuracy": acc})
        if log:
            log(
                f"  control trial {t + 1}/{trials}: val accuracy {acc:.4f} (lr {hyper.lr:.2g}, weight decay "
                f"{hyper.weight_decay:.2g}, dropout {hyper.dropout:.2f}, {hyper.epochs} epochs, batch {hyper.batch}, "
                f"β1 {hyper.beta1})"
            )
    return sorted(records, key=lambda r: -r["val_accuracy"])


def hyper_of(record: dict) -> Hyper:
    return Hyper(**{k: record[k] for k in Hyper.__dataclass_fields__})
