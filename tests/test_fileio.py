"""Writing many files at once: each path ends old or new (never half), no temp file survives, and the data of
many files is flushed with one filesystem sync instead of an fsync each."""

import pytest

from dcgan import fileio


def test_atomic_paths_replace_every_file_and_leave_no_temp(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(fileio, "fsync_file", lambda p: synced.append(p))  # what a per-file flush would do
    paths = [tmp_path / "a" / f"f{i}.bin" for i in range(20)] + [tmp_path / "b" / "g.bin"]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "f0.bin").write_bytes(b"old")
    with fileio.atomic_paths(paths) as tmps:
        assert all(t.parent == p.parent and t.name.startswith(".") for t, p in zip(tmps, paths))
        for i, t in enumerate(tmps):
            t.write_bytes(b"new %d" % i)
        assert (tmp_path / "a" / "f0.bin").read_bytes() == b"old"  # nothing replaced before the end
    assert [p.read_bytes() for p in paths] == [b"new %d" % i for i in range(len(paths))]
    assert not list(tmp_path.glob("*/.*"))
    assert synced == []  # 21 files: one syncfs per filesystem, not an fsync each


def test_a_few_files_are_fsynced_each(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(fileio, "fsync_file", lambda p: synced.append(p))
    with fileio.atomic_paths([tmp_path / "x", tmp_path / "y"]) as tmps:
        for t in tmps:
            t.write_bytes(b"1")
    assert synced == tmps


def test_an_error_while_writing_keeps_every_old_file_and_removes_the_temps(tmp_path):
    paths = [tmp_path / f"f{i}" for i in range(3)]
    for p in paths:
        p.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), fileio.atomic_paths(paths) as tmps:
        tmps[0].write_bytes(b"new")
        tmps[1].write_bytes(b"ne")
        raise RuntimeError("disk full")
    assert [p.read_bytes() for p in paths] == [b"old"] * 3
    assert sorted(tmp_path.iterdir()) == paths


def test_a_path_given_twice_is_refused_before_anything_is_written(tmp_path):
    with (
        pytest.raises(ValueError, match="given twice"),
        fileio.atomic_paths([tmp_path / "a", tmp_path / "a"]),
    ):
        pass
    assert not list(tmp_path.iterdir())
