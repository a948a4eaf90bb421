"""DCGAN (Radford, Metz & Chintala, 2016): prepare data, train, sample, probe, evaluate — from Python or the
`dcgan` command, which calls these same functions.

    import dcgan
    fm = dcgan.fashion_mnist("data/fashion-mnist")                   # {"train": …, "test": …}
    dcgan.train(fm["train"], "runs/fm", preset="fmnist32", epochs=10)  # the same call again resumes
    dcgan.save_grid(dcgan.sample("runs/fm", "0-63"), "grid.png")
    grid, frames = dcgan.interpolate("runs/fm", "3,17,42", steps=8)
    r = dcgan.evaluate("runs/fm", fm["train"], "fmnist", num=10_000)

Importing the package is cheap: the submodules (which import torch) load on first use of a name.
See docs/ARCHITECTURE.md for where each part lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name → the module that defines it
_API = {
    **dict.fromkeys(
        (
            "dataset",
            "prepare",
            "fashion_mnist",
            "get_dataset",
            "dedup",
            "train",
            "load_generator",
            "load_discriminator",
            "load_examples_generator",
            "seeds",
            "latents",
            "sample",
            "interpolate",
            "sheet",
            "arithmetic",
            "arithmetic_score",
            "vector",
            "walk",
            "memorization",
            "probe",
            "saliency",
            "forget",
            "annotate",
            "extractor",
            "train_extractor",
            "evaluate",
            "write_report",
        ),
        "dcgan.api",
    ),
    **dict.fromkeys(("ModelConfig", "TrainConfig", "PRESETS", "train_config", "get_preset"), "dcgan.config"),
    "PreparedDataset": "dcgan.data.dataset",
    "Generator": "dcgan.models",
    "Discriminator": "dcgan.models",
    **dict.fromkeys(("make_grid", "save_grid", "save_png", "save_gif"), "dcgan.images"),
    "DcganError": "dcgan.errors",
}

__all__ = [
    "PRESETS",
    "DcganError",
    "Discriminator",
    "Generator",
    "ModelConfig",
    "PreparedDataset",
    "TrainConfig",
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
    "get_preset",
    "interpolate",
    "latents",
    "load_discriminator",
    "load_examples_generator",
    "load_generator",
    "make_grid",
    "memorization",
    "prepare",
    "probe",
    "saliency",
    "sample",
    "save_gif",
    "save_grid",
    "save_png",
    "seeds",
    "sheet",
    "train",
    "train_config",
    "train_extractor",
    "vector",
    "walk",
    "write_report",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads each on first use
    from dcgan.api import (
        annotate,
        arithmetic,
        arithmetic_score,
        dataset,
        dedup,
        evaluate,
        extractor,
        fashion_mnist,
        forget,
        get_dataset,
        interpolate,
        latents,
        load_discriminator,
        load_examples_generator,
        load_generator,
        memorization,
        prepare,
        probe,
        saliency,
        sample,
        seeds,
        sheet,
        train,
        train_extractor,
        vector,
        walk,
        write_report,
    )
    from dcgan.config import PRESETS, ModelConfig, TrainConfig, get_preset, train_config
    from dcgan.data.dataset import PreparedDataset
    from dcgan.errors import DcganError
    from dcgan.images import make_grid, save_gif, save_grid, save_png
    from dcgan.models import Discriminator, Generator


def __getattr__(name: str) -> object:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'dcgan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
