"""The `dcgan` command: argparse subcommands, each a thin call of a public function.

Exit codes: 0 success, 2 a user error (one line on stderr, no traceback), 1 a bug (with its traceback).
Heavy modules are imported inside the commands so `dcgan --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import dcgan
from dcgan.errors import DcganError

Command = Callable[[argparse.Namespace], int]


def _parser(sub: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# ---------------------------------------------------------------- prepare


def cmd_prepare(a: argparse.Namespace) -> int:
    from dcgan.data.prepare import prepare
    from dcgan.data.transforms import parse_color

    m = prepare(
        a.source,
        a.out,
        size=a.size,
        channels=a.channels,
        fit=a.fit,
        filter=a.filter,
        background=parse_color(a.background),
        max_images=a.max_images,
        split=a.split,
        class_folders=a.labels,
        strict=a.strict,
        force=a.force,
        workers=a.workers,
        progress=not a.quiet,
    )
    n, s, _, c = m["shape"]
    print(
        f"wrote {n:,} images {s}×{s}×{c} to {a.out} in {m['seconds']:.1f} s "
        f"({m['counts']['skipped']:,} skipped{', see manifest.json' if m['counts']['skipped'] else ''})"
    )
    return 0


def add_prepare(sub: Any) -> None:
    from dcgan.data.transforms import FILTERS, FITS

    p = _parser(
        sub,
        "prepare",
        "turn images (folder, zip, LSUN LMDB, CIFAR, SVHN, IDX, .npy/.npz) into a dataset folder",
        "dcgan prepare ~/photos data/photos64 --size 64 --fit crop",
    )
    p.add_argument(
        "source",
        help="image folder, .zip, LSUN LMDB folder, CIFAR folder or .tar.gz, SVHN .mat, IDX, .npy/.npz",
    )
    p.add_argument("out", help="dataset folder to create (images.npy, labels.npy, manifest.json)")
    p.add_argument("--size", type=int, required=True, help="output side in pixels, e.g. 64")
    p.add_argument(
        "--channels", type=int, choices=(1, 3), help="1 grey or 3 RGB (default: grey sources stay grey)"
    )
    p.add_argument(
        "--fit",
        choices=FITS,
        default="crop",
        help="crop: centre square (default); pad: centre on a "
        "background square, small images not upscaled (28→32); stretch: ignore the aspect ratio",
    )
    p.add_argument("--filter", choices=list(FILTERS), default="area", help="resize filter (default area)")
    p.add_argument(
        "--background", default="black", help="pad and transparency colour: black, white, #rrggbb or r,g,b"
    )
    p.add_argument("--max-images", type=int, help="stop after this many images")
    p.add_argument("--split", help="train or test for CIFAR and IDX folders (default train)")
    p.add_argument("--labels", action="store_true", help="image folders/zips: class subfolders become labels")
    p.add_argument(
        "--strict", action="store_true", help="fail on the first undecodable image instead of skipping it"
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument(
        "--workers", type=int, help="decoding processes for folders, zips, LMDB (default: all cores)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_prepare)


# ---------------------------------------------------------------- info


def cmd_info(a: argparse.Namespace) -> int:
    import numpy as np

    from dcgan.data.dataset import PreparedDataset
    from dcgan.report.grid import save_grid

    ds = PreparedDataset(a.dataset)
    m = ds.manifest
    if a.json:
        print(json.dumps({k: v for k, v in m.items() if k != "skipped"}, indent=2))
    else:
        print(describe_dataset(ds))
    if a.grid:
        if a.num < 1:
            raise DcganError(f"--num must be at least 1, got {a.num}")
        rng = np.random.default_rng(a.seed)
        idx = np.sort(rng.choice(len(ds), size=min(a.num, len(ds)), replace=False))
        save_grid(ds.images[idx], a.grid, scale=max(1, 64 // ds.image_size))
        print(
            f"grid      {a.grid} ({len(idx)} random images, seed {a.seed})",
            file=sys.stderr if a.json else sys.stdout,
        )
    return 0


def describe_dataset(ds: Any) -> str:
    """The human-readable summary `dcgan info` prints."""
    m = ds.manifest
    n, s, _, c = m["shape"]
    counts = m["counts"]
    lines = [
        f"dataset   {ds.path}",
        f"images    {n:,} × {s}×{s}×{c} uint8 ({ds.images.nbytes / 2**20:.1f} MiB)",
        f"source    {m['source']} ({m['reader']}{', split ' + m['split'] if m.get('split') else ''})",
        f"prepared  fit {m['fit']}, filter {m['filter']}, background {','.join(map(str, m['background']))}; "
        f"dcgan {m['dcgan_version']}, {m['created']}",
        f"read      {counts['read']:,}, skipped {counts['skipped']:,}, non-image files ignored {counts['ignored_non_images']:,}",
        f"sha256    {m['images_sha256']}",
    ]
    for s_ in m.get("skipped", [])[:5]:
        lines.append(f"  skipped {s_['id']}: {s_['reason']}")
    if m.get("labels"):
        lines.append(f"labels    {len(m['label_names'])} classes")
        for i, (name, k) in enumerate(zip(m["label_names"], m["class_counts"])):
            lines.append(f"  {i:>3} {name:<16} {k:>9,}")
    else:
        lines.append("labels    none")
    return "\n".join(lines)


def add_info(sub: Any) -> None:
    p = _parser(
        sub,
        "info",
        "summarize a prepared dataset and save a grid of random images",
        "dcgan info data/fashion-mnist/train --grid fmnist.png",
    )
    p.add_argument("dataset", help="a folder made by `dcgan prepare`")
    p.add_argument("--grid", metavar="PNG", help="save a grid of random images here")
    p.add_argument("--num", type=int, default=64, help="images in the grid (default 64)")
    p.add_argument("--seed", type=int, default=0, help="which random images (default 0)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead")
    p.set_defaults(fn=cmd_info)


# ---------------------------------------------------------------- data


def cmd_data(a: argparse.Namespace) -> int:
    from dcgan.data.download import prepare_fashion_mnist

    ms = prepare_fashion_mnist(
        a.out, a.dir, base_url=a.url, size=a.size, fit=a.fit, force=a.force, progress=not a.quiet
    )
    for split, m in ms.items():
        n, s, _, c = m["shape"]
        print(f"{split:<5} {n:>7,} images {s}×{s}×{c} → {a.out}/{split}")
    return 0


def add_data(sub: Any) -> None:
    p = _parser(
        sub,
        "data",
        "get an offline dataset and prepare it (fashion-mnist)",
        "dcgan data fashion-mnist --out data/fashion-mnist",
    )
    p.add_argument("name", choices=["fashion-mnist"], help="which dataset")
    p.add_argument(
        "--out", default="data/fashion-mnist", help="folder for train/ and test/ (default data/fashion-mnist)"
    )
    p.add_argument(
        "--dir", help="folder with the four IDX files (default: the Debian package, else download)"
    )
    p.add_argument(
        "--url",
        help="download from this base URL even if the Debian package is installed "
        "(default: the package, else the official mirror)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=32,
        help="output side (default 32: 28² padded, as the fmnist32 preset wants)",
    )
    p.add_argument("--fit", default="pad", choices=("pad", "crop", "stretch"), help="default pad")
    p.add_argument("--force", action="store_true", help="prepare again even if OUT/train and OUT/test exist")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_data)


# ---------------------------------------------------------------- train


def _preload_tcmalloc(argv: Sequence[str]) -> None:
    """Re-exec under tcmalloc when it is installed: glibc malloc maps and frees the activation buffers every
    step, which costs ~1.3× on CPU. DCGAN_NO_TCMALLOC=1 turns this off."""
    import ctypes.util

    preload = os.environ.get("LD_PRELOAD", "")
    if sys.platform != "linux" or "tcmalloc" in preload or os.environ.get("DCGAN_NO_TCMALLOC"):
        return
    lib = ctypes.util.find_library("tcmalloc_minimal")
    if lib:
        env = {**os.environ, "LD_PRELOAD": f"{lib} {preload}".strip(), "DCGAN_NO_TCMALLOC": "1"}
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "dcgan.cli", *argv], env)


def _silent(_: str) -> None:
    pass


def cmd_train(a: argparse.Namespace) -> int:
    from dcgan.config import train_config
    from dcgan.training.loop import train

    if a.dry_run:
        a.kimg, a.epochs, a.log_every = None, None, 1
    cfg = train_config(
        a.preset,
        batch=a.batch,
        lr=a.lr,
        beta1=a.beta1,
        schedule=a.schedule,
        fuse_d=a.fuse_d or None,
        epochs=a.epochs,
        kimg=a.kimg if not a.dry_run else 2 * (a.batch or 128) / 1000,
        seed=a.seed,
        precision=a.precision,
        device=a.device,
        sample_every=a.sample_every,
        ckpt_every=a.ckpt_every,
        log_every=a.log_every,
        keep=a.keep,
        on_nan=a.on_nan,
    )
    s = train(
        cfg,
        a.dataset,
        a.out,
        max_minutes=a.max_minutes,
        progress=not a.quiet,
        log=_silent if a.quiet else print,
    )
    what = {"finished": "finished", "time-limit": "stopped at the time limit", "interrupted": "interrupted"}[
        s["status"]
    ]
    print(f"{what} at step {s['step']:,} ({s['kimg']:,.1f} kimg, {s['minutes']:.1f} min of training)")
    print(
        f"samples   {s['samples']}\nloss plot {s['loss_plot']}\nstats     {s['stats']}\ngenerator {s['generator']}"
    )
    if s["status"] != "finished":
        print("checkpoint saved: run the same command to continue")
    return 128 + s["signal"] if s["status"] == "interrupted" else 0


def add_train(sub: Any) -> None:
    from dcgan.config import DEVICES, ON_NAN, PRECISIONS, PRESETS, SCHEDULES

    p = _parser(
        sub,
        "train",
        "train a DCGAN on a prepared dataset; the same command again resumes",
        "dcgan train data/fashion-mnist/train --preset fmnist32 --out runs/fmnist --epochs 10",
    )
    p.add_argument("dataset", help="a folder made by `dcgan prepare` or `dcgan data`")
    p.add_argument("--out", required=True, help="run folder: config, stats, samples, checkpoints, generator")
    p.add_argument(
        "--preset", default="paper64", choices=list(PRESETS), help="network and recipe (default paper64)"
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help="passes over the dataset (default 5)")
    length.add_argument("--kimg", type=float, help="thousands of images to show instead of --epochs")
    p.add_argument(
        "--max-minutes", type=float, help="stop (with a checkpoint) after this much time; rerun to go on"
    )
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
    p.add_argument(
        "--precision", choices=PRECISIONS, help="auto (default): bf16 where the hardware runs it natively"
    )
    p.add_argument("--device", choices=DEVICES, help="auto (default): cuda, else mps, else cpu")
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
    p.add_argument("--dry-run", action="store_true", help="two steps, to check that everything runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar or config print-out")
    p.set_defaults(fn=cmd_train)


# ---------------------------------------------------------------- sample


def cmd_sample(a: argparse.Namespace) -> int:
    from dcgan.device import resolve
    from dcgan.report.grid import save_grid, save_png
    from dcgan.sampling import generate, load_examples_generator, load_generator, parse_seeds, to_uint8

    if not a.grid and not a.outdir:
        raise DcganError("say where the images go: --grid out.png or --outdir DIR")
    seeds = parse_seeds(a.seeds)
    device = resolve(a.device, "fp32").device
    if a.from_examples:
        g, _ = load_examples_generator(a.from_examples, device)
    elif a.run:
        g, _ = load_generator(a.run, device)
    else:
        raise DcganError(
            "give a run folder, a checkpoint or a generator .safetensors (or --from-examples PTH)"
        )
    images = to_uint8(generate(g, seeds, bn=a.bn, batch=a.batch))
    if a.grid:
        save_grid(images, a.grid, scale=max(1, 64 // images.shape[1]))
        print(f"grid      {a.grid} ({len(seeds)} images, seeds {a.seeds}, BN {a.bn})")
    if a.outdir:
        os.makedirs(a.outdir, exist_ok=True)
        for s, img in zip(seeds, images):
            save_png(img, os.path.join(a.outdir, f"seed{s:06d}.png"))
        print(f"images    {a.outdir}/seed######.png ({len(seeds)} files)")
    return 0


def add_sample(sub: Any) -> None:
    p = _parser(
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
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.set_defaults(fn=cmd_sample)


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcgan",
        description="DCGAN (Radford, Metz & Chintala, 2016) on your own data.",
        epilog="example:\n  dcgan data fashion-mnist && dcgan info data/fashion-mnist/train --grid grid.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dcgan {dcgan.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_prepare, add_info, add_data, add_train, add_sample):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train" and args.device in (None, "auto", "cpu"):
        _preload_tcmalloc(sys.argv[1:] if argv is None else list(argv))
    try:
        return args.fn(args)
    except DcganError as e:
        print(f"dcgan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `dcgan info … | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a path the user gave: missing, not permitted, disk full
        print(
            f"dcgan {args.command}: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"dcgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
