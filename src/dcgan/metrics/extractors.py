"""Feature extractors the metrics compare real and generated images in.

A *domain extractor* is a small classifier trained on a labelled prepared dataset of the images being
generated (`dcgan extractor train`); its penultimate layer (128-d, global-average-pooled) is the feature
space of FID/KID/precision/recall, its logits give the classifier score. The package ships one trained on
Fashion-MNIST 32² (see `shipped()`). Every extractor is named `NAME-HASH` with HASH the first 4 hex digits
of the weights file's sha256, and every metric carries that name — `fid[fmnist-3f2a]` — so numbers computed
in different feature spaces never mix.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from dcgan.artifacts import check_shapes, safetensors_header
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.fileio import atomic_path, parse_json, read_safetensors, sha256_file
from dcgan.metrics.inception import load_inception
from dcgan.metrics.interface import FeatureExtractor, Images, net_outputs
from dcgan.training.classifier import check_recipe, fit_classifier

META_KEY = "dcgan_extractor"
SHIPPED = {"fmnist": Path(__file__).parent / "weights" / "fmnist-32.safetensors"}


@dataclass
class ExtractorConfig:
    """What a domain extractor takes and what it was trained on."""

    name: str
    image_size: int
    channels: int
    classes: int
    widths: tuple[int, int, int] = (32, 64, 128)
    label_names: list[str] | None = None
    trained_on: dict[str, Any] = field(default_factory=dict)  # dataset path and sha256, recipe, test accuracy

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)
        if self.image_size < 8 or self.channels not in (1, 3) or self.classes < 2:
            raise DcganError(
                f"an extractor needs images ≥ 8² with 1 or 3 channels and ≥ 2 classes, got "
                f"{self.image_size}² × {self.channels}, {self.classes} classes"
            )
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise DcganError(f"an extractor's name is letters, digits, '-' and '_', got {self.name!r}")


class DomainExtractor(nn.Module):
    """images (B, C, S, S) in [-1, 1] → features (B, 128) and logits (B, K).

    Two 3×3 conv-BN-ReLU pairs at S and S/2 (max-pooled between), one at S/4, global average pool."""

    def __init__(self, cfg: ExtractorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        a, b, c = cfg.widths

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(cfg.channels, a), *block(a, a), nn.MaxPool2d(2),  # (B, a, S/2, S/2)
            *block(a, b), *block(b, b), nn.MaxPool2d(2),  # (B, b, S/4, S/4)
            *block(b, c), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, c)
        )  # fmt: skip
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(c, cfg.classes)
        self.num_features = c

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return f, self.head(self.dropout(f))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K) class logits: what the classifier is trained on."""
        return self(x)[1]


@dataclass
class Extractor:
    """A loaded domain extractor (a FeatureExtractor): the net (eval mode), its config and weights hash."""

    net: DomainExtractor
    cfg: ExtractorConfig
    sha256: str

    @property
    def name(self) -> str:
        return f"{self.cfg.name}-{self.sha256[:4]}"

    @property
    def trained_on(self) -> dict[str, Any]:
        return self.cfg.trained_on

    @property
    def image_size(self) -> int:
        return self.cfg.image_size

    @property
    def num_features(self) -> int:
        return self.net.num_features

    def check_images(self, size: int, channels: int, what: str) -> None:
        if (size, channels) != (self.cfg.image_size, self.cfg.channels):
            raise DcganError(
                f"extractor {self.name} takes {self.cfg.image_size}² × {self.cfg.channels} images but {what} "
                f"has {size}² × {channels}; use an extractor trained on such images (`dcgan extractor train`)"
            )

    def features(self, images: Images, batch: int = 500) -> np.ndarray:
        """Features (N, 128) float64 of uint8 images, (N, H, W, C) array/memmap or an (N, C, H, W) tensor."""
        return net_outputs(self.net, images, batch)[0]

    def outputs(self, images: Images, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, 128) and class logits (N, K), float64."""
        return net_outputs(self.net, images, batch)


def save_extractor(net: DomainExtractor, path: str | os.PathLike) -> str:
    """Weights + config as safetensors (atomically); returns the file's sha256."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(asdict(net.cfg))})
    return sha256_file(path)


def load_extractor(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    inception_weights: str | os.PathLike | None = None,
    inception_sha256: str | None = None,
) -> FeatureExtractor:
    """An extractor from a .safetensors written by `dcgan extractor train`, a shipped one by name (e.g.
    "fmnist"), or "inception" (the FID InceptionV3, from the local weights file `inception_weights`)."""
    if str(path) == "inception":
        if inception_weights is None:
            raise DcganError(
                "--extractor inception needs --inception-weights PATH (pytorch-fid's "
                "pt_inception-2015-12-05-6726825d.pth, copied to this machine: nothing is downloaded)"
            )
        return load_inception(inception_weights, inception_sha256, device)

    p = SHIPPED.get(str(path), Path(str(path)))
    if not p.is_file():
        raise DcganError(
            f"extractor {str(path)!r} is neither a file, a shipped extractor ({', '.join(SHIPPED)}) nor "
            "inception; train one with `dcgan extractor train DATASET --test TEST --name NAME --out ex.safetensors`"
        )
    meta, shapes = safetensors_header(p)
    try:
        spec = parse_json(meta[META_KEY])
        cfg = ExtractorConfig(**spec) if isinstance(spec, dict) else None
    except (KeyError, ValueError, TypeError, AttributeError):  # missing, not JSON, or not a config
        cfg = None
    if cfg is None:
        raise DcganError(f"{str(p)!r} is not an extractor written by `dcgan extractor train`")
    check_shapes(repr(str(p)), shapes, lambda: DomainExtractor(cfg), "extractor")
    state, _ = read_safetensors(p)
    net = DomainExtractor(cfg)
    net.load_state_dict(state)
    return Extractor(net.to(device, memory_format=torch.channels_last).eval(), cfg, sha256_file(p))


def train_extractor(
    train: PreparedDataset,
    test: PreparedDataset,
    name: str,
    epochs: int = 12,
    batch: int = 128,
    lr: float = 3e-3,
    flip: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
) -> tuple[DomainExtractor, float]:
    """Train on a labelled PreparedDataset (AdamW, one-cycle schedule, random 2-pixel shifts [+ flips]);
    returns the net in eval mode and its accuracy on `test`."""
    for what, ds in (("the training set", train), ("the test set", test)):
        if ds.labels is None:
            raise DcganError(f"{what} {str(ds.path)!r} has no labels; prepare it with --labels")
    if (test.image_size, test.channels) != (train.image_size, train.channels):
        raise DcganError("the test set's images differ in size or channels from the training set's")
    check_recipe(len(train), epochs, batch, drop_last=True)
    classes = int(train.labels.max()) + 1
    cfg = ExtractorConfig(name, train.image_size, train.channels, classes, label_names=train.label_names)
    torch.manual_seed(seed)
    net = DomainExtractor(cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * (len(train) // batch))
    t0, acc = time.perf_counter(), 0.0

    def after_epoch(epoch: int, loss: float) -> None:
        nonlocal acc
        acc = accuracy(Extractor(net.eval(), cfg, ""), test)
        log(
            f"epoch {epoch + 1}/{epochs}: loss {loss:.3f}, test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)"
        )

    recipe = {"epochs": epochs, "batch": batch, "opt": opt, "seed": seed, "device": device, "sched": sched}
    augment = functools.partial(_augment, flip=flip)
    fit_classifier(
        net,
        train.images,
        train.labels,
        logits=net.logits,
        augment=augment,
        drop_last=True,
        on_epoch=after_epoch,
        **recipe,
    )
    cfg.trained_on = {
        "dataset": str(train.path),
        "images_sha256": train.manifest["images_sha256"],
        "test": str(test.path),
        "test_accuracy": round(acc, 4),
        "recipe": {"epochs": epochs, "batch": batch, "lr": lr, "flip": flip, "seed": seed},
    }
    return net.eval(), acc


def _augment(x: torch.Tensor, g: torch.Generator, flip: bool) -> torch.Tensor:
    """Each image shifted by up to 2 pixels (the border filled with −1, black), optionally flipped."""
    b, c, s, _ = x.shape
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)  # (B, C, S+4, S+4)
    ar = torch.arange(s, device=x.device)
    dy, dx = (torch.randint(0, 5, (2, b), generator=g).to(x.device)[:, :, None] + ar).unbind(0)  # (B, S) each
    x = padded.gather(2, dy[:, None, :, None].expand(b, c, s, s + 4))
    x = x.gather(3, dx[:, None, None, :].expand(b, c, s, s))
    if flip:
        mask = (torch.rand(b, generator=g) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x.contiguous()


def accuracy(ex: FeatureExtractor, ds: PreparedDataset) -> float:
    """Share of `ds`'s labelled images the extractor's classifier gets right."""
    _, logits = ex.outputs(ds.images)
    return float((logits.argmax(1) == ds.labels).mean())
