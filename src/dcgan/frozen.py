"""G frozen for sampling on CPU in bf16: the same function as the module in eval mode, in fewer passes.

What `run_generator` runs when G samples in bf16 on a CPU with running BatchNorm statistics
(docs/PERFORMANCE.md, Sampling):
- every eval-mode BatchNorm is folded into the layer before it (weights scaled per output channel, BN's
  shift as a bias), so a hidden layer is one convolution and one in-place ReLU instead of three passes;
- the first layer (z → 4×4 maps, a matrix multiply or a 1×1 → 4×4 transposed convolution) is one `addmm`
  whose rows come out channels-last;
- the output layer, a transposed convolution with few output channels that oneDNN runs at ~60 GFLOP/s
  here, becomes its sub-pixel form: one stride-1 convolution with stride² × C output channels (one per
  output phase) over the zero-padded input, tanh, then `pixel_shuffle` and a crop — 2.5× faster at 64²
  (51 → 20 ms at batch 512).

The weights are cast to bf16 once (autocast casts them at every call). Results differ from the module's
bf16 autocast at bf16 rounding level: the folded weights round differently (tests/test_frozen.py bounds it
against fp32 as the module's own bf16 is bounded). Anything this form does not cover — a hook on any layer
(`dropping`'s), batch statistics, a BatchNorm without running statistics, a layer order other than the
presets', a subclass's own forward — runs the module instead.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_globals

Step = Callable[[torch.Tensor], torch.Tensor]

# G → (the state of its weights, its frozen form): beside the module, not in it, so G still pickles and copies
_cache: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, Step]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _foldable(bn: nn.Module, kind: type[nn.Module]) -> bool:
    """A BatchNorm of `kind` that eval mode turns into a fixed affine map (it keeps running statistics)."""
    return isinstance(bn, kind) and bn.track_running_stats and bn.running_var is not None


def _fold(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) per channel with bn(x) == x · scale + shift in eval mode."""
    scale = 1 / torch.sqrt(bn.running_var + bn.eps)
    if bn.affine:
        scale = bn.weight * scale
    shift = -bn.running_mean * scale
    return scale, shift + bn.bias if bn.affine else shift


def _first(layer: nn.Module, bn: nn.Module, dtype: torch.dtype) -> Step | None:
    """z (B, z_dim) → ReLU(BN(layer(z))) as (B, C, 4, 4) channels-last, one addmm."""
    if (
        isinstance(layer, nn.Linear)
        and _foldable(bn, nn.BatchNorm1d)
        and layer.bias is None
        and layer.out_features % 16 == 0
    ):
        scale, shift = _fold(bn)
        channels = bn.num_features // 16
        # rows in (c, y, x) order, as Unflatten reads them → (y, x, c): the product is then channels-last
        w = (layer.weight * scale[:, None]).view(channels, 4, 4, -1).permute(1, 2, 0, 3)
        w = w.reshape(16 * channels, -1)
        b = shift.view(channels, 4, 4).permute(1, 2, 0).reshape(-1)
    elif (
        isinstance(layer, nn.ConvTranspose2d)
        and _foldable(bn, nn.BatchNorm2d)
        and layer.bias is None
        and layer.kernel_size == (4, 4)
        and layer.stride == layer.dilation == (1, 1)
        and layer.padding == layer.output_padding == (0, 0)
        and layer.groups == 1
    ):
        # a 1×1 input: out[c, y, x] = Σ_k z_k · w[k, c, y, x]
        scale, shift = _fold(bn)
        channels = layer.out_channels
        w = (layer.weight * scale[None, :, None, None]).permute(2, 3, 1, 0).reshape(16 * channels, -1)
        b = shift.repeat(16)
    else:
        return None
    w, b = w.to(dtype).contiguous(), b.to(dtype)

    def first(z: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(b, z.flatten(1).to(dtype), w.t())
        return x.view(len(z), 4, 4, channels).permute(0, 3, 1, 2).relu_()

    return first


def _square(layer: nn.ConvTranspose2d) -> bool:
    sizes = (layer.kernel_size, layer.stride, layer.padding, layer.output_padding)
    return (
        all(len(set(size)) == 1 for size in sizes)
        and layer.dilation == (1, 1)
        and layer.groups == 1
        and layer.bias is None
    )


def _hidden(layer: nn.ConvTranspose2d, bn: nn.BatchNorm2d, dtype: torch.dtype) -> Step:
    """ReLU(BN(layer(x))) as one transposed convolution with the BN folded in."""
    scale, shift = _fold(bn)
    w = (layer.weight * scale[None, :, None, None]).to(dtype).contiguous(memory_format=torch.channels_last)
    b = shift.to(dtype)
    stride, pad, out_pad = layer.stride[0], layer.padding[0], layer.output_padding[0]

    def hidden(x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, w, b, stride, pad, out_pad).relu_()

    return hidden


def subpixel_weight(w: torch.Tensor, stride: int) -> torch.Tensor:
    """A transposed convolution's weight (C_in, C_out, K, K) at `stride` → the weight
    (stride² · C_out, C_in, T, T), T = ⌈K / stride⌉, of the stride-1 convolution whose output channel
    (c, r, s) is output phase (r, s) of channel c.

    The transposed convolution puts input pixel i at output o = stride · i − pad + k. With o + pad =
    stride · q + r, the taps reaching (q, r) are k = stride · m + r from input q − m, m = 0 … T − 1: a
    correlation over the window q − T + 1 … q with tap u = T − 1 − m; taps past K are zero."""
    c_in, c_out, k, _ = w.shape
    t = -(-k // stride)
    out = w.new_zeros(c_out, stride, stride, c_in, t, t)
    for r in range(stride):
        for u in range(t):
            ky = stride * (t - 1 - u) + r
            for s in range(stride):
                for v in range(t):
                    kx = stride * (t - 1 - v) + s
                    if ky < k and kx < k:
                        out[:, r, s, :, u, v] = w[:, :, ky, kx].t()
    return out.reshape(c_out * stride * stride, c_in, t, t)


def subpixel_output(layer: nn.ConvTranspose2d, dtype: torch.dtype) -> Step:
    """tanh(layer(x)) in its sub-pixel form: one convolution (padded on both sides by the larger of the two
    pads the form needs; the extra rows are cropped), tanh, pixel_shuffle, crop."""
    stride, pad, out_pad = layer.stride[0], layer.padding[0], layer.output_padding[0]
    k = layer.kernel_size[0]
    w = subpixel_weight(layer.weight, stride).to(dtype).contiguous(memory_format=torch.channels_last)
    t = w.shape[-1]

    def output(x: torch.Tensor) -> torch.Tensor:
        side = x.shape[-1]
        out = (side - 1) * stride - 2 * pad + k + out_pad
        q = -(-(out + pad) // stride)  # window positions q = 0 … q − 1 reach output rows up to out + pad
        both = max(t - 1, q - side)  # window q starts at input row q − t + 1; past the input is zero
        y = F.pixel_shuffle(F.conv2d(x, w, padding=both).tanh_(), stride)
        first = stride * (both - (t - 1)) + pad  # conv row j is window q = j − both + t − 1
        return y[:, :, first : first + out, first : first + out]

    return output


def _hooked(g: nn.Module) -> bool:
    """Whether anything (a layer's hook or a global one) watches or changes G's forward pass."""
    if module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in g.modules())


def _build(main: nn.Sequential, dtype: torch.dtype) -> list[Step] | None:
    layers = list(main)
    if len(layers) < 3 or not isinstance(layers[2], nn.ReLU):
        return None
    first = _first(layers[0], layers[1], dtype)
    if first is None:
        return None
    i = 3
    if isinstance(layers[0], nn.Linear):  # then an Unflatten to (C, 4, 4)
        reshape = layers[3] if len(layers) > 3 else None
        if not isinstance(reshape, nn.Unflatten) or tuple(reshape.unflattened_size) != (
            layers[0].out_features // 16,
            4,
            4,
        ):
            return None
        i = 4
    steps = [first]
    while i < len(layers):
        layer = layers[i]
        if not (isinstance(layer, nn.ConvTranspose2d) and _square(layer)):
            return None
        rest = layers[i + 1 : i + 3]
        if len(rest) == 2 and _foldable(rest[0], nn.BatchNorm2d) and isinstance(rest[1], nn.ReLU):
            steps.append(_hidden(layer, rest[0], dtype))
            i += 3
        elif len(rest) == 1 and isinstance(rest[0], nn.Tanh):
            steps.append(subpixel_output(layer, dtype))
            i += 2
        else:
            return None
    return steps


def frozen(g: nn.Module, dtype: torch.dtype = torch.bfloat16) -> Step | None:
    """G (its `main` Sequential) in eval mode as a function z (B, z_dim) → images (B, C, S, S) in `dtype`,
    or None where this form does not cover G as it stands (training mode, hooks, another layer order).
    Built once per state of G: a change to any layer, parameter or buffer (an optimizer step,
    load_state_dict, a replaced layer) rebuilds it. An in-place change through `.data`, which bypasses
    PyTorch's version counters, is not seen (nothing in dcgan makes one)."""
    main = getattr(g, "main", None)
    if not isinstance(main, nn.Sequential) or any(m.training for m in g.modules()) or _hooked(g):
        return None
    modules = tuple(g.modules())  # held by the cache entry, so no replaced layer's id can be reused
    tensors = [*g.parameters(), *g.buffers()]
    if any(t.is_inference() for t in tensors):  # made under inference_mode: no version counter to watch
        return None
    key = (dtype, modules, tuple((t.data_ptr(), t._version) for t in tensors))
    with _cache_lock:
        cached = _cache.get(g)
    if cached is not None and cached[0] == key:
        return cached[1]
    with torch.no_grad():
        steps = _build(main, dtype)
    if steps is None:
        return None

    @torch.no_grad()
    def run(z: torch.Tensor) -> torch.Tensor:
        x = z
        for step in steps:
            x = step(x)
        return x

    with _cache_lock:
        _cache[g] = (key, run)
    return run
