"""Atomic file writes: a temp file beside the target, fsync, os.replace. A crash leaves old or new, never half."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import sys
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
    """Yield a temp path to write; on success it replaces `path` atomically, on error it is removed. The
    folder is made if it is missing (an --out in a new folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def sync_files(paths: list[Path]) -> None:
    """Flush written files' data to disk: for many files one syncfs(2) of their filesystem (Linux), which
    costs about what one fsync does, instead of a journal commit per file; else an fsync each. (syncfs also
    waits for other processes' dirty data on that filesystem, and before Linux 5.8 it did not report
    writeback errors that fsync would have.)"""
    if len(paths) >= 16 and sys.platform == "linux":  # where libc has syncfs
        fds: dict[Path, int] = {}
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            for p in paths:  # one descriptor per folder: every file in it is on that folder's filesystem
                if p.parent not in fds:
                    fds[p.parent] = os.open(p.parent, os.O_RDONLY)
            if all(libc.syncfs(fd) == 0 for fd in fds.values()):
                return
        except (ImportError, AttributeError, OSError):  # no ctypes, or no syncfs in this libc: fsync each
            pass
        finally:
            for fd in fds.values():
                os.close(fd)
    for p in paths:
        fsync_file(p)


@contextlib.contextmanager
def atomic_paths(paths: list[str | os.PathLike]) -> Iterator[list[Path]]:
    """atomic_path for many files written together (a folder of samples): yields their temp paths; on
    success the data of all is flushed at once (sync_files), each temp replaces its path, and each folder is
    synced once; on error the temps are removed. A crash leaves each path old or new, never half."""
    targets = [Path(p) for p in paths]
    if len(set(targets)) < len(targets):
        raise ValueError("atomic_paths: a path is given twice")
    for folder in {p.parent for p in targets}:
        folder.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"  # another call, thread or container writing there too
    tmps = [p.with_name(f".{p.name}.tmp-{token}") for p in targets]
    try:
        yield tmps
        sync_files(tmps)
        for tmp, path in zip(tmps, targets):
            os.replace(tmp, path)
        for folder in {p.parent for p in targets}:
            fsync_dir(folder)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def check_regular(path: str | os.PathLike, what: str) -> None:
    """A DcganError unless `path` is a regular file (or a link to one): reading a pipe waits for a writer
    forever, and a device such as /dev/zero never ends."""
    from dcgan.errors import DcganError

    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise DcganError(f"cannot read {what} {str(path)!r}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe, socket or device"
        raise DcganError(f"{what} {str(path)!r} is {kind}, not a file")


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, metadata) of a .safetensors file; a damaged or foreign file is a DcganError naming it."""
    from safetensors import SafetensorError, safe_open

    from dcgan.errors import DcganError

    check_regular(path, "the weights file")
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

    check_regular(path, "the file")
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 0": the refusal below says all there is
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as e:  # the weights-only unpickler runs no code; whatever it raises, the file is damaged
        _, marker, said = str(e).partition("WeightsUnpickler error:")
        # torch's advice (load with weights_only=False) would run the file's code: give its reason only
        if marker:
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

    check_regular(path, flag)
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
