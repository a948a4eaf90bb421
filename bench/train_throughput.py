"""Training throughput: the project's step against a plain fp32 pytorch/examples loop, interleaved.

Each variant runs as its users would run it: the reference is the pytorch/examples loop (Sigmoid + BCELoss,
NCHW, fp32, D-real / D-fake / G steps, glibc malloc); ours is `Trainer.train_step` as `dcgan train` runs it
(precision auto, channels_last, tcmalloc when installed). Rounds alternate between the two in fresh
subprocesses, so machine noise hits both; the median of the rounds is reported.

On CUDA it also times ours with --no-compile.

Run: .venv/bin/python bench/train_throughput.py [--size 64] [--batch 128] [--rounds 3] [--steps 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import ctypes.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn


def reference_nets(nz: int, nc: int, size: int) -> tuple[nn.Module, nn.Module]:
    """pytorch/examples dcgan (ngf = ndf = 64); at 32² the last up/down layer is dropped."""
    ngf = ndf = 64
    g_layers: list[nn.Module] = [
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
    ]
    widths = [ngf * 8, ngf * 4, ngf * 2, ngf][: (size // 4).bit_length() - 1]
    for a, b in itertools.pairwise(widths):
        g_layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
    g_layers += [nn.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=False), nn.Tanh()]
    d_widths = [ndf, ndf * 2, ndf * 4, ndf * 8][: (size // 4).bit_length() - 1]
    d_layers: list[nn.Module] = [
        nn.Conv2d(nc, d_widths[0], 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    for a, b in itertools.pairwise(d_widths):
        d_layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True)]
    d_layers += [nn.Conv2d(d_widths[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*g_layers), nn.Sequential(*d_layers)


def run_reference(size: int, batch: int, steps: int, device: str) -> float:
    g, d = (m.to(device) for m in reference_nets(100, 3, size))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    data = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    real_label = torch.ones(batch, device=device)
    fake_label = torch.zeros(batch, device=device)

    def step() -> None:
        d.zero_grad()
        err_real = bce(d(data).view(-1), real_label)
        err_real.backward()
        fake = g(torch.randn(batch, 100, 1, 1, device=device))
        err_fake = bce(d(fake.detach()).view(-1), fake_label)
        err_fake.backward()
        opt_d.step()
        g.zero_grad()
        bce(d(fake).view(-1), real_label).backward()
        opt_g.step()

    return timed(step, batch, steps, device)


def run_ours(size: int, batch: int, steps: int, device: str, compile: bool = True) -> float:
    from dcgan.config import ModelConfig, train_config
    from dcgan.device import resolve
    from dcgan.training.trainer import Trainer

    model = ModelConfig.pyramid(
        size, 3, width=64, max_width=512, z_dist="normal", kernel_size=4, g_input="convt", d_output="conv"
    )
    cfg = train_config("examples64", model=model, batch=batch, device=device, compile=compile)
    trainer = Trainer(cfg, resolve(device, "auto"))
    trainer.capture((3, size, size))  # as `dcgan train` does: the CUDA graph on GPUs, a no-op elsewhere
    # as `dcgan train` gives it: NHWC rows of the memmap, resident on the GPU when the dataset fits there
    data = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8).to(device).permute(0, 3, 1, 2)

    return timed(lambda: trainer.train_step(data), batch, steps, device)  # train_step advances the step


def timed(step, batch: int, steps: int, device: str) -> float:
    for _ in range(3):  # warm-up: allocator, oneDNN/cuDNN kernel selection
        step()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return batch * steps / (time.perf_counter() - t)


VARIANTS = ("ref", "ours", "ours_nocompile")


def child(args: argparse.Namespace) -> None:
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True  # as pytorch/examples sets it
    if args.variant == "ref":
        v = run_reference(args.size, args.batch, args.steps, args.device)
    else:
        v = run_ours(args.size, args.batch, args.steps, args.device, compile=args.variant == "ours")
    print(json.dumps({"img_per_s": v}))


def spawn(args: argparse.Namespace, variant: str) -> float:
    env = dict(os.environ)
    lib = ctypes.util.find_library("tcmalloc_minimal")
    if variant != "ref" and lib and args.device == "cpu":
        env["LD_PRELOAD"] = lib  # what `dcgan train` does on CPU
    cmd = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--size",
        str(args.size),
        "--batch",
        str(args.batch),
        "--steps",
        str(args.steps),
        "--device",
        args.device,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["img_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", dest="variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        return child(args)
    # on CUDA, also ours without torch.compile (`dcgan train --no-compile`); elsewhere nothing is compiled
    variants = VARIANTS if args.device == "cuda" else VARIANTS[:2]
    rounds: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for variant in variants:
            rounds[variant].append(spawn(args, variant))
    med = {v: statistics.median(r) for v, r in rounds.items()}
    ref, ours = med["ref"], med["ours"]
    print(
        json.dumps(
            {
                "size": args.size,
                "batch": args.batch,
                "device": args.device,
                "threads": torch.get_num_threads(),
                "reference_img_per_s": round(ref, 1),
                "ours_img_per_s": round(ours, 1),
                "ratio": round(ours / ref, 2),
                **(
                    {"ratio_no_compile": round(med["ours_nocompile"] / ref, 2)}
                    if "ours_nocompile" in med
                    else {}
                ),
                "rounds": {k: [round(v, 1) for v in vs] for k, vs in rounds.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
