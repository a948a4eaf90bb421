"""The FID InceptionV3: architecture and parameter names of the standard weights, the sha256 gate, and
`dcgan evaluate --extractor inception`, all with random weights (the real file cannot be downloaded here)."""

import hashlib

import numpy as np
import pytest
import torch

from dcgan.errors import DcganError
from dcgan.metrics.extractors import load_extractor
from dcgan.metrics.inception import BasicConv2d, FIDInceptionV3, _avg_pool, load_inception

from helpers import rng_images, run_cli


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random FIDInceptionV3 state dict saved as a .pth, and its sha256."""
    torch.manual_seed(0)
    net = FIDInceptionV3()
    path = tmp_path_factory.mktemp("inception") / "random.pth"
    torch.save(net.state_dict(), path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), net


def test_the_network_has_the_fid_layout_and_names(weights):
    _, _, net = weights
    assert sum(isinstance(m, BasicConv2d) for m in net.modules()) == 94
    state = net.state_dict()
    for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch_pool.conv.weight", "Mixed_6e.branch7x7dbl_5.bn.running_var",
                "Mixed_7c.branch3x3dbl_3b.conv.weight"):  # fmt: skip
        assert key in state
    assert state["fc.weight"].shape == (1008, 2048) and state["Mixed_5b.branch_pool.conv.weight"].shape == (
        32,
        192,
        1,
        1,
    )
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    f, logits = net.eval()(torch.zeros(2, 3, 32, 32))
    assert f.shape == (2, 2048) and logits.shape == (2, 1008)


def test_pools_exclude_padding_like_the_tf_graph():
    out = _avg_pool(torch.ones(1, 1, 5, 5))
    assert torch.allclose(out, torch.ones_like(out))  # with the padding counted the corners would be 4/9


def test_weights_are_checked_by_sha256_and_features_come_out(weights, tmp_path):
    path, digest, net = weights
    with pytest.raises(DcganError, match="not the FID Inception weights"):
        load_inception(path)
    with pytest.raises(DcganError, match="does not exist"):
        load_inception(tmp_path / "missing.pth")
    ex = load_extractor("inception", inception_weights=path, inception_sha256=digest)
    assert ex.name == f"inception-{digest[:4]}"
    grey, rgb = rng_images(3, 16, 16, 1), rng_images(3, 16, 16, 3)
    assert ex.features(grey).shape == (3, 2048)
    f, logits = ex.outputs(rgb, batch=2)
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        assert np.allclose(f, net.eval()(x)[0].double().numpy(), atol=1e-4) and logits.shape == (3, 1008)
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "other.pth")
    other = hashlib.sha256((tmp_path / "other.pth").read_bytes()).hexdigest()
    with pytest.raises(DcganError, match="does not hold InceptionV3 FID weights"):
        load_inception(tmp_path / "other.pth", sha256=other)
    with pytest.raises(DcganError, match="needs --inception-weights"):
        load_extractor("inception")


def test_evaluate_with_inception(tiny_run, weights, tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    path, digest, _ = weights
    args = ["evaluate", str(tiny_run), "--dataset", str(tiny_run.parent / "ds"), "--num", "12", "--metrics", "fid,kid",
            "--extractor", "inception", "--inception-weights", str(path)]  # fmt: skip
    r = run_cli(*args)
    assert r.returncode == 2 and "not the FID Inception weights" in r.stderr
    r = run_cli(*args, "--inception-sha256", digest)
    assert r.returncode == 0, r.stderr
    assert f"fid[inception-{digest[:4]}]" in r.stdout
