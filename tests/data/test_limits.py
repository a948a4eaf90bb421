"""The resource guard of src/dcgan/data/limits.py: files honest about sizes this process cannot hold are refused
with the numbers before they are inflated, and the budget follows the machine (and DCGAN_MAX_MEMORY)."""

import gzip
import io
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest
import scipy.io
from hypothesis import given
from hypothesis import strategies as st

from dcgan.data import limits
from dcgan.data.sources import open_source
from dcgan.errors import DcganError

from helpers import QUICK, scratch_dir, traced_peak

BUDGET = 1 << 20  # DCGAN_MAX_MEMORY in these tests: 1 MiB


def idx_gz(path, rows):
    """A gzipped IDX of `rows` 28×28 zero images: honest, and small compressed."""
    head = bytes([0, 0, 8, 3]) + struct.pack(">III", rows, 28, 28)
    path = path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(head + bytes(rows * 784)))
    return path.parent


def idx_raw(path, rows):
    head = bytes([0, 0, 8, 3]) + struct.pack(">III", rows, 28, 28)
    (path / "train-images-idx3-ubyte").write_bytes(head + bytes(rows * 784))
    return path / "train-images-idx3-ubyte"


def npz(path, rows):
    np.savez_compressed(path / "x.npz", x=np.zeros((rows, 28, 28), np.uint8))
    return path / "x.npz"


def mat(path, rows):
    x = np.zeros((32, 32, 3, rows), np.uint8)
    scipy.io.savemat(path / "train_32x32.mat", {"X": x, "y": np.ones((rows, 1))}, do_compression=True)
    return path / "train_32x32.mat"


@QUICK
@given(
    write=st.sampled_from([idx_gz, idx_raw, npz, mat]),
    rows=st.integers(4 * BUDGET // 784, 40 * BUDGET // 784),
)
def test_a_file_honest_about_more_than_the_memory_budget_is_refused_before_it_is_inflated(
    tmp_path_factory, write, rows
):
    with pytest.MonkeyPatch.context() as mp, scratch_dir(tmp_path_factory) as d:
        mp.setenv("DCGAN_MAX_MEMORY", str(BUDGET))
        src = write(d, rows)

        def read():
            with pytest.raises(DcganError, match=r"more than a reader may hold in memory here \(1,048,576\)"):
                list(open_source(src).items())

        assert traced_peak(read) < 2 * BUDGET  # the claims are 4-40× the budget


@pytest.mark.parametrize("write", [idx_gz, idx_raw, npz, mat])
def test_the_same_files_within_the_budget_are_read(tmp_path, monkeypatch, write):
    monkeypatch.setenv("DCGAN_MAX_MEMORY", str(BUDGET))
    src = open_source(write(tmp_path, 100))
    assert len(list(src.items())) == 100


def test_a_compressed_mat_element_longer_than_its_tag_says_is_refused():
    inner = struct.pack("<II", 14, 16) + bytes(5000)
    with pytest.raises(DcganError, match="longer than its tag says"):
        from dcgan.data.svhn import _inflate_head

        _inflate_head(memoryview(zlib.compress(inner)), "'x.mat'")


def test_the_budget_is_half_the_address_space_left_and_can_be_raised(monkeypatch):
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
        "from dcgan.data import limits; print(limits.max_memory())"
    )
    budget = int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert 256 << 20 < budget < (3 << 30) // 2
    monkeypatch.setenv("DCGAN_MAX_MEMORY", str(64 << 30))
    assert limits.max_memory() == 64 << 30
    monkeypatch.setenv("DCGAN_MAX_MEMORY", "lots")
    with pytest.raises(DcganError, match="DCGAN_MAX_MEMORY must be a positive integer, got 'lots'"):
        limits.max_memory()


def test_a_zip_of_an_honest_large_npy_member_is_not_read_whole(tmp_path, monkeypatch):
    """The .npz member's header is read from the stream; nothing of its data is inflated before the refusal."""
    monkeypatch.setenv("DCGAN_MAX_MEMORY", str(BUDGET))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (10000, 28, 28)}
    )
    with zipfile.ZipFile(tmp_path / "x.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", header.getvalue() + bytes(10000 * 784))
    with pytest.raises(DcganError, match="x.npy unpacks to 7,840,000 bytes"):
        open_source(tmp_path / "x.npz")
