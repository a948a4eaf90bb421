"""The metric formulas: FID and KID against torchmetrics, and every metric on cases with a known answer."""

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from dcgan.metrics import fid as M


class Passthrough(nn.Module):
    """torchmetrics' custom-extractor hook, fed features directly."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _gaussians(n=600, d=16, shift=0.5, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) @ np.diag(rng.uniform(0.5, 1.5, d)) + shift
    return a, b


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")  # it is the reference
def test_fid_and_kid_agree_with_torchmetrics():
    a, b = _gaussians()
    ref = FrechetInceptionDistance(feature=Passthrough(16), normalize=False).double()
    ref.update(torch.tensor(a), real=True)
    ref.update(torch.tensor(b), real=False)
    assert M.fid(a, b) == pytest.approx(ref.compute().item(), rel=1e-6)
    kid = KernelInceptionDistance(feature=Passthrough(16), subsets=1, subset_size=len(a))
    kid.update(torch.tensor(a, dtype=torch.float32), real=True)
    kid.update(torch.tensor(b, dtype=torch.float32), real=False)
    assert M.kid(a, b, subsets=1, subset_size=len(a))[0] == pytest.approx(kid.compute()[0].item(), rel=1e-4)


def _precision_recall_by_definition(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al.'s definition written out in float64: a sample is covered by the other set's
    manifold if it lies in some ball of radius (that point's k-th nearest neighbour in its own set)."""

    def radii(f: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(f[:, None] - f[None], axis=2)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    d = np.linalg.norm(fake[:, None] - real[None], axis=2)  # (fake, real)
    precision = (d <= radii(real)[None]).any(1).mean()
    recall = (d <= radii(fake)[:, None]).any(0).mean()
    return float(precision), float(recall)


@pytest.mark.parametrize(("n_real", "n_fake", "chunk"), [(300, 200, 4096), (200, 301, 64), (150, 150, 7)])
def test_precision_recall_is_the_definition(n_real, n_fake, chunk, monkeypatch):
    """Overlapping, differently spread sets (neither 0 nor 1), in chunks that do and do not divide the set."""
    rng = np.random.default_rng(n_real + n_fake)
    real = rng.normal(size=(n_real, 6))
    fake = rng.normal(size=(n_fake, 6)) * 0.7 + 0.5
    monkeypatch.setattr(M, "_coverage", functools.partial(M._coverage, chunk=chunk))
    p, r = M.precision_recall(real, fake)
    want = _precision_recall_by_definition(real, fake, 3)
    assert 0 < want[0] < 1 and 0 < want[1] < 1
    assert (p, r) == pytest.approx(want, abs=1.5 / min(n_real, n_fake))  # float32 may move one border point


def test_metric_formulas_on_known_cases():
    a, b = _gaussians()
    assert abs(M.fid(a, a)) < 1e-8
    twin, _ = _gaussians(seed=1)  # another sample of a's distribution
    assert abs(M.kid(a, twin)[0]) < 0.02 * M.kid(a, b)[0]  # unbiased: ≈ 0 for one distribution
    assert -0.05 * M.kid(a, b)[0] < M.kid(a, a)[0] <= 0  # the very same set: the diagonal pulls it just below
    p, r = M.precision_recall(a, a + 100)  # disjoint manifolds
    assert p == 0 and r == 0
    assert M.precision_recall(a, a[::-1]) == (1.0, 1.0)
    sure = np.eye(10)[np.arange(1000) % 10] * 50  # confident and balanced: the score is the class count
    assert M.classifier_score(sure)[0] == pytest.approx(10, rel=1e-3)
    assert M.classifier_score(np.zeros((1000, 10)))[0] == pytest.approx(1)  # no confidence: 1
    assert M.diversity(a) > 2 * M.diversity(a * 0.1)


def test_fid_of_a_shift_is_its_squared_length_and_fid_is_symmetric():
    a, b = _gaussians()
    shift = np.linspace(-1, 1, a.shape[1])
    assert M.fid(a, a + shift) == pytest.approx((shift**2).sum(), rel=1e-9)  # same Σ: only |Δμ|² is left
    assert M.fid(a, b) == pytest.approx(M.fid(b, a), rel=1e-9) and M.fid(a, b) > 1
    mu, cov = M.mean_cov(a)
    # Σ₂ = 4Σ₁: tr(Σ + 4Σ − 2·(Σ^½ 4Σ Σ^½)^½) = tr(Σ + 4Σ − 4Σ) = tr Σ
    assert M.fid_from_stats(mu, cov, mu, 4 * cov) == pytest.approx(np.trace(cov), rel=1e-6)
