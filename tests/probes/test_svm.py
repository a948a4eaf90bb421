"""The torch L2-SVM against scikit-learn's LinearSVC, its spectrum, warm starts and input errors."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.svm import LinearSVC

from dcgan.errors import DcganError
from dcgan.probes.svm import SVMProblem, fit_svm, objective, spectrum


def _data():
    x, y = make_classification(n_samples=600, n_features=40, n_informative=10, n_classes=4, random_state=0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


@pytest.mark.parametrize("C", [0.01, 0.1, 1.0])
def test_svm_reaches_liblinears_objective_and_predictions(C):
    x, y = _data()
    svm = fit_svm(x, y, C, tol=1e-7, fit_bias=False)
    z = ((x - svm.mean) / svm.std).numpy()
    ref = LinearSVC(C=C, loss="squared_hinge", fit_intercept=False, tol=1e-10, max_iter=200_000).fit(
        z, y.numpy()
    )
    y_pm = (y[:, None] == svm.classes[None]).float() * 2 - 1
    ref_obj = objective(
        torch.tensor(z), torch.tensor(ref.coef_.T, dtype=torch.float32), torch.zeros(4), y_pm, C
    )
    assert svm.objective == pytest.approx(ref_obj.item(), rel=1e-4)
    ours, theirs = svm.decision(x).numpy(), ref.decision_function(z)
    assert np.abs(ours - theirs).max() < 1e-3
    top2 = np.sort(theirs, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-3  # a near-tie may fall either way within float32
    assert clear.mean() > 0.99
    assert (svm.predict(x).numpy() == ref.predict(z))[clear].all()


@pytest.mark.parametrize(("n", "f", "exact_limit"), [(30, 50, 100), (50, 30, 100), (50, 30, 10)])
def test_spectrum_gives_orthonormal_directions_and_projections(n, f, exact_limit):
    z = torch.randn(n, f) @ torch.randn(f, f)  # correlated columns
    v, zv = spectrum(z, rank=8, exact_limit=exact_limit)
    r = v.shape[1]
    assert r == (8 if exact_limit < min(n, f) else min(n, f))
    assert torch.allclose(v.T @ v, torch.eye(r), atol=1e-3)
    assert torch.allclose(zv, z @ v, rtol=1e-3, atol=1e-2 * zv.abs().max().item())


def test_more_features_than_examples_and_warm_starts_reach_the_same_solution(tmp_path):
    x, y = make_classification(n_samples=80, n_features=300, n_informative=20, n_classes=3, random_state=1)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    problem = SVMProblem(np.load(tmp_path / "x.npy", mmap_mode="r"), y)  # read from a memmap
    cold = [problem.fit(C, tol=1e-8) for C in (0.001, 0.01, 0.1)]
    warm = problem.fit_path([0.1, 0.001, 0.01], tol=1e-8)
    assert [m.C for m in warm] == [0.1, 0.001, 0.01]
    for a, b in zip(cold, sorted(warm, key=lambda m: m.C)):
        assert a.objective == pytest.approx(b.objective, rel=1e-4)
    z = ((torch.tensor(x, dtype=torch.float32) - problem.mean) / problem.std).numpy()
    ref = LinearSVC(C=0.01, loss="squared_hinge", fit_intercept=False, tol=1e-10, max_iter=200_000).fit(z, y)
    ours = problem.fit(0.01, tol=1e-8, fit_bias=False)
    assert ours.objective == pytest.approx(
        objective(
            torch.tensor(z),
            torch.tensor(ref.coef_.T, dtype=torch.float32),
            torch.zeros(3),
            problem.y_pm,
            0.01,
        ).item(),
        rel=1e-4,
    )
    assert ours.accuracy(x.astype(np.float32), y) == 1.0  # 80 points in 300 dimensions are separable


def test_an_unregularized_bias_fits_at_least_as_well_and_separable_data_is_separated():
    x, y = _data()
    assert fit_svm(x, y, 0.1).objective < fit_svm(x, y, 0.1, fit_bias=False).objective
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 20))
    labels = np.repeat(np.arange(3), 50)
    # offset: bias
    feats = torch.tensor(centres[labels] + rng.normal(0, 1, (150, 20)) + 100, dtype=torch.float32)
    svm = fit_svm(feats, torch.tensor(labels), 1.0)
    assert (svm.predict(feats).numpy() == labels).all()


def test_svm_input_errors():
    x, y = _data()
    with pytest.raises(DcganError, match="C must be positive"):
        fit_svm(x, y, 0)
    with pytest.raises(DcganError, match="at least 2 classes"):
        fit_svm(x, torch.zeros(len(x), dtype=torch.long), 1.0)
