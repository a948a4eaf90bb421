"""CUDA: each layer that dcgan.training.cuda_layers replaces, timed in its plain and its replaced form.

For every preset, D's input conv, G's 1×1 input convT and D's 4×4 output conv (where the preset has them), in
bf16 channels_last as training runs them, at batch 128 and 256 (D sees 256 in the split real+fake pass):
µs per forward pass and per forward + backward (input and weight gradients), each captured as a CUDA graph as
the training step is (so launch overhead is out: the replaced forms are a few more, smaller kernels, which
torch.compile fuses in training) and replayed 50 times after 5 warm-up calls. Skipped without a CUDA GPU.

Run: .venv/bin/python bench/cuda_layers_speed.py [--presets examples64,fmnist32]
"""

from __future__ import annotations

import argparse
import copy
import json

import torch
from torch import nn

from dcgan.config import PRESETS
from dcgan.models import build
from dcgan.training import cuda_layers


def timed(fn, n: int = 50) -> float:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(5):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(n):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / n * 1000


def layer_times(layer: nn.Module, x: torch.Tensor) -> dict[str, float]:
    x = x.detach().requires_grad_(True)

    def forward() -> None:
        with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
            layer(x)

    def both() -> None:
        with torch.autocast("cuda", torch.bfloat16):
            y = layer(x)
        y.float().sum().backward()

    return {"fwd_us": round(timed(forward), 1), "fwd_bwd_us": round(timed(both), 1)}


def ends(preset: str) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, plain layer, input shape without the batch) for the layers cuda_layers replaces."""
    cfg = PRESETS[preset]
    g, d = build(cfg, seed=0)
    out = []
    first = d.main[0]
    if first.stride == (2, 2):
        out.append(("D input conv", first, (cfg.channels, cfg.image_size, cfg.image_size)))
    if isinstance(g.main[0], nn.ConvTranspose2d):
        out.append(("G 1x1 input convT", g.main[0], (cfg.z_dim, 1, 1)))
    last = d.main[-1]
    if isinstance(last, nn.Conv2d):
        out.append(("D 4x4 output conv", last, (last.in_channels, 4, 4)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default=",".join(PRESETS))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("cuda_layers_speed: needs a CUDA GPU; skipped")
        return
    cl = torch.channels_last
    for preset in args.presets.split(","):
        for name, plain, shape in ends(preset):
            plain = plain.cuda().to(memory_format=cl)
            fast = cuda_layers.install(copy.deepcopy(plain))
            for batch in (128, 256):
                x = torch.randn(batch, *shape, device="cuda").contiguous(memory_format=cl)
                row = {"preset": preset, "layer": name, "batch": batch, "form": type(fast).__name__}
                row["plain"], row["fast"] = layer_times(plain, x), layer_times(fast, x)
                row["fwd_speedup"] = round(row["plain"]["fwd_us"] / row["fast"]["fwd_us"], 2)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
