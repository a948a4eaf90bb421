"""The networks: shapes, where BN goes, init, parameter counts by hand; the z prior and G run on it."""

import pytest
import torch
from torch import nn

from dcgan.artifacts import load_generator
from dcgan.config import PRESETS, ModelConfig, get_preset
from dcgan.errors import DcganError
from dcgan.models import Discriminator, Generator, build, run_generator, sample_z, z_for_seeds

TINY = ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)  # what the `tiny_run` fixture trains


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# Parameter counts written out layer by layer from PAPER.md (weights k·k·in·out, BN 2·channels, no biases).
HAND_COUNTS = {
    "paper64": (
        100 * 1024 * 16
        + 2 * 1024 * 16  # z → 1024·4·4, BN over the 16,384 units
        + 25 * (1024 * 512 + 512 * 256 + 256 * 128 + 128 * 3)
        + 2 * (512 + 256 + 128),
        25 * (3 * 128 + 128 * 256 + 256 * 512 + 512 * 1024) + 2 * (256 + 512 + 1024) + 1024 * 16,
    ),
    "imagenet32": (
        256 * 512 * 16
        + 2 * 512 * 16
        + 9 * (512 * 512 + 512 * 256 + 256 * 256 + 256 * 128 + 128 * 128 + 128 * 3)
        + 2 * (512 + 256 + 256 + 128 + 128),
        9 * (3 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 512 * 512)
        + 2 * (128 + 256 + 256 + 512 + 512)
        + 512 * 16,
    ),
    "svhn32": (
        100 * 256 * 16 + 2 * 256 * 16 + 25 * (256 * 128 + 128 * 64 + 64 * 3) + 2 * (128 + 64),
        25 * (3 * 64 + 64 * 128 + 128 * 256) + 2 * (128 + 256) + 4096,
    ),
    # The numbers pytorch/examples' netG / netD print for ngf = ndf = 64, nz = 100, nc = 3.
    "examples64": (3_576_704, 2_765_568),
}


@pytest.mark.parametrize("name", list(HAND_COUNTS))
def test_parameter_counts_match_the_paper(name):
    g, d = build(get_preset(name))
    assert (n_params(g), n_params(d)) == HAND_COUNTS[name]


@pytest.mark.parametrize("name", list(PRESETS))
def test_shapes_range_and_features(name):
    cfg = PRESETS[name]
    g, d = build(cfg, seed=0)
    x = g(torch.randn(3, cfg.z_dim))
    assert x.shape == (3, cfg.channels, cfg.image_size, cfg.image_size)
    assert x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (3,)
    feats = d.features(x)
    assert [f.shape[1] for f in feats] == [c for _, c in cfg.d_layers]
    assert feats[-1].shape[-2:] == (4, 4)
    # the last feature map is exactly what D's output unit sees
    assert torch.allclose(d.main[d.n_body :](feats[-1]).flatten(), d(x))


@pytest.mark.parametrize("name", list(PRESETS))
def test_batchnorm_everywhere_except_g_output_and_d_input(name):
    cfg = PRESETS[name]
    g, d = Generator(cfg), Discriminator(cfg)
    g_mods, d_mods = list(g.main), list(d.main)
    g_convs = [i for i, m in enumerate(g_mods) if isinstance(m, (nn.ConvTranspose2d, nn.Linear))]
    for i in g_convs[:-1]:
        assert isinstance(g_mods[i + 1], (nn.BatchNorm1d, nn.BatchNorm2d)) and isinstance(
            g_mods[i + 2], nn.ReLU
        )
    assert isinstance(g_mods[g_convs[-1] + 1], nn.Tanh)  # G's output: no BN, Tanh
    d_convs = [i for i, m in enumerate(d_mods[: d.n_body]) if isinstance(m, nn.Conv2d)]
    assert isinstance(d_mods[d_convs[0] + 1], nn.LeakyReLU)  # D's input: no BN
    for i in d_convs[1:]:
        assert isinstance(d_mods[i + 1], nn.BatchNorm2d) and isinstance(d_mods[i + 2], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in d_mods if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, (nn.LeakyReLU, nn.Sigmoid)) for m in g_mods)
    assert not any(isinstance(m, (nn.ReLU, nn.Sigmoid, nn.MaxPool2d)) for m in d_mods)
    for net in (g, d):  # as the original code: no conv or linear layer has a bias, BN's shift does that job
        modules = dict(net.named_modules())
        for n, _ in net.named_parameters():
            if n.endswith("bias"):
                assert isinstance(modules[n.rsplit(".", 1)[0]], (nn.BatchNorm1d, nn.BatchNorm2d)), n


def test_init_is_normal_0_02_and_bn_gain_normal_1_0_02():
    g, _ = build(get_preset("paper64"), seed=0)
    w = g.main[4].weight  # 1024 → 512 transposed conv, 13M weights
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = g.main[1]
    assert abs(bn.weight.mean().item() - 1) < 2e-3 and abs(bn.weight.std().item() - 0.02) < 2e-3
    assert torch.count_nonzero(bn.bias) == 0


def test_build_with_a_seed_is_reproducible():
    cfg = get_preset("fmnist32")
    g1, d1 = build(cfg, seed=7)
    g2, d2 = build(cfg, seed=7)
    g3, d3 = build(cfg, seed=8)
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(d1.state_dict().values(), d2.state_dict().values()))
    assert not torch.equal(g1.main[0].weight, g3.main[0].weight)
    assert not torch.equal(d1.main[0].weight, d3.main[0].weight)


def test_grey_config_builds():
    cfg = ModelConfig.pyramid(16, channels=1, width=8, z_dim=8)
    g, d = build(cfg)
    assert d(g(torch.randn(2, 8))).shape == (2,)


def test_z_follows_the_configs_prior_and_each_seed_has_its_own():
    uniform, normal = ModelConfig.pyramid(16, z_dim=8), ModelConfig.pyramid(16, z_dim=8, z_dist="normal")
    u = sample_z(uniform, 4000, torch.Generator().manual_seed(0))
    n = sample_z(normal, 4000, torch.Generator().manual_seed(0))
    assert u.shape == n.shape == (4000, 8)
    assert u.min() >= -1 and u.max() <= 1 and abs(u.var().item() - 1 / 3) < 0.01  # U(-1, 1)
    assert n.abs().max() > 1 and abs(n.var().item() - 1) < 0.05  # N(0, 1)
    z = z_for_seeds(normal, [5, 6, 5])
    assert torch.equal(z[0], z[2]) and not torch.equal(z[0], z[1])
    assert torch.equal(z[1], z_for_seeds(normal, [6])[0])
    with pytest.raises(DcganError, match="--bn must be one of"):
        run_generator(Generator(TINY), z_for_seeds(TINY, [0]), bn="mixed")


def test_batch_statistics_differ_and_leave_running_stats_alone(tiny_run):
    g = load_generator(tiny_run)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    z = z_for_seeds(TINY, range(8))
    assert not torch.allclose(run_generator(g, z, bn="batch"), run_generator(g, z, bn="running"))
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
