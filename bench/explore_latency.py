"""Latency of `dcgan explore` on this machine: milliseconds per request, over real HTTP, for the requests a
slider makes (one 64² image), a seed tile, the 3×3 arithmetic grid and a walk of 4 — with the examples64 G
(pytorch/examples' 64² network; random weights: time does not depend on them), G on CPU at the thread count
torch picks (2 on our machines), in the precision `dcgan explore` gives it (--precision: auto, the default,
is bf16 on CPUs that run it natively; fp32).

Run: .venv/bin/python bench/explore_latency.py [--repeat 60] [--precision auto]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch

from dcgan.artifacts import load_generator, save_weights
from dcgan.config import get_preset
from dcgan.models import Generator
from dcgan.report.explore import Explorer, serve


def timed(url: str) -> float:
    t = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        r.read()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--preset", default="examples64")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cfg = get_preset(args.preset)
        torch.manual_seed(0)
        save_weights(Generator(cfg).eval(), Path(d) / "generator.safetensors", cfg)
        path = Path(d) / "generator.safetensors"
        ex = Explorer(path, load_generator(path, "cpu", args.precision))
        ex.handle("POST", "/api/vector", b"from=1,2,3&to=4,5,6&name=v")
        server = serve(ex, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/api"
        rng = random.Random(0)
        requests = {
            "slider step (interpolate, 1 image)": lambda: (
                f"{base}/interpolate.png?a=1,2&b=7&t={rng.random():.3f}"
            ),
            "seed tile (sample, 1 image)": lambda: f"{base}/sample.png?seeds={rng.randrange(10**6)}",
            "walk slider (4 images)": lambda: (
                f"{base}/walk.png?seeds=0-3&vector=v&amount={rng.uniform(-3, 3):.2f}"
            ),
            "arithmetic (3×3 grid)": lambda: (
                f"{base}/arithmetic.png?a=1,2,3&b=4,5,6&c=7,8,9&seed={rng.randrange(99)}"
            ),
        }
        for make in requests.values():  # warm up: first calls pay for allocation
            for _ in range(3):
                timed(make())
        out = {
            "preset": args.preset,
            "image_size": cfg.image_size,
            "precision": ex.g.precision,
            "threads": torch.get_num_threads(),
        }
        for name, make in requests.items():
            ms = sorted(timed(make()) for _ in range(args.repeat))
            out[name] = {
                "median_ms": round(statistics.median(ms), 1),
                "p90_ms": round(ms[int(0.9 * len(ms))], 1),
            }
        server.shutdown()
        server.server_close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
