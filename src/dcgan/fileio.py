"""Atomic file writes: a temp file beside the target, fsync, os.replace. A crash leaves old or new, never half."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path` atomically, on error it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, metadata) of a .safetensors file; a damaged or foreign file is a DcganError naming it."""
    from safetensors import SafetensorError, safe_open

    from dcgan.errors import DcganError

    try:
        with safe_open(str(path), "pt") as f:  # one pass: the metadata and every tensor
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise DcganError(f"{str(path)!r} is not a readable .safetensors file ({e})") from None


def read_torch(path: str | os.PathLike) -> Any:
    """A torch.save file loaded weights-only (tensors, numbers, strings, containers; never code) onto the CPU;
    a damaged or foreign file is a DcganError naming it. The caller checks what the object holds."""
    import torch

    from dcgan.errors import DcganError, one_line

    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 0": the refusal below says all there is
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as e:  # the weights-only unpickler runs no code; whatever it raises, the file is damaged
        _, marker, said = str(e).partition("WeightsUnpickler error:")
        if (
            marker
        ):  # torch's advice (load with weights_only=False) would run the file's code: give its reason only
            reason = next((s.strip() for s in said.splitlines() if s.strip()), "")
            why = f"it holds more than tensors and numbers, refused unread: {reason.split('. Please use')[0]}"
        else:
            why = f"{type(e).__name__}: {one_line(e)}" if str(e).strip() else type(e).__name__
        raise DcganError(f"{str(path)!r} is not a readable PyTorch weights file ({why[:300]})") from None


def parse_json(data: str | bytes) -> Any:
    """json.loads whose every failure is a ValueError: JSON nested past Python's recursion limit (a few
    bytes of "[[[[…" from a hostile file) raises RecursionError from the standard library."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_small_json(path: str | os.PathLike, limit: int, flag: str) -> Any:
    """A small JSON file a user names with `flag` (a box file, a drops file), read within `limit` bytes:
    the parsed value, or None when it is not JSON (the caller says what was expected); an unreadable or
    oversized file is a DcganError."""
    from dcgan.errors import DcganError

    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise DcganError(f"cannot read {flag} {str(path)!r}: {e.strerror}") from None
    if len(data) > limit:
        raise DcganError(f"{flag} {str(path)!r} is over {limit:,} bytes; such a file is a few KiB")
    try:
        return parse_json(data)
    except ValueError:
        return None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
