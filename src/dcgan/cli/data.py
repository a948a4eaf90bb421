"""`dcgan prepare`, `dcgan info`, `dcgan data`: datasets in."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dcgan.cli.common import parser_for
from dcgan.errors import DcganError

# ---------------------------------------------------------------- prepare


def cmd_prepare(a: argparse.Namespace) -> int:
    from dcgan import api

    ds = api.prepare(
        a.source,
        a.out,
        size=a.size,
        channels=a.channels,
        fit=a.fit,
        filter=a.filter,
        background=a.background,
        max_images=a.max_images,
        split=a.split,
        class_folders=a.labels,
        strict=a.strict,
        force=a.force,
        workers=a.workers,
        dedup_radius=a.dedup,
        progress=not a.quiet,
    )
    m = ds.manifest
    n, s, _, c = m["shape"]
    print(
        f"wrote {n:,} images {s}×{s}×{c} to {a.out} in {m['seconds']:.1f} s "
        f"({m['counts']['skipped']:,} skipped{', see manifest.json' if m['counts']['skipped'] else ''})"
    )
    if "dedup" in m:
        print(
            f"dedup     removed {m['dedup']['removed']:,} duplicates in {m['dedup']['groups']:,} groups; "
            f"audit them in {a.out}/dedup-audit.html"
        )
    return 0


def add_prepare(sub: Any) -> None:
    from dcgan.data.transforms import FILTERS, FITS

    p = parser_for(
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
    p.add_argument(
        "--dedup",
        type=int,
        nargs="?",
        const=0,
        metavar="RADIUS",
        help="then remove near-duplicates as `dcgan dedup` does (codes within RADIUS bits; default 0)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_prepare)


# ---------------------------------------------------------------- info


def cmd_info(a: argparse.Namespace) -> int:
    import numpy as np

    from dcgan.data.dataset import PreparedDataset
    from dcgan.images import save_grid

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
        save_grid(ds.images[idx], a.grid)
        print(
            f"grid      {a.grid} ({len(idx)} random images, seed {a.seed})",
            file=sys.stderr if a.json else sys.stdout,
        )
    return 0


def describe_dataset(ds: Any) -> str:
    """The human-readable summary `dcgan info` prints; a field the manifest lacks shows as '?'."""
    m = ds.manifest
    n, s, _, c = ds.images.shape if ds.images.ndim == 4 else (len(ds), ds.image_size, 0, ds.channels)

    def get(key: str, where: dict | None = None) -> Any:
        value = (m if where is None else where).get(key, "?")
        return "?" if value is None else value

    def num(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) else str(value)

    counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
    background = m.get("background")
    lines = [
        f"dataset   {ds.path}",
        f"images    {n:,} × {s}×{s}×{c} uint8 ({ds.images.nbytes / 2**20:.1f} MiB)",
        f"source    {get('source')} ({get('reader')}{', split ' + str(m['split']) if m.get('split') else ''})",
        f"prepared  fit {get('fit')}, filter {get('filter')}, background "
        f"{','.join(map(str, background)) if isinstance(background, list) else '?'}; "
        f"dcgan {get('dcgan_version')}, {get('created')}",
        f"read      {num(get('read', counts))}, skipped {num(get('skipped', counts))}, "
        f"non-image files ignored {num(get('ignored_non_images', counts))}",
        f"sha256    {m['images_sha256']}",
    ]
    skipped = m.get("skipped") if isinstance(m.get("skipped"), list) else []
    for s_ in skipped[:5]:
        if isinstance(s_, dict):
            lines.append(f"  skipped {s_.get('id', '?')}: {s_.get('reason', '?')}")
    names, class_counts = m.get("label_names"), m.get("class_counts")
    if m.get("labels") and isinstance(names, list) and isinstance(class_counts, list):
        lines.append(f"labels    {len(names)} classes")
        for i, (name, k) in enumerate(zip(names, class_counts)):
            lines.append(f"  {i:>3} {name!s:<16} {num(k):>9}")
    else:
        lines.append("labels    none" if not m.get("labels") else "labels    yes (names or counts missing)")
    about = m.get("attributes") if isinstance(m.get("attributes"), list) else []
    columns = [str(a.get("name")) for a in about if isinstance(a, dict)]
    for name in ds.arrays:
        what = f": {', '.join(columns)}" if name == "attributes" and columns else ""
        lines.append(f"per image {name}.npy{what}")
    if isinstance(m.get("dedup"), dict):
        d = m["dedup"]
        lines.append(
            f"dedup     {num(d.get('removed', '?'))} removed in {num(d.get('groups', '?'))} groups, see dedup.json"
        )
    return "\n".join(lines)


def add_info(sub: Any) -> None:
    p = parser_for(
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
    from dcgan import api
    from dcgan.data.transforms import parse_color

    out = a.out or f"data/{a.name}"
    datasets = api.get_dataset(
        a.name,
        out,
        source=a.source,
        size=a.size,
        fit=a.fit,
        background=parse_color(a.background) if a.background else None,
        base_url=a.url,
        num=a.num,
        seed=a.seed,
        label=a.label,
        force=a.force,
        workers=a.workers,
        progress=not a.quiet,
    )
    for folder, ds in datasets.items():
        n, s, _, c = ds.manifest["shape"]
        names = ds.label_names
        labels = f", {len(names)} classes" if names else ""
        extra = "".join(f" + {k}.npy" for k in ds.arrays)
        print(f"{n:>7,} images {s}×{s}×{c}{labels}{extra} → {folder}")
    return 0


def add_data(sub: Any) -> None:
    from dcgan.data.catalog import NAMES

    p = parser_for(
        sub,
        "data",
        "get a dataset that installs offline and prepare it: " + ", ".join(NAMES),
        "dcgan data faces --out data/faces --num 50000\n  dcgan data rooms --out data/rooms\n"
        "  dcgan data fashion-mnist --out data/fashion-mnist",
    )
    p.add_argument(
        "name",
        choices=NAMES,
        help="fashion-mnist (grey 32², train/ and test/), emoji (3,786, 10 categories), sprites (~5,800 "
        "Wesnoth units, 21 races), faces (drawn from a seed, with attributes), rooms (bedrooms drawn from a "
        "seed, with a class for every pixel); see docs/DATA.md",
    )
    p.add_argument(
        "--out", help="dataset folder (fashion-mnist: the folder for train/ and test/); default data/NAME"
    )
    p.add_argument(
        "--from",
        dest="source",
        metavar="PATH",
        help="where the raw files are: fashion-mnist the four IDX files' folder (default: the Debian "
        "package, else download); emoji the .tgz of `npm pack emoji-datasource-google@16.0.0` (default: "
        "packed into data/raw); sprites Wesnoth's units/ folder (default: the Debian package)",
    )
    p.add_argument("--dir", dest="source", help=argparse.SUPPRESS)  # the old name of --from
    p.add_argument(
        "--url",
        help="fashion-mnist: download from this base URL even if the Debian package is installed",
    )
    p.add_argument("--size", type=int, help="output side (default 32 for fashion-mnist, else 64)")
    p.add_argument(
        "--fit", choices=("pad", "crop", "stretch"), help="how non-square images are fitted (default pad)"
    )
    p.add_argument(
        "--background",
        help="emoji, sprites, faces: colour behind transparent pixels (white; faces #e6ecf2)",
    )
    p.add_argument("--num", type=int, help="faces, rooms: how many to draw (default 50,000)")
    p.add_argument(
        "--seed", type=int, help="faces, rooms: which ones (picture k of a seed is always the same)"
    )
    p.add_argument("--label", help="faces: the attribute labels.npy holds (default smiling)")
    p.add_argument("--force", action="store_true", help="prepare again even if OUT is already prepared")
    p.add_argument("--workers", type=int, help="decoding or drawing processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_data)


# ---------------------------------------------------------------- dedup


def cmd_dedup(a: argparse.Namespace) -> int:
    from dcgan import api

    hash_options = {
        k: v
        for k, v in dict(
            bits=a.bits, side=a.side, epochs=a.epochs, noise=a.noise, dropout=a.dropout, threshold=a.threshold,
            seed=a.seed,
        ).items()
        if v is not None
    }  # fmt: skip
    if a.epochs is not None:  # asked for: exactly that many epochs, however small the dataset
        hash_options["min_steps"] = 0
    clean, found = api.dedup(
        a.dataset,
        a.out,
        radius=a.radius,
        audit=a.audit,
        allow_collapsed=a.allow_collapsed,
        force=a.force,
        progress=not a.quiet,
        **hash_options,
    )
    print(describe_hash(found.health))
    n = found.health["images"]
    print(
        f"removed {len(found.removed):,} of {n:,} images ({len(found.removed) / n:.1%}) in "
        f"{len(found.groups):,} groups (codes within {found.radius} bits) → {a.out} ({len(clean):,} images)"
    )
    print(f"audit     {a.out}/dedup-audit.html: mark pairs same/different for a bound on false positives")
    return 0


def describe_hash(h: dict[str, Any]) -> str:
    return (
        f"hash      {h['active_bits']} of {h['bits']} bits vary, bit entropy {h['bit_entropy']}, "
        f"{h['distinct_codes']:,} distinct codes, largest collision {h['largest_collision']:,}"
    )


def add_dedup(sub: Any) -> None:
    p = parser_for(
        sub,
        "dedup",
        "remove near-duplicate images the paper's way: an autoencoder's binarized code as a hash (§4.1.1)",
        "dcgan dedup data/emoji --out data/emoji-dedup --radius 2",
    )
    p.add_argument("dataset", help="a folder made by `dcgan prepare` or `dcgan data`")
    p.add_argument(
        "--out", required=True, help="the dataset without duplicates (+ dedup.json, the audit sheet)"
    )
    p.add_argument(
        "--radius",
        type=int,
        default=0,
        help="codes within this many bits are duplicates (default 0: exact collisions, as the paper)",
    )
    p.add_argument(
        "--threshold",
        choices=("zero", "median"),
        help="a bit is on when its ReLU unit is above 0 (default, the paper) or above its median",
    )
    p.add_argument("--bits", type=int, help="code length (default 128)")
    p.add_argument("--side", type=int, help="images are downsampled to side² before hashing (default 32)")
    p.add_argument(
        "--epochs",
        type=int,
        help="autoencoder epochs, exactly (default: 10 epochs or 3,000 steps of 256, whichever is more, on "
        "at most 100k images)",
    )
    p.add_argument("--noise", type=float, help="de-noising: input noise while training (default 0.2)")
    p.add_argument("--dropout", type=float, help="dropout on the code while training (default 0.5)")
    p.add_argument("--seed", type=int, help="autoencoder init, subset and audit pairs (default 0)")
    p.add_argument("--audit", type=int, default=300, help="random pairs on the audit sheet (default 300)")
    p.add_argument(
        "--allow-collapsed",
        action="store_true",
        help="go on even when the hash collapsed (few bits vary, or one code covers >1%% of the images)",
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it is a prepared dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(fn=cmd_dedup)
