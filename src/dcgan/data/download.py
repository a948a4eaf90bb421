"""`dcgan data fashion-mnist`: find or fetch the four Fashion-MNIST files, verify them, prepare train and test.

Files are looked for in the folder the user names, then in the Debian package `dataset-fashion-mnist`, and
only then downloaded. Checksums are of the *decompressed* IDX bytes, so the official .gz files, Debian's
re-compressed copies and already-unpacked files all verify against the same numbers.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dcgan.errors import DcganError
from dcgan.fileio import atomic_path

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_FILES = {  # name → sha256 of the decompressed bytes
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def content_sha256(path: Path) -> str:
    """sha256 of a file's bytes, decompressed first when it is gzip."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with gzip.open(path) if gz else open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
    except (OSError, EOFError) as e:
        raise DcganError(f"{str(path)!r} is corrupt ({e}); delete it and fetch it again") from None
    return h.hexdigest()


def _find(name: str, folder: Path) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest` atomically and check the decompressed content's sha256; a mismatch leaves nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                while block := r.read(1 << 20):
                    f.write(block)
        except (urllib.error.URLError, OSError) as e:
            raise DcganError(
                f"could not download {url} ({getattr(e, 'reason', e)}); without internet, install the Debian "
                f"package dataset-fashion-mnist or pass --dir with the four files"
            ) from None
        got = content_sha256(tmp)
        if got != sha256:
            raise DcganError(
                f"checksum mismatch for {url}: expected sha256 {sha256[:16]}… of the IDX content, got {got[:16]}…; "
                "the download is corrupt or not Fashion-MNIST — nothing was kept, try again or pass --dir"
            )
    return dest


def fashion_mnist_files(
    folder: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
) -> dict[str, Path]:
    """The four verified files: from `folder`; else the Debian package unless a `base_url` is given; else
    downloaded from `base_url` (default: the official mirror) into `cache`, reusing files already there."""
    if folder is not None and not Path(folder).is_dir():
        raise DcganError(f"--dir {str(folder)!r} is not a folder; give the folder holding the four IDX files")
    local = Path(folder) if folder is not None else DEBIAN_DIR if base_url is None else None
    if local is not None and folder is None and not all(_find(n, local) for n in FASHION_MNIST_FILES):
        local = None  # the Debian package is not installed: download
    files: dict[str, Path] = {}
    for name, sha in FASHION_MNIST_FILES.items():
        if local is not None:
            found = _find(name, local)
            if found is None:
                raise DcganError(
                    f"{name}[.gz] is not in {str(local)!r}; it needs all four Fashion-MNIST IDX files"
                )
        elif cache is None:
            raise DcganError(
                "Fashion-MNIST is not installed here; pass --dir, or a cache folder to download into"
            )
        else:
            found = _find(name, Path(cache))
            if found is None:
                url = f"{(base_url or OFFICIAL_URL).rstrip('/')}/{name}.gz"
                found = download(url, Path(cache) / f"{name}.gz", sha)
        got = content_sha256(found)
        if got != sha:
            raise DcganError(
                f"{str(found)!r} is not the official {name} (sha256 {got[:16]}… ≠ {sha[:16]}…); replace it"
            )
        files[name] = found
    return files


def prepare_fashion_mnist(
    out: str | os.PathLike,
    folder: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    size: int = 32,
    fit: str = "pad",
    force: bool = False,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """OUT/train (60,000) and OUT/test (10,000) prepared datasets with class names; returns both manifests."""
    from dcgan.data.prepare import prepare

    out = Path(out)
    splits = {"train": "train", "test": "t10k"}
    manifests = {}
    for split in splits:  # prepared before: keep it (prepare itself never overwrites)
        done = out / split / "manifest.json"
        if done.is_file() and not force:
            manifests[split] = json.loads(done.read_text())
    if len(manifests) == len(splits):
        return manifests  # nothing to do: do not fetch or re-hash the source files
    files = fashion_mnist_files(folder, cache=out / "raw", base_url=base_url)
    for split, prefix in splits.items():
        if split in manifests:
            continue
        manifests[split] = prepare(
            files[f"{prefix}-images-idx3-ubyte"],
            out / split,
            size=size,
            channels=1,
            fit=fit,
            label_names=FASHION_MNIST_CLASSES,
            force=force,
            progress=progress,
        )
    return manifests
