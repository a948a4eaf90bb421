"""Properties of the array readers of src/dcgan/data/arrays.py (IDX, NumPy) on files Hypothesis writes: a valid file reads
back exactly; a damaged one fails with a DcganError naming it, or reads consistently, and never allocates what
its header claims."""

import functools
import gzip
import io
import zipfile

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dcgan.data.sources import open_source
from dcgan.errors import DcganError

from helpers import (
    QUICK,
    assert_fails_or_is_consistent,
    damages,
    flipped,
    read_all,
    rng_images,
    scratch_dir,
    seeds,
    traced_peak,
    with_field,
    write_idx,
)

# ---------------------------------------------------------------- IDX


@st.composite
def idx_dataset(draw) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) uint8 images with N, H, W from 1 to 9, and N uint8 labels."""
    n, h, w = (draw(st.integers(1, 9)) for _ in range(3))
    labels = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    return rng_images(n, h, w, seed=draw(seeds)), np.array(labels, np.uint8)


@QUICK
@given(
    data=idx_dataset(),
    labelled=st.booleans(),
    gz=st.booleans(),
    split=st.sampled_from(["train", "test"]),
    by_folder=st.booleans(),
)
def test_idx_reads_back_pixels_and_labels(tmp_path_factory, data, labelled, gz, split, by_folder):
    images, labels = data
    prefix = "train" if split == "train" else "t10k"
    with scratch_dir(tmp_path_factory) as d:
        path = write_idx(d / f"{prefix}-images-idx3-ubyte", images, gz)
        if labelled:
            write_idx(d / f"{prefix}-labels-idx1-ubyte", labels, gz)
        src = open_source(d, split=split) if by_folder else open_source(path)
        got = list(src.items())
    assert (src.reader, src.count, src.grey, src.split) == ("idx", len(images), True, split)
    np.testing.assert_array_equal(np.stack([raw for raw, _, _ in got]), images)
    if labelled:
        assert [label for _, label, _ in got] == labels.tolist()
        assert src.label_names == [str(i) for i in range(int(labels.max()) + 1)]
    else:
        assert {label for _, label, _ in got} == {None} and src.label_names is None


IDX_FIELDS = ((2, 1), (3, 1), (4, 4), (8, 4), (12, 4))  # (offset, width): data type, ndim, N, H, W


# Damage to the IDX bytes themselves, or (gz="damaged") to the gzip stream around them.
@settings(QUICK, max_examples=120)
@given(data=idx_dataset(), damage=damages(fields=IDX_FIELDS), gz=st.sampled_from(["no", "yes", "damaged"]))
@example(  # a 106-byte file whose header claims 2^31 rows must fail at once, not allocate 2^31 × 90 bytes
    data=(rng_images(1, 10, 9), np.zeros(1, np.uint8)),
    damage=functools.partial(with_field, offset=4, width=4, value=2**31),
    gz="no",
)
@example(  # 2^31 × 2^31 × 4 must not wrap around to 0 bytes expected
    data=(rng_images(1, 10, 9), np.zeros(1, np.uint8)),
    damage=lambda b: b[:4] + (2**31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big"),
    gz="no",
)
def test_damaged_idx_fails_with_a_dcgan_error_without_allocating_its_claim(
    tmp_path_factory, data, damage, gz
):
    images, labels = data
    with scratch_dir(tmp_path_factory) as d:
        raw = write_idx(d / "raw", images).read_bytes()
        path = d / ("train-images-idx3-ubyte" + (".gz" if gz != "no" else ""))
        path.write_bytes(
            {"no": damage(raw), "yes": gzip.compress(damage(raw)), "damaged": damage(gzip.compress(raw))}[gz]
        )
        write_idx(d / "train-labels-idx1-ubyte", labels)
        peak = traced_peak(lambda: assert_fails_or_is_consistent(path, path.name))
    assert peak < 1 << 20  # the file holds at most ~1 KB; its header may claim up to 2^32 rows


@QUICK
@given(ndim=st.sampled_from([0, *range(5, 256)]), gz=st.booleans())
def test_an_idx_header_with_a_rank_no_image_file_has_is_one_clear_error(tmp_path_factory, ndim, gz):
    """dims of 1 and one byte of data agree with each other at any rank, but no MNIST-style file has more
    than 4 dimensions (and NumPy cannot shape more than 64)."""
    raw = bytes([0, 0, 8, ndim]) + (1).to_bytes(4, "big") * ndim + b"\x07"
    with scratch_dir(tmp_path_factory) as d:
        path = d / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(raw) if gz else raw)
        src, _ = read_all(path)
        assert isinstance(src, DcganError) and "dimensions" in str(src) and path.name in str(src)


# ---------------------------------------------------------------- NumPy


@st.composite
def saved_images(draw) -> tuple[np.ndarray, np.ndarray]:
    """(an array as a user would save it, the N×H×W[×C] uint8 images it stands for): N×H×W, N×H×W×C or
    N×C×H×W; uint8, integers in 0-255, or floats in [0, 1] or [-1, 1]."""
    layout = draw(st.sampled_from(["NHW", "NHWC", "NCHW"]))
    n, h = draw(st.integers(1, 5)), draw(st.integers(1, 9))
    # N×C×H×W is told from N×H×W×C by C in (1, 3, 4) and a last axis that cannot be channels
    w = draw(st.integers(5, 9) if layout == "NCHW" else st.integers(1, 9))
    c = None if layout == "NHW" else draw(st.sampled_from([1, 3, 4]))
    images = rng_images(n, h, w, c, seed=draw(seeds))
    scale = draw(st.sampled_from(["uint8", "int16", "[0, 1]", "[-1, 1]"]))
    if scale == "[-1, 1]":
        images.flat[0] = 0  # a negative value is what tells [-1, 1] from [0, 1]
    a = images.transpose(0, 3, 1, 2).copy() if layout == "NCHW" else images
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    stored = {
        "uint8": a,
        "int16": a.astype(np.int16),
        "[0, 1]": (a / 255).astype(dtype),
        "[-1, 1]": (a / 127.5 - 1).astype(dtype),
    }[scale]
    return stored, images


@QUICK
@given(
    data=saved_images(),
    container=st.sampled_from(["npy", "npz", "npz compressed"]),
    key=st.sampled_from(["images", "x", "X", "arr_0"]),
    label_key=st.sampled_from([None, "labels", "y", "Y"]),
    label_seed=seeds,
)
def test_numpy_files_read_back_as_uint8_images_and_labels(
    tmp_path_factory, data, container, key, label_key, label_seed
):
    stored, images = data
    labels = np.random.default_rng(label_seed).integers(0, 20, len(images))
    with scratch_dir(tmp_path_factory) as d:
        if container == "npy":
            path, label_key = d / "a.npy", None
            np.save(path, stored)
        else:
            path = d / "a.npz"
            arrays = {key: stored} | ({label_key: labels} if label_key else {})
            (np.savez_compressed if container.endswith("compressed") else np.savez)(path, **arrays)
        src = open_source(path)
        got = list(src.items())
    grey = images.ndim == 3 or images.shape[3] == 1
    assert (src.reader, src.count, src.grey) == ("numpy", len(images), grey)
    np.testing.assert_array_equal(np.stack([raw for raw, _, _ in got]), images)
    assert all(raw.dtype == np.uint8 for raw, _, _ in got)
    if label_key:
        assert [label for _, label, _ in got] == labels.tolist()
        assert src.label_names == [str(i) for i in range(labels.max() + 1)]
    else:
        assert {label for _, label, _ in got} == {None}


def with_npy_header(data: bytes, shape_at: int, dim: int, descr: str, fortran: bool) -> bytes:
    """A .npy whose (well-formed) header claims another shape, dtype or order for the same data bytes."""
    f = io.BytesIO(data)
    np.lib.format.read_magic(f)
    shape, _, _ = np.lib.format.read_array_header_1_0(f)
    shape = (*shape[:shape_at], dim, *shape[shape_at + 1 :])
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return out.getvalue() + data[f.tell() :]


npy_headers = st.builds(
    functools.partial,
    st.just(with_npy_header),
    shape_at=st.integers(0, 3),
    dim=st.integers(1, 2**40),  # one wild dimension, so the claimed byte count cannot overflow int64
    descr=st.sampled_from(["|u1", "<f4", ">f8", "<f2", "<i2", "<u8", "|b1", "<c8"]),
    fortran=st.booleans(),
)


def _npy_brace_gone(b: bytes) -> bytes:  # the header dict's "{" → NUL: tokenize.TokenError inside NumPy
    return b[:10] + b"\0" + b[11:]


@settings(QUICK, max_examples=80)
@given(data=saved_images(), damage=st.one_of(damages(), npy_headers))
@example(data=(rng_images(2, 4, 4), None), damage=_npy_brace_gone)
@example(  # the version byte 1 → 3: a 4-byte header length read from the header's text (~600 MB), found in CI
    data=(np.array([[[95]]], np.uint8), None),
    damage=functools.partial(flipped, spots=[(0.046875, 2)], start=0),
)
def test_damaged_npy_fails_with_a_dcgan_error_without_allocating_its_claim(tmp_path_factory, data, damage):
    stored, _ = data
    with scratch_dir(tmp_path_factory) as d:
        path = d / "a.npy"
        np.save(path, stored)
        path.write_bytes(damage(path.read_bytes()))
        peak = traced_peak(lambda: assert_fails_or_is_consistent(path, path.name))
    assert peak < 1 << 20  # a .npy is memory-mapped: a header claiming 2^40 rows maps nothing


def _zip_method_99(b: bytes) -> bytes:  # every central-directory entry claims compression method 99
    out, at = bytearray(b), b.find(b"PK\x01\x02")
    while at != -1:
        out[at + 10 : at + 12] = (99).to_bytes(2, "little")
        at = b.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def _zip_encrypted(b: bytes) -> bytes:  # the general-purpose flag's encryption bit, in every header
    out = bytearray(b)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = b.find(sig)
        while at != -1:
            out[at + off] |= 1
            at = b.find(sig, at + 4)
    return bytes(out)


def _deflate_garbled(b: bytes) -> bytes:  # the first byte of the first member's compressed data
    at = b.find(b"PK\x03\x04")
    start = (
        at
        + 30
        + int.from_bytes(b[at + 26 : at + 28], "little")
        + int.from_bytes(b[at + 28 : at + 30], "little")
    )
    return b[:start] + bytes([b[start] ^ 0xFF]) + b[start + 1 :]


@settings(QUICK, max_examples=80)
@given(data=saved_images(), compressed=st.booleans(), damage=damages())
@example(data=(rng_images(2, 4, 4), None), compressed=True, damage=_zip_method_99)
@example(data=(rng_images(2, 4, 4), None), compressed=True, damage=_zip_encrypted)
@example(data=(rng_images(2, 4, 4), None), compressed=True, damage=_deflate_garbled)
def test_damaged_npz_fails_with_a_dcgan_error_without_allocating_its_claim(
    tmp_path_factory, data, compressed, damage
):
    stored, _ = data
    with scratch_dir(tmp_path_factory) as d:
        path = d / "a.npz"
        (np.savez_compressed if compressed else np.savez)(path, images=stored, labels=np.arange(len(stored)))
        path.write_bytes(damage(path.read_bytes()))
        peak = traced_peak(lambda: assert_fails_or_is_consistent(path, path.name))
    assert peak < 16 << 20  # a few KB of file: no member's header may make NumPy allocate its claim


@QUICK
@given(data=saved_images(), damage=npy_headers, compressed=st.booleans())
def test_an_npz_member_whose_header_lies_is_refused_before_numpy_allocates(
    tmp_path_factory, data, damage, compressed
):
    stored, _ = data
    with scratch_dir(tmp_path_factory) as d:
        np.save(d / "images.npy", stored)
        path = d / "a.npz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
            z.writestr("images.npy", damage((d / "images.npy").read_bytes()))
        peak = traced_peak(lambda: assert_fails_or_is_consistent(path, path.name))
    assert peak < 16 << 20


@pytest.mark.parametrize(
    ("save", "message"),
    [
        (lambda p: np.savez(p, images=rng_images(2, 4, 4)), None),  # an .npz named .npy reads as what it is
        (lambda p: np.save(p, rng_images(2, 4, 4)), None),  # and the other way round
        (lambda p: np.save(p, np.zeros((0, 8, 8), np.float32)), "holds no images"),
        (lambda p: np.save(p, np.zeros((4, 0, 8), np.int16)), "0×8 pixels"),
        (lambda p: np.save(p, np.zeros((3, 0, 5), np.uint8)), "0×5 pixels"),
        (lambda p: np.savez(p, images=rng_images(2, 4, 4), labels=np.array(["a", "b"])), "labels of <U1"),
        (lambda p: np.savez(p, images=rng_images(2, 4, 4), labels=np.array([-1, 2])), "negative labels"),
        (lambda p: np.savez(p, images=rng_images(2, 4, 4), labels=np.array([0, 10**12])), "labels up to"),
        (lambda p: np.savez(p, images=np.array([[1, "a"]], dtype=object)), "holds Python objects"),
    ],
)
@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_numpy_files_of_the_wrong_kind_or_contents_are_one_clear_error(tmp_path, save, message, suffix):
    path = tmp_path / f"a{suffix}"
    with open(path, "wb") as f:  # np.save/np.savez would add their own suffix to a bare name
        save(f)
    src, got = read_all(path)
    if message is None:
        assert got is not None and len(got) == 2
    else:
        assert isinstance(src, DcganError) and message in str(src)


@settings(QUICK, max_examples=20)
@given(data=idx_dataset(), extra=st.integers(1, 1 << 20))
def test_a_gzipped_idx_longer_than_its_header_says_stops_reading_at_the_declared_size(
    tmp_path_factory, data, extra
):
    """A bomb declared small (its header) but holding more: reading stops one byte past the declared size."""
    images, _ = data
    with scratch_dir(tmp_path_factory) as d:
        raw = write_idx(d / "raw", images).read_bytes() + bytes(extra)
        (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
        peak = traced_peak(lambda: read_all(d / "train-images-idx3-ubyte.gz"))
        src, _ = read_all(d / "train-images-idx3-ubyte.gz")
    assert isinstance(src, DcganError) and "too long" in str(src) and peak < 1 << 20
