"""`dcgan data sprites`: the unit sprites of Battle for Wesnoth, from the Debian package wesnoth-1.16-data.

About 5,800 RGBA sprites, mostly 72×72, under units/RACE/[UNIT/]NAME.png: a unit's base picture beside its
animation frames (`archer.png`, `archer-bow-attack-1.png`, …). The label is the race (the first folder), and
attributes.npy says which unit each frame belongs to, so that near-duplicates that are animation frames of
one unit can be told apart from copies:

    attributes.npy int32 (N, 1): the unit, an index into the manifest's attributes[0]["values"]

Wesnoth's art is GPL-2+ / CC BY-SA (see /usr/share/doc/wesnoth-1.16-data/copyright).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dcgan.data.items import Item, Source
from dcgan.errors import DcganError

WESNOTH_UNITS = Path("/usr/share/games/wesnoth/1.16/data/core/images/units")


def unit_of(stem: str, stems_in_folder: set[str]) -> str:
    """The unit a sprite shows: the shortest stem S in its folder with `stem` == S or starting with S + "-"
    (`bowman-bow-attack-1` → `bowman`); without one, the stem less a trailing frame number."""
    parts = stem.split("-")
    for k in range(1, len(parts) + 1):
        if "-".join(parts[:k]) in stems_in_folder:
            return "-".join(parts[:k])
    return "-".join(parts[:-1]) if len(parts) > 1 and parts[-1].isdigit() else stem


def read_sprites(root: str | Path = WESNOTH_UNITS) -> Source:
    root = Path(root)
    if not root.is_dir():
        raise DcganError(
            f"the Wesnoth unit sprites are not at {str(root)!r}; install them with "
            "`apt-get install wesnoth-1.16-data`, or pass --from with the units/ folder"
        )
    files: list[tuple[str, str, str]] = []  # (relative path, race, unit)
    for race in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for folder in sorted({race, *(p for p in race.rglob("*") if p.is_dir())}):
            pngs = sorted(p for p in folder.glob("*.png") if p.is_file() and not p.name.startswith("."))
            stems = {p.stem for p in pngs}
            for p in pngs:
                unit = f"{folder.relative_to(root).as_posix()}/{unit_of(p.stem, stems)}"
                files.append((p.relative_to(root).as_posix(), race.name, unit))
    if not files:
        raise DcganError(f"no PNG sprites in race folders under {str(root)!r}; give Wesnoth's units/ folder")
    races = sorted({r for _, r, _ in files})
    units = sorted({u for _, _, u in files})
    unit_index = {u: i for i, u in enumerate(units)}
    by_path = {rel: unit_index[u] for rel, _, u in files}

    def items() -> Iterator[Item]:
        for rel, race, _ in files:
            yield str(root / rel), races.index(race), rel

    def extras(ids: list[str]) -> dict[str, np.ndarray]:
        return {"attributes": np.array([[by_path[i]] for i in ids], np.int32).reshape(-1, 1)}

    return Source(
        "wesnoth-sprites",
        root,
        len(files),
        items,
        races,
        encoded=True,
        extras=extras,
        about={"attributes": [{"name": "unit", "values": units}]},
    )
