"""A dataset folder on disk and its life: what makes a folder a dataset (FORMAT in its manifest), the lock
held while one is written, the marked folder a new one is built in, the swap that puts it in place (with
--force, over the old one), and the recovery that finishes or undoes a swap a kill cut short. Only folders
dcgan made are ever removed: `.OUT.partial` carries BUILDING, `.OUT.old` and `--dedup`'s `.OUT.whole` are
datasets, an empty one is a removal cut short; anything else by those names is in the way, and said so.

`prepare.py` (`prepare`, `write_subset`) writes through `writing`, `check_out`, `build` and `swap_into_place`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from dcgan.errors import DcganError
from dcgan.fileio import fsync_dir, parse_json

FORMAT = "dcgan-dataset/1"

BUILDING = ".dcgan-building"  # in a dataset folder while it is built, removed as it goes into place
_WRITING: dict[Path, int] = {}  # the OUTs whose lock this process holds, and the thread that holds each


@contextlib.contextmanager
def writing(out: Path) -> Iterator[None]:
    """Hold OUT's lock while this process checks, builds and swaps OUT in: a second `dcgan prepare` or `dedup`
    to the same OUT (another process, or another thread of this one) refuses instead of racing it (removing
    a live build, or finishing its swap). The lock is the file .OUT.lock beside OUT, removed when the work is
    done (one a kill left is taken over); re-entrant in the thread that holds it. Pool workers forked meanwhile
    share it until they end. On a filesystem without locks, OUT is written unguarded."""
    key = out.absolute()
    if _WRITING.get(key) == threading.get_ident():
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:  # a link or a folder by that name
            raise DcganError(
                f"cannot take the lock {str(path)!r} ({e.strerror}); move that file away"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder before may have removed the file between our open and our lock: lock the new one
            if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                break
        except BlockingIOError:
            os.close(fd)
            raise DcganError(
                f"another `dcgan prepare` or `dcgan dedup` is writing {str(out)!r} now; wait for it to end, "
                "or choose another OUT"
            ) from None
        except FileNotFoundError:
            pass
        except OSError:  # ENOLCK and the like: no locks here
            break
        os.close(fd)
    _WRITING[key] = threading.get_ident()
    try:
        yield
    finally:
        del _WRITING[key]
        with contextlib.suppress(OSError):  # while still held: a waiter that opened it retries on the next
            if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                path.unlink()
        os.close(fd)


def _partial(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _old(out: Path) -> Path:
    return out.parent / f".{out.name}.old"


def whole_copy(out: Path) -> Path:
    """Where `prepare --dedup` keeps the whole dataset it de-duplicates into OUT."""
    return out.parent / f".{out.name}.whole"


def is_dataset(path: Path) -> bool:
    """A folder that `prepare` wrote: its manifest.json says so (read only if it is small, as one is)."""
    manifest = path / "manifest.json"
    try:
        if not manifest.is_file() or manifest.stat().st_size > 64 << 20:
            return False
        return parse_json(manifest.read_bytes()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object
        return False


def _holds(path: Path, source: Path | None) -> str | None:
    """How `path` stands to the source: it "is" the source, it "holds" it (a folder above it), or None."""
    if source is None:
        return None
    p, src = path.resolve(), source.resolve()
    return "is" if p == src else "holds" if p in src.parents else None


def check_out(out: Path, source: Path, force: bool) -> None:
    """OUT may be new, or with --force a prepared dataset to replace — never a link, the source, a folder
    holding the source, or a folder `prepare` did not write. Checked before any work."""
    if out.is_symlink():
        raise DcganError(f"{str(out)!r} is a symbolic link; give the folder it points to as OUT")
    recover(out, source)
    if not out.exists():
        return
    if not force:
        raise DcganError(f"{str(out)!r} already exists; pass --force to replace it, or choose another OUT")
    if not out.is_dir():
        raise DcganError(f"{str(out)!r} is a file; OUT must be a folder path")
    held = _holds(out, source)
    if held:
        raise DcganError(
            f"--force would delete {str(out)!r}, which {held} the source {str(source)!r}; choose another OUT"
        )
    if not is_dataset(out):
        raise DcganError(
            f"--force replaces only a dataset made by `dcgan prepare`, and {str(out)!r} has no {FORMAT} "
            "manifest.json; choose another OUT (or remove that folder yourself)"
        )


def recover(out: Path, source: Path | None = None) -> None:
    """Bring OUT to a whole state after a kill at any point of a build or a --force swap: the swap is
    out → .OUT.old, .OUT.partial (complete: its manifest is written last) → out, then .OUT.old removed.
    Only folders `prepare` made are touched (.OUT.old is a dataset, .OUT.partial carries BUILDING or is a
    dataset; either may be empty, as a removal cut short leaves it); anything else by those names, or one
    that is or holds `source`, is an error, never deleted or moved."""
    old, tmp = _old(out), _partial(out)
    if old.exists() or old.is_symlink():
        if _empty(old):  # its removal got as far as the folder itself
            old.rmdir()
        else:
            _check_ours(old, is_dataset(old), source, f"the dataset {str(out)!r} replaces with --force")
            if out.exists():  # killed after the new dataset went in: the old one was on its way out
                remove_build(old)
            elif is_dataset(tmp):  # killed between the renames: the complete new dataset goes in
                _check_ours(tmp, True, source, f"the new copy of {str(out)!r}")
                os.replace(tmp, out)
                remove_build(old)
            else:  # the new one is gone: the old one comes back
                os.replace(old, out)
        fsync_dir(out.parent)
    remove_leftover(tmp, source, f"the unfinished copy of {str(out)!r}", building=True)


def remove_leftover(path: Path, source: Path | None, role: str, building: bool = False) -> None:
    """Remove what a killed run left at `path`: a dataset, an empty folder or (with `building`) a marked build
    that no live process holds; anything else by that name is an error that says it is in the way."""
    if not (path.exists() or path.is_symlink()):
        return
    _check_ours(path, is_dataset(path) or _empty(path) or (building and _marked(path)), source, role)
    remove_build(path)


def _marked(path: Path) -> bool:
    return (path / BUILDING).is_file()


def _empty(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _check_ours(path: Path, ours: bool, source: Path | None, role: str) -> None:
    held = _holds(path, source)
    if path.is_symlink() or not path.is_dir() or not ours or held:
        what = (
            f"{held} the source; move or rename it"
            if held
            else "is not marked as dcgan's; move or rename it (or delete it if an older dcgan left it)"
        )
        raise DcganError(
            f"{str(path)!r} is in the way: dcgan keeps {role} under that name, and this one {what}"
        )


def remove_build(path: Path) -> None:
    """Remove a dataset or build folder with the marks that say whose it is (manifest.json, BUILDING) last,
    so that a kill part-way leaves a folder the next run still recognizes, or an empty one."""
    marks = ("manifest.json", BUILDING)
    for child in [*(c for c in path.iterdir() if c.name not in marks), *(path / m for m in marks)]:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        elif child.exists() or child.is_symlink():
            child.unlink()
    path.rmdir()


def make_partial(out: Path) -> Path:
    """The hidden folder a new dataset is built in, marked as a build (BUILDING, flushed to disk) before
    anything else is written, so that only a build's leftovers are ever removed. The caller holds
    `writing(out)`, so no other process builds there meanwhile."""
    tmp = _partial(out)
    tmp.mkdir(parents=True)
    fd = os.open(tmp / BUILDING, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(tmp)
    return tmp


@contextlib.contextmanager
def build(out: Path) -> Iterator[Path]:
    """The marked folder to build OUT's new dataset in; whatever fails inside, OUT is left whole (old, new or
    absent) and the folder cleared."""
    tmp = make_partial(out)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(OSError, DcganError):
            recover(out)
        raise


def swap_into_place(tmp: Path, out: Path) -> None:
    """Each step is one rename, and `recover` completes the swap from wherever a kill stopped it."""
    (tmp / BUILDING).unlink()  # the manifest is written: the folder is a dataset now, not a build
    fsync_dir(tmp)
    if out.exists():  # --force: the old dataset stays whole until the new one is in place
        os.replace(out, _old(out))
        fsync_dir(out.parent)
        os.replace(tmp, out)
        fsync_dir(out.parent)
        remove_build(_old(out))
    else:
        os.replace(tmp, out)
    fsync_dir(out.parent)
