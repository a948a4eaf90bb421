"""SVHN cropped digits (train/test/extra_32x32.mat), MAT v5 files read by scipy after their structure is
checked here."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from dcgan.data import limits
from dcgan.data.arrays import array_source, check_area
from dcgan.data.items import Source
from dcgan.errors import DcganError

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
            head, total = _inflate_head(buf[start : start + n], name)
            try:  # the array's tags lie in its first bytes; its data is only counted
                _mat_elements(memoryview(head), 0, total, name, top=False)
            except struct.error:
                raise DcganError(f"{name} holds a damaged compressed element; re-download it") from None
            pos = start + n  # compressed elements are not padded
            continue
        if kind != 14:
            raise DcganError(f"{name} holds an element of type {kind} where an array belongs; re-download it")
        _mat_array(buf, start, start + n, name)
        pos = nxt


def _inflate_head(data: memoryview, name: str, keep: int = 1 << 16) -> tuple[bytes, int]:
    """(the first `keep` bytes, the length) of a zlib stream, inflated in chunks and never held whole. It
    stops past what deflate could make of its bytes (a bomb) or past the size its first tag declares (which
    must fit in memory: scipy will inflate it whole)."""
    d, head, total, chunk = zlib.decompressobj(), b"", 0, 1 << 18
    limit = limits.MAX_RATIO * max(len(data), 1)
    try:
        out = d.decompress(data, 8)  # the element's tag first
        if len(out) == 8:
            declared = 8 + struct.unpack_from("<I", out, 4)[0]
            limits.check_memory(name, declared, "holds a compressed element that declares")
            limit = min(limit, declared)
        while out:
            head += out[: max(keep - len(head), 0)]
            total += len(out)
            if total > limit:
                limits.check_expansion(name, total, len(data))
                raise DcganError(
                    f"{name} holds a compressed element longer than its tag says; re-download it"
                )
            out = d.decompress(d.unconsumed_tail, chunk)
    except zlib.error as e:
        raise DcganError(f"{name} holds a damaged compressed element ({e}); re-download it") from None
    return head, total


def _mat_array(buf: memoryview, pos: int, end: int, name: str) -> None:
    """Array flags, dimensions, name, then the real part — its byte count must match the dimensions."""
    kind, start, n, pos = _mat_tag(buf, pos, end, name)
    if kind != 6 or n != 8:
        raise DcganError(f"{name} has an array whose flags are damaged; re-download it")
    if buf[start] not in _MAT_NUMERIC_CLASSES:
        raise DcganError(f"{name} holds an array of MATLAB class {buf[start]}; SVHN's hold numbers")
    if buf[start + 1] & ~0x06:  # only "logical" and "global" may be set: a complex array's imaginary part
        raise DcganError(  # is read without a check by scipy (a SIGSEGV), and other bits are not MATLAB's
            f"{name} has an array with flags {buf[start + 1]:#04x} (complex or unknown); SVHN's are real arrays"
        )
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
        limits.check_memory(repr(str(path)), path.stat().st_size, "holds")
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
    check_area(x.transpose(3, 0, 1, 2), path)
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
    return array_source(
        "svhn", path, x.transpose(3, 0, 1, 2), labels, label_names=[str(i) for i in range(10)]
    )
