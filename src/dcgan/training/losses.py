"""The paper's objectives, on D's logits (BCE with logits is safe under autocast; Sigmoid + BCELoss is not).

softplus(-l) = -log σ(l) and softplus(l) = -log(1 - σ(l)), so these are binary cross-entropy exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """D maximizes log D(x) + log(1 - D(G(z))): BCE with real → 1 and fake → 0, summed as pytorch/examples."""
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """G maximizes log D(G(z)) — the non-saturating loss: BCE of the fakes against the 'real' label."""
    return F.softplus(-logits_fake).mean()
