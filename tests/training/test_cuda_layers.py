"""cuda_layers computes the very function of the layers it replaces (checked on CPU, in float64)."""

import copy

import pytest
import torch
from torch import nn

from dcgan.config import PRESETS
from dcgan.models import build
from dcgan.training import cuda_layers

CL = torch.channels_last


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _same_function(plain: nn.Module, x: torch.Tensor) -> nn.Module:
    """Install on a copy of `plain`; assert equal outputs, input gradients and weight gradients."""
    plain.zero_grad(set_to_none=True)
    fast = cuda_layers.install(copy.deepcopy(plain))
    outs, grads = [], []
    for net in (plain, fast):
        xi = x.clone().requires_grad_(True)
        y = net(xi)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outs.append(y)
        grads.append([xi.grad, *(p.grad for p in net.parameters())])
    assert outs[0].shape == outs[1].shape
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    for a, b in zip(grads[0], grads[1]):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    return fast


@pytest.mark.parametrize(
    "c,k,p,size,cl",
    [
        (3, 4, 1, 64, True),
        (1, 4, 1, 32, False),
        (3, 5, 2, 64, True),
        (3, 5, 2, 32, False),
        (4, 3, 1, 33, True),
        (2, 4, 0, 31, False),
        (3, 4, 1, 7, True),
    ],
)
def test_space_to_depth_conv_is_the_stride_2_conv(c, k, p, size, cl):
    conv = nn.Conv2d(c, 8, k, 2, p, bias=c == 4)
    x = torch.randn(2, c, size, size)
    fast = _same_function(conv, x.contiguous(memory_format=CL) if cl else x)
    assert type(fast) is cuda_layers.SpaceToDepthConv2d


def test_wide_or_stride_1_convs_are_left_alone():
    assert type(cuda_layers.install(nn.Conv2d(8, 8, 4, 2, 1))) is nn.Conv2d  # many channels: cuDNN is fine
    assert type(cuda_layers.install(nn.Conv2d(3, 8, 3, 1, 1))) is nn.Conv2d


def test_dense_conv_transpose_is_the_1x1_transposed_conv_and_falls_back_on_a_spatial_z():
    convt = nn.ConvTranspose2d(10, 6, 4, 1, 0, bias=False).to(memory_format=CL)
    fast = _same_function(convt, torch.randn(3, 10, 1, 1))
    assert type(fast) is cuda_layers.DenseConvTranspose2d
    _same_function(nn.ConvTranspose2d(10, 6, 4, 1, 0, bias=True), torch.randn(3, 10, 1, 1))
    _same_function(convt, torch.randn(3, 10, 2, 2))  # spatial z: the real transposed convolution


def test_dense_conv_is_the_full_extent_conv_and_falls_back_on_larger_maps():
    conv = nn.Conv2d(12, 2, 4, 1, 0, bias=True).to(memory_format=CL)
    fast = _same_function(conv, torch.randn(3, 12, 4, 4).contiguous(memory_format=CL))
    assert type(fast) is cuda_layers.DenseConv2d
    _same_function(conv, torch.randn(3, 12, 6, 6))


def test_split_batchnorm_is_separate_calls_running_stats_included():
    bn = nn.BatchNorm2d(5)
    split = cuda_layers.install(copy.deepcopy(bn))
    a, b = torch.randn(4, 5, 3, 3) * 2 + 1, torch.randn(4, 5, 3, 3) - 1
    with cuda_layers.split_batchnorm(split, 2):
        both = split(torch.cat([a, b]))
    torch.testing.assert_close(both, torch.cat([bn(a), bn(b)]), rtol=1e-12, atol=1e-12)
    for name, t in bn.state_dict().items():  # real then fake: momentum applied twice, in that order
        assert torch.equal(split.state_dict()[name], t), name
    assert split.splits == 1 and torch.equal(split(a), bn(a))  # outside the block: one batch again


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_computes_the_same_with_the_fast_layers(preset):
    cfg = PRESETS[preset]
    g, d = build(cfg, seed=0)
    z = torch.randn(4, cfg.z_dim)
    x = torch.rand(4, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1
    g, d = g.to(memory_format=CL), d.to(memory_format=CL)
    _same_function(g, z)
    _same_function(d, x.contiguous(memory_format=CL))
    fast_d = cuda_layers.install(copy.deepcopy(d))
    with cuda_layers.split_batchnorm(fast_d, 2):  # D on real and fake at once = D on each
        fused = fast_d(torch.cat([x, -x]))
    torch.testing.assert_close(fused, torch.cat([d(x), d(-x)]), rtol=1e-10, atol=1e-10)
    kinds = {type(m).__name__ for m in fast_d.modules()}
    assert "SplitBatchNorm2d" in kinds and ("SpaceToDepthConv2d" in kinds) == (cfg.d_layers[0][0] == 2)
    assert g.state_dict().keys() == cuda_layers.install(copy.deepcopy(g)).state_dict().keys()
