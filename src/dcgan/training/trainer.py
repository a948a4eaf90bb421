"""G, D, their optimizers and the update step (PAPER.md §3): everything a checkpoint holds.

Adam(2e-4, β1 0.5), BCE on logits, non-saturating G, real and fake through D separately. Everything random
is a function of the seed, the number of NaN rollbacks and the trainer's own counters: the rows of step k
come from the data-order stream at the images seen so far, its z from the z stream at k. So the same step
draws the same minibatch and the same z after a resume.

With several processes (training/distributed.py) `batch` stays the global batch: each rank takes its slice
of the same global rows and z, G and D run under DistributedDataParallel, and with `bn="global"` every
BatchNorm normalizes with the whole global batch's statistics (real and fake still separately). So the
global minibatch of a step is the same at any world size, and a run may resume on another number of
processes.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import numpy as np
import torch

import dcgan
from dcgan.config import TrainConfig
from dcgan.data.dataset import batch_indices, to_unit_range
from dcgan.device import Placement
from dcgan.errors import DcganError, one_line
from dcgan.models import build, sample_z, z_for_seeds
from dcgan.training import cpu_conv, cuda_layers, distributed
from dcgan.training.cuda_graph import GraphedStep
from dcgan.training.losses import d_loss, g_loss

# The two random streams of training, as the last part of step_seed's key: the data order (one per rollback:
# a permutation per epoch, see batch_indices) and z (one per step).
DATA_STREAM = 0
Z_STREAM = 1


def step_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, e.g. (seed, rollbacks, step, Z_STREAM)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


def local_batch(cfg: TrainConfig, world: distributed.World) -> int:
    """Each rank's share of the global batch, or a DcganError when the batch does not divide."""
    if cfg.batch % world.size:
        lower = cfg.batch - cfg.batch % world.size
        raise DcganError(
            f"--batch {cfg.batch} does not divide among {world.size} processes; use a multiple of "
            f"{world.size} (e.g. {lower or world.size})"
        )
    if cfg.batch // world.size < 2:
        raise DcganError(
            f"--batch {cfg.batch} over {world.size} processes leaves {cfg.batch // world.size} image per process; "
            f"BatchNorm needs at least 2 each: use --batch {2 * world.size} or more"
        )
    return cfg.batch // world.size


class TrainingDiverged(DcganError):
    """A loss or weight became NaN/Inf."""


def _brief(value: object) -> str:
    """A value from a file, for a one-line message: a number or short string as it is, anything else by type."""
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 40):
        return repr(value)
    return type(value).__name__


class Trainer:
    """G, D, their optimizers and counters: the whole state a checkpoint holds.

    `train_step` advances the counters: `step` (updates done), `images_seen` (real images shown) and
    `elapsed` (seconds spent in steps); `rollbacks` counts NaN rollbacks, each of which starts fresh streams."""

    def __init__(self, cfg: TrainConfig, place: Placement, world: distributed.World | None = None) -> None:
        self.cfg, self.place = cfg, place
        self.world = world or distributed.World()
        self.local_batch = local_batch(cfg, self.world)
        g, d = build(cfg.model, seed=cfg.seed)
        # channels_last: the prepared rows are NHWC already, and oneDNN/cuDNN convolutions run faster so.
        self.g = g.to(place.device, memory_format=torch.channels_last)
        self.d = d.to(place.device, memory_format=torch.channels_last)
        if place.device.type == "cpu" and place.precision == "bf16":  # see cpu_conv: 2-3× faster 4×4 layers
            cpu_conv.install(self.g)
            cpu_conv.install(self.d)
        # On CUDA the whole "both" step is captured as one CUDA graph: a DCGAN step at batch 128 is a few
        # milliseconds of many small kernels, so launching them one by one from Python is the bottleneck.
        use_graph = place.device.type == "cuda" and cfg.schedule == "both" and place.precision != "fp16"
        # Under DDP the graph would have to hold the gradient all-reduce; not measured yet, so plain steps
        self.no_graph_reason = "several processes (DDP)" if use_graph and self.world.size > 1 else None
        use_graph = use_graph and self.world.size == 1
        if self.world.size > 1 and cfg.bn == "global":  # the paper's BN: statistics of the global batch
            distributed.use_global_batchnorm(self.g)
            distributed.use_global_batchnorm(self.d)
        if use_graph:  # see cuda_layers: the same layers without cuDNN's slow paths at D's and G's ends
            cuda_layers.install(self.g)  # (a few more, smaller kernels: a win once launches cost nothing)
            cuda_layers.install(self.d)
        # D's real and fake minibatches in one call with per-half BN statistics: exactly the paper's separate
        # passes, as convolutions of twice the batch (batch 128 leaves the GPU partly idle)
        self.split_d = use_graph and not cfg.fuse_d
        # Inside the graph, torch.compile fuses each BatchNorm with its activation (and their backward passes);
        # the compiled callables share G's and D's parameters, and only the training step calls them.
        self.compiled = use_graph and cfg.compile
        # the callables of the step: G's (its gradients averaged over the ranks by DDP), D's in G's step
        # (gradients through D, not of it: no DDP) and D's in its own step (DDP)
        self.g_fwd = torch.compile(self.g) if self.compiled else distributed.wrap(self.g, place.device)
        self.d_fwd = torch.compile(self.d) if self.compiled else self.d
        self.d_train = self.d_fwd if self.compiled else distributed.wrap(self.d, place.device)
        adam = {
            "lr": cfg.lr,
            "betas": (cfg.beta1, cfg.beta2),
            "fused": place.device.type in ("cpu", "cuda"),
            "capturable": use_graph,
        }
        self.opt_g = torch.optim.Adam(self.g.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.d.parameters(), **adam)
        fp16 = place.precision == "fp16"
        self.scaler_g = torch.amp.GradScaler(place.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(place.device.type, enabled=fp16)
        self.step = self.images_seen = self.rollbacks = 0
        self.elapsed = 0.0
        self.fixed_z = z_for_seeds(cfg.model, range(64))  # the same z as `dcgan sample --seeds 0-63`
        self.graphed: GraphedStep | None = None
        self.use_graph = use_graph

    def capture(self, image_shape: tuple[int, int, int]) -> None:
        """Capture the training step as a CUDA graph (after any checkpoint has been loaded); when compiling,
        its warm-up steps are where torch.compile runs."""
        if not self.use_graph:
            return
        try:
            self.graphed = GraphedStep(self, image_shape)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:
            if not self.compiled:
                raise
            raise DcganError(
                f"torch.compile failed for this GPU ({type(e).__name__}: {one_line(e, 200)}); "
                "run again with --no-compile"
            ) from e

    def _share(self) -> slice:
        """This rank's part of a global minibatch."""
        return slice(self.world.rank * self.local_batch, (self.world.rank + 1) * self.local_batch)

    def z(self, step: int) -> torch.Tensor:
        """This rank's share of the global minibatch of z for `step`: (batch / world, z_dim) on the device."""
        seed = step_seed(self.cfg.seed, self.rollbacks, step, Z_STREAM)
        gen = torch.Generator(self.place.device).manual_seed(seed)
        return sample_z(self.cfg.model, self.cfg.batch, gen, self.place.device)[self._share()]

    def rows(self, n_data: int) -> np.ndarray:
        """Dataset rows of this rank's share of the next step's global minibatch, which is a function of the
        seed and the images seen so far."""
        stream = step_seed(self.cfg.seed, self.rollbacks, DATA_STREAM)
        return batch_indices(n_data, self.images_seen, self.cfg.batch, stream)[self._share()]

    def d_update(self, x: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """maximize log D(x) + log(1 - D(G(z))); returns [loss_D, D(x), D(G(z))]."""
        with self.place.autocast():
            if self.cfg.fuse_d or self.split_d:
                # one call of both batches: --fuse-d normalizes them together; split_d gives each half its
                # own BN statistics, the same as separate calls
                with cuda_layers.split_batchnorm(self.d, 2 if self.split_d else 1):
                    logits_real, logits_fake = self.d_train(torch.cat([x, fake])).split(len(x))
            else:  # the paper: real and fake batches through D separately (separate BN statistics)
                logits_real, logits_fake = self.d_train(x), self.d_train(fake)
            loss = d_loss(logits_real, logits_fake)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        with torch.no_grad():
            return torch.stack(
                [loss.float(), logits_real.float().sigmoid().mean(), logits_fake.float().sigmoid().mean()]
            )

    def g_update(self, fake: torch.Tensor) -> torch.Tensor:
        """maximize log D(G(z)) (non-saturating); returns [loss_G]."""
        self.d.requires_grad_(False)  # G's step needs gradients through D, not of D's weights
        with self.place.autocast():
            loss = g_loss(self.d_fwd(fake))
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.d.requires_grad_(True)
        return loss.detach().float()[None]

    def update_both(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pytorch/examples: D then G on the same minibatch, G's step reusing D's fakes."""
        with self.place.autocast():
            fake = self.g_fwd(z)
        return self.d_update(x, fake.detach()), self.g_update(fake)

    def train_step(self, x_u8: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """One update on this rank's share of the minibatch (B / world, C, H, W) uint8 and of this step's z;
        advances the counters. Returns (D stats [loss_D, D(x), D(G(z))] or None, G stats [loss_G] or None)
        of this rank's share, on the device."""
        t0 = time.perf_counter()
        z = self.z(self.step)
        if self.graphed is not None:
            stats = self.graphed(x_u8, z)
        else:
            with distributed.global_statistics():
                stats = self._update(to_unit_range(x_u8, self.place.device), z)
        self.step += 1
        self.images_seen += self.cfg.batch
        self.elapsed += time.perf_counter() - t0
        return stats

    def _update(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.cfg.schedule == "both":
            return self.update_both(x, z)
        if self.step % 2 == 0:  # the original code: even updates train G, odd ones D
            with self.place.autocast():
                fake = self.g_fwd(z)
            return None, self.g_update(fake)
        with torch.no_grad(), self.place.autocast():
            fake = self.g(z)
        return self.d_update(x, fake), None

    def check_weights(self) -> None:
        """Raise TrainingDiverged when a weight of G or D is NaN/Inf (one device sync, not one per tensor)."""
        params = (*self.g.parameters(), *self.d.parameters())
        if not torch.stack([torch.isfinite(p).all() for p in params]).all():
            raise TrainingDiverged(f"a weight became NaN/Inf by step {self.step}")

    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "step": self.step,
            "images_seen": self.images_seen,
            "rollbacks": self.rollbacks,
            "elapsed": self.elapsed,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "fixed_z": self.fixed_z,
            "config": self.cfg.to_dict(),
            "dcgan_version": dcgan.__version__,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
                "python": random.getstate(),
            },
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        """Raises KeyError, TypeError or ValueError for a state this Trainer did not write: counters that are
        not non-negative integers, a fixed z of another shape (checked before anything is set), or optimizer
        and RNG states that do not fit (the caller then stops: the Trainer is not used half-loaded)."""
        # checkpoints written before the counter was named for what it counts call it "restarts"
        counters = {k: s[k] for k in ("step", "images_seen")} | {
            "rollbacks": s["rollbacks"] if "rollbacks" in s else s["restarts"]
        }
        for k, v in counters.items():
            if type(v) is not int or v < 0:
                raise TypeError(f"{k} is {_brief(v)}, not a non-negative integer")
        elapsed, z = s["elapsed"], s["fixed_z"]
        if type(elapsed) not in (int, float) or not 0 <= elapsed < math.inf:
            raise TypeError(f"elapsed is {_brief(elapsed)}, not a number of seconds")
        if not isinstance(z, torch.Tensor) or z.shape != self.fixed_z.shape or z.dtype != self.fixed_z.dtype:
            what = f"{tuple(z.shape)} {z.dtype}" if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"fixed_z is {what}, not {tuple(self.fixed_z.shape)} {self.fixed_z.dtype}")
        self.step, self.images_seen, self.rollbacks = (
            counters["step"],
            counters["images_seen"],
            counters["rollbacks"],
        )
        self.elapsed = elapsed
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.scaler_g.load_state_dict(s["scaler_g"])
        self.scaler_d.load_state_dict(s["scaler_d"])
        self.fixed_z = z.to(self.fixed_z.device)
        torch.set_rng_state(s["rng"]["torch"])
        name, key, *rest = s["rng"]["numpy"]
        np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
        random.setstate(s["rng"]["python"])
