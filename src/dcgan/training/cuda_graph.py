"""The "both" training step as one CUDA graph: one launch per step instead of a few hundred.

Capturing needs a few warm-up steps (cuDNN picks its algorithms, the allocator settles), and those steps
really update the weights. So everything the step writes — parameters, buffers, optimizer state — is saved
before and copied back in place afterwards (in place: the graph holds those very tensors), leaving the
trainer exactly as it was: capture changes speed, not the run.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import torch

from dcgan.data.dataset import to_unit_range

if TYPE_CHECKING:
    from dcgan.training.trainer import Trainer

WARMUP_STEPS = 3


def _state_tensors(trainer: Trainer) -> list[torch.Tensor]:
    nets = [*trainer.g.parameters(), *trainer.g.buffers(), *trainer.d.parameters(), *trainer.d.buffers()]
    opt_state = [
        v
        for opt in (trainer.opt_g, trainer.opt_d)
        for s in opt.state.values()
        for v in s.values()
        if isinstance(v, torch.Tensor)
    ]
    return nets + opt_state


class GraphedStep:
    """Static input buffers, the captured graph, and its static outputs."""

    def __init__(self, trainer: Trainer, image_shape: tuple[int, int, int]) -> None:
        dev, batch = trainer.place.device, trainer.cfg.batch
        self.trainer = trainer
        self.x_u8 = torch.zeros(batch, *image_shape, dtype=torch.uint8, device=dev)
        self.x_u8 = self.x_u8.contiguous(memory_format=torch.channels_last)
        self.z = torch.zeros(batch, trainer.cfg.model.z_dim, device=dev)
        fresh = not trainer.opt_g.state  # Adam creates its state on the first step
        saved = [t.detach().clone() for t in _state_tensors(trainer)]  # detached: a clone of a parameter
        # would keep its gradient-accumulation node alive, bound to the default stream, and break the capture
        # Warm up and capture on one side stream: autograd's gradient-accumulation nodes remember the stream
        # they were made on, and a capture on another stream would make them wait on the default stream.
        # cuDNN's benchmark mode may re-time an algorithm inside the capture (a fresh gradient buffer is
        # enough to miss its cache), and timing synchronizes the device: capture with its heuristics instead.
        cudnn = torch.backends.cudnn
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with (
            cudnn.flags(
                enabled=cudnn.enabled,
                benchmark=False,
                deterministic=cudnn.deterministic,
                allow_tf32=cudnn.allow_tf32,
            ),
            torch.cuda.stream(side),
        ):
            for _ in range(WARMUP_STEPS):
                self._body()
            side.synchronize()
            gc.collect()  # no autograd graph of the warm-up may outlive it
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=side):
                self.out = self._body()
        torch.cuda.current_stream(dev).wait_stream(side)
        self._restore(saved, fresh)

    def _body(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.trainer.update_both(to_unit_range(self.x_u8), self.z)

    def _restore(self, saved: list[torch.Tensor], fresh: bool) -> None:
        tensors = _state_tensors(self.trainer)
        with torch.no_grad():
            for t, s in zip(tensors, saved):
                t.copy_(s)
            if fresh:  # no state existed: zeros and step 0 are exactly what Adam's first step starts from
                for opt in (self.trainer.opt_g, self.trainer.opt_d):
                    for st in opt.state.values():
                        for v in st.values():
                            if isinstance(v, torch.Tensor):
                                v.zero_()

    def __call__(self, x_u8: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.x_u8.copy_(x_u8, non_blocking=True)
        self.z.copy_(z)
        self.graph.replay()
        return self.out[0].clone(), self.out[1].clone()  # the next replay overwrites the outputs
