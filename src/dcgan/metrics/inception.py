"""InceptionV3 in the variant FID is defined with (Heusel et al.'s TensorFlow graph, as pytorch-fid ports it),
in plain PyTorch, loading the standard FID weights from a local file — nothing is downloaded.

The FID variant differs from torchvision's InceptionV3 in three places: the average pools inside the
A, C and first E blocks exclude padding from their means, the second E block max-pools its pool branch, and
the classifier has 1,008 outputs. Images are resized to 299² bilinearly (align_corners=False, as pytorch-fid)
and scaled to [−1, 1]; grey images are repeated to RGB. Features are the 2,048-d global average pool.

The weights are pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (its parameter names are torchvision's,
which this module reuses): the file's sha256 must start with 6726825d, or match `sha256` when given.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcgan.errors import DcganError, one_line
from dcgan.fileio import read_torch, sha256_file
from dcgan.metrics.interface import Images, net_outputs

FID_WEIGHTS_SHA256_PREFIX = "6726825d"


class BasicConv2d(nn.Module):
    """conv (no bias) → BN (eps 0.001) → ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3×3 stride-1 average that does not count the zero padding (the TF graph's behaviour)."""
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionB(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, 2),
            ],
            1,
        )


class InceptionC(nn.Module):
    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{i}")(dbl)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                dbl,
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionD(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x
        for i in range(1, 5):
            b = getattr(self, f"branch7x7x3_{i}")(b)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    """max_pool=False: the first E block (padding-excluding average); True: the second (max pool)."""

    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(a),
                self.branch3x3_2b(a),
                self.branch3x3dbl_3a(d),
                self.branch3x3dbl_3b(d),
                self.branch_pool(pooled),
            ],
            1,
        )


class FIDInceptionV3(nn.Module):
    """images (B, 3 or 1, H, W) in [−1, 1] at any size → (2,048-d pool features, 1,008 logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)  # (B, 32, 149, 149)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)  # (B, 32, 147, 147)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)  # → max pool (B, 64, 73, 73)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)  # → max pool (B, 192, 35, 35)
        self.Mixed_5b = InceptionA(192, 32)  # (B, 256, 35, 35)
        self.Mixed_5c = InceptionA(256, 64)  # (B, 288, 35, 35)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)  # (B, 768, 17, 17)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)  # (B, 1280, 8, 8)
        self.Mixed_7b = InceptionE(1280, max_pool=False)  # (B, 2048, 8, 8)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        self.num_features = 2048

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.expand(-1, 3, -1, -1)  # grey → RGB
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        f = x.mean((2, 3))  # (B, 2048)
        return f, self.fc(f)


class InceptionExtractor:
    """FIDInceptionV3 as a FeatureExtractor (metrics/interface.py): any image size (resized to 299²)."""

    image_size = None
    num_features = 2048

    def __init__(self, net: FIDInceptionV3, sha256: str) -> None:
        self.net, self.sha256 = net.eval(), sha256
        self.trained_on = {"weights": "pytorch-fid pt_inception-2015-12-05", "sha256": sha256}

    @property
    def name(self) -> str:
        return f"inception-{self.sha256[:4]}"

    def check_images(self, size: int, channels: int, what: str) -> None:
        if channels not in (1, 3):
            raise DcganError(f"Inception takes grey or RGB images; {what} has {channels} channels")

    def features(self, images: Images, batch: int = 100) -> np.ndarray:
        """uint8 (N, H, W, C) arrays or (N, C, H, W) tensors → float64 (N, 2048)."""
        return net_outputs(self.net, images, batch)[0]

    def outputs(self, images: Images, batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, 2048) and the 1,008 logits, float64."""
        return net_outputs(self.net, images, batch)


def load_inception(
    path: str | os.PathLike, sha256: str | None = None, device: str | torch.device = "cpu"
) -> InceptionExtractor:
    """The FID Inception from a local weights file, refused unless its sha256 is the expected one."""
    p = Path(path)
    if not p.is_file():
        raise DcganError(
            f"--inception-weights {str(p)!r} does not exist; copy pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
            "to this machine and give its path (nothing is downloaded)"
        )
    digest = sha256_file(p)
    ok = digest == sha256.lower() if sha256 else digest.startswith(FID_WEIGHTS_SHA256_PREFIX)
    if not ok:
        want = sha256 or f"{FID_WEIGHTS_SHA256_PREFIX}…"
        raise DcganError(
            f"{str(p)!r} has sha256 {digest[:16]}…, expected {want}: not the FID Inception weights "
            "(pt_inception-2015-12-05-6726825d.pth); pass --inception-sha256 to accept another file on purpose"
        )
    state = read_torch(p)
    net = FIDInceptionV3()
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise DcganError(f"{str(p)!r} does not hold InceptionV3 FID weights ({one_line(e)})") from None
    return InceptionExtractor(net.to(device, memory_format=torch.channels_last), digest)
