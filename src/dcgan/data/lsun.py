"""LSUN's LMDB databases: keys are ids, values are webp or jpeg bytes.

LMDB memory-maps its file and follows the page numbers it finds there, so a truncated or damaged `data.mdb`
does not raise: the process dies with SIGBUS or SIGSEGV. Two defences: the file's length is checked against
the last page its header declares before anything is read, and the entries are read by a child process that
streams them over a pipe, so damage deeper inside kills only the child and becomes one clear error here.
"""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from dcgan.data import limits
from dcgan.data.items import Item, Source
from dcgan.errors import DcganError

# one frame per entry: key length, value length, key, value; END instead of a key length closes the stream
_FRAME = struct.Struct("<II")
_END = 0xFFFFFFFF
_MIN_ENTRY = (
    10  # an LMDB leaf entry's 8-byte node header and 2-byte slot in its page, before any key or value
)
_CHILD = "from dcgan.data.lsun import serve; serve(sys.argv[1], int(sys.argv[3]))"


def _open(root: Path) -> Any:
    import lmdb

    try:
        return lmdb.open(str(root), readonly=True, lock=False, readahead=False, meminit=False, max_readers=4)
    except lmdb.Error as e:
        raise DcganError(f"{str(root)!r} is not a readable LMDB database ({e})") from None


def read_lmdb(root: Path) -> Source:
    """Check the database's header against its file, count its entries (empty values included; prepare skips
    them) and return a Source whose items a child process reads."""
    env = _open(root)
    try:
        stat, last = env.stat(), env.info()["last_pgno"]
        page, count = stat["psize"], stat["entries"]
    finally:
        env.close()
    need, have = (last + 1) * page, (root / "data.mdb").stat().st_size
    if have < need:
        raise DcganError(
            f"the LMDB database {str(root)!r} is truncated: its header says {need:,} bytes of pages, "
            f"data.mdb holds {have:,}; copy or download it again"
        )
    if count == 0:
        raise DcganError(f"the LMDB database {str(root)!r} holds no entries")
    if count > have // _MIN_ENTRY:  # the count sizes the dataset's file: it must be paid for by bytes present
        raise DcganError(
            f"the LMDB database {str(root)!r} claims {count:,} entries, but data.mdb's {have:,} bytes hold "
            f"at most {have // _MIN_ENTRY:,} (each entry takes at least {_MIN_ENTRY} bytes); it is damaged: "
            "copy or download it again"
        )
    return Source("lsun-lmdb", root, count, lambda: _items(root), encoded=True)


def _items(root: Path) -> Iterator[Item]:
    file_size = (root / "data.mdb").stat().st_size
    cap = min(file_size, 4 * limits.max_pixels())  # no image within the pixel limit needs more bytes
    # the child imports exactly what this process imports (its sys.path, not the working directory's)
    code = f"import sys, json; sys.path[:] = json.loads(sys.argv[2]); {_CHILD}"
    with tempfile.TemporaryFile() as err_file:  # not a pipe: a chatty child cannot block on a full one
        child = subprocess.Popen(
            [sys.executable, "-c", code, str(root), json.dumps(sys.path), str(cap)],
            stdout=subprocess.PIPE,
            stderr=err_file,
        )
        assert child.stdout is not None
        n, done, garbled = 0, False, False
        try:
            while True:
                frame = _read(child.stdout, _FRAME.size)
                if frame is None:
                    break
                key_len, value_len = _FRAME.unpack(frame)
                if key_len == _END:
                    done = True
                    break
                if key_len + value_len > cap:  # the child refuses these itself: the stream is garbled
                    garbled = True
                    break
                key, value = _read(child.stdout, key_len), _read(child.stdout, value_len)
                if key is None or value is None:
                    break
                n += 1
                yield value, None, key.decode("utf-8", errors="replace")
        finally:
            if not done:
                child.kill()  # the consumer stopped early (max_images), or the stream broke
            child.stdout.close()
            code_ = child.wait()
            err_file.seek(0)
            err = err_file.read(1 << 16).decode("utf-8", errors="replace").strip()
    if done:
        return
    if garbled:
        raise DcganError(
            f"reading the LMDB database {str(root)!r} failed after {n:,} entries: the reader's stream was garbled"
        )
    if code_ < 0 and -code_ != signal.SIGKILL:
        raise DcganError(
            f"the LMDB database {str(root)!r} is damaged: reading it crashed "
            f"({signal.Signals(-code_).name}) after {n:,} entries; copy or download it again"
        )
    if code_ > 0:
        last = err.splitlines()[-1] if err else f"exit status {code_}"
        raise DcganError(f"the LMDB database {str(root)!r} could not be read after {n:,} entries ({last})")
    # the stream ended without its end mark: the reader was killed from outside (the OOM killer) or exited
    raise DcganError(
        f"reading the LMDB database {str(root)!r} stopped after {n:,} entries without finishing "
        f"(the reader {'was killed' if code_ < 0 else 'exited early'}); run the command again"
    )


def _read(stream: BinaryIO, n: int) -> bytes | None:
    """Exactly n bytes, or None where the stream ended first."""
    data = stream.read(n)
    return data if len(data) == n else None


def serve(root: str, cap: int) -> None:
    """The child: every entry of the database at `root` as frames on stdout; an LMDB error, or an entry
    longer than `cap` bytes, is one line on stderr and exit status 1."""
    import lmdb

    out = sys.stdout.buffer
    try:
        env = _open(Path(root))
        with env.begin(buffers=True) as txn:
            for key, value in txn.cursor():
                if len(key) + len(value) > cap:
                    raise DcganError(
                        f"an entry of {len(value):,} bytes, more than data.mdb or an image within the pixel limit holds"
                    )
                out.write(_FRAME.pack(len(key), len(value)))
                out.write(key)
                out.write(value)
        out.write(_FRAME.pack(_END, 0))
        out.flush()
    except (lmdb.Error, DcganError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # the reader stopped early
        sys.exit(0)
