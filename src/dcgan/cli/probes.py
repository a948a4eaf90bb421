"""`dcgan memorization`: probes of what G learned."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from dcgan.cli.common import generator_from_args, parser_for, run_argument


def cmd_memorization(a: argparse.Namespace) -> int:
    from dcgan.data.dataset import PreparedDataset
    from dcgan.fileio import write_json
    from dcgan.probes.memorization import memorization
    from dcgan.report.grid import save_png

    g, _ = generator_from_args(a)
    train = PreparedDataset(a.dataset)
    heldout = PreparedDataset(a.heldout) if a.heldout else None
    device = next(g.parameters()).device
    summary, figure = memorization(g, train, heldout, a.num, a.k, a.panels, device)
    os.makedirs(a.out, exist_ok=True)
    save_png(figure, os.path.join(a.out, "nearest.png"))
    write_json(os.path.join(a.out, "memorization.json"), summary)
    shown = {k: v for k, v in summary.items() if k != "closest_pairs"}
    print(json.dumps(shown, indent=2))
    print(f"panels    {a.out}/nearest.png (each row: a sample, then its {a.k} nearest training images)")
    return 0


def add_memorization(sub: Any) -> None:
    p = parser_for(
        sub,
        "memorization",
        "nearest training images of samples, and the original code's nnd",
        "dcgan memorization runs/fmnist32 --dataset data/fashion-mnist/train "
        "--heldout data/fashion-mnist/test --out runs/fmnist32/memorization",
    )
    run_argument(p)
    p.add_argument("--dataset", required=True, help="the training set (a prepared dataset folder)")
    p.add_argument(
        "--heldout", help="held-out real images: adds nnd (samples → held-out) and its real baseline"
    )
    p.add_argument("--num", type=int, default=10000, help="samples, seeds 0…num−1 (default 10000)")
    p.add_argument("--k", type=int, default=5, help="neighbours per sample (default 5)")
    p.add_argument("--panels", type=int, default=8, help="samples shown in nearest.png (default 8)")
    p.add_argument("--out", required=True, metavar="DIR", help="nearest.png and memorization.json go here")
    p.set_defaults(fn=cmd_memorization)
