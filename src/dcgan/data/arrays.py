"""Readers of sources that hold decoded pixel arrays: MNIST-style IDX, CIFAR-10/100 batches, SVHN .mat, .npy/.npz.

Each checks its file's structure up front (magic numbers, sizes, keys), so a truncated or wrong file fails with
one clear error naming it before any work is done.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import pickle
import pickletools
import struct
import tarfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data import limits
from dcgan.data.items import Item, Source
from dcgan.errors import DcganError


def _array_source(
    reader: str, path: Path, images: np.ndarray, labels: np.ndarray | None, **kw: Any
) -> Source:
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


def _check_split(split: str | None, allowed: tuple[str, ...], path: Path) -> str:
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
            return path.read_bytes()
        compressed, out = path.stat().st_size, bytearray()
        with gzip.open(path) as f:
            out += f.read(4)
            out += f.read(4 * out[3]) if len(out) == 4 else b""
            dims = (int.from_bytes(out[i : i + 4], "big") for i in range(4, len(out) - 3, 4))
            declared = len(out) + math.prod(dims)
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
        split = _check_split(split, ("train", "test"), path)
        prefix = "train" if split == "train" else "t10k"
        found = [f for f in path.iterdir() if f.name.startswith(prefix) and "idx3-ubyte" in f.name]
        if not found:
            raise DcganError(f"no {prefix}-images-idx3-ubyte[.gz] in {str(path)!r} for --split {split}")
        images_path = sorted(found)[0]
    else:
        images_path = path
        split = split or {"train": "train", "t10k": "test"}.get(path.name.split("-")[0])
    images = parse_idx(_read_maybe_gz(images_path), repr(str(images_path)))
    if images.ndim != 3:
        raise DcganError(f"{str(images_path)!r} holds a {images.ndim}-d array; expected N×H×W images (idx3)")
    _check_area(images, images_path)
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
    return _array_source("idx", images_path, images, labels, label_names=names, split=split)


# CIFAR-10/100 python batches are pickles. The unpickler below builds only what real batches hold — dicts,
# lists, numbers, strings, and numeric numpy arrays made the way numpy pickles them — so a hostile file can
# neither run code nor make an array of uninitialized memory, and everything it builds is paid for by bytes
# present in the file.

MAX_CIFAR_MEMBER = 256 << 20
_NUMERIC_DTYPES = {f"{k}{n}" for k in "uif" for n in (1, 2, 4, 8)} - {"f1"} | {"b1"}


# Stands for numpy.ndarray in a pickle: only _reconstruct may be handed it; it cannot be called or modified.
_NDARRAY = object()


class _CheckedArray(np.ndarray):
    """An array whose pickled state is checked before numpy takes it: numeric dtype, raw bytes (not a list
    of objects) that are exactly shape × itemsize long, and paid for from the unpickler's budget."""

    unpickler: _CifarUnpickler

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("an array state that numpy never writes")
        _, shape, dtype, _, raw = state
        if not isinstance(dtype, np.dtype) or dtype.str[1:] not in _NUMERIC_DTYPES:
            raise pickle.UnpicklingError(f"an array of dtype {dtype!r}; CIFAR holds numbers")
        if (
            not isinstance(raw, bytes)
            or not isinstance(shape, tuple)
            or not all(isinstance(s, int) and s >= 0 for s in shape)
        ):
            raise pickle.UnpicklingError("an array without its raw bytes")
        if int(np.prod(shape, dtype=object)) * dtype.itemsize != len(raw):
            raise pickle.UnpicklingError(f"an array of shape {shape} with {len(raw):,} bytes of data")
        self.unpickler.spend(len(raw))
        super().__setstate__(state)


class _CifarUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.budget = 2 * len(data)  # each byte of the file may become a string, then an array: no more

    def spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise pickle.UnpicklingError("it builds more data than the file holds")

    def encode(self, text: Any, encoding: Any = "latin1") -> bytes:
        """How protocol 2 spells a bytes object written by Python 3: _codecs.encode(str, 'latin1')."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError("_codecs.encode of anything but a latin1 string")
        self.spend(len(text))
        return text.encode("latin1")

    def reconstruct(self, cls: Any, shape: Any, typecode: Any) -> np.ndarray:
        """numpy's _reconstruct(ndarray, (0,), b'b'): the empty array that __setstate__ then fills."""
        if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
            raise pickle.UnpicklingError("an array made another way than numpy pickles one")
        arr = _CheckedArray((0,), np.uint8)
        arr.unpickler = self
        return arr

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("_codecs", "encode"): self.encode,
            ("numpy.core.multiarray", "_reconstruct"): self.reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): self.reconstruct,
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): _numeric_dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: CIFAR batches hold only numpy arrays"
            )
        return allowed[(module, name)]


def _numeric_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """numpy.dtype('u1', 0, 1) as numpy pickles a dtype, for numeric types only."""
    spec = spec.decode("latin1") if isinstance(spec, bytes) else spec
    if not isinstance(spec, str) or spec not in _NUMERIC_DTYPES:
        raise pickle.UnpicklingError(f"a dtype of {spec!r}; CIFAR holds numbers")
    return np.dtype(spec)


def safe_unpickle(data: bytes, name: str) -> Any:
    """Unpickle CIFAR batch bytes; anything but plain data and numeric numpy arrays is refused. Lengths the
    opcodes claim are checked against the bytes present first (the C unpickler allocates a claim before
    reading it)."""
    try:
        for _ in pickletools.genops(data):
            pass
        out = _CifarUnpickler(data).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise DcganError(f"{name} is not a valid CIFAR batch ({e}); re-download the dataset") from None
    except (MemoryError, RecursionError, OverflowError, LookupError, KeyError) as e:
        raise DcganError(
            f"{name} is not a valid CIFAR batch ({type(e).__name__}); re-download the dataset"
        ) from None
    return out


_CIFAR = {  # variant: (train batches, test batches, meta file, label key, names key)
    "cifar10": (
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "batches.meta",
        b"labels",
        b"label_names",
    ),
    "cifar100": (["train"], ["test"], "meta", b"fine_labels", b"fine_label_names"),
}


def cifar_files(root: Path) -> dict[str, Path]:
    """Basename → path of the CIFAR files in `root` or in the folder its archive unpacks to (CIFAR-10:
    cifar-10-batches-py, CIFAR-100: cifar-100-python)."""
    for d in [root, *sorted(root.glob("cifar-*-py*"))]:
        names = {f.name: f for f in d.iterdir() if f.is_file()} if d.is_dir() else {}
        if "batches.meta" in names or ("meta" in names and "train" in names):
            return names
    return {}


def _cifar_access(path: Path, stack: contextlib.ExitStack) -> tuple[set[str], Callable[[str], bytes]]:
    """The CIFAR file names at `path` (folder or tarball) and a function reading one by name."""
    if path.is_dir():
        files = cifar_files(path)
        return set(files), lambda n: files[n].read_bytes()
    try:
        tar = stack.enter_context(tarfile.open(path))  # noqa: SIM115 (the ExitStack closes it)
        members = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, *limits.DECOMPRESS_ERRORS) as e:
        raise DcganError(f"{str(path)!r} is not a readable .tar.gz ({e}); re-download it") from None

    def read(n: str) -> bytes:
        # the largest real member (CIFAR-100 train) is ~155 MB: anything far larger is not CIFAR (or a bomb)
        if members[n].size > MAX_CIFAR_MEMBER:
            raise DcganError(
                f"{n} in {str(path)!r} is {members[n].size:,} bytes; CIFAR batches are at most ~155 MB"
            )
        try:
            return tar.extractfile(members[n]).read()  # type: ignore[union-attr]
        except (tarfile.TarError, *limits.DECOMPRESS_ERRORS) as e:
            raise DcganError(f"{n} in {str(path)!r} could not be read ({e}); re-download it") from None

    return set(members), read


def read_cifar(path: Path, split: str | None = None) -> Source:
    """CIFAR-10 or CIFAR-100 python batches: a folder, or the official .tar.gz read without extracting."""
    split = _check_split(split, ("train", "test"), path)
    with contextlib.ExitStack() as stack:
        available, read = _cifar_access(path, stack)
        variant = "cifar10" if "batches.meta" in available else "cifar100" if "meta" in available else None
        if variant is None:
            raise DcganError(f"{str(path)!r} holds no CIFAR-10 batches.meta or CIFAR-100 meta file")
        train, test, meta_name, label_key, names_key = _CIFAR[variant]
        wanted = train if split == "train" else test
        missing = [n for n in wanted if n not in available]
        if missing:
            raise DcganError(
                f"{str(path)!r} lacks {', '.join(missing)}; the {variant} download is incomplete"
            )
        meta = safe_unpickle(read(meta_name), meta_name)
        images, labels = [], []
        for n in wanted:
            batch = safe_unpickle(read(n), n)
            data = batch.get(b"data") if isinstance(batch, dict) else None
            if (
                not isinstance(data, np.ndarray)
                or data.ndim != 2
                or data.shape[1] != 3072
                or label_key not in batch
            ):
                raise DcganError(
                    f"{n} is not a CIFAR batch: expected b'data' of shape N×3072 and {label_key!r}"
                )
            if data.dtype != np.uint8:
                raise DcganError(f"{n} holds b'data' of {data.dtype}; CIFAR batches hold uint8 pixels")
            # rows are R, G, B planes → NHWC
            images.append(np.asarray(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(_labels(batch[label_key], len(data), n))
    names = meta.get(names_key, []) if isinstance(meta, dict) else None
    if not isinstance(names, list):
        raise DcganError(f"{meta_name} is not CIFAR metadata: expected a dict with a list {names_key!r}")
    label_names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]
    return _array_source(
        variant,
        path,
        np.concatenate(images),
        np.concatenate(labels),
        label_names=label_names or None,
        split=split,
    )


def _labels(values: Any, n: int, name: str) -> np.ndarray:
    """A batch's labels as int64 (n,), each ≥ 0, or a clear error naming the batch."""
    try:
        labels = np.asarray(values, np.int64)
    except (TypeError, ValueError, OverflowError):
        labels = None
    if labels is None or labels.shape != (n,) or (n and labels.min() < 0):
        raise DcganError(f"{name} does not hold {n:,} non-negative integer labels; re-download the dataset")
    return labels


# MAT v5 (what SVHN ships): a 128-byte header, then tagged elements (type, byte count). scipy's reader trusts
# the tags — one flipped bit can crash the process (SIGSEGV) — so every tag is checked against the bytes
# present first. Data types and their item sizes; 14 is an array (miMATRIX), 15 a zlib-compressed element.
_MAT_ITEM = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_MAT_NUMERIC_CLASSES = range(6, 16)  # double … uint64


def _check_mat5(data: bytes, name: str) -> None:
    """Raise a DcganError unless every element of a MAT v5 file is as long as its tag says and fits in
    what holds it, and every array's data is exactly dims × item size (numeric arrays only)."""
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        return  # not v5: scipy says what it is (v4, or v7.3/HDF5)
    if data[126:128] != b"IM":
        raise DcganError(f"{name} is a big-endian MAT file; SVHN's .mat files are little-endian")
    _mat_elements(memoryview(data), 128, len(data), name, top=True)


def _mat_tag(buf: memoryview, pos: int, end: int, name: str) -> tuple[int, int, int, int]:
    """(type, first data byte, byte count, next element) of the element at `pos`."""
    if end - pos < 8:
        raise DcganError(f"{name} ends inside an element's tag at byte {pos:,}; re-download it")
    kind, n = struct.unpack_from("<II", buf, pos)
    if kind >> 16:  # a small element: its byte count in the high half, its data in the tag's last 4 bytes
        kind, n = kind & 0xFFFF, kind >> 16
        if n > 4 or kind not in _MAT_ITEM:
            raise DcganError(f"{name} has a damaged small element at byte {pos:,}; re-download it")
        return kind, pos + 4, n, pos + 8
    if n > end - pos - 8:
        raise DcganError(f"{name}: an element at byte {pos:,} claims {n:,} bytes, {end - pos - 8:,} remain")
    return kind, pos + 8, n, pos + 8 + n + (-n % 8)


def _mat_elements(buf: memoryview, pos: int, end: int, name: str, top: bool) -> None:
    while end - pos >= 8:  # what is left under 8 bytes is padding
        kind, start, n, nxt = _mat_tag(buf, pos, end, name)
        if kind == 15 and top:
            d = zlib.decompressobj()
            try:
                inner = d.decompress(buf[start : start + n], limits.MAX_RATIO * max(n, 1))
            except zlib.error as e:
                raise DcganError(f"{name} holds a damaged compressed element ({e}); re-download it") from None
            if d.unconsumed_tail:
                limits.check_expansion(name, limits.MAX_RATIO * max(n, 1) + 1, n)
            _mat_elements(memoryview(inner), 0, len(inner), name, top=False)
            pos = start + n  # compressed elements are not padded
            continue
        if kind != 14:
            raise DcganError(f"{name} holds an element of type {kind} where an array belongs; re-download it")
        _mat_array(buf, start, start + n, name)
        pos = nxt


def _mat_array(buf: memoryview, pos: int, end: int, name: str) -> None:
    """Array flags, dimensions, name, then the real part — its byte count must match the dimensions."""
    kind, start, n, pos = _mat_tag(buf, pos, end, name)
    if kind != 6 or n != 8:
        raise DcganError(f"{name} has an array whose flags are damaged; re-download it")
    if buf[start] not in _MAT_NUMERIC_CLASSES:
        raise DcganError(f"{name} holds an array of MATLAB class {buf[start]}; SVHN's hold numbers")
    kind, start, n, pos = _mat_tag(buf, pos, end, name)
    if kind != 5 or n % 4 or n == 0:
        raise DcganError(f"{name} has an array whose dimensions are damaged; re-download it")
    dims = struct.unpack_from(f"<{n // 4}i", buf, start)
    if min(dims) < 0:
        raise DcganError(f"{name} has an array of negative size {dims}; re-download it")
    _, _, _, pos = _mat_tag(buf, pos, end, name)  # its name
    kind, _, n, _ = _mat_tag(buf, pos, end, name)
    if kind not in _MAT_ITEM or n != math.prod(dims) * _MAT_ITEM[kind]:
        raise DcganError(
            f"{name} has an array of {'×'.join(map(str, dims))} whose data ({n:,} bytes of type {kind}) does "
            "not match; re-download it"
        )


def read_svhn(path: Path) -> Source:
    """SVHN cropped digits (train/test/extra_32x32.mat): X is 32×32×3×N, y is N×1 with 10 meaning digit 0."""
    import scipy.io

    try:
        data = path.read_bytes()
    except OSError as e:
        raise DcganError(f"{str(path)!r} could not be read ({e})") from None
    _check_mat5(data, repr(str(path)))
    try:
        mat = scipy.io.loadmat(io.BytesIO(data))
    except NotImplementedError:
        raise DcganError(
            f"{str(path)!r} is a MATLAB v7.3 (HDF5) file; SVHN's official .mat files are v5"
        ) from None
    except (
        scipy.io.matlab.MatReadError,
        ValueError,
        OSError,
        EOFError,
        TypeError,
        KeyError,
        IndexError,
        ArithmeticError,
        NameError,
        zlib.error,
    ) as e:
        raise DcganError(f"{str(path)!r} is not a readable .mat file ({e}); re-download it") from None
    x, y = mat.get("X"), mat.get("y")
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[2] != 3 or x.dtype != np.uint8:
        raise DcganError(
            f"{str(path)!r} is not SVHN: expected X of shape 32×32×3×N uint8, got {getattr(x, 'shape', None)}"
        )
    labels = None
    if isinstance(y, np.ndarray):
        if (
            not np.issubdtype(y.dtype, np.number)
            or y.size != x.shape[3]
            or not np.isin(y, np.arange(11)).all()
        ):
            raise DcganError(
                f"{str(path)!r} holds y that is not one digit label (0-10) per image; re-download it"
            )
        labels = y.reshape(-1).astype(np.int64) % 10  # SVHN writes digit 0 as label 10
    return _array_source(
        "svhn", path, x.transpose(3, 0, 1, 2), labels, label_names=[str(i) for i in range(10)]
    )


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
            _check_npy_header(head, path)
            arr, labels = np.load(path, mmap_mode="r", allow_pickle=False), None
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
    return _array_source("numpy", path, arr, labels, label_names=names)


def _check_npy_header(head: bytes, path: Path) -> None:
    """A .npy's header length (2 bytes in format 1, 4 in formats 2 and 3) must fit in the file: NumPy reads
    that many bytes in one call, which allocates them first (one flipped version byte claims ~600 MB)."""
    if head[:6] != b"\x93NUMPY" or len(head) < 12:
        return  # not a .npy: NumPy's own error names it
    prefix, length = (
        (10, int.from_bytes(head[8:10], "little"))
        if head[6] == 1
        else (12, int.from_bytes(head[8:12], "little"))
    )
    if length > path.stat().st_size - prefix:
        raise DcganError(
            f"{str(path)!r} is a damaged .npy: its header claims {length:,} bytes, the file holds "
            f"{path.stat().st_size:,}"
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
        if claimed > info.file_size:
            raise DcganError(
                f"{name} claims {shape} {dtype} ({claimed:,} bytes) but stores {info.file_size:,}"
            )
    with z.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _check_area(images: np.ndarray, path: Path) -> None:
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
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[3] not in (1, 3, 4):
        arr = arr.transpose(0, 2, 3, 1)
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[3] in (1, 3, 4))):
        raise DcganError(
            f"{str(path)!r} holds an array of shape {arr.shape}; expected images as N×H×W, N×H×W×C or N×C×H×W "
            "with C = 1, 3 or 4"
        )
    if arr.size == 0:
        _check_area(arr, path)
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
