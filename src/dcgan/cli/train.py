"""`dcgan train` and `dcgan sample`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from dcgan.cli.common import (
    add_threads,
    device_arguments,
    generator_from_args,
    parser_for,
    precision_argument,
)
from dcgan.errors import DcganError, SharedError
from dcgan.progress import silent

# ---------------------------------------------------------------- train


def cmd_train(a: argparse.Namespace) -> int:
    from dcgan import api
    from dcgan.config import train_config
    from dcgan.training.distributed import from_environment, launch, launched

    if a.nproc is not None and a.nproc < 1:
        raise DcganError(f"--nproc must be at least 1, got {a.nproc}")
    if a.dry_run:
        a.kimg, a.epochs, a.log_every = None, None, 1
    try:
        cfg = train_config(
            a.preset,
            batch=a.batch,
            lr=a.lr,
            beta1=a.beta1,
            schedule=a.schedule,
            fuse_d=a.fuse_d or None,
            compile=False if a.no_compile else None,
            epochs=a.epochs,
            kimg=a.kimg,
            seed=a.seed,
            precision=a.precision,
            device=a.device,
            threads=a.threads or None,
            bn=a.bn,
            sample_every=a.sample_every,
            ckpt_every=a.ckpt_every,
            log_every=a.log_every,
            keep=a.keep,
            on_nan=a.on_nan,
            eval_every=a.eval_every,
            eval_num=a.eval_num,
            extractor=a.extractor,
            eval_patience=a.eval_patience,
        )
    except DcganError as e:  # the same flags on every process of a run: one says it
        raise SharedError(str(e), speak=from_environment().main) from None
    if a.dry_run:  # two steps at whatever batch the preset and flags give
        cfg = dataclasses.replace(cfg, kimg=2 * cfg.batch / 1000)
    if a.nproc and a.nproc > 1 and not launched(a.nproc):  # N processes, as torchrun --standalone starts
        code, problem = launch(["-m", "dcgan", *a.argv], a.nproc)  # them; each runs this same command
        if problem:
            print(f"dcgan train: error: {problem}", file=sys.stderr)
        return code
    s = api.train(
        a.dataset,
        a.out,
        cfg,
        max_minutes=a.max_minutes,
        report=not a.no_report,
        progress=not a.quiet,
        log=silent if a.quiet else print,
    )
    if not from_environment().main:  # under torchrun: rank 0 says how it went
        return 128 + s["signal"] if s["status"] == "interrupted" else 0
    what = {"finished": "finished", "time-limit": "stopped at the time limit", "interrupted": "interrupted"}[
        s["status"]
    ]
    print(f"{what} at step {s['step']:,} ({s['kimg']:,.1f} kimg, {s['minutes']:.1f} min of training)")
    print(
        f"samples   {s['samples']}\nloss plot {s['loss_plot']}\nstats     {s['stats']}\ngenerator {s['generator']}"
    )
    if not a.no_report:
        print(f"report    {Path(a.out) / 'report.html'}")
    if "best" in s:
        fid = next(f"{k} {v:.3f}" for k, v in s["best"].items() if k.startswith("fid["))
        print(f"best      {s['best']['path']} (step {s['best']['step']:,}, {fid})")
    if s["status"] != "finished":
        print("checkpoint saved: run the same command to continue")
    return 128 + s["signal"] if s["status"] == "interrupted" else 0


def add_train(sub: Any) -> None:
    p = parser_for(
        sub,
        "train",
        "train a DCGAN on a prepared dataset; the same command again resumes",
        "dcgan train data/fashion-mnist/train --preset fmnist32 --out runs/fmnist --epochs 10",
    )
    _what_and_how_long(p)
    _recipe(p)
    _where_it_runs(p)
    _bookkeeping(p)
    _evaluation(p)
    p.add_argument("--dry-run", action="store_true", help="two steps, to check that everything runs")
    p.add_argument(
        "--no-report", action="store_true", help="do not refresh OUT/report.html at every checkpoint"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or config print-out")
    p.set_defaults(fn=cmd_train)


def _what_and_how_long(p: argparse.ArgumentParser) -> None:
    from dcgan.config import DEFAULT_EPOCHS, PRESETS

    p.add_argument("dataset", help="a folder made by `dcgan prepare` or `dcgan data`")
    p.add_argument("--out", required=True, help="run folder: config, stats, samples, checkpoints, generator")
    p.add_argument(
        "--preset", default="paper64", choices=list(PRESETS), help="network and recipe (default paper64)"
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help=f"passes over the dataset (default {DEFAULT_EPOCHS})")
    length.add_argument("--kimg", type=float, help="thousands of images to show instead of --epochs")
    p.add_argument(
        "--max-minutes", type=float, help="stop (with a checkpoint) after this much time; rerun to go on"
    )


def _recipe(p: argparse.ArgumentParser) -> None:
    from dcgan.config import SCHEDULES

    p.add_argument("--batch", type=int, help="minibatch size (default 128, the paper's)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 2e-4, the paper's)")
    p.add_argument("--beta1", type=float, help="Adam β1 (default 0.5, the paper's)")
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="both: D then G on every minibatch (default, as "
        "pytorch/examples); alternate: each minibatch updates D or G (the original code)",
    )
    p.add_argument(
        "--fuse-d", action="store_true", help="real and fake through D in one call (changes BN statistics)"
    )


def _where_it_runs(p: argparse.ArgumentParser) -> None:
    from dcgan.config import BN_MODES, DEVICES, PRECISIONS

    p.add_argument(
        "--no-compile",
        action="store_true",
        help="on CUDA, run G and D without torch.compile (no start-up compile; ~20%% fewer images/s)",
    )
    p.add_argument(
        "--precision", choices=PRECISIONS, help="auto (default): bf16 where the hardware runs it natively"
    )
    p.add_argument("--device", choices=DEVICES, help="auto (default): cuda, else mps, else cpu")
    add_threads(p)
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train as N processes on this machine (DDP over gloo on CPU, NCCL on GPUs; the same as "
        "`torchrun --standalone --nproc-per-node N -m dcgan train …`); --batch stays the global batch",
    )
    p.add_argument(
        "--bn",
        choices=BN_MODES,
        help="with several processes: global (default; BatchNorm statistics over the whole global batch, the "
        "paper's algorithm) or rank (each process's share alone: cheaper, and a different model)",
    )


def _bookkeeping(p: argparse.ArgumentParser) -> None:
    from dcgan.config import ON_NAN

    p.add_argument("--seed", type=int, help="seed for init, data order and z (default 0)")
    p.add_argument("--sample-every", type=int, help="steps between sample grids (default 500)")
    p.add_argument("--ckpt-every", type=int, help="steps between checkpoints (default 1000)")
    p.add_argument("--log-every", type=int, help="steps between stats.jsonl lines (default 50)")
    p.add_argument("--keep", type=int, help="checkpoints kept (default 3)")
    p.add_argument(
        "--on-nan",
        choices=ON_NAN,
        help="stop (default) or rollback to the last checkpoint with a fresh data order",
    )


def _evaluation(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--eval-every",
        type=int,
        help="steps between FID evaluations; keeps RUN/best.safetensors (default 0: off)",
    )
    p.add_argument("--eval-num", type=int, help="generated and real images per evaluation (default 5000)")
    p.add_argument(
        "--extractor",
        help="feature space of --eval-every: a shipped name (fmnist) or a .safetensors (default: shipped, if one fits)",
    )
    p.add_argument(
        "--eval-patience", type=int, help="warn when FID rose this many evaluations in a row (default 3)"
    )


# ---------------------------------------------------------------- report


def cmd_report(a: argparse.Namespace) -> int:
    from dcgan import api

    path = api.write_report(a.run, a.out)
    print(f"report    {path} ({path.stat().st_size / 2**20:.1f} MB, self-contained: open it in any browser)")
    return 0


def add_report(sub: Any) -> None:
    p = parser_for(
        sub,
        "report",
        "one self-contained HTML page of a run: curves, samples over training, config, dataset, results",
        "dcgan report runs/fmnist && xdg-open runs/fmnist/report.html",
    )
    p.add_argument("run", help="a run folder made by `dcgan train`")
    p.add_argument("--out", metavar="HTML", help="where to write it (default RUN/report.html)")
    p.set_defaults(fn=cmd_report)


# ---------------------------------------------------------------- sample


# images generated and written at a time by --outdir (memory stays bounded at any --seeds)
SAMPLE_CHUNK = 4096


def cmd_sample(a: argparse.Namespace) -> int:
    import numpy as np

    from dcgan import api
    from dcgan.images import save_grid, save_pngs
    from dcgan.models import check_batch_passes
    from dcgan.progress import progress_bar

    if not a.grid and not a.outdir:
        raise DcganError("say where the images go: --grid out.png or --outdir DIR")
    if a.batch < 1:
        raise DcganError(f"--batch must be at least 1, got {a.batch}")
    seeds = api.seeds(a.seeds)
    g = generator_from_args(a)
    if a.bn == "batch":  # before any chunk is written
        check_batch_passes(g, len(seeds), a.batch)
    # whole forward passes per chunk, so that --bn batch groups the same seeds as one call would; a spatial z
    # paints (K+3)/4 times larger images, so fewer of them make a chunk
    per_chunk = SAMPLE_CHUNK / ((a.spatial + 3) / 4) ** 2
    chunk = a.batch * max(1, int(per_chunk) // a.batch)
    kept, written = [], set()
    with progress_bar(len(seeds) > chunk, total=len(seeds), unit="img", desc="sample") as bar:
        for i in range(0, len(seeds), chunk):
            part = seeds[i : i + chunk]
            images = api.sample(g, part, bn=a.bn, batch=a.batch, spatial=a.spatial, drop=a.drop)
            if a.outdir:  # one file per seed: a seed asked for twice is written once
                new = []
                for k, s in enumerate(part):
                    if s not in written:
                        written.add(s)
                        new.append(k)
                os.makedirs(a.outdir, exist_ok=True)
                save_pngs(images[new], [os.path.join(a.outdir, f"seed{part[k]:06d}.png") for k in new])
            if a.grid:
                kept.append(images)
            bar.update(len(part))
    if a.grid:
        save_grid(np.concatenate(kept), a.grid)
        dropped = f", the maps of {a.drop} dropped" if a.drop else ""
        print(f"grid      {a.grid} ({len(seeds)} images, seeds {a.seeds}, BN {a.bn}{dropped})")
    if a.outdir:
        print(f"images    {a.outdir}/seed######.png ({len(written)} files)")
    return 0


def add_sample(sub: Any) -> None:
    p = parser_for(
        sub,
        "sample",
        "generate images by seed from a run, a checkpoint or a generator file",
        "dcgan sample runs/fmnist --seeds 0-63 --grid samples.png",
    )
    p.add_argument("run", nargs="?", help="run folder, checkpoint folder or generator .safetensors")
    p.add_argument("--seeds", default="0-63", help="which images: 0-63 or 3,17,42 (default 0-63)")
    p.add_argument("--grid", metavar="PNG", help="save one grid of all images")
    p.add_argument("--outdir", metavar="DIR", help="save one PNG per seed")
    p.add_argument(
        "--drop",
        metavar="JSON",
        help="remove G's feature maps listed in a drops.json of `dcgan forget` (e.g. the window filters)",
    )
    p.add_argument(
        "--bn",
        choices=("running", "batch"),
        default="running",
        help="BN statistics: running (default; image k of seed s is the same at any batch size) or "
        "batch (as the original code; images depend on which seeds are generated together)",
    )
    p.add_argument(
        "--from-examples", metavar="PTH", help="a pytorch/examples netG_epoch_N.pth instead of a run"
    )
    p.add_argument("--batch", type=int, default=256, help="images per forward pass (default 256)")
    p.add_argument(
        "--spatial",
        type=int,
        default=1,
        metavar="K",
        help="large images: a K×K field of z per seed through the convolutional G (transposed-conv "
        "first layer, e.g. examples64): a 64² model paints (K+3)·16 pixels",
    )
    device_arguments(p)
    precision_argument(p)
    p.set_defaults(fn=cmd_sample)
