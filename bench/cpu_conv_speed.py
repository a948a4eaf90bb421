"""CPU bf16 training step per preset, with and without the GEMM weight gradient (dcgan.training.cpu_conv).

Rounds alternate between the two variants in fresh subprocesses (tcmalloc preloaded, as `dcgan train` runs);
the median of the rounds is reported. The first row shows what oneDNN's own kernels take for the layers the
GEMM replaces.

Run: .venv/bin/python bench/cpu_conv_speed.py [--presets examples64,fmnist32,paper64] [--rounds 3] [--steps 6]
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import statistics
import subprocess
import sys
import time

import torch


def child(preset: str, gemm: bool, steps: int, batch: int) -> float:
    from dcgan.config import PRESETS, train_config
    from dcgan.device import resolve
    from dcgan.training import cpu_conv
    from dcgan.training.trainer import Trainer

    if not gemm:
        cpu_conv.install = lambda net: 0
    model = PRESETS[preset]
    trainer = Trainer(train_config(preset, batch=batch, device="cpu"), resolve("cpu", "bf16"))
    size, ch = model.image_size, model.channels
    x = torch.randint(0, 256, (batch, size, size, ch), dtype=torch.uint8).permute(0, 3, 1, 2)
    for _ in range(2):  # warm-up: allocator, oneDNN kernel selection
        trainer.train_step(x)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        trainer.train_step(x)
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="examples64,fmnist32,imagenet32,paper64")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--child", nargs=2, metavar=("PRESET", "GEMM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1] == "1", args.steps, args.batch)))
        return
    env = dict(os.environ)
    if lib := ctypes.util.find_library("tcmalloc_minimal"):
        env["LD_PRELOAD"] = lib
    for preset in args.presets.split(","):
        rounds: dict[str, list[float]] = {"onednn": [], "gemm": []}
        for _ in range(args.rounds):
            for name, flag in (("onednn", "0"), ("gemm", "1")):
                cmd = [sys.executable, __file__, "--child", preset, flag, "--steps", str(args.steps)]
                cmd += ["--batch", str(args.batch)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                rounds[name].append(float(out.strip().splitlines()[-1]))
        a, b = statistics.median(rounds["onednn"]), statistics.median(rounds["gemm"])
        print(
            json.dumps(
                {
                    "preset": preset,
                    "onednn_img_per_s": round(a, 1),
                    "gemm_img_per_s": round(b, 1),
                    "ratio": round(b / a, 2),
                    "rounds": {k: [round(v, 1) for v in vs] for k, vs in rounds.items()},
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
