"""`dcgan data emoji`: Noto colour emoji as 64×64 PNGs, from the npm package emoji-datasource-google.

The package (Apache-2.0) holds img/google/64/*.png — 1,911 emoji and 1,875 skin-tone variants — and
emoji.json, which names each emoji's category (10: Smileys & Emotion, People & Body, …, Flags). The label
is the category; attributes.npy keeps what makes variants natural near-duplicates of each other:

    attributes.npy int32 (N, 2): [base emoji, skin tone], indices into the manifest's attributes values
                                 (skin tone 0 is "none": the base picture)

The tarball is what `npm pack emoji-datasource-google@16.0.0` writes; `fetch_emoji` runs exactly that and
checks the tarball's sha256. The reader takes that .tgz or an unpacked package folder, reads it in one
sequential pass, and bounds what it keeps by the bytes actually present.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data import limits
from dcgan.data.items import Item, Source, Unreadable
from dcgan.errors import DcganError
from dcgan.fileio import parse_json, sha256_file

PACKAGE, VERSION = "emoji-datasource-google", "16.0.0"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"
TARBALL_SHA256 = "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"
IMAGES = "img/google/64/"
MAX_JSON = 64 << 20  # emoji.json is ~1.6 MB
MAX_PNG = 4 << 20  # a 64×64 PNG is a few kB
MAX_MEMBERS = 100_000  # files in the tarball (the package has ~3,800); each costs tarfile a TarInfo


def fetch_emoji(cache: Path) -> Path:
    """The verified tarball in `cache`, packed there by the npm client if it is not there yet."""
    path = cache / TARBALL
    if not path.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise DcganError(
                f"`dcgan data emoji` needs the npm package {PACKAGE}: install npm (apt-get install npm), or "
                f"run `npm pack {PACKAGE}@{VERSION}` elsewhere and pass the .tgz with --from"
            )
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(cache), "--silent"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise DcganError(
                f"`npm pack {PACKAGE}@{VERSION}` did not finish in 15 minutes; run it by hand and pass the .tgz "
                "with --from"
            ) from None
        if done.returncode != 0 or not path.is_file():
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise DcganError(
                f"`npm pack {PACKAGE}@{VERSION}` failed ({last}); run it by hand and pass the .tgz with --from"
            )
    got = sha256_file(path)
    if got != TARBALL_SHA256:
        raise DcganError(
            f"{str(path)!r} is not {PACKAGE} {VERSION} (sha256 {got[:16]}… ≠ {TARBALL_SHA256[:16]}…); "
            "delete it and run the command again"
        )
    return path


def _package_files(path: Path) -> tuple[bytes, dict[str, bytes]]:
    """(emoji.json, {PNG name: bytes}) of a package .tgz or folder, keeping at most the bytes present."""
    pngs: dict[str, bytes] = {}
    meta: bytes | None = None
    kept = 0

    def keep(name: str, data: bytes) -> None:
        nonlocal kept
        kept += len(data)
        limits.check_memory(repr(str(path)), kept, "holds PNGs of")
        pngs[name] = data

    if path.is_dir():
        root = path / "package" if (path / "package" / "emoji.json").is_file() else path
        if (root / "emoji.json").is_file():
            meta = _read_capped(root / "emoji.json", MAX_JSON)
        for f in sorted((root / IMAGES).glob("*.png")) if (root / IMAGES).is_dir() else []:
            keep(f.name, _read_capped(f, MAX_PNG))
    else:
        try:
            with open(path, "rb") as raw:
                gz = raw.read(2) == b"\x1f\x8b"
            # one sequential pass over at most max_memory() unpacked bytes: no seeking back, no bomb
            with (
                gzip.open(path) if gz else open(path, "rb") as stream,
                tarfile.open(fileobj=_Capped(stream, limits.max_memory(), path), mode="r|") as tar,
            ):
                for count, member in enumerate(tar):
                    if count > MAX_MEMBERS:
                        raise DcganError(
                            f"{str(path)!r} holds more than {MAX_MEMBERS:,} files; the package has ~3,800"
                        )
                    name = member.name.split("/", 1)[-1]  # npm wraps everything in package/
                    if not member.isfile():
                        continue
                    if name == "emoji.json":
                        meta = _member(tar, member, MAX_JSON, path)
                    elif name.startswith(IMAGES) and name.endswith(".png") and "/" not in name[len(IMAGES) :]:
                        keep(name[len(IMAGES) :], _member(tar, member, MAX_PNG, path))
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise DcganError(
                f"{str(path)!r} is not a readable npm package tarball ({type(e).__name__}: {e}); "
                f"pack it again with `npm pack {PACKAGE}@{VERSION}`"
            ) from None
    if meta is None:
        raise DcganError(
            f"{str(path)!r} has no emoji.json; expected the {PACKAGE} package (its .tgz or its folder)"
        )
    return meta, pngs


class _Capped:
    """A read-only stream that refuses to give more than `cap` bytes in all."""

    def __init__(self, stream: Any, cap: int, path: Path) -> None:
        self.stream, self.left, self.path = stream, cap, path

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n if n is not None and n >= 0 else self.left + 1)
        self.left -= len(data)
        if self.left < 0:
            raise DcganError(
                f"{str(self.path)!r} unpacks to more than a reader may hold here ({limits.max_memory():,} "
                "bytes); the package unpacks to ~80 MB: this file is damaged or built to exhaust memory"
            )
        return data


def _read_capped(path: Path, cap: int) -> bytes:
    if path.stat().st_size > cap:
        raise DcganError(f"{str(path)!r} is {path.stat().st_size:,} bytes, more than {cap:,} for such a file")
    return path.read_bytes()


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo, cap: int, path: Path) -> bytes:
    if member.size > cap:
        raise DcganError(
            f"{str(path)!r}: {member.name!r} claims {member.size:,} bytes, more than {cap:,} for such a file"
        )
    f = tar.extractfile(member)
    data = f.read(cap + 1) if f is not None else b""
    if len(data) != member.size:
        raise DcganError(f"{str(path)!r} is truncated inside {member.name!r}; pack it again")
    return data


def _entries(meta: bytes, path: Path) -> list[dict[str, Any]]:
    """emoji.json's entries in the package's sort order, each checked for the fields used."""
    try:
        entries = parse_json(meta)
    except ValueError as e:
        raise DcganError(f"{str(path)!r}: emoji.json is not valid JSON ({e}); pack it again") from None
    ok = isinstance(entries, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("image"), str)
        and isinstance(e.get("category"), str)
        and isinstance(e.get("short_name"), str)
        and isinstance(e.get("skin_variations", {}), dict)
        for e in entries
    )
    if not ok or not entries:
        raise DcganError(
            f"{str(path)!r}: emoji.json is not a list of emoji with image, category and short_name; "
            f"expected the {PACKAGE} package"
        )
    return sorted(entries, key=lambda e: e.get("sort_order") if isinstance(e.get("sort_order"), int) else 0)


def read_emoji(path: str | os.PathLike) -> Source:
    """Every emoji and skin-tone variant with a 64×64 PNG in the package; labels are the categories."""
    path = Path(path)
    if not path.exists():
        raise DcganError(f"{str(path)!r} does not exist; give the {TARBALL} that `npm pack` wrote")
    meta, pngs = _package_files(path)
    entries = _entries(meta, path)
    categories = sorted({e["category"] for e in entries})
    variants = {k for e in entries for k, v in e.get("skin_variations", {}).items() if isinstance(v, dict)}
    tones = ["none", *sorted(variants)]
    bases = [e["short_name"] for e in entries]
    rows: list[tuple[str, int, int, int]] = []  # (image file, category, base, tone)
    for b, e in enumerate(entries):
        rows.append((e["image"], categories.index(e["category"]), b, 0))
        for tone, v in sorted(e.get("skin_variations", {}).items()):
            if isinstance(v, dict) and isinstance(v.get("image"), str):
                rows.append((v["image"], categories.index(e["category"]), b, tones.index(tone)))
    attributes = {image: (b, t) for image, _, b, t in rows}

    def items() -> Iterator[Item]:
        for image, category, _, _ in rows:
            data = pngs.get(image)
            yield (data if data is not None else Unreadable("no such PNG in the package")), category, image

    def extras(ids: list[str]) -> dict[str, np.ndarray]:
        return {"attributes": np.array([attributes[i] for i in ids], np.int32).reshape(-1, 2)}

    return Source(
        "emoji-datasource",
        path,
        len(rows),
        items,
        categories,
        encoded=True,
        extras=extras,
        about={"attributes": [{"name": "base", "values": bases}, {"name": "skin_tone", "values": tones}]},
    )
