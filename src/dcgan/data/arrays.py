"""Readers of sources that hold decoded pixel arrays: MNIST-style IDX and .npy/.npz — and what every array
reader shares (a Source over an array, the split check, the checks on pixels and labels). CIFAR batches are
read by cifar.py, SVHN .mat files by svhn.py.

Each checks its file's structure up front (magic numbers, sizes, keys), so a truncated or wrong file fails with
one clear error naming it before any work is done.
"""

from __future__ import annotations

import gzip
import math
import tokenize
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data import limits
from dcgan.data.items import Item, Source
from dcgan.errors import DcganError


def array_source(reader: str, path: Path, images: np.ndarray, labels: np.ndarray | None, **kw: Any) -> Source:
    """A Source over an (N, H, W[, C]) uint8 array (possibly memory-mapped) and optional (N,) labels."""
    if len(images) == 0:
        raise DcganError(f"{str(path)!r} holds no images")
    if labels is not None and len(labels) != len(images):
        raise DcganError(
            f"{str(path)!r}: {len(images)} images but {len(labels)} labels; the files do not belong together"
        )

    def items() -> Iterator[Item]:
        for i in range(len(images)):
            yield images[i], None if labels is None else int(labels[i]), str(i)

    grey = images.ndim == 3 or images.shape[-1] == 1
    return Source(reader, path, len(images), items, grey=grey, **kw)


def check_split(split: str | None, allowed: tuple[str, ...], path: Path) -> str:
    split = split or allowed[0]
    if split not in allowed:
        raise DcganError(f"{str(path)!r} has splits {', '.join(allowed)}; got --split {split!r}")
    return split


# IDX (MNIST, Fashion-MNIST): magic 0x00 0x00 <type> <ndim>, then ndim big-endian int32 sizes, then the data.


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Bytes of an unsigned-byte IDX file → its array; a wrong magic or a truncated body is a DcganError."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DcganError(
            f"{name} is not an IDX file (wrong magic number {data[:4].hex() or 'empty'}); expected MNIST-style idx3/idx1-ubyte"
        )
    if data[2] != 0x08:
        raise DcganError(
            f"{name}: only unsigned-byte IDX data (type 0x08) is supported, got type 0x{data[2]:02x}"
        )
    ndim = data[3]
    if not 1 <= ndim <= 4:  # idx1 labels, idx3 images; NumPy could not even shape 65 dimensions
        raise DcganError(f"{name}: its header gives {ndim} dimensions; MNIST-style IDX files have 1 to 4")
    if len(data) < 4 + 4 * ndim:
        raise DcganError(f"{name} is truncated inside its header; re-download it")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = memoryview(data)[4 + 4 * ndim :]
    expected = math.prod(dims)  # Python ints: 2^31 × 2^31 × 4 must not wrap to 0
    if len(body) != expected:
        raise DcganError(
            f"{name} is {'truncated' if len(body) < expected else 'too long'}: its header says "
            f"{'×'.join(map(str, dims))} = {expected:,} bytes of data, the file holds {len(body):,}; re-download it"
        )
    return np.frombuffer(body, np.uint8).reshape(dims)


def _read_maybe_gz(path: Path) -> bytes:
    """An IDX file's bytes, gunzipped if it ends in .gz — in chunks, and no further than its header's
    declared size (one byte more shows it is too long) nor than deflate could expand the compressed bytes
    present: a bomb stops at whichever comes first, so memory follows the file, not its claims."""
    try:
        if not path.name.endswith(".gz"):
            limits.check_memory(repr(str(path)), path.stat().st_size, "holds")
            return path.read_bytes()
        compressed, out = path.stat().st_size, bytearray()
        with gzip.open(path) as f:
            out += f.read(4)
            out += f.read(4 * out[3]) if len(out) == 4 else b""
            dims = (int.from_bytes(out[i : i + 4], "big") for i in range(4, len(out) - 3, 4))
            declared = len(out) + math.prod(dims)
            limits.check_memory(repr(str(path)), min(declared, limits.MAX_RATIO * compressed), "unpacks to")
            while len(out) <= declared and (chunk := f.read(min(1 << 16, declared + 1 - len(out)))):
                out += chunk
                limits.check_expansion(repr(str(path)), len(out), compressed)
        return bytes(out)
    except limits.DECOMPRESS_ERRORS as e:
        raise DcganError(
            f"{str(path)!r} could not be read ({type(e).__name__}: {e}); re-download it"
        ) from None


def read_idx(path: Path, split: str | None = None) -> Source:
    """IDX images (+ the labels file beside them): a `*-images-idx3-ubyte[.gz]` file or a folder of them."""
    if path.is_dir():
        split = check_split(split, ("train", "test"), path)
        prefix = "train" if split == "train" else "t10k"
        found = [
            f for f in path.iterdir() if f.name.startswith(prefix) and "idx3-ubyte" in f.name and f.is_file()
        ]
        if not found:
            raise DcganError(f"no {prefix}-images-idx3-ubyte[.gz] in {str(path)!r} for --split {split}")
        images_path = sorted(found)[0]
    else:
        images_path = path
        split = split or {"train": "train", "t10k": "test"}.get(path.name.split("-")[0])
    images = parse_idx(_read_maybe_gz(images_path), repr(str(images_path)))
    if images.ndim != 3:
        raise DcganError(f"{str(images_path)!r} holds a {images.ndim}-d array; expected N×H×W images (idx3)")
    check_area(images, images_path)
    labels = None
    stem = images_path.name.removesuffix(".gz").replace("images-idx3", "labels-idx1")
    labels_path = next(
        (
            p
            for p in (images_path.with_name(stem + ".gz"), images_path.with_name(stem))
            if "labels-idx1" in p.name and p.is_file()
        ),
        None,
    )
    if labels_path is not None:
        labels = parse_idx(_read_maybe_gz(labels_path), repr(str(labels_path)))
        if labels.ndim != 1:
            raise DcganError(f"{str(labels_path)!r} holds a {labels.ndim}-d array; expected N labels (idx1)")
        if len(labels) != len(images):
            raise DcganError(
                f"{str(images_path)!r}: {len(images)} images but {len(labels)} labels; the files do not belong together"
            )
    names = _class_names(labels, images_path)
    return array_source("idx", images_path, images, labels, label_names=names, split=split)


# What NumPy's .npy/.npz readers raise for a damaged file, beyond the decompressors' errors: a mangled header
# dict (tokenize.TokenError, SyntaxError), a dimension past int64 (OverflowError).
_NPY_ERRORS = (
    *limits.DECOMPRESS_ERRORS,
    ValueError,
    tokenize.TokenError,
    SyntaxError,
    OverflowError,
    TypeError,
)


def read_array_file(path: Path) -> Source:
    """A .npy of images (memory-mapped), or a .npz with `images`/`x` and optional `labels`/`y` — told apart
    by their bytes, not their names."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
        if head[:4] == b"PK\x03\x04":
            arr, labels = _read_npz(path)
        else:
            arr, labels = load_npy(path), None
    except DcganError:
        raise
    except _NPY_ERRORS as e:
        raise DcganError(f"{str(path)!r} is not a readable NumPy file ({type(e).__name__}: {e})") from None
    arr = _as_nhwc_uint8(arr, path)
    if labels is not None:
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool) or labels.ndim > 2:
            raise DcganError(
                f"{str(path)!r} holds labels of {labels.dtype} {labels.shape}; expected N integers"
            )
        labels = labels.reshape(-1).astype(np.int64)
        if len(labels) and labels.min() < 0:
            raise DcganError(f"{str(path)!r} holds negative labels; expected class indices 0 … K−1")
    names = _class_names(labels, path) if labels is not None and len(labels) == len(arr) else None
    return array_source("numpy", path, arr, labels, label_names=names)


def load_npy(path: Path, in_memory: bool = False, then: str = "") -> np.ndarray:
    """A .npy memory-mapped (or copied into memory), never allocating more than the file holds: the header's
    length is checked before NumPy reads it, and the map must fit the file before anything is copied. A
    damaged file is a DcganError that ends with `then` (what to do)."""
    try:
        with open(path, "rb") as f:
            _check_npy_header(f.read(12), path)
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return np.array(arr) if in_memory else arr
    except DcganError as e:
        raise DcganError(f"{e}{then}") from None
    except _NPY_ERRORS as e:
        raise DcganError(
            f"{str(path)!r} is not a readable NumPy file ({type(e).__name__}: {e}){then}"
        ) from None


def _check_npy_header(head: bytes, path: Path) -> None:
    """A .npy's header length (2 bytes in format 1, 4 in formats 2 and 3) must fit in the file: NumPy reads
    that many bytes in one call, which allocates them first (one flipped version byte claims ~600 MB)."""
    if head[:6] != b"\x93NUMPY" or len(head) < 12:
        return  # not a .npy: NumPy's own error names it
    width = 2 if head[6] == 1 else 4
    length, size = int.from_bytes(head[8 : 8 + width], "little"), path.stat().st_size
    if length > size - 8 - width:
        raise DcganError(
            f"{str(path)!r} is a damaged .npy: its header claims {length:,} bytes, the file holds {size:,}"
        )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels or None) of a .npz, each member's header checked against its stored bytes before
    NumPy allocates what the header claims."""
    with zipfile.ZipFile(path) as z:
        members = {i.filename.removesuffix(".npy"): i for i in z.infolist()}
        key = next((k for k in ("images", "x", "X", "arr_0") if k in members), None)
        if key is None:
            raise DcganError(f"{str(path)!r} has arrays {sorted(members)}; expected one named images or x")
        lkey = next((k for k in ("labels", "y", "Y") if k in members), None)
        return _npz_member(z, members[key], path), _npz_member(z, members[lkey], path) if lkey else None


def _npz_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    name = f"{str(path)!r} member {info.filename}"
    limits.check_expansion(name, info.file_size, info.compress_size)
    headers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in headers:
            raise DcganError(f"{name} is a .npy of format {version}; expected 1.0 or 2.0, as np.save writes")
        shape, _, dtype = headers[version](f)
        if dtype.hasobject:
            raise DcganError(f"{name} holds Python objects; expected numbers")
        claimed = math.prod(shape) * dtype.itemsize
        limits.check_memory(name, claimed, "unpacks to")
        if claimed > info.file_size:
            raise DcganError(
                f"{name} claims {shape} {dtype} ({claimed:,} bytes) but stores {info.file_size:,}"
            )
    with z.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def check_area(images: np.ndarray, path: Path) -> None:
    if images.ndim >= 3 and images.shape[1] * images.shape[2] == 0:
        raise DcganError(
            f"{str(path)!r} holds images of {images.shape[1]}×{images.shape[2]} pixels: none to train on"
        )


def _class_names(labels: np.ndarray | None, path: Path) -> list[str] | None:
    """'0' … str(max label), within the classes limit; None without labels."""
    if labels is None or not len(labels):
        return None
    high = int(labels.max())
    limits.check_labels(repr(str(path)), high)
    return [str(i) for i in range(high + 1)]


def _as_nhwc_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3, 4; uint8, or floats in [0, 1] or [-1, 1]."""
    if arr.ndim == 4 and arr.shape[1] in (1, 3, 4) and arr.shape[3] not in (1, 3, 4):
        arr = arr.transpose(0, 2, 3, 1)
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[3] in (1, 3, 4))):
        raise DcganError(
            f"{str(path)!r} holds an array of shape {arr.shape}; expected images as N×H×W, N×H×W×C or N×C×H×W "
            "with C = 1, 3 or 4"
        )
    if arr.size == 0:
        check_area(arr, path)
        raise DcganError(f"{str(path)!r} holds no images")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 1:
            return np.rint(np.asarray(arr) * 255).astype(np.uint8)
        if lo >= -1 and hi <= 1:
            return np.rint((np.asarray(arr) + 1) * 127.5).astype(np.uint8)
        raise DcganError(f"{str(path)!r} holds floats in [{lo}, {hi}]; expected [0, 1] or [-1, 1], or uint8")
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 255:
        return np.asarray(arr).astype(np.uint8)
    raise DcganError(f"{str(path)!r} holds {arr.dtype} values outside 0-255; expected uint8 images")
