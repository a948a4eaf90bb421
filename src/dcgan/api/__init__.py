"""The whole pipeline as Python functions — what `import dcgan` exposes and what every CLI command calls.

Arguments are the same everywhere: a generator is a run folder, a checkpoint folder, a .safetensors or a
loaded `Generator`; a dataset is a prepared folder or a `PreparedDataset`; seeds are "0-63", "3,17,42", an
int or any iterable of ints; latents are seeds, a .npy of (k, z_dim) or a tensor. Pictures come back as
uint8 arrays (N, H, W, C) or (H, W, C), ready for `save_grid` / `save_png`. A user's mistake raises
`DcganError` (a ValueError) whose message says what to do.

    >>> import dcgan
    >>> train = dcgan.prepare("fashion.npz", "data/fm", size=32, fit="pad")
    >>> dcgan.train(train, "runs/fm", preset="fmnist32", kimg=50)
    >>> dcgan.save_grid(dcgan.sample("runs/fm", "0-63"), "grid.png")

One module per part of the pipeline: common (argument conventions), datasets, training, latent, probes,
metrics; this package re-exports them all.
"""

from __future__ import annotations

from dcgan.api.common import (
    DatasetLike,
    GeneratorLike,
    Latents,
    PathLike,
    Seeds,
    dataset,
    latents,
    load_discriminator,
    load_examples_generator,
    load_generator,
    seeds,
)
from dcgan.api.datasets import (
    dedup,
    fashion_mnist,
    get_dataset,
    prepare,
)
from dcgan.api.latent import (
    arithmetic,
    interpolate,
    sample,
    sheet,
    vector,
    walk,
)
from dcgan.api.metrics import (
    evaluate,
    extractor,
    train_extractor,
)
from dcgan.api.probes import (
    annotate,
    arithmetic_score,
    forget,
    memorization,
    probe,
    saliency,
)
from dcgan.api.training import (
    train,
    write_report,
)

__all__ = [
    "DatasetLike",
    "GeneratorLike",
    "Latents",
    "PathLike",
    "Seeds",
    "annotate",
    "arithmetic",
    "arithmetic_score",
    "dataset",
    "dedup",
    "evaluate",
    "extractor",
    "fashion_mnist",
    "forget",
    "get_dataset",
    "interpolate",
    "latents",
    "load_discriminator",
    "load_examples_generator",
    "load_generator",
    "memorization",
    "prepare",
    "probe",
    "saliency",
    "sample",
    "seeds",
    "sheet",
    "train",
    "train_extractor",
    "vector",
    "walk",
    "write_report",
]
