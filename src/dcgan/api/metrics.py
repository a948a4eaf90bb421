"""Feature extractors and `evaluate`: FID, KID, precision/recall in a named feature space."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from dcgan.api.common import (
    DatasetLike,
    GeneratorLike,
    PathLike,
    _device,
    dataset,
    load_generator,
)
from dcgan.fileio import write_json
from dcgan.metrics import evaluate as metrics_evaluate
from dcgan.metrics.extractors import Extractor, load_extractor, save_extractor
from dcgan.metrics.extractors import train_extractor as fit_extractor
from dcgan.metrics.interface import FeatureExtractor
from dcgan.models import Generator


def extractor(
    ex: FeatureExtractor | str,
    device: str | torch.device = "auto",
    inception_weights: PathLike | None = None,
    inception_sha256: str | None = None,
) -> FeatureExtractor:
    """A feature extractor for the metrics: a shipped name ("fmnist"), a .safetensors from
    `train_extractor`, "inception" (the FID network, from the local weights file `inception_weights`,
    checked against the standard sha256 or `inception_sha256`), or a loaded one as it is.

    >>> ex = dcgan.extractor("fmnist"); ex.name, ex.image_size
    >>> ex = dcgan.extractor("inception", inception_weights="pt_inception-2015-12-05-6726825d.pth")
    """
    if not isinstance(ex, (str, os.PathLike)):
        return ex
    return load_extractor(ex, _device(device), inception_weights, inception_sha256)


def train_extractor(
    data: DatasetLike,
    test: DatasetLike,
    name: str,
    out: PathLike,
    *,
    epochs: int = 12,
    batch: int = 128,
    lr: float = 3e-3,
    flip: bool = False,
    seed: int = 0,
    device: str | torch.device = "auto",
    log: Callable[[str], None] = print,
) -> Extractor:
    """Train a domain feature extractor (a small classifier) on a labelled dataset, save it to `out` and
    return it loaded; metrics in its space are labelled NAME-HASH. The recipe: AdamW at `lr` with a
    one-cycle schedule, random 2-pixel shifts (and mirror images with `flip`, for data whose classes
    survive them), `epochs` passes of minibatches of `batch`.

    >>> ex = dcgan.train_extractor("data/fm/train", "data/fm/test", "fmnist", "fmnist.safetensors")
    """
    dev = _device(device)
    recipe = {"epochs": epochs, "batch": batch, "lr": lr, "flip": flip, "seed": seed}
    net, _ = fit_extractor(dataset(data), dataset(test), name, device=dev, log=log, **recipe)
    return Extractor(net, net.cfg, save_extractor(net, out))


def evaluate(
    g: GeneratorLike,
    data: DatasetLike,
    ex: FeatureExtractor | str = "fmnist",
    *,
    num: int = 10_000,
    metrics: Sequence[str] | str = metrics_evaluate.METRICS,
    seed: int = 0,
    bn: str = "running",
    precision: str = "auto",
    cache: bool = True,
    out: PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """FID, KID, precision/recall and a classifier score of G against real images, in a named feature
    space (every number is labelled with the extractor's NAME-HASH); with `out`, also written as JSON.
    G and the extractor run in `precision` (a path's G; a loaded G keeps its own): auto is bf16 on CPUs
    that run it natively, FID within ~1% of fp32's, and fp32 elsewhere; fp32 to compare with fp32 numbers.
    Inside a process group (torchrun) every rank generates a share of the images and only rank 0 gets the
    result (and writes `out`); the others get None.

    >>> r = dcgan.evaluate("runs/fmnist32", "data/fm/train", "fmnist", num=10_000); r["metrics"]
    """
    run = None if isinstance(g, Generator) else str(g)
    g = load_generator(g, precision=precision)
    chosen = metrics_evaluate.parse_metrics(metrics) if isinstance(metrics, str) else list(metrics)
    fx = extractor(ex, next(g.parameters()).device)
    values = metrics_evaluate.evaluate(g, dataset(data), fx, num, chosen, seed, bn, cache, log)
    if values is None:  # a rank other than 0 of a multi-process run: rank 0 has the result
        return None
    result = {"run": run, **values}
    if out is not None:
        write_json(out, result)
    return result
