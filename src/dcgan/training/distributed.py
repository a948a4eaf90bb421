"""The one module that talks to torch.distributed: the process group from torchrun's environment, rank and
world helpers, and BatchNorm whose statistics cover the whole global batch.

A plain `python -m dcgan train` is world size 1 and never initializes a process group; under torchrun
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT set) every rank joins one group, over NCCL on CUDA and gloo
on CPU, and a second, gloo, group carries the small CPU-side agreements (stop now? did anyone fail?), so they
never wait on the GPU's stream. Every collective gives up after DCGAN_DIST_TIMEOUT seconds (default 600,
enough for rank 0 to write a checkpoint and the report while the others wait): a process that dies closes
its sockets and the others fail at once; one that hangs stops the others within that bound.

A user's mistake (a wrong dataset, a run folder of another config) must end every process with the same one
line, never leave the others waiting in a collective for the one that stopped: `together` runs a check on
every rank (or on rank 0 alone when it writes), exchanges the outcomes, and raises the first failure's
message on all of them.

Global BatchNorm (the paper's algorithm at any world size): each rank computes its minibatch's per-channel
count, mean and sum of squared deviations, the ranks exchange them (one all-gather) and combine them exactly
(Chan et al.'s pairwise formula, stable where a sum of squares is not), and every rank normalizes with the
global mean and variance. The backward pass sums the two per-channel sums the input gradient needs (Σ dy
and Σ dy·x̂) over the ranks, so the gradient is that of the global batch. `nn.SyncBatchNorm` does the same on
CUDA only; this works on gloo/CPU too.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from dcgan.errors import DcganError, SharedError, one_line

T = TypeVar("T")
TIMEOUT_ENV = "DCGAN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
PR_SET_PDEATHSIG = 1  # prctl(2)
# set for torchrun's agent: restarted workers then meet in a fresh store (see init)
SHARED_STORE_ENV = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
LAUNCHED_ENV = "DCGAN_NPROC"  # set by `launch` for the processes it starts
_control: Any = None  # the gloo group of the CPU-side agreements (None: the default group is gloo already)


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
    values = {}
    for key, default in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")):
        text = env.get(key, default)
        try:
            values[key] = int(text)
        except ValueError:
            raise DcganError(f"{key}={text!r} is not a number; start the processes with torchrun") from None
    world = World(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
    if world.size < 1 or not 0 <= world.rank < world.size or world.local_rank < 0:
        raise DcganError(
            f"RANK={world.rank}, WORLD_SIZE={world.size}, LOCAL_RANK={world.local_rank} do not describe a "
            "process of a group; start the processes with torchrun"
        )
    return world


def local_size(env: dict[str, str] | None = None) -> int:
    """How many processes of the run share this machine (torchrun's LOCAL_WORLD_SIZE; 1 without it)."""
    env = dict(os.environ) if env is None else env
    try:
        return max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def init(device_type: str, world: World | None = None) -> World:
    """Join the process group of a multi-process run (NCCL on CUDA, gloo elsewhere); a no-op at size 1."""
    global _control
    world = world or from_environment()
    if world.size > 1 and not dist.is_initialized():
        timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":  # one GPU per process: "cuda" means this one from here on
            if world.local_rank >= torch.cuda.device_count():
                raise DcganError(
                    f"process {world.rank} is local rank {world.local_rank} but this machine has "
                    f"{torch.cuda.device_count()} GPU(s); start at most that many processes per machine"
                )
            torch.cuda.set_device(world.local_rank)
        _stop_with_parent()
        try:
            dist.init_process_group(backend, timeout=timeout)
        except ValueError as e:  # env:// without MASTER_ADDR/MASTER_PORT
            raise DcganError(
                f"cannot join the process group ({e}); start the processes with torchrun"
            ) from None
        except RuntimeError as e:
            restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0
            if not restarted or os.environ.get(SHARED_STORE_ENV) == "1":
                raise
            # torchrun's agent shares its store with the workers, and a restarted round can read the last
            # round's addresses (pytorch/pytorch#135712): the agent must be started without sharing
            raise DcganError(
                f"the restarted processes could not connect ({one_line(e, 120)}); start torchrun with "
                f"{SHARED_STORE_ENV}=1 in its environment for --max-restarts (a known PyTorch issue)"
            ) from None
        _control = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else None
    return world


# what a collective says when another process died (its sockets closed), hung (the timeout) or is gone
_PEER_LOST = ("closed by peer", "reset by peer", "Connection refused", "Broken pipe", "timed out", "Timeout")


def _lost_peer(e: BaseException) -> bool:
    """Whether an error is a collective that failed because of another process, not a bug of this one (a
    mismatched collective or a wrong call keeps its traceback)."""
    return isinstance(e, dist.DistNetworkError) or any(w in str(e) for w in _PEER_LOST)


def _stop_with_parent() -> None:
    """Under torchrun's agent (TORCHELASTIC_RUN_ID set), ask Linux for SIGTERM when the agent dies, so a
    killed launcher does not leave orphans training on: SIGTERM stops the run at the next step, with a
    checkpoint."""
    if sys.platform == "linux" and "TORCHELASTIC_RUN_ID" in os.environ:
        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the request
            os.kill(os.getpid(), signal.SIGTERM)


@contextmanager
def joined(device_type: str, then: str = "run the command again") -> Iterator[World]:
    """This process's World, in its process group for the block: joined at the start (unless the caller
    joined one already), left at the end — after a barrier when the block ended normally, at once after an
    error (the others may be gone). A lost peer ends the block with one line, `then` saying what to do."""
    mine = not dist.is_initialized()
    world = init(device_type)
    try:
        yield world
    except RuntimeError as e:
        if mine:
            shutdown(clean=False)
        if world.size == 1 or not _lost_peer(e):
            raise
        raise DcganError(
            f"process {world.rank} of {world.size} lost the others ({one_line(e, 160)}); {then}"
        ) from e
    except BaseException:
        if mine:
            shutdown(clean=False)
        raise
    if mine:
        shutdown()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier(group=_control)


def shutdown(clean: bool = True) -> None:
    """Leave the process group (every rank, at the end: a process that exits inside it aborts). After a
    failure (`clean=False`) the others may be gone, so no barrier: just close."""
    global _control
    if dist.is_initialized():
        if clean:
            barrier()
        # DDP's reducers hold work of the group: free them (they may sit in reference cycles) while the group
        # lives, or gloo's threads can abort the interpreter at exit ("terminate called…"; seen once in CI)
        gc.collect()
        dist.destroy_process_group()
    _control = None


def agree(value: int) -> int:
    """The largest `value` over every rank (e.g. 0 go on, 1 time is up, else a signal's number): one small
    exchange on the CPU group, so all ranks stop at the same step."""
    if not dist.is_initialized():
        return value
    return int(_gather(torch.tensor([value], dtype=torch.int64), _control).max())


def average(t: Tensor) -> Tensor:
    """t averaged over every rank (in place; on the training device): the losses of the global batch."""
    if dist.is_initialized():
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return t


def together(fn: Callable[[], T], *, main_only: bool = False) -> T:
    """fn() on every rank (on rank 0 alone with `main_only`, e.g. a check that writes the run folder, whose
    result every rank then gets). A DcganError or OSError on any rank raises the same SharedError on all of
    them, so no rank is left waiting for one that stopped. Without a process group: just fn()."""
    if not dist.is_initialized():
        return fn()
    rank = dist.get_rank()
    result: Any = None
    error: str | None = None
    if rank == 0 or not main_only:
        try:
            result = fn()
        except DcganError as e:
            error = str(e)
        except OSError as e:
            error = f"{e.strerror or e}: {e.filename or ''}".rstrip(": ")
    errors: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(errors, error, group=_control)
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if failed:
        first, message = failed[0]
        where = f"rank {first}: " if first != 0 and not main_only else ""
        raise SharedError(where + message, speak=rank == 0)
    if main_only:
        box = [result]
        dist.broadcast_object_list(box, src=0, group=_control)
        result = box[0]
    return result


def is_main() -> bool:
    """Whether this process is rank 0 of its group (or in none): the one that writes."""
    return not dist.is_initialized() or dist.get_rank() == 0


def share(n: int) -> range:
    """This rank's contiguous part of n items (e.g. the seeds of an evaluation); the first n % world ranks
    take one more. range(n) without a process group."""
    if not dist.is_initialized():
        return range(n)
    rank, size = dist.get_rank(), dist.get_world_size()
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))


def gather_to_main(obj: T) -> list[T] | None:
    """Every rank's `obj` in rank order, on rank 0 (None on the others); [obj] without a process group.
    Over the CPU group: for results (arrays of features), not for the training step."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0, group=_control)
    return out


def broadcast_buffers(net: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running averages) on every rank: with per-rank BatchNorm they drift
    apart, and what rank 0 saves is what every rank should evaluate."""
    if dist.is_initialized():
        for buf in net.buffers():
            dist.broadcast(buf, src=0)


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """`net` under DistributedDataParallel (gradients averaged over the ranks in its backward pass), or `net`
    itself without a process group. Buffers are not broadcast at each call: with global BatchNorm they are
    equal on every rank already, and with per-rank BatchNorm rank 0's are the ones saved (and evaluated:
    broadcast_buffers)."""
    if not dist.is_initialized():
        return net
    return DistributedDataParallel(
        net,
        device_ids=[torch.cuda.current_device() if device.index is None else device.index]
        if device.type == "cuda"
        else None,
        forward_sync_buffers=False,
        gradient_as_bucket_view=True,
    )


def _gather(t: Tensor, group: Any = None) -> Tensor:
    """(world, *t.shape): every rank's t. For the small tensors of BatchNorm's sums and of the agreements
    this also serves as an all-reduce (gather, then sum or max in rank order on every rank): on gloo an
    all-gather takes ~0.5 ms on this machine where an all-reduce takes ~1.7 ms, and the result is the same
    bits on every rank by construction."""
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, t.contiguous(), group=group)
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
        # this rank's per-channel mean and biased variance in one pass, in float32 even for bf16 x (the
        # kernel returns x's dtype unless given float running buffers; at momentum 0 it leaves them be)
        c = x.shape[1]
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        unused = torch.zeros(c, dtype=acc, device=x.device), torch.ones(c, dtype=acc, device=x.device)
        mean, var = torch.batch_norm_update_stats(x, *unused, 0.0)
        n = torch.full((1,), x.numel() / c, dtype=mean.dtype, device=x.device)
        every = _gather(torch.cat([n, mean, var * n]))  # one exchange: (W, 1 + 2C) counts, means, M2s
        counts, means, m2s = every[:, :1], every[:, 1 : 1 + c], every[:, 1 + c :]
        total = counts.sum()
        g_mean = (counts * means).sum(0) / total
        g_var = (m2s.sum(0) + (counts * (means - g_mean) ** 2).sum(0)) / total  # biased, as BN normalizes
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(g_mean.to(running_mean.dtype), alpha=momentum)
                unbiased = g_var * total / (total - 1).clamp_min(1)
                running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        ctx.save_for_backward(x, weight, g_mean, g_var)
        ctx.total, ctx.eps, ctx.has_bias = total, eps, bias is not None
        # normalizing with given statistics is inference-mode BatchNorm: the native fused kernel
        return F.batch_norm(x, g_mean, g_var, weight, bias, training=False, eps=eps)

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, g_mean, g_var = ctx.saved_tensors
        w = weight if weight is not None else torch.ones_like(g_mean)
        # The native inference-mode backward gives dy·w·invstd, Σ dy·x̂ and Σ dy of this rank (one pass);
        # training mode adds −w·invstd·(Σ dy + x̂ Σ dy·x̂)/N with the global batch's sums and N, an
        # affine function of x per channel: dx = dx₀ + a·x + b. (Centring x first costs a pass and, measured
        # at |μ| = 1000σ in float32, is no more accurate: the rounding of x itself dominates.)
        dx0, sum_dy_xhat, sum_dy = torch.ops.aten.native_batch_norm_backward(
            dy, x, w, g_mean, g_var, None, None, False, ctx.eps, [ctx.needs_input_grad[0], True, True]
        )
        d_weight = sum_dy_xhat if weight is not None and ctx.needs_input_grad[1] else None
        d_bias = sum_dy if ctx.has_bias and ctx.needs_input_grad[2] else None
        dx = None
        if ctx.needs_input_grad[0]:
            # the global batch's sums: every rank's loss depends on every rank's x
            s_dy, s_dy_xhat = _gather(torch.stack([sum_dy, sum_dy_xhat]).to(g_mean.dtype)).sum(0)
            invstd = torch.rsqrt(g_var + ctx.eps)
            a = -w * invstd * invstd * s_dy_xhat / ctx.total
            b = -w * invstd * (s_dy - g_mean * invstd * s_dy_xhat) / ctx.total
            shape = (1, -1, *[1] * (x.dim() - 2))
            dx = torch.addcmul(b.view(shape), x, a.view(shape)).add_(dx0).to(dy.dtype)
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


class _Sync:
    on = False


class _GlobalStatistics:
    """For nn.BatchNorm1d/2d (a class swapped in by `use_global_batchnorm`): in training mode, inside
    `global_statistics()`, normalize with the statistics of every rank's batch; otherwise BatchNorm as is."""

    training: bool
    momentum: float | None
    eps: float
    weight: Tensor | None
    bias: Tensor | None
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and _Sync.on and dist.is_initialized()):
            return super().forward(x)  # type: ignore[misc]
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # a cumulative average, as nn.BatchNorm
            momentum = 1.0 / float(self.num_batches_tracked) if self.num_batches_tracked is not None else 0.0
        return global_batch_norm(
            x, self.weight, self.bias, self.running_mean, self.running_var, momentum, self.eps
        )


class GlobalBatchNorm1d(_GlobalStatistics, nn.BatchNorm1d):
    pass


class GlobalBatchNorm2d(_GlobalStatistics, nn.BatchNorm2d):
    pass


def use_global_batchnorm(net: nn.Module) -> int:
    """Switch net's BatchNorm layers to the global-statistics classes (in place; same parameters, buffers
    and state-dict keys); returns how many."""
    swaps = {nn.BatchNorm1d: GlobalBatchNorm1d, nn.BatchNorm2d: GlobalBatchNorm2d}
    n = 0
    for m in net.modules():
        new = swaps.get(type(m))
        if new is not None:
            m.__class__ = new
            n += 1
    return n


@contextmanager
def global_statistics() -> Iterator[None]:
    """Within the block, training-mode global BatchNorm layers gather every rank's statistics. Only the
    training step opens it: rank 0 alone draws the sample grids with batch statistics, and a collective
    there would wait for ranks that never call it."""
    was, _Sync.on = _Sync.on, True
    try:
        yield
    finally:
        _Sync.on = was


def launched(nproc: int) -> bool:
    """Whether this process is one of the `nproc` that `launch` started (rather than the launcher)."""
    return "WORLD_SIZE" in os.environ and os.environ.get(LAUNCHED_ENV) == str(nproc)


def launch(args: list[str], nproc: int) -> tuple[int, str | None]:
    """`python args…` as `nproc` processes of one run on this machine, started by PyTorch's elastic agent
    exactly as `torchrun --standalone --nproc-per-node N` starts them (`dcgan train --nproc N`). Returns the
    exit code and what to tell the user: nothing when all went well or the first process to stop stopped
    at a user error (which was said in one line), else which process failed first and how."""
    import logging
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if "WORLD_SIZE" in os.environ:
        raise DcganError("--nproc starts the processes itself; under torchrun leave it out")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.5,
    )
    # the processes run the same command line, --nproc included; a store per rendezvous round (see init)
    settings = {LAUNCHED_ENV: str(nproc), SHARED_STORE_ENV: "1"}
    before = {k: os.environ.get(k) for k in settings}
    agent_log = logging.getLogger("torch.distributed.elastic")  # its report of a failure repeats theirs
    level = agent_log.level
    os.environ.update(settings)
    agent_log.setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, sys.executable)(*args)
    except ChildFailedError as e:
        # told to stop (by a signal of their own, or the agent's SIGTERM once the first one had stopped):
        # all agreed on the step, rank 0 saved it and said so; 2: a user error, said in one line
        stopped = {128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM}
        crashed = {r: f for r, f in e.failures.items() if f.exitcode not in stopped | {2}}
        if not crashed:
            code = e.get_first_failure()[1].exitcode
            if any(f.exitcode == 2 for f in e.failures.values()):
                return 2, None
            return (128 - code if code < 0 else code), None
        rank = min(crashed, key=lambda r: (crashed[r].timestamp, r))  # a crash, named before any stop
        code = crashed[rank].exitcode
        why = f"was killed by signal {-code}" if code < 0 else f"exited with code {code} (see above)"
        return (128 - code if code < 0 else code), f"process {rank} of {nproc} {why}"
    except SignalException as e:  # Ctrl-C or SIGTERM to the launcher: the processes saved and stopped
        return 128 + int(e.sigval), None
    finally:  # this process (a notebook, say) is left as it was
        agent_log.setLevel(level)
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return 0, None
