"""Guided backprop on D (src/dcgan/probes/saliency.py): the rule against captum on a ReLU copy of the net,
streaming top-k against brute force, the energy numbers on known maps, and `dcgan saliency` end to end."""

import json

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop
from PIL import Image
from torch import nn

from dcgan.config import ModelConfig
from dcgan.models import build
from dcgan.probes import saliency as sal

from helpers import run_cli

CFG = ModelConfig.pyramid(32, channels=3, width=8, z_dim=8)


def _images(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), np.uint8)


def _d(seed: int = 0):
    _, d = build(CFG, seed=seed)
    sal.reestimate_bn(d, _images(64, 9))  # eval-mode BN with real statistics, as the probe runs it
    return d


def test_the_guided_rule_on_one_activation():
    x = torch.tensor([-1.0, 2.0, 3.0, -0.5], requires_grad=True)
    upstream = torch.tensor([1.0, 1.0, -1.0, -1.0])
    for leaky, want in ((False, [0.0, 1.0, 0.0, 0.0]), (True, [0.2, 1.0, 0.0, 0.0])):
        (g,) = torch.autograd.grad(sal._Guided.apply(x, 0.2, leaky), x, upstream)
        assert g.tolist() == pytest.approx(want)


@pytest.mark.filterwarnings("ignore:.*(required_grads|backward hooks).*:UserWarning")  # captum's own notes
def test_the_relu_rule_equals_captum_on_a_relu_copy_of_d():
    """captum's GuidedBackprop rewires nn.ReLU modules only: on a copy of D with ReLUs, our rule must give
    its maps exactly; on D's own LeakyReLUs captum would give the plain gradient, ours does not."""
    d = _d()
    relu_d = _d()
    relu_d.main = nn.Sequential(*[nn.ReLU() if isinstance(m, nn.LeakyReLU) else m for m in relu_d.main])
    layer = sal.conv_layers(d)
    x_np = _images(6, 1)
    with torch.no_grad():  # each image's unit: a different channel's strongest position (a live unit)
        (x,) = sal.unit_batches(x_np, 6)
        act = sal.layer_output(relu_d, x, layer)
    channels = np.arange(6) % act.shape[1]
    pos = act[torch.arange(6), torch.as_tensor(channels)].flatten(1).argmax(1).numpy()
    rows, cols = pos // act.shape[3], pos % act.shape[3]
    ours = sal.guided_maps(relu_d, x_np, layer, channels, rows, cols, rule="relu")

    end = [i for i, m in enumerate(relu_d.main) if isinstance(m, nn.ReLU)][layer - 1]
    body = relu_d.main[: end + 1]
    for j in range(len(x_np)):

        class Unit(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = body

            def forward(self, x, j=j):
                return self.body(x)[:, channels[j], rows[j], cols[j]]

        x = torch.from_numpy(x_np[j : j + 1]).permute(0, 3, 1, 2).float() / 127.5 - 1
        theirs = GuidedBackprop(Unit()).attribute(x).detach().numpy()
        np.testing.assert_allclose(ours[j : j + 1], theirs, rtol=1e-4, atol=1e-7)
        assert np.abs(theirs).sum() > 0

    # on the LeakyReLU D the guided maps differ from the plain gradient (captum's answer there)
    plain = d.main
    x = torch.from_numpy(x_np[:1]).permute(0, 3, 1, 2).float().div(127.5).sub(1).requires_grad_(True)
    out = x
    seen = 0
    for m in plain:
        out = m(out)
        seen += isinstance(m, nn.LeakyReLU)
        if seen == layer:
            break
    (grad,) = torch.autograd.grad(out[0, channels[0], rows[0], cols[0]], x)
    guided = sal.guided_maps(d, x_np[:1], layer, channels[:1], rows[:1], cols[:1], rule="relu")
    assert not np.allclose(guided, grad.numpy(), atol=1e-6)
    leaky = sal.guided_maps(d, x_np[:1], layer, channels[:1], rows[:1], cols[:1], rule="leaky")
    assert not np.allclose(guided, leaky)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_streamed_top_k_equals_brute_force(batch):
    d = _d()
    images = _images(50, 2)
    layer = sal.conv_layers(d) - 1
    top = sal.top_units(d, images, layer, 5, batch=batch)
    with torch.no_grad():
        (x,) = sal.unit_batches(images, 50)
        act = sal.layer_output(d, x, layer).float()
    best, pos = act.flatten(2).max(2)  # (N, C)
    for c in range(act.shape[1]):
        order = np.argsort(-best[:, c].numpy(), kind="stable")[:5]
        assert set(top.index[c]) == set(order) and (np.diff(top.value[c]) <= 0).all()  # strongest first
        assert np.allclose(top.value[c], best[top.index[c], c].numpy())
        w = act.shape[3]
        assert (top.row[c] * w + top.col[c] == pos[top.index[c], c].numpy()).all()


def test_energy_shares_and_purity_on_known_maps():
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[:, :4] = 1  # the top half is class 1
    maps = np.zeros((4, 3, 8, 8), np.float32)
    maps[:, :, :4] = 1.0  # all energy on class 1
    shares = sal.energy_by_class(maps, masks, 3)
    assert np.allclose(shares, [[0, 1, 0]] * 4)
    objects = np.array([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 1, 0]])
    top = sal.TopUnits(
        np.array([[0, 2], [1, 3]]), np.zeros((2, 2), int), np.zeros((2, 2), int), np.ones((2, 2))
    )
    got = sal.where_it_falls(top, maps, masks, objects, ["a", "b", "c"])
    assert got["energy_share"] == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.0})
    assert got["area_share"]["b"] == pytest.approx(0.5) and got["lift_median"] == pytest.approx(2.0)
    assert got["purity_classes"] == ["c"]
    assert got["per_channel"]["purity"] == [1.0, 0.0]  # channel 0's top images all have c, channel 1's none
    assert got["per_channel"]["energy_share"] == {"a": [0.0, 0.0], "b": [1.0, 1.0], "c": [0.0, 0.0]}
    assert got["per_channel"]["area_share"]["b"] == [0.5, 0.5]


def test_dcgan_saliency_draws_the_figure_and_says_where_saliency_falls(tiny_run, rooms16, tmp_path):
    out = tmp_path / "fig.png"
    r = run_cli(
        "saliency", str(tiny_run), "--dataset", str(rooms16), "--out", str(out), "--num", "96", "--top", "4",
        "--features", "3",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "trained D" in r.stdout and "window" in r.stdout
    fig = np.asarray(Image.open(out))
    assert fig.ndim == 3 and fig.shape[0] > 3 * 64 and fig.shape[1] > 2 * 5 * 64
    numbers = json.loads((tmp_path / "fig.json").read_text())
    assert numbers["layer"] == numbers["layers"] and len(numbers["shown_channels"]) == 3
    for which in ("trained", "random"):
        shares = numbers[which]["energy_share"]
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)
        assert 0 <= numbers[which]["purity_mean"] <= 1 and len(numbers[which]["per_channel"]["lift"]) > 0
    assert numbers["trained"] != numbers["random"]


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--layer", "9"], "--layer must be 1…"),
        (["--top", "500"], "--top must be 1…"),
        (["--num", "1"], "--num must be at least 2"),
    ],
)
def test_impossible_requests_are_one_line(tiny_run, rooms16, tmp_path, flags, says):
    r = run_cli(
        "saliency", str(tiny_run), "--dataset", str(rooms16), "--out", str(tmp_path / "f.png"), *flags
    )
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr


def test_the_figure_must_be_a_png_so_that_its_numbers_cannot_overwrite_it(tiny_run, rooms16, tmp_path):
    r = run_cli("saliency", str(tiny_run), "--dataset", str(rooms16), "--out", str(tmp_path / "fig.json"))
    assert r.returncode == 2 and "a .png" in r.stderr and not (tmp_path / "fig.json").exists()


def test_a_dataset_of_another_size_is_refused(tiny_run, tmp_path):
    np.save(tmp_path / "x.npy", _images(8, 0, 32))
    assert run_cli("prepare", str(tmp_path / "x.npy"), str(tmp_path / "ds"), "--size", "32").returncode == 0
    r = run_cli(
        "saliency", str(tiny_run), "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "f.png")
    )
    assert r.returncode == 2 and "16×16×3" in r.stderr and "32×32×3" in r.stderr
