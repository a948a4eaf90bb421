"""A regularized linear L2-SVM (PAPER.md §5): one-vs-rest, squared hinge, L2 penalty, unregularized bias.

For each class c, with y_ic = +1 for its examples and −1 for the rest, on standardized features x:

    minimize_{w_c, b_c}   ½‖w_c‖² + C · Σ_i max(0, 1 − y_ic (w_c·x_i + b_c))²

— scikit-learn's LinearSVC(loss="squared_hinge") objective, except that the bias is not penalized. All
classes are solved at once by full-batch L-BFGS in torch, on CPU or GPU, in memory that grows with the data
only (LinearSVC copies the data and needs ~20 bytes per feature entry: 60k × 28,672 does not fit in 24 GiB).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dcgan.errors import DcganError


@dataclass
class LinearSVM:
    """A fitted one-vs-rest linear SVM over standardized features."""

    weight: torch.Tensor  # (F, K)
    bias: torch.Tensor  # (K,)
    mean: torch.Tensor  # (F,) feature means of the training set
    std: torch.Tensor  # (F,) feature standard deviations (1 where a feature is constant)
    classes: torch.Tensor  # (K,) the label of each column
    objective: float  # the final value of the summed objective

    def decision(self, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """Scores (N, K) for raw (unstandardized) features x (N, F)."""
        w, b = self.weight, self.bias
        out = [((x[i : i + chunk].to(w) - self.mean) / self.std) @ w + b for i in range(0, len(x), chunk)]
        return torch.cat(out)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classes[self.decision(x).argmax(1).cpu()]


def standardization(x: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of x (N, F), accumulated in float64 chunk by chunk."""
    s = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    s2 = torch.zeros_like(s)
    for i in range(0, len(x), chunk):
        block = x[i : i + chunk].double()
        s += block.sum(0)
        s2 += block.pow(2).sum(0)
    mean = s / len(x)
    std = (s2 / len(x) - mean**2).clamp_min(0).sqrt()
    return mean.float(), torch.where(std > 1e-12, std, torch.ones_like(std)).float()


def objective(
    z: torch.Tensor, w: torch.Tensor, b: torch.Tensor, y_pm: torch.Tensor, C: float
) -> torch.Tensor:
    """½‖W‖² + C Σ max(0, 1 − y (zW + b))², summed over the K one-vs-rest problems; z is standardized."""
    margins = (1 - y_pm * (z @ w + b)).clamp_min(0)
    return 0.5 * w.pow(2).sum() + C * margins.pow(2).sum()


def fit_svm(
    x: torch.Tensor, y: torch.Tensor, C: float, max_iter: int = 1000, tol: float = 1e-6, fit_bias: bool = True
) -> LinearSVM:
    """Fit on features x (N, F) (float, any device) and integer labels y (N,). The data are standardized once
    into a copy on x's device. fit_bias=False drops the bias (to compare with LinearSVC(fit_intercept=False))."""
    if C <= 0:
        raise DcganError(f"C must be positive, got {C}")
    if x.ndim != 2 or len(x) != len(y):
        raise DcganError(f"expected features (N, F) and N labels, got {tuple(x.shape)} and {tuple(y.shape)}")
    classes = torch.unique(y.cpu())
    if len(classes) < 2:
        raise DcganError(f"an SVM needs at least 2 classes in its training labels, got {classes.tolist()}")
    mean, std = standardization(x)
    z = ((x.float() - mean) / std).contiguous()  # (N, F)
    y_pm = (y.to(x.device)[:, None] == classes.to(x.device)[None]).float() * 2 - 1  # (N, K) in ±1
    w = torch.zeros(x.shape[1], len(classes), device=x.device, requires_grad=True)
    b = torch.zeros(len(classes), device=x.device, requires_grad=fit_bias)
    # The objective is divided by N inside the solver (same minimizer): float32 then resolves its changes
    # until the gradient, not the rounding of a large sum, decides when to stop.
    opt = torch.optim.LBFGS(
        [w, b] if fit_bias else [w],
        lr=1,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=0.0,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective(z, w, b, y_pm, C) / len(z)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = objective(z, w, b, y_pm, C).item()
    return LinearSVM(w.detach(), b.detach(), mean, std, classes, final)
