"""CPU bf16 training: weight gradients of small-output convolutions as one matrix product.

oneDNN's bf16 weight-gradient kernels are slow when the strided side of a convolution is tiny, which in a
DCGAN is always the case at the top of D (8² → 4²) and at the bottom of G (4² → 8²): measured on 2 AVX512-BF16
cores at batch 128, 2.0× slower than an im2col + GEMM for examples64's 256→512 4×4 layer and 3.4× for
paper64's 512→1024 5×5 one, while the GEMM loses from 8² upwards (docs/PERFORMANCE.md). So on CPU in bf16
every Conv2d/ConvTranspose2d of G and D computes its weight gradient as one GEMM when the smaller side's
feature map has at most `GEMM_MAX_PIXELS` pixels, and asks oneDNN for everything else — the forward pass and
the input gradients are oneDNN's as before. Parameters and state dicts are untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GEMM_MAX_PIXELS = 16  # the smaller side's H·W up to which the GEMM is faster (4×4)


def weight_grad(big: Tensor, small: Tensor, k: int, stride: int, pad: int) -> Tensor:
    """Σ over b, i, j of small[b, :, i, j] ⊗ big_padded[b, :, stride·i + kh, stride·j + kw] → (C_small, C_big, k, k).

    For a Conv2d, big is its input and small the output's gradient (→ the weight's (out, in, k, k) layout);
    for a ConvTranspose2d, big is the output's gradient and small its input (→ its (in, out, k, k) layout).
    """
    b, c, h, w = small.shape
    cols = F.pad(big, (pad, pad, pad, pad)).unfold(2, k, stride).unfold(3, k, stride)[:, :, :h, :w]
    cols = cols.permute(0, 2, 3, 4, 5, 1).reshape(b * h * w, -1)  # rows (b, i, j), columns (kh, kw, c_big)
    prod = small.permute(0, 2, 3, 1).reshape(b * h * w, c).t() @ cols
    return prod.view(c, k, k, -1).permute(0, 3, 1, 2)


class _Conv(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.bfloat16)
    def forward(
        ctx, x: Tensor, weight: Tensor, stride: int, pad: int, out_pad: int, transposed: bool
    ) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, pad, out_pad, transposed)
        if transposed:
            return F.conv_transpose2d(x, weight, None, stride, pad, out_pad)
        return F.conv2d(x, weight, None, stride, pad)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, pad, out_pad, transposed = ctx.conf
        need_x, need_w = ctx.needs_input_grad[:2]
        small = x if transposed else gy
        gemm = need_w and small.shape[2] * small.shape[3] <= GEMM_MAX_PIXELS
        gx, gw, _ = torch.ops.aten.convolution_backward(
            gy, x, weight, None, [stride] * 2, [pad] * 2, [1, 1], transposed, [out_pad] * 2, 1,
            [need_x, need_w and not gemm, False],
        )  # fmt: skip
        if gemm:
            gw = weight_grad(gy if transposed else x, small, weight.shape[-1], stride, pad)
        return gx, gw, None, None, None, None


class GemmGradConv2d(nn.Conv2d):
    def forward(self, x: Tensor) -> Tensor:
        return _Conv.apply(x, self.weight, self.stride[0], self.padding[0], 0, False)


class GemmGradConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is not None:  # an output padding chosen per call: oneDNN's path
            return super().forward(x, output_size)
        return _Conv.apply(x, self.weight, self.stride[0], self.padding[0], self.output_padding[0], True)


def _square(*pairs: tuple[int, ...]) -> bool:
    return all(len(set(p)) == 1 for p in pairs)


def install(net: nn.Module) -> int:
    """Switch the net's bias-free, ungrouped, square convolutions to the GEMM weight gradient; returns how many."""
    swaps = {nn.Conv2d: GemmGradConv2d, nn.ConvTranspose2d: GemmGradConvTranspose2d}
    n = 0
    for m in net.modules():
        new = swaps.get(type(m))
        if (
            new is not None
            and m.bias is None
            and m.groups == 1
            and m.padding_mode == "zeros"
            and isinstance(m.padding, tuple)
            and _square(m.kernel_size, m.stride, m.padding, m.dilation, m.output_padding)
            and m.dilation[0] == 1
        ):
            # same attributes and parameters, another forward (as nn.utils.parametrize swaps classes)
            m.__class__ = new
            n += 1
    return n
