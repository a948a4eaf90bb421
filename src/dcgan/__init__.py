"""DCGAN (Radford, Metz & Chintala, 2016): prepare data, train, sample, probe, evaluate.

Importing the package is cheap: submodules (which import torch) load on first use.
"""

__version__ = "0.1.0"

_API = {
    "train": "dcgan.training.loop",
    "train_config": "dcgan.config",
    "load_generator": "dcgan.sampling",
    "generate": "dcgan.sampling",
    "prepare": "dcgan.data.prepare",
    "PreparedDataset": "dcgan.data.dataset",
}


def __getattr__(name: str):  # lazy: `import dcgan` does not import torch
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'dcgan' has no attribute {name!r}")
