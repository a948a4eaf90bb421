"""The same layers computed a faster way on CUDA: same parameters, same state dict, same function.

Profiling the 64² step on an H100 (bf16, channels_last, one CUDA graph) showed cuDNN at its worst on the
layers at DCGAN's two ends (docs/PERFORMANCE.md):

- D's input convolution has 3 (or 1) input channels: cuDNN pads them to 8 on every call and runs a slow
  kernel. `SpaceToDepthConv2d` computes the same stride-2 convolution as a stride-1 one over the
  space-to-depth input (each 2×2 block of pixels becomes 4·C channels, padded to a multiple of 8, the kernel
  rearranged to match): the convolution itself is 4× faster (~130 → 33 µs forward at batch 256), and the
  rearranging is a few small kernels that torch.compile fuses into the ones producing D's input.
- G's first layer on a 1×1 z and D's output convolution over its whole 4×4 map are matrix products, which
  cuDNN runs with layout transforms around them. `DenseConvTranspose2d` and `DenseConv2d` compute them with
  one matmul each (3–5× faster forward, no transforms).
- `SplitBatchNorm2d` normalizes each part of a concatenated batch with that part's own statistics, one part
  after another (so the running statistics move exactly as after separate calls). It lets the trainer send
  D's real and fake minibatches through D in one call of twice the batch — larger, faster convolutions —
  while keeping the paper's separate BN statistics for each (`--fuse-d` instead shares them).

`install(net)` switches a network's layers to these classes in place (as cpu_conv does on CPU). The trainer
installs them only for the CUDA-graph step: run eagerly, the extra small kernels cost more in launches than
they save. The CPU path keeps the plain layers: the golden loss curve is taken there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


class SpaceToDepthConv2d(nn.Conv2d):
    """A stride-2 convolution over few channels, as a stride-1 convolution over 2×2 pixel blocks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (ph, pw), (h, w) = self.kernel_size, self.padding, x.shape[-2:]
        oh, ow = (h + 2 * ph - kh) // 2 + 1, (w + 2 * pw - kw) // 2 + 1
        keh, kew = kh + kh % 2, kw + kw % 2  # an odd kernel gets a zero row/column to even size
        need_h, need_w = 2 * (oh - 1) + keh, 2 * (ow - 1) + kew  # input extent the output reads
        x = F.pixel_unshuffle(F.pad(x, (pw, need_w - w - pw, ph, need_h - h - ph)), 2)
        weight = F.pad(self.weight, (0, kew - kw, 0, keh - kh))
        o, c = weight.shape[:2]
        # w'[o, 4c + 2i + j, a, b] = w[o, c, 2a + i, 2b + j]: the order pixel_unshuffle gives the channels
        weight = (
            weight.view(o, c, keh // 2, 2, kew // 2, 2)
            .permute(0, 1, 3, 5, 2, 4)
            .reshape(o, 4 * c, keh // 2, kew // 2)
        )
        extra = -4 * c % 8  # tensor cores want a multiple of 8 channels; zeros add nothing
        x, weight = F.pad(x, (0, 0, 0, 0, 0, extra)), F.pad(weight, (0, 0, 0, 0, 0, extra))
        cl = torch.channels_last
        return F.conv2d(x.contiguous(memory_format=cl), weight.contiguous(memory_format=cl), self.bias)


class DenseConvTranspose2d(nn.ConvTranspose2d):
    """A stride-1, unpadded transposed convolution of a 1×1 map: z @ W, read out channels_last."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.shape[-2:] != (1, 1) or output_size is not None:
            return super().forward(x, output_size)  # a spatial z: the real transposed convolution
        c_in, c_out, kh, kw = self.weight.shape
        y = x.flatten(1) @ self.weight.permute(0, 2, 3, 1).reshape(c_in, kh * kw * c_out)
        y = y.view(len(x), kh, kw, c_out).permute(0, 3, 1, 2)  # (B, C_out, kh, kw), channels_last
        return y if self.bias is None else y + self.bias.to(y.dtype)[:, None, None]


class DenseConv2d(nn.Conv2d):
    """An unpadded convolution whose kernel covers its whole input: a matrix product to a 1×1 map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.kernel_size:
            return super().forward(x)
        c_out = self.weight.shape[0]
        y = x.permute(0, 2, 3, 1).reshape(len(x), -1) @ self.weight.permute(0, 2, 3, 1).reshape(c_out, -1).t()
        y = y if self.bias is None else y + self.bias.to(y.dtype)
        return y.view(len(x), c_out, 1, 1)


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, while `splits` > 1, normalizes each of that many equal parts on its own."""

    splits = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.splits == 1:
            return super().forward(x)
        return torch.cat([super(SplitBatchNorm2d, self).forward(part) for part in x.chunk(self.splits)])


@contextlib.contextmanager
def split_batchnorm(net: nn.Module, splits: int) -> Iterator[None]:
    """Within the block, `net`'s SplitBatchNorm2d layers normalize `splits` parts of the batch separately."""
    layers = [m for m in net.modules() if isinstance(m, SplitBatchNorm2d)]
    for m in layers:
        m.splits = splits
    try:
        yield
    finally:
        for m in layers:
            m.splits = 1


def _plain(m: nn.Module, cls: type) -> bool:
    return type(m) is cls and m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros"


def install(net: nn.Module) -> nn.Module:
    """Switch `net`'s layers, where the faster form applies, to the classes above (in place)."""
    for m in net.modules():
        if (
            _plain(m, nn.Conv2d)
            and m.stride == (2, 2)
            and m.in_channels <= 4
            and isinstance(m.padding, tuple)
        ):
            m.__class__ = SpaceToDepthConv2d
        elif _plain(m, nn.Conv2d) and m.padding == (0, 0):
            m.__class__ = DenseConv2d
        elif (
            _plain(m, nn.ConvTranspose2d)
            and m.stride == (1, 1)
            and m.padding == (0, 0)
            and m.output_padding == (0, 0)
        ):
            m.__class__ = DenseConvTranspose2d
        elif type(m) is nn.BatchNorm2d:
            m.__class__ = SplitBatchNorm2d
    return net
