"""D as a feature extractor (PAPER.md §5): the paper's vector lengths, batch independence, memmap output,
and BN statistics re-estimated on real images."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcgan.config import get_preset
from dcgan.models import build
from dcgan.probes.features import extract, feature_dim, reestimate_bn

from helpers import rng_images


@pytest.mark.parametrize(("preset", "dim"), [("imagenet32", 28_672), ("svhn32", 7_168)])
def test_feature_vectors_have_the_papers_length(preset, dim):
    _, d = build(get_preset(preset), seed=0)
    assert feature_dim(d) == dim
    feats = extract(d, rng_images(3, 32, 32, 3), batch=2)
    assert feats.shape == (3, dim) and feats.dtype == np.float32


def test_features_do_not_depend_on_the_batch_and_can_go_to_a_memmap(tmp_path):
    _, d = build(get_preset("svhn32"), seed=0)
    images = rng_images(5, 32, 32, 3)
    whole = extract(d, images, batch=5)
    mm = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=whole.shape)
    extract(d, images, batch=2, out=mm)
    assert np.allclose(whole, np.load(tmp_path / "f.npy"), atol=1e-5)
    # what is extracted: each of D's layers max-pooled to 4×4 and flattened, in eval mode, images apart
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    with torch.no_grad():
        direct = torch.cat([F.adaptive_max_pool2d(f, 4).flatten(1) for f in d.eval().features(x)], 1)
    assert np.allclose(whole, direct.numpy(), atol=1e-5)
    assert not np.allclose(whole[0], whole[1])


def test_bn_statistics_are_re_estimated_exactly_on_real_images():
    _, d = build(get_preset("svhn32"), seed=0)
    images = rng_images(40, 32, 32, 3)
    weights = {
        k: v.clone() for k, v in d.state_dict().items() if "running" not in k and "num_batches" not in k
    }
    reestimate_bn(d, images, batch=16)  # three batches, 16 + 16 + 8
    assert not d.training
    assert all(torch.equal(weights[k], v) for k, v in d.state_dict().items() if k in weights)
    # the first BN's running mean is the mean of its input over all 40 images
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    pre_bn = d.main[2](d.main[1](d.main[0](x)))  # conv → LeakyReLU → conv: what BN 1 normalizes
    assert torch.allclose(d.main[3].running_mean, pre_bn.mean((0, 2, 3)), atol=1e-5)
