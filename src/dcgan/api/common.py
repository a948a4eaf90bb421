"""What every part of the API shares: the types its arguments take (a path or an object) and the
functions that turn them into objects: devices, datasets, G and D, seeds, latents."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import torch

from dcgan import artifacts, sampling
from dcgan.data.dataset import PreparedDataset
from dcgan.device import resolve
from dcgan.errors import DcganError
from dcgan.models import Discriminator, Generator

PathLike = str | os.PathLike
GeneratorLike = Generator | PathLike
DatasetLike = PreparedDataset | PathLike
Seeds = str | int | Iterable[int]
Latents = Seeds | torch.Tensor | np.ndarray


def _device(device: str | torch.device) -> torch.device:
    """A torch.device from "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:1", "mps" or itself."""
    if isinstance(device, torch.device):
        return device
    try:
        return resolve(device, "fp32").device
    except RuntimeError:  # torch.device's own parse error
        raise DcganError(
            f"expected a device such as auto, cpu, cuda, cuda:1 or mps, got {device!r}"
        ) from None


def dataset(data: DatasetLike) -> PreparedDataset:
    """A prepared dataset from its folder (or the object itself).

    >>> ds = dcgan.dataset("data/fashion-mnist/train"); len(ds), ds.image_size, ds.channels
    """
    return data if isinstance(data, PreparedDataset) else PreparedDataset(data)


def load_generator(
    g: GeneratorLike, device: str | torch.device = "auto", precision: str = "auto"
) -> Generator:
    """G in eval mode (its ModelConfig in `.cfg`) from a run folder, checkpoint folder or .safetensors;
    a Generator is returned as it is. device "auto": CUDA, else MPS, else CPU. precision: how it samples,
    "auto" bf16 on CPUs that run it natively (~2× faster there; 99% of pixels within one level of
    fp32's), else fp32.

    >>> g = dcgan.load_generator("runs/fmnist32"); g.cfg.z_dim
    """
    if isinstance(g, Generator):
        return g
    return artifacts.load_generator(g, _device(device), precision)


def load_discriminator(d: PathLike, device: str | torch.device = "auto") -> Discriminator:
    """D in eval mode from a run folder (its latest checkpoint), a checkpoint folder or a D.safetensors.

    >>> d = dcgan.load_discriminator("runs/fmnist32"); [f.shape for f in d.features(x)]
    """
    return artifacts.load_discriminator(d, _device(device))


def load_examples_generator(
    path: PathLike, device: str | torch.device = "auto", precision: str = "auto"
) -> Generator:
    """G from a pytorch/examples `netG_epoch_N.pth` (sizes read off the weights); precision as in
    load_generator.

    >>> g = dcgan.load_examples_generator("netG_epoch_24.pth")
    """
    return artifacts.load_examples_generator(path, _device(device), precision)


def seeds(s: Seeds) -> list[int]:
    """Seeds as a list: "0-63", "3,17,42", 7 or any iterable of non-negative ints.

    >>> dcgan.seeds("0-3,9")
    [0, 1, 2, 3, 9]
    """
    if isinstance(s, str):
        return sampling.parse_seeds(s)
    out = [s] if isinstance(s, (int, np.integer)) else list(s)
    if not out or not all(isinstance(v, (int, np.integer)) and 0 <= v <= sampling.MAX_SEED for v in out):
        raise DcganError(f"expected seeds as integers from 0 to 2^63 − 1 (or '0-63', '3,17,42'), got {s!r}")
    return [int(v) for v in out]


def latents(g: Generator, z: Latents) -> torch.Tensor:
    """(k, z_dim) latents of G's prior from seeds, a .npy path of latents or an array/tensor of them.

    >>> z = dcgan.latents(g, "0-7"); z.shape  # (8, g.cfg.z_dim): the z that seeds 0…7 sample
    """
    if isinstance(z, (str, os.PathLike)) and str(z).endswith(".npy"):
        return sampling.z_from_spec(g.cfg, str(z))
    if isinstance(z, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(z, dtype=torch.float32)
        t = t.reshape(1, -1) if t.ndim == 1 else t
        if t.ndim != 2 or t.shape[1] != g.cfg.z_dim:
            raise DcganError(
                f"latents of shape {tuple(t.shape)}; this generator's z has {g.cfg.z_dim} values"
            )
        return t
    return sampling.z_for_seeds(g.cfg, seeds(z))
