"""`dcgan data NAME`: the datasets that install offline, each got, verified and prepared in one command.

    fashion-mnist  grey 32², OUT/train and OUT/test (Debian's dataset-fashion-mnist, else downloaded)
    emoji          colour 64², 3,786 Noto emoji on a background (npm emoji-datasource-google), 10 categories
    sprites        colour 64², ~5,800 Wesnoth unit sprites (Debian wesnoth-1.16-data), 21 races
    faces          colour 64², N cartoon faces drawn from a seed (python-avatars), every attribute kept
    rooms          colour 64², N bedrooms drawn from a seed, with a class for every pixel (masks.npy)

A dataset already prepared at OUT is kept as it is (the command is safe to repeat, as `make demo` does);
`force` prepares it again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dcgan.data.folder import is_dataset
from dcgan.data.prepare import prepare
from dcgan.errors import DcganError
from dcgan.fileio import parse_json

# name → (what `data` prepares it with unless told otherwise, the options it takes beyond those)
DEFAULTS: dict[str, dict[str, Any]] = {
    "fashion-mnist": {"size": 32, "fit": "pad"},
    "emoji": {"size": 64, "fit": "pad", "background": (255, 255, 255)},
    "sprites": {"size": 64, "fit": "pad", "background": (255, 255, 255)},
    "faces": {"size": 64, "background": (230, 236, 242), "num": 50_000, "seed": 0, "label": "smiling"},
    "rooms": {"size": 64, "num": 50_000, "seed": 0},
}
OWN_OPTIONS = {"fashion-mnist": {"base_url"}, "faces": {"num", "seed", "label"}, "rooms": {"num", "seed"}}
DRAWN = ("faces", "rooms")  # generated from a seed, not read from files
NAMES = tuple(DEFAULTS)


def get_dataset(
    name: str,
    out: str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
    **options: Any,
) -> dict[Path, dict[str, Any]]:
    """Get and prepare dataset `name` under `out`; returns {dataset folder: manifest}. `source` is where the
    raw files are when not in their default place (the IDX folder, the npm .tgz, Wesnoth's units/ folder).
    Options: size (all), fit, background (all but rooms), base_url (fashion-mnist), num, seed (faces,
    rooms), label (faces)."""
    if name not in DEFAULTS:
        raise DcganError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    given = {k: v for k, v in options.items() if v is not None}
    allowed = {"size", "fit", "background"} | OWN_OPTIONS.get(name, set())
    if name == "fashion-mnist":
        allowed -= {"background"}
    if name == "rooms":
        allowed -= {"background", "fit"}
    wrong = sorted(set(given) - allowed)
    if wrong:
        flags = ", ".join("--url" if w == "base_url" else "--" + w for w in wrong)
        raise DcganError(f"{flags} do{'es' if len(wrong) == 1 else ''} not apply to {name}; leave it out")
    if name in DRAWN and source is not None:
        raise DcganError(f"{name} are drawn, not read: --from does not apply; use --num and --seed")
    opts = {**DEFAULTS[name], **given}
    out = Path(out)
    if name == "fashion-mnist":
        from dcgan.data.download import prepare_fashion_mnist

        ms = prepare_fashion_mnist(out, source, force=force, progress=progress, **opts)
        return {out / split: m for split, m in ms.items()}
    if is_dataset(out) and not force:
        kept = parse_json((out / "manifest.json").read_bytes())
        _check_same(name, kept, opts, out)
        return {out: kept}
    if name == "emoji":
        from dcgan.data.emoji import fetch_emoji, read_emoji

        src = read_emoji(source if source is not None else fetch_emoji(out.parent / "raw"))
    elif name == "sprites":
        from dcgan.data.sprites import WESNOTH_UNITS, read_sprites

        src = read_sprites(source if source is not None else WESNOTH_UNITS)
    elif name == "faces":
        from dcgan.data.faces import read_faces
        from dcgan.threads import available_cores

        n, seed, label = opts.pop("num"), opts.pop("seed"), opts.pop("label")
        src = read_faces(n, seed, opts["size"], opts["background"], label, workers or available_cores())
    else:
        from dcgan.data.rooms import read_rooms
        from dcgan.threads import available_cores

        src = read_rooms(opts.pop("num"), opts.pop("seed"), opts["size"], workers or available_cores())
    return {out: prepare(src, out, force=force, progress=progress, workers=workers, channels=3, **opts)}


def _check_same(name: str, manifest: dict[str, Any], opts: dict[str, Any], out: Path) -> None:
    """A dataset kept at OUT must be the one asked for: the same size, fit and background, and for faces
    the same draw; otherwise say so rather than hand back something else."""
    want: dict[str, Any] = {"size": opts["size"]}
    if "background" in opts:
        want["background"] = list(opts["background"])
    if "fit" in opts:
        want["fit"] = opts["fit"]
    if name == "rooms":
        want["generator"] = {"name": "rooms", "seed": opts["seed"], "num": opts["num"]}
    if name == "faces":
        want["generator"] = {
            "name": "faces",
            "seed": opts["seed"],
            "num": opts["num"],
            "label": opts["label"],
        }
    differ = [k for k, v in want.items() if manifest.get(k) != v]
    if differ:
        has = ", ".join(f"{k} {manifest.get(k)}" for k in differ)
        asked = ", ".join(f"{k} {want[k]}" for k in differ)
        raise DcganError(
            f"{str(out)!r} already holds {name} with {has}, not {asked}; pass --force to prepare it again "
            "or choose another --out"
        )
