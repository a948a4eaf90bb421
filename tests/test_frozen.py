"""G frozen for sampling: the same function as the eval-mode module (fp32 to float tolerance, bf16 as close
to fp32 as the module's own bf16), built only where it covers G, rebuilt when the weights change."""

import copy
import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dcgan.config import PRESETS, ModelConfig
from dcgan.frozen import frozen, subpixel_output
from dcgan.models import Generator, dropping, run_generator, z_for_seeds


def trained_looking(cfg: ModelConfig, seed: int = 0) -> Generator:
    """A G in eval mode whose BatchNorms are far from the identity, so that folding them is tested."""
    torch.manual_seed(seed)
    g = Generator(cfg)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.3, 3)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    return g.to(memory_format=torch.channels_last).eval()


SMALL = {
    "pyramid16": ModelConfig.pyramid(16, channels=3, width=8, z_dim=8),
    "grey32": ModelConfig.pyramid(32, channels=1, width=8, z_dim=8),
}


@pytest.mark.parametrize("name", [*PRESETS, *SMALL])
def test_frozen_fp32_is_the_module(name):
    cfg = PRESETS.get(name) or SMALL[name]
    g = trained_looking(cfg)
    z = z_for_seeds(cfg, range(3))
    with torch.no_grad():
        want = g(z)
    got = frozen(g, torch.float32)(z)
    assert got.shape == want.shape == (3, cfg.channels, cfg.image_size, cfg.image_size)
    assert (got - want).abs().max() < 2e-5, name  # the same function; only the order of float sums moved


@pytest.mark.parametrize("name", ["examples64", "fmnist32", "imagenet32"])
def test_frozen_bf16_is_as_close_to_fp32_as_the_modules_bf16(name):
    cfg = PRESETS[name]
    g = trained_looking(cfg, seed=1)
    z = z_for_seeds(cfg, range(16))
    with torch.no_grad():
        exact = g(z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            module = g(z).float()
    fast = frozen(g)(z).float()
    levels = lambda x: ((x - exact).abs() * 127.5).max().item()  # noqa: E731 — one level of 255
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)  # bf16 did run
    assert levels(fast) < max(2.0, 1.5 * levels(module)), (levels(fast), levels(module))


def test_run_generator_in_bf16_runs_the_frozen_form_and_keeps_each_seeds_image():
    cfg = SMALL["pyramid16"]
    g = trained_looking(cfg)
    g.precision = "bf16"
    z = z_for_seeds(cfg, range(9))
    out = run_generator(g, z, batch=4)
    assert torch.equal(out, frozen(g)(z).float())
    assert torch.equal(out[5:6], run_generator(g, z[5:6], batch=1))  # image k of seed s at any batch size
    # fp32 runs the module as it is, and no call records an autograd graph
    g.precision = "fp32"
    exact = run_generator(g, z)
    assert not exact.requires_grad and not out.requires_grad
    with torch.no_grad():
        assert torch.equal(exact, g(z))


def test_not_frozen_where_the_form_does_not_cover_g():
    cfg = SMALL["pyramid16"]
    g = trained_looking(cfg)
    assert frozen(g) is not None
    with dropping(g, 1, [0, 1]):  # a hook changes the forward pass: the module must run it
        assert frozen(g) is None
        g.precision = "bf16"
        z = z_for_seeds(cfg, range(4))
        dropped = run_generator(g, z)
    assert not torch.equal(dropped, run_generator(g, z))
    g.train()
    assert frozen(g) is None
    g.eval()
    g.main[1].train()  # one BN in training mode is enough
    assert frozen(g) is None
    g.eval()
    g.main.append(nn.Identity().eval())  # a layer order the form does not know
    assert frozen(g) is None
    # a G whose layers changed after its form was built: never the old form (no weights changed here)
    g = trained_looking(cfg)
    assert frozen(g, torch.float32) is not None
    g.main[-1] = nn.Sigmoid().eval()
    assert frozen(g, torch.float32) is None
    g.main[-1] = nn.Tanh().eval()
    assert frozen(g, torch.float32) is not None  # the same order again: built anew


def test_under_inference_mode():
    """The explorer runs G under inference_mode: the form is built and used there; a G whose weights were
    themselves made there (no version counter to watch) runs as the module."""
    cfg = SMALL["pyramid16"]
    g = trained_looking(cfg)
    z = z_for_seeds(cfg, range(3))
    with torch.inference_mode():
        assert (frozen(g, torch.float32)(z) - g(z)).abs().max() < 2e-5
        made_there = trained_looking(cfg).to(torch.float64).float()  # new parameter tensors
        assert frozen(made_there) is None
        made_there.precision = "bf16"
        assert run_generator(made_there, z).shape == (3, 3, 16, 16)


@pytest.mark.parametrize("variant", ["no affine", "no running stats"])
def test_batchnorm_variants_fold_or_run_the_module(variant):
    cfg = SMALL["pyramid16"]
    g = trained_looking(cfg)
    i = next(i for i, m in enumerate(g.main) if isinstance(m, nn.BatchNorm2d))
    old = g.main[i]
    if variant == "no affine":
        new = nn.BatchNorm2d(old.num_features, affine=False)
        new.running_mean.copy_(old.running_mean)
        new.running_var.copy_(old.running_var)
    else:  # eval mode then normalizes with the batch's own statistics: no fixed map to fold
        new = nn.BatchNorm2d(old.num_features, track_running_stats=False)
    g.main[i] = new.eval()
    z = z_for_seeds(cfg, range(3))
    form = frozen(g, torch.float32)
    if variant == "no running stats":
        assert form is None
        return
    with torch.no_grad():
        assert (form(z) - g(z)).abs().max() < 2e-5


def test_a_subclass_with_its_own_forward_runs_as_it_is():
    class Brighter(Generator):
        def forward(self, z):
            return super().forward(z) * 0.5

    cfg = SMALL["pyramid16"]
    g = Brighter(cfg).eval()
    g.precision = "bf16"
    z = z_for_seeds(cfg, range(3))
    assert run_generator(g, z).abs().max() <= 0.5


def test_rebuilt_when_the_weights_change():
    cfg = SMALL["pyramid16"]
    g = trained_looking(cfg)
    z = z_for_seeds(cfg, range(4))
    first = frozen(g, torch.float32)
    assert frozen(g, torch.float32) is first  # built once per state of the weights
    before = first(z)
    opt = torch.optim.Adam(g.parameters(), lr=0.1)
    g(z).sum().backward()
    opt.step()
    after = frozen(g, torch.float32)
    assert after is not first
    with torch.no_grad():
        assert (after(z) - g(z)).abs().max() < 2e-5
    assert not torch.allclose(before, after(z))
    with torch.no_grad():
        g.main[1].running_var.mul_(4)  # a buffer changed in place
    assert frozen(g, torch.float32) is not after
    # the form lives beside G: G still pickles, and a copy builds its own
    buffer = io.BytesIO()
    torch.save(g, buffer)
    twin = copy.deepcopy(g)
    assert frozen(twin, torch.float32) is not frozen(g, torch.float32)


@settings(max_examples=60, deadline=None)
@given(
    kernel=st.integers(1, 6),
    stride=st.integers(1, 3),
    data=st.data(),
    side=st.integers(1, 6),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
)
def test_subpixel_form_is_the_transposed_convolution_for_any_geometry(
    kernel, stride, data, side, c_in, c_out
):
    pad = data.draw(st.integers(0, kernel - 1))
    out_pad = data.draw(st.integers(0, stride - 1))
    out = (side - 1) * stride - 2 * pad + kernel + out_pad
    if out < 1:
        return
    torch.manual_seed(kernel * 100 + side)
    layer = nn.ConvTranspose2d(c_in, c_out, kernel, stride, pad, out_pad, bias=False).double()
    x = torch.randn(2, c_in, side, side, dtype=torch.float64)
    with torch.no_grad():
        want = torch.tanh(layer(x))
        got = subpixel_output(layer, torch.float64)(x)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-10)
