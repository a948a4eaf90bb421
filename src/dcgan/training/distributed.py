"""The one module that talks to torch.distributed: the process group from torchrun's environment, rank and
world helpers, and BatchNorm whose statistics cover the whole global batch.

A plain `python -m dcgan train` is world size 1 and never initializes a process group; under torchrun
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT set) every rank joins one group, over NCCL on CUDA and gloo
on CPU.

Global BatchNorm (the paper's algorithm at any world size): each rank computes its minibatch's per-channel
count, mean and sum of squared deviations, the ranks exchange them (one all-gather) and combine them exactly
(Chan et al.'s pairwise formula, stable where a sum of squares is not), and every rank normalizes with the
global mean and variance. The backward pass all-reduces the two per-channel sums the input gradient needs
(Σ dy and Σ dy·(x − μ)), so the gradient is that of the global batch. `nn.SyncBatchNorm` does the same on
CUDA only; this works on gloo/CPU too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files."""
        return self.rank == 0


def from_environment(env: dict[str, str] | None = None) -> World:
    """The World torchrun describes in the environment (world size 1 without it)."""
    env = dict(os.environ) if env is None else env
    size = int(env.get("WORLD_SIZE", "1"))
    return World(int(env.get("RANK", "0")), size, int(env.get("LOCAL_RANK", "0")))


def init(device_type: str, world: World | None = None) -> World:
    """Join the process group of a multi-process run (NCCL on CUDA, gloo elsewhere); a no-op at size 1."""
    world = world or from_environment()
    if world.size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return world


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (every rank, at the end: a process that exits inside it aborts)."""
    if dist.is_initialized():
        barrier()
        dist.destroy_process_group()


def _gather(t: Tensor) -> Tensor:
    """(world, *t.shape): every rank's t."""
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.stack(parts)


class _GlobalBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        momentum: float,
        eps: float,
    ) -> Tensor:
        dims = [0, *range(2, x.dim())]  # all but the channel dimension
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        n = torch.tensor([x.numel() / x.shape[1]], dtype=xf.dtype, device=x.device)
        mean = xf.mean(dims)
        m2 = ((xf - mean.view(1, -1, *[1] * (x.dim() - 2))) ** 2).sum(dims)  # Σ (x − mean_local)²
        counts, means, m2s = _gather(n), _gather(mean), _gather(m2)  # (W, 1), (W, C), (W, C)
        total = counts.sum()
        g_mean = (counts * means).sum(0) / total
        g_var = (m2s.sum(0) + (counts * (means - g_mean) ** 2).sum(0)) / total  # biased, as BN normalizes
        invstd = torch.rsqrt(g_var + eps)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(g_mean.to(running_mean.dtype), alpha=momentum)
                unbiased = g_var * total / (total - 1).clamp_min(1)
                running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        shape = (1, -1, *[1] * (x.dim() - 2))
        xhat = (xf - g_mean.view(shape)) * invstd.view(shape)
        y = xhat
        if weight is not None:
            y = y * weight.view(shape)
        if bias is not None:
            y = y + bias.view(shape)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.total, ctx.has_bias = total, bias is not None
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
        xhat, invstd, weight = ctx.saved_tensors
        dims = [0, *range(2, xhat.dim())]
        shape = (1, -1, *[1] * (xhat.dim() - 2))
        dyf = dy.to(xhat.dtype)
        sum_dy = dyf.sum(dims)
        sum_dy_xhat = (dyf * xhat).sum(dims)
        d_weight = sum_dy_xhat if weight is not None and ctx.needs_input_grad[1] else None
        d_bias = sum_dy if ctx.has_bias and ctx.needs_input_grad[2] else None
        dx = None
        if ctx.needs_input_grad[0]:
            sums = torch.stack([sum_dy, sum_dy_xhat])
            dist.all_reduce(sums)  # the global batch's: every rank's loss depends on every rank's x
            g = invstd if weight is None else invstd * weight
            dx = dyf - (sums[0] / ctx.total).view(shape) - xhat * (sums[1] / ctx.total).view(shape)
            dx = (dx * g.view(shape)).to(dy.dtype)
        return dx, d_weight, d_bias, None, None, None, None


def global_batch_norm(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Training-mode batch norm of x (N, C, …) with statistics over every rank's x (see the module
    docstring); the running averages are updated with the global statistics. Needs a process group."""
    return _GlobalBatchNorm.apply(x, weight, bias, running_mean, running_var, momentum, eps)
