"""The supervised loop both the §5 control and the extractors train with: it learns, it is reproducible by
seed, it skips the minibatches BatchNorm cannot train on, and it refuses a recipe that cannot run."""

import pytest
import torch
from torch import nn

from dcgan.errors import DcganError
from dcgan.training.classifier import fit_classifier

from helpers import coloured


def small_net(seed: int = 0) -> nn.Module:
    """(B, 3, 16, 16) → (B, 4): one conv-BN-ReLU, a global average pool, a linear layer."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4),
    )  # fmt: skip


def fit(net: nn.Module, x, y, **kw) -> nn.Module:
    recipe = {"epochs": 5, "batch": 16, "seed": 0, **kw}
    fit_classifier(net, x, y, opt=torch.optim.Adam(net.parameters(), 1e-2), **recipe)
    return net


def logits_of(net: nn.Module, x) -> torch.Tensor:
    with torch.no_grad():
        return net.eval()(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1)


def test_it_learns_and_is_reproducible_by_seed():
    x, y = coloured(64, seed=0)
    xv, yv = coloured(40, seed=1)
    before = (logits_of(small_net(), xv).argmax(1).numpy() == yv).mean()
    net = fit(small_net(), x, y)
    after = (logits_of(net, xv).argmax(1).numpy() == yv).mean()
    assert after >= 0.9 and after > before
    again, other = fit(small_net(), x, y), fit(small_net(), x, y, seed=1)
    assert torch.equal(logits_of(net, xv), logits_of(again, xv))
    assert not torch.equal(logits_of(net, xv), logits_of(other, xv))  # the seed draws the row order


@pytest.mark.parametrize(
    ("n", "batch", "drop_last", "sizes"),
    [
        (10, 4, False, [4, 4, 2]),
        (9, 4, False, [4, 4]),  # a last minibatch of one image: BatchNorm cannot train on it
        (10, 4, True, [4, 4]),
        (8, 4, True, [4, 4]),
    ],
)
def test_minibatches_per_epoch(n, batch, drop_last, sizes):
    x, y = coloured(n, seed=0)
    net = small_net()
    seen = []

    def logits(t: torch.Tensor) -> torch.Tensor:
        seen.append(len(t))
        return net(t)

    epochs = []
    fit_classifier(
        net, x, y, epochs=2, batch=batch, opt=torch.optim.SGD(net.parameters(), 0.1), seed=0, logits=logits,
        drop_last=drop_last, on_epoch=lambda e, loss: epochs.append((e, len(seen))),
    )  # fmt: skip
    assert seen == sizes * 2
    assert epochs == [(0, len(sizes)), (1, 2 * len(sizes))]


def test_a_recipe_that_cannot_run_is_refused_before_any_step():
    x, y = coloured(10, seed=0)
    net = small_net()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    for kw, message in [
        ({"epochs": 0}, "--epochs must be at least 1, got 0"),
        ({"epochs": -3}, "--epochs must be at least 1, got -3"),
        ({"batch": 1}, "--batch must be at least 2"),
        ({"batch": 11, "drop_last": True}, "--batch must be between 2 and the training set's 10 images"),
    ]:
        with pytest.raises(DcganError, match=message):
            fit(net, x, y, **kw)
    with pytest.raises(DcganError, match="expected one label per image, got 10 images and 9 labels"):
        fit(net, x, y[:9])
    with pytest.raises(DcganError, match="at least 2 labelled images, got 1"):
        fit(net, x[:1], y[:1])
    assert all(torch.equal(start[k], v) for k, v in net.state_dict().items())
