"""Sampling throughput of G: the plain fp32 PyTorch path against `dcgan sample`'s, interleaved.

Variants, each in a fresh process (rounds alternate them, so machine noise hits all):
- plain: G in eval mode, NCHW, fp32, glibc malloc — a plain PyTorch sampling loop;
- fp32: run_generator as `dcgan sample --precision fp32` runs it (channels_last, tcmalloc, thread Tuner);
- auto: the same with `--precision auto` (bf16 where the CPU runs it natively), the default: on such a CPU
  G runs frozen (dcgan/frozen.py: BN folded into the weights, the output layer in its sub-pixel form);
- unfrozen: auto with the frozen form declined (a no-op hook on G), i.e. the module under bf16 autocast.
Every variant samples the same seeds with one randomly initialised G of the preset (speed does not depend on
the weights) and reports images per second after one warm-up batch; the max pixel difference (of 255) of
fp32 and auto against plain is printed beside.

Run: .venv/bin/python bench/sample_speed.py [--preset examples64] [--batch 512] [--num 4096] [--rounds 3]
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

VARIANTS = ("plain", "fp32", "auto", "unfrozen")


def child(args: argparse.Namespace) -> None:
    import torch

    from dcgan.artifacts import load_generator
    from dcgan.frozen import frozen
    from dcgan.images import to_uint8
    from dcgan.models import run_generator, z_for_seeds

    precision = {"plain": "fp32", "unfrozen": "auto"}.get(args.variant, args.variant)
    g = load_generator(args.weights, "cpu", precision)
    if args.variant == "unfrozen":
        g.register_forward_pre_hook(lambda _module, _inputs: None)  # frozen() declines a hooked G
    z = z_for_seeds(g.cfg, range(args.num))
    if args.variant == "plain":
        g = g.to(memory_format=torch.contiguous_format)

        @torch.no_grad()
        def run(z: torch.Tensor) -> torch.Tensor:
            return torch.cat([g(z[i : i + args.batch]) for i in range(0, len(z), args.batch)])
    else:

        def run(z: torch.Tensor) -> torch.Tensor:
            return run_generator(g, z, batch=args.batch)

    run(z[: args.batch])  # warm-up: allocator, oneDNN kernels
    t = time.perf_counter()
    x = run(z)
    rate = args.num / (time.perf_counter() - t)
    np.save(args.out, to_uint8(x[:256]))
    # which form ran: frozen only in bf16 on CPU, where frozen() accepts this G
    form = "frozen" if g.precision == "bf16" and frozen(g) is not None else f"module ({g.precision})"
    print(json.dumps({"img_per_s": rate, "threads": torch.get_num_threads(), "form": form}))


def spawn(args: argparse.Namespace, variant: str, weights: str, out: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LD_PRELOAD")}
    lib = ctypes.util.find_library("tcmalloc_minimal")
    if variant != "plain" and lib:
        env["LD_PRELOAD"] = lib  # what the dcgan command does on CPU
    cmd = [sys.executable, __file__, "--child", variant, "--weights", weights, "--out", out,
           "--batch", str(args.batch), "--num", str(args.num)]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="examples64")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--num", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", dest="variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        return child(args)
    from dcgan.artifacts import save_weights
    from dcgan.config import get_preset
    from dcgan.models import build

    with tempfile.TemporaryDirectory() as tmp:
        g, _ = build(get_preset(args.preset), seed=0)
        weights = f"{tmp}/G.safetensors"
        save_weights(g, weights, g.cfg)
        rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
        forms: dict[str, str] = {}
        for _ in range(args.rounds):
            for v in VARIANTS:
                got = spawn(args, v, weights, f"{tmp}/{v}.npy")
                rates[v].append(got["img_per_s"])
                forms[v] = got["form"]
        images = {v: np.load(f"{tmp}/{v}.npy").astype(int) for v in VARIANTS}
    med = {v: statistics.median(r) for v, r in rates.items()}
    print(
        json.dumps(
            {
                "preset": args.preset,
                "batch": args.batch,
                "num": args.num,
                "median_img_per_s": {v: round(x, 1) for v, x in med.items()},
                "form": forms,
                "speed-up vs plain": {v: round(med[v] / med["plain"], 2) for v in VARIANTS[1:]},
                "max_pixel_diff_vs_plain": {
                    v: int(abs(images[v] - images["plain"]).max()) for v in VARIANTS[1:]
                },
                "mean_abs_pixel_diff_vs_plain": {
                    v: round(float(abs(images[v] - images["plain"]).mean()), 3) for v in VARIANTS[1:]
                },
                "rounds": {v: [round(x, 1) for x in r] for v, r in rates.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
