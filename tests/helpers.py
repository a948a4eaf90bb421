"""Helpers the tests share: small real files in every format the readers take, the `dcgan` command in a
subprocess, pytorch/examples' networks written out, labelled toy datasets. Fixtures live in conftest.py."""

from __future__ import annotations

import gzip
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn


def rng_images(n: int, h: int, w: int, c: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n, h, w) if c is None else (n, h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    """An unsigned-byte IDX file as MNIST ships them."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + np.ascontiguousarray(arr, np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_cifar10(root: Path, n_per_batch: int = 4) -> Path:
    """A CIFAR-10 python folder: data_batch_1..5, test_batch, batches.meta (protocol-2 pickles, bytes keys)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"labels": [int(x) for x in rng.integers(0, 10, n_per_batch)],
        }
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {
        b"label_names": [
            n.encode()
            for n in [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ]
        ]
    }
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `dcgan` entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "dcgan.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=240
    )


# pytorch/examples dcgan/main.py, written out here so their state dicts are built under their key names.
class ExamplesG(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class ExamplesD(nn.Module):
    def __init__(self, ndf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def randomize(net: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial running stats, so eval mode is checked too
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return net.eval()


COLOURS = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220], [220, 220, 30]])


def coloured(n: int, seed: int, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """n noisy images whose class (0…3) is their dominant colour: linearly separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    noise = rng.normal(0, 40, (n, size, size, 3))
    return np.clip(COLOURS[y][:, None, None, :] + noise, 0, 255).astype(np.uint8), y


def prepare_coloured(root, name: str, n: int, seed: int) -> None:
    """root/name: a prepared labelled dataset of `coloured` images, made through the CLI."""
    x, y = coloured(n, seed)
    np.savez(root / f"{name}.npz", images=x, labels=y)
    assert run_cli("prepare", str(root / f"{name}.npz"), str(root / name), "--size", "16").returncode == 0
