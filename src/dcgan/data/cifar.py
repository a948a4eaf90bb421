"""CIFAR-10/100 python batches, from a folder or the official .tar.gz read without extracting.

The batches are pickles: the unpickler here builds only what real batches hold, from the bytes present.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import pickletools
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dcgan.data import limits
from dcgan.data.arrays import array_source, check_split
from dcgan.data.items import Source
from dcgan.errors import DcganError, one_line

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
        raise DcganError(
            f"{name} is not a valid CIFAR batch ({one_line(e)}); re-download the dataset"
        ) from None
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


def _check_member_size(m: tarfile.TarInfo, path: Path) -> None:
    # the largest real member (CIFAR-100 train) is ~155 MB: anything far larger is not CIFAR (or a bomb)
    if m.size > MAX_CIFAR_MEMBER:
        raise DcganError(f"{m.name} in {str(path)!r} is {m.size:,} bytes; CIFAR batches are at most ~155 MB")


def _cifar_access(path: Path, stack: contextlib.ExitStack) -> tuple[set[str], Callable[[str], bytes]]:
    """The CIFAR file names at `path` (folder or tarball) and a function reading one by name."""
    if path.is_dir():
        files = cifar_files(path)
        return set(files), lambda n: files[n].read_bytes()
    try:
        tar = stack.enter_context(tarfile.open(path))  # noqa: SIM115 (the ExitStack closes it)
        members = {}
        for m in tar:  # one header at a time: a bomb is refused before its gigabytes are inflated to skip it
            if m.isfile():
                _check_member_size(m, path)
                members[m.name.rsplit("/", 1)[-1]] = m
    except (tarfile.TarError, *limits.DECOMPRESS_ERRORS) as e:
        # tarfile lists what each decompressor said, one per line: keep the one this file's name promises
        method = "method tar" if path.name.lower().endswith(".tar") else "method gz"
        said = next((s.strip("- ") for s in str(e).splitlines() if s.strip("- ").startswith(method)), None)
        raise DcganError(
            f"{str(path)!r} is not a readable .tar.gz ({said or one_line(e)}); re-download it"
        ) from None

    def read(n: str) -> bytes:
        try:
            return tar.extractfile(members[n]).read()  # type: ignore[union-attr]
        except (tarfile.TarError, *limits.DECOMPRESS_ERRORS) as e:
            raise DcganError(f"{n} in {str(path)!r} could not be read ({e}); re-download it") from None

    return set(members), read


def read_cifar(path: Path, split: str | None = None) -> Source:
    """CIFAR-10 or CIFAR-100 python batches: a folder, or the official .tar.gz read without extracting."""
    split = check_split(split, ("train", "test"), path)
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
    return array_source(
        variant,
        path,
        np.concatenate(images),
        np.concatenate(labels),
        label_names=label_names or None,
        split=split,
    )


def _labels(values: Any, n: int, name: str) -> np.ndarray:
    """A batch's labels as int64 (n,), each ≥ 0, or a clear error naming the batch."""
    try:  # integers as they are: digit strings or floats are not labels (int64 would convert them)
        labels = np.asarray(values)
    except (TypeError, ValueError, OverflowError):
        labels = None
    if labels is None or labels.dtype.kind not in "iu" or labels.shape != (n,) or (n and labels.min() < 0):
        raise DcganError(f"{name} does not hold {n:,} non-negative integer labels; re-download the dataset")
    if n:
        limits.check_labels(name, int(labels.max()))
    return labels.astype(np.int64)
