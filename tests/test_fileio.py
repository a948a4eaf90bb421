"""Writing many files at once: each path ends old or new (never half), no temp file survives, and the data of
many files is flushed with one filesystem sync instead of an fsync each. Reading a file a user names: only a
regular file is opened."""

import os
import threading

import pytest

from dcgan import fileio
from dcgan.errors import DcganError


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


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "dangling", "loop"])
@pytest.mark.parametrize(
    "reader", ["read_torch", "read_safetensors", "read_small_json", "z_from_spec", "vector"]
)
def test_a_file_that_is_not_a_regular_file_is_one_clear_error_not_a_wait(tmp_path, kind, reader):
    """Weights, latents, vectors and JSON a user names: a pipe (reading waits for a writer forever), a link
    to /dev/zero (never ends), a folder, a dangling link or a link to itself are each one DcganError."""
    from dcgan import sampling
    from dcgan.config import get_preset

    path = tmp_path / "x.npy"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    else:
        path.symlink_to(path.name)
    read = {
        "read_torch": fileio.read_torch,
        "read_safetensors": fileio.read_safetensors,
        "read_small_json": lambda p: fileio.read_small_json(p, 1 << 16, "--boxes"),
        "z_from_spec": lambda p: sampling.z_from_spec(get_preset("fmnist32"), str(p)),
        "vector": lambda p: sampling.load_vector(str(p)),
    }[reader]
    result = []

    def attempt():
        try:
            read(path)
            result.append(None)
        except DcganError as e:
            result.append(e)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(10)
    assert result, f"{reader} is still waiting on {kind}"
    assert isinstance(result[0], DcganError) and str(path) in str(result[0])


def test_an_output_in_a_folder_that_does_not_exist_yet_is_written_there(tmp_path):
    fileio.write_bytes(tmp_path / "new" / "deeper" / "a.bin", b"x")
    with fileio.atomic_paths([tmp_path / "other" / f"{i}.bin" for i in range(3)]) as tmps:
        for t in tmps:
            t.write_bytes(b"y")
    assert (tmp_path / "new" / "deeper" / "a.bin").read_bytes() == b"x"
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["0.bin", "1.bin", "2.bin"]
