"""Every image source `dcgan prepare` takes: detection (`open_source`), and the readers of encoded images
(folders, zips); LSUN LMDB is read by `lsun.py`, the readers of decoded arrays live in `arrays.py`. Each yields
(raw, label or None, source id).

`raw` is either a decoded uint8 array (H, W[, C]) — IDX, CIFAR, SVHN, .npy/.npz — or encoded bytes / a file
path — image folders, zips, LSUN LMDB — that the transforms decode (in worker processes when it pays).
A reader checks its file's structure up front, so a truncated or wrong file fails with one clear error before
any work is done; per-image decode failures in folders are skipped and recorded instead.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

from dcgan.data import limits
from dcgan.data.arrays import read_array_file, read_idx
from dcgan.data.cifar import cifar_files, read_cifar
from dcgan.data.items import Item, Raw, Source, Unreadable
from dcgan.data.lsun import read_lmdb
from dcgan.data.svhn import read_svhn
from dcgan.errors import DcganError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def open_source(path: str | os.PathLike, split: str | None = None, class_folders: bool = False) -> Source:
    """Detect the source type of `path` and open it."""
    p = Path(path)
    if not p.exists():
        raise DcganError(f"source {str(p)!r} does not exist; give a folder of images or a dataset file")
    name = p.name.lower()
    if not p.is_dir() and not p.is_file():  # reading a pipe would wait for a writer forever
        raise DcganError(
            f"source {str(p)!r} is not a regular file or a folder (a pipe, socket or device); "
            "give a folder of images or a dataset file"
        )
    if p.is_dir():
        if (p / "data.mdb").is_file():
            return read_lmdb(p)
        if cifar_files(p):
            return read_cifar(p, split)
        if any(
            f.name.lower().endswith(("-idx3-ubyte", "-idx3-ubyte.gz")) and f.is_file() for f in p.iterdir()
        ):
            return read_idx(p, split)
        return read_folder(p, class_folders)
    if name == "data.mdb":
        return read_lmdb(p.parent)
    if name.endswith(".zip"):
        return read_zip(p, class_folders)
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return read_cifar(p, split)
    if name.endswith(".mat"):
        return read_svhn(p)
    if "idx3-ubyte" in name:
        return read_idx(p, split)
    if name.endswith((".npy", ".npz")):
        return read_array_file(p)
    kind = "an image; a dataset needs a folder of them" if p.suffix.lower() in IMAGE_EXTS else _describe(p)
    raise DcganError(
        f"expected a folder of images, a .zip, an LSUN LMDB folder, CIFAR batches, an SVHN .mat, "
        f"MNIST-style IDX files or a .npy/.npz, got {str(p)!r} ({kind})"
    )


def _describe(p: Path) -> str:
    with open(p, "rb") as f:
        head = f.read(512)
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "an unrecognized binary file"


# ---------------------------------------------------------------- image folders and zips (encoded)


def _labels_from_paths(rel_paths: list[str], origin: str) -> tuple[list[int], list[str]]:
    """Class = first folder under the root (after any single folder that wraps everything)."""
    parts = [r.split("/") for r in rel_paths]
    while all(len(x) > 1 for x in parts) and len({x[0] for x in parts}) == 1:
        parts = [x[1:] for x in parts]  # strip a wrapper folder common to all
    loose = [rel for rel, x in zip(rel_paths, parts) if len(x) == 1]
    if loose:
        raise DcganError(
            f"with --labels every image must sit in a class subfolder of {origin}, but {loose[0]!r} "
            f"(and {len(loose) - 1} more) do not; move them or drop --labels"
        )
    names = sorted({x[0] for x in parts})
    index = {n: i for i, n in enumerate(names)}
    return [index[x[0]] for x in parts], names


def read_folder(root: Path, class_folders: bool = False) -> Source:
    """All images under `root`, recursively, sorted by relative path (as a zip of the folder is); hidden files
    and folders, and anything that is not a regular file (FIFOs, devices, dangling links: counted as
    ignored), are left out."""
    files, ignored = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            # a regular file (or a link to one): a FIFO named pipe.png would block the reader forever
            if os.path.splitext(f)[1].lower() in IMAGE_EXTS and os.path.isfile(os.path.join(dirpath, f)):
                files.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
            else:
                ignored += 1
    files.sort()
    if not files:
        raise DcganError(
            f"no images found in {str(root)!r} (looked for {', '.join(sorted(IMAGE_EXTS))}"
            f"{f'; {ignored} other files ignored' if ignored else ''})"
        )
    labels, names = _labels_from_paths(files, repr(str(root))) if class_folders else (None, None)

    def items() -> Iterator[Item]:
        for i, rel in enumerate(files):
            yield str(root / rel), labels[i] if labels else None, rel

    return Source("image-folder", root, len(files), items, names, encoded=True, ignored=ignored)


def read_zip(path: Path, class_folders: bool = False) -> Source:
    """Images inside a .zip, sorted by name; macOS resource forks and hidden files and folders are left out."""
    try:
        with zipfile.ZipFile(path) as zf:  # the listing only; items() opens the archive again to read
            infos = zf.infolist()
    except (*limits.DECOMPRESS_ERRORS, ValueError) as e:  # NotImplementedError: a version from the future
        raise DcganError(
            f"{str(path)!r} is not a readable zip archive ({e}); re-create or re-download it"
        ) from None
    names, ignored = [], 0
    for info in infos:
        base = info.filename.rsplit("/", 1)[-1]
        hidden = any(part.startswith(".") for part in info.filename.split("/"))
        if not info.filename:  # a damaged directory entry: a member with no name is no image
            ignored += 1
            continue
        if info.is_dir() or info.filename.startswith("__MACOSX/") or hidden:
            continue
        if os.path.splitext(base)[1].lower() in IMAGE_EXTS:
            names.append(info.filename)
        else:
            ignored += 1
    names.sort()
    if not names:
        raise DcganError(
            f"no images found in the zip {str(path)!r} (looked for {', '.join(sorted(IMAGE_EXTS))})"
        )
    labels, label_names = _labels_from_paths(names, repr(str(path))) if class_folders else (None, None)

    def items() -> Iterator[Item]:
        with zipfile.ZipFile(path) as z:
            for i, name in enumerate(names):
                yield _zip_member(z, name), labels[i] if labels else None, name

    return Source("zip", path, len(names), items, label_names, encoded=True, ignored=ignored)


def _zip_member(z: zipfile.ZipFile, name: str) -> Raw:
    """A member's bytes, or Unreadable with the reason: damaged, encrypted, an unknown compression, or
    claiming more bytes than its compressed ones can hold (a bomb) — one such member never stops the rest."""
    try:
        info = z.getinfo(name)
        limits.check_expansion(f"zip member {name}", info.file_size, info.compress_size)
        if info.file_size > 4 * limits.max_pixels():  # no encoding of an image within the limit is larger
            return Unreadable(
                f"zip member of {info.file_size:,} bytes, more than an image within the pixel limit"
            )
        return z.read(info)
    except DcganError as e:
        return Unreadable(str(e))
    except (*limits.DECOMPRESS_ERRORS, UnicodeDecodeError) as e:  # a local header's name in no encoding
        return Unreadable(f"corrupt zip member: {type(e).__name__}: {e}")
