"""The CPU bf16 weight-gradient GEMM: the same gradients as oneDNN's, for every layer shape the presets use."""

import copy

import pytest
import torch
import torch.nn.functional as F

from dcgan.config import PRESETS, ModelConfig, TrainConfig
from dcgan.device import Placement
from dcgan.models import build, sample_z
from dcgan.training import cpu_conv
from dcgan.training.trainer import Trainer


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize(
    "k,s,p,op,h",
    [(4, 2, 1, 0, 8), (5, 2, 2, 1, 8), (3, 2, 1, 1, 8), (3, 1, 1, 0, 4), (4, 1, 0, 0, 1), (5, 2, 2, 0, 7)],
)
@pytest.mark.parametrize("transposed", [False, True])
def test_weight_grad_equals_onednn(k, s, p, op, h, transposed):
    torch.manual_seed(0)
    cin, cout = 6, 5
    if not transposed:
        h = max(h, k)  # (4, 1, 0) is D's last layer, 4² → 1², and G's first one transposed, 1² → 4²
    x = torch.randn(3, cin, h, h)
    if transposed:
        w = torch.randn(cin, cout, k, k)
        y = F.conv_transpose2d(x, w, None, s, p, op)
    else:
        op = 0
        w = torch.randn(cout, cin, k, k)
        y = F.conv2d(x, w, None, s, p)
    gy = torch.randn_like(y)
    want = torch.ops.aten.convolution_backward(
        gy, x, w, None, [s, s], [p, p], [1, 1], transposed, [op, op], 1, [False, True, False]
    )[1]
    got = cpu_conv.weight_grad(gy if transposed else x, x if transposed else gy, k, s, p)
    assert got.shape == w.shape
    assert rel(got, want) < 1e-6


def grads(g, d, z, bf16: bool) -> list[torch.Tensor]:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = d(g(z))
    out.float().square().mean().backward()  # a loss whose gradient varies per sample
    return [p.grad for p in [*g.parameters(), *d.parameters()]]


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("bf16", [False, True])
def test_installed_nets_give_the_same_gradients(name, bf16, monkeypatch):
    cfg = PRESETS[name]
    g, d = build(cfg, seed=0)
    g2, d2 = copy.deepcopy(g), copy.deepcopy(d)
    assert cpu_conv.install(g2) > 0 and cpu_conv.install(d2) > 0
    assert g2.state_dict().keys() == g.state_dict().keys()
    calls = []
    real = cpu_conv.weight_grad
    monkeypatch.setattr(cpu_conv, "weight_grad", lambda *a: calls.append(a[1].shape) or real(*a))
    z = sample_z(cfg, 8, torch.Generator().manual_seed(0), torch.device("cpu"))
    want, got = grads(g, d, z, bf16), grads(g2, d2, z, bf16)
    # D's top (→ 4²) and G's first upsampling (4² →) layers go through the GEMM, the wider ones do not
    assert calls and all(s[2] * s[3] <= cpu_conv.GEMM_MAX_PIXELS for s in calls)
    assert max(rel(a, b) for a, b in zip(got, want, strict=True)) < (1e-3 if bf16 else 1e-5)


def test_trainer_installs_it_for_cpu_bf16_only():
    cfg = TrainConfig(model=ModelConfig.pyramid(16, channels=1, width=8, z_dim=8), batch=4)
    kinds = {
        prec: {type(m) for m in Trainer(cfg, Placement(torch.device("cpu"), prec)).d.modules()}
        for prec in ("fp32", "bf16")
    }
    assert cpu_conv.GemmGradConv2d in kinds["bf16"]
    # fp32 keeps oneDNN's gradients (and the golden curve)
    assert cpu_conv.GemmGradConv2d not in kinds["fp32"]
