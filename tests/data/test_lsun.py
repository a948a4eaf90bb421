"""LSUN LMDB databases: reading, and damaged ones — which LMDB would answer with SIGBUS — as one clear error."""

import os
import shutil
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcgan.data import lsun
from dcgan.data.prepare import prepare
from dcgan.data.sources import open_source
from dcgan.errors import DcganError

from helpers import QUICK, encoded, flipped, rng_images, scratch_dir, write_lmdb


def images(n: int, size: int = 16) -> dict[bytes, bytes]:
    return {
        f"{i:05d}".encode(): encoded(a, "WEBP", lossless=True)
        for i, a in enumerate(rng_images(n, size, size, 3))
    }


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Enough entries for a two-level tree (branch and leaf pages) and a few values on overflow pages."""
    values = images(150)
    values.update({f"big{i}".encode(): encoded(a) for i, a in enumerate(rng_images(4, 48, 48, 3, seed=1))})
    return write_lmdb(tmp_path_factory.mktemp("lsun") / "db", values)


def test_lmdb_reads_values_and_counts_entries(tmp_path):
    a = rng_images(1, 16, 24, 3)[0]
    root = write_lmdb(tmp_path / "db", {b"a1": encoded(a, "WEBP"), b"b2": encoded(a, "JPEG"), b"c3": b""})
    src = open_source(root)
    assert (src.reader, src.count) == ("lsun-lmdb", 3)
    got = list(src.items())
    assert [sid for _, _, sid in got] == ["a1", "b2", "c3"] and got[2][0] == b""  # LSUN has empty values
    assert open_source(root / "data.mdb").count == 3


def test_every_entry_comes_through_the_reader_process_intact(db):
    src = open_source(db)
    got = {sid: raw for raw, _, sid in src.items()}
    assert len(got) == src.count == 154
    import lmdb

    env = lmdb.open(str(db), readonly=True, lock=False)
    with env.begin() as txn:
        assert got == {k.decode(): v for k, v in txn.cursor()}
    env.close()


def test_prepare_skips_empty_values_and_stops_the_reader_at_max_images(tmp_path):
    a = rng_images(3, 12, 12, 3)
    values = {f"k{i}".encode(): encoded(x, "WEBP", lossless=True) for i, x in enumerate(a)} | {b"k9": b""}
    root = write_lmdb(tmp_path / "db", values)
    m = prepare(root, tmp_path / "ds", size=12, progress=False)
    assert m["counts"]["written"] == 3 and m["skipped"][0]["id"] == "k9"
    assert (np.load(tmp_path / "ds" / "images.npy")[1] == a[1]).all()  # lossless webp
    m = prepare(root, tmp_path / "one", size=12, max_images=1, progress=False)  # the reader is stopped early
    assert m["counts"]["written"] == 1


def test_not_an_lmdb_is_an_error(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "data.mdb").write_bytes(b"\0" * 100)
    with pytest.raises(DcganError, match="not a readable LMDB"):
        open_source(tmp_path / "db")


@QUICK
@given(at=st.floats(0, 1, exclude_max=True))
def test_a_truncated_database_is_refused_before_it_is_read(tmp_path_factory, db, at):
    """Reading a truncated data.mdb kills the reading process with SIGBUS; its header's last page says how
    long it must be."""
    with scratch_dir(tmp_path_factory) as d:
        shutil.copytree(db, d / "db")
        os.truncate(d / "db" / "data.mdb", int(os.path.getsize(db / "data.mdb") * at))
        with pytest.raises(DcganError, match=r"'.*db'.*(is truncated|not a readable LMDB)"):
            open_source(d / "db")


@QUICK
@given(
    spots=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=6)
)
def test_a_damaged_database_is_a_dcgan_error_or_reads_consistently(tmp_path_factory, db, spots):
    with scratch_dir(tmp_path_factory) as d:
        (d / "db").mkdir()
        (d / "db" / "data.mdb").write_bytes(flipped((db / "data.mdb").read_bytes(), spots))
        src, got = None, None
        try:
            src = open_source(d / "db")
            got = list(src.items())
        except DcganError as e:
            assert "db" in str(e)
            return
        assert got and all(isinstance(raw, bytes) and isinstance(sid, str) for raw, _, sid in got)


def test_an_entry_claiming_more_than_the_file_holds_is_refused_unread(tmp_path, db):
    """A leaf node's value length set to nearly the whole file: LMDB may notice, else the reader must."""
    shutil.copytree(db, tmp_path / "db")
    path = tmp_path / "db" / "data.mdb"
    b = bytearray(path.read_bytes())
    page = 4096
    leaves = [p for p in range(2, len(b) // page) if struct.unpack_from("<QxxH", b, p * page) == (p, 0x02)]
    node = leaves[-1] * page + struct.unpack_from("<H", b, leaves[-1] * page + 16)[0]
    struct.pack_into("<HH", b, node, (len(b) - 8) & 0xFFFF, (len(b) - 8) >> 16)
    path.write_bytes(bytes(b))
    with pytest.raises(DcganError, match="'.*db'"):
        list(open_source(tmp_path / "db").items())


def test_a_reader_killed_by_a_signal_is_one_clear_error(tmp_path, db, monkeypatch):
    """What damage LMDB does not notice kills the reading child (SIGBUS, SIGSEGV): after the entries it sent,
    that is one error naming the signal, and this process lives on."""
    crash = (
        "import os, signal, sys, struct; out = sys.stdout.buffer; "
        "[out.write(struct.pack('<II', 1, 3) + b'k' + b'abc') for _ in range(5)]; out.flush(); "
        "os.kill(os.getpid(), signal.SIGBUS)"
    )
    monkeypatch.setattr(lsun, "_CHILD", crash)
    src = open_source(db)
    got = []
    with pytest.raises(DcganError, match=r"is damaged: reading it crashed \(SIGBUS\) after 5 entries"):
        for item in src.items():
            got.append(item)
    assert len(got) == 5 and got[0] == (b"abc", None, "k")


def test_a_reader_that_fails_reports_its_last_line(tmp_path, db, monkeypatch):
    monkeypatch.setattr(
        lsun, "_CHILD", "import sys; print('lmdb.Error: page 7 is odd', file=sys.stderr); sys.exit(1)"
    )
    with pytest.raises(DcganError, match=r"could not be read after 0 entries \(lmdb.Error: page 7 is odd\)"):
        list(open_source(db).items())


def test_a_reader_that_stops_without_its_end_mark_is_an_error_not_a_short_dataset(db, monkeypatch):
    """Killed from outside (the OOM killer) or exiting early: the entries so far are not the dataset."""
    monkeypatch.setattr(
        lsun,
        "_CHILD",
        "import sys, struct; out = sys.stdout.buffer; out.write(struct.pack('<II', 1, 3) + b'kabc'); out.flush()",
    )
    with pytest.raises(
        DcganError, match=r"stopped after 1 entries without finishing \(the reader exited early\)"
    ):
        list(open_source(db).items())


@given(st.integers(2**20, 2**63 - 1))
def test_an_entry_count_the_file_cannot_hold_is_refused_with_the_numbers(tmp_path_factory, db, count):
    """The main database's entry count (in both meta pages) sizes the dataset's file: it must be refused
    before anything is allocated, not fail in the allocator."""
    with scratch_dir(tmp_path_factory) as tmp:
        shutil.copytree(db, tmp / "db")
        path = tmp / "db" / "data.mdb"
        b = bytearray(path.read_bytes())
        # in each meta page: page header 16, magic/version 8, address/mapsize 16, free DB 48; entries at 32
        for meta in (0, 4096):
            struct.pack_into("<Q", b, meta + 16 + 24 + 48 + 32, count)
        path.write_bytes(bytes(b))
        with pytest.raises(DcganError, match=rf"claims {count:,} entries, but data\.mdb's [\d,]+ bytes hold"):
            open_source(tmp / "db")
