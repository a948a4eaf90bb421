"""The resource guard every reader uses: what a source may make `dcgan` allocate, decided from the bytes
actually present — never from what a header claims.

- A compressed stream (gzip, a zip member) may expand at most MAX_RATIO times its compressed bytes: deflate
  cannot do better than ~1032:1, so a larger claim is a lie or a bomb.
- One decoded image may hold at most MAX_PIXELS pixels (width × height, before any resizing).
- A label may be at most MAX_CLASSES − 1 (class names are made for 0 … max label).
- What a reader decompresses or copies into memory at once (a gzipped IDX, an .npz member, a .mat) may be at
  most MAX_MEMORY bytes: half of what this process can hold (physical memory, or the address-space limit
  left), so a file that is honest about 50 GB fails with the numbers instead of exhausting the machine.

Users with truly huge data raise them with the environment variables DCGAN_MAX_PIXELS, DCGAN_MAX_CLASSES and
DCGAN_MAX_MEMORY (bytes) — or store their images as a .npy, which is memory-mapped, not read.
"""

from __future__ import annotations

import os
import zipfile
import zlib

from dcgan.errors import DcganError

MAX_RATIO = 1100


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise DcganError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def max_pixels() -> int:
    """Pixels one image may decode to (default 128M: a 11585² photo)."""
    return _env_int("DCGAN_MAX_PIXELS", 128 << 20)


def max_memory() -> int:
    """Bytes one reader may hold decoded at once (default: half the memory this process can use)."""
    default = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 8 << 30
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            default = min(default, max(soft - used, 0))
    except (ImportError, OSError, ValueError):
        pass
    return _env_int("DCGAN_MAX_MEMORY", max(default // 2, 1 << 20))


def check_memory(name: str, nbytes: int, what: str) -> None:
    if nbytes > max_memory():
        raise DcganError(
            f"{name} {what} {nbytes:,} bytes, more than a reader may hold in memory here "
            f"({max_memory():,}); raise DCGAN_MAX_MEMORY if this machine can, or save the images as a .npy"
        )


def max_classes() -> int:
    return _env_int("DCGAN_MAX_CLASSES", 100_000)


# What the standard library's decompressors raise for damaged or unsupported data, beyond OSError/EOFError.
DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, NotImplementedError, RuntimeError)


def check_expansion(name: str, claimed: int, compressed: int) -> None:
    """Refuse a compressed thing that claims to expand beyond what deflate can produce from its bytes."""
    if claimed > MAX_RATIO * max(compressed, 1):
        raise DcganError(
            f"{name} claims {claimed:,} bytes from {compressed:,} compressed ones, more than any compressor "
            "makes: the file is damaged or built to exhaust memory"
        )


def check_pixels(name: str, width: int, height: int) -> None:
    if width * height > max_pixels():
        raise DcganError(
            f"{name} is {width}×{height} = {width * height:,} pixels, over the limit of {max_pixels():,}; "
            "raise DCGAN_MAX_PIXELS if such images are real"
        )


def check_labels(name: str, high: int) -> None:
    if high >= max_classes():
        raise DcganError(
            f"{name} has labels up to {high:,}; expected class indices 0 … K−1 with K under {max_classes():,} "
            "(raise DCGAN_MAX_CLASSES if you really have more classes)"
        )
