"""Properties of the array readers (IDX, CIFAR, SVHN, NumPy) on files Hypothesis writes: a valid file reads
back exactly; a damaged one fails with a DcganError naming it, or reads consistently, and never allocates what
its header claims."""

import codecs
import functools
import gzip
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import scipy.io
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from numpy._core import multiarray as np_multiarray

from dcgan.data import arrays as arrays_module
from dcgan.data.sources import open_source
from dcgan.errors import DcganError

from helpers import damages, flipped, rng_images, scratch_dir, traced_peak, with_field, write_cifar, write_idx

# Each example writes and reads real files: few examples, and no deadline for the slow first one.
QUICK = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**32 - 1)  # pixels come from a seeded generator: Hypothesis varies the structure


def read_all(path, **kw):
    """(Source, its items), or (the DcganError raised on the way, None)."""
    try:
        src = open_source(path, **kw)
        return src, list(src.items())
    except DcganError as e:
        return e, None


def assert_fails_or_is_consistent(path, named: str, **kw) -> None:
    """The readers' contract for a damaged file: a DcganError that names it, or items that agree with the
    Source (its count, its grey flag, its label names) and are uint8 images. Any other exception escapes."""
    src, got = read_all(path, **kw)
    event(type(src).__name__)  # --hypothesis-show-statistics: how often damage was still readable
    if isinstance(src, DcganError):
        assert named in str(src)
        return
    assert src.count == len(got) > 0
    for raw, label, _ in got:
        assert isinstance(raw, np.ndarray) and raw.dtype == np.uint8
        assert raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] in (1, 3, 4))
        assert src.grey == (raw.ndim == 2 or raw.shape[2] == 1)
        assert label is None or src.label_names is None or 0 <= label < len(src.label_names)


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


# ---------------------------------------------------------------- NumPy


@st.composite
def saved_images(draw) -> tuple[np.ndarray, np.ndarray]:
    """(an array as a user would save it, the N×H×W[×C] uint8 images it stands for): N×H×W, N×H×W×C or
    N×C×H×W; uint8, integers in 0-255, or floats in [0, 1] or [-1, 1]."""
    layout = draw(st.sampled_from(["NHW", "NHWC", "NCHW"]))
    n, h = draw(st.integers(1, 5)), draw(st.integers(1, 9))
    # N×C×H×W is told from N×H×W×C by C in (1, 3) and a last axis that cannot be channels
    w = draw(st.integers(5, 9) if layout == "NCHW" else st.integers(1, 9))
    c = None if layout == "NHW" else draw(st.sampled_from([1, 3] if layout == "NCHW" else [1, 3, 4]))
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


# ---------------------------------------------------------------- CIFAR


@st.composite
def cifar_dataset(draw) -> tuple[str, dict[str, tuple[np.ndarray, list[int]]], list[str]]:
    """(variant, batch name → (N×3072 uint8, labels) for every batch of the variant, label names)."""
    variant = draw(st.sampled_from(["cifar10", "cifar100"]))
    names = draw(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=12))
    rng = np.random.default_rng(draw(seeds))
    batches = {}
    batch_names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in batch_names if variant == "cifar10" else ["train", "test"]:
        n = draw(st.integers(1, 3))
        labels = draw(st.lists(st.integers(0, len(names) - 1), min_size=n, max_size=n))
        batches[name] = (rng.integers(0, 256, (n, 3072), dtype=np.uint8), labels)
    return variant, batches, names


@QUICK
@given(
    data=cifar_dataset(),
    split=st.sampled_from(["train", "test"]),
    packed=st.sampled_from(["folder", "w", "w:gz"]),
)
def test_cifar_reads_back_pixels_labels_and_names(tmp_path_factory, data, split, packed):
    variant, batches, names = data
    wanted = [b for b in batches if (b == "test" or b == "test_batch") == (split == "test")]
    with scratch_dir(tmp_path_factory) as d:
        path = root = write_cifar(d / f"{variant}-batches-py", batches, names, variant)
        if packed != "folder":
            path = d / ("c.tar.gz" if packed == "w:gz" else "c.tar")
            with tarfile.open(path, packed) as t:
                t.add(root, arcname=root.name)
        src = open_source(path, split=split)
        got = list(src.items())
    assert (src.reader, src.split, src.label_names) == (variant, split, names)
    planes = np.concatenate([batches[b][0] for b in wanted]).reshape(-1, 3, 32, 32)  # rows are R, G, B planes
    np.testing.assert_array_equal(np.stack([raw for raw, _, _ in got]), planes.transpose(0, 2, 3, 1))
    assert [label for _, label, _ in got] == [x for b in wanted for x in batches[b][1]]
    assert src.count == len(got)


# Any damage — truncation, flipped bytes (an encoding name, an opcode turned into a BINBYTES8 claiming
# exabytes), garbage — is a clear error or a consistent read, within bounded memory.
@settings(QUICK, max_examples=60)
@given(
    damage=damages(),
    damaged=st.sampled_from(["data_batch_1", "data_batch_5", "test_batch", "batches.meta"]),
    split=st.sampled_from(["train", "test"]),
)
def test_damaged_cifar_files_fail_with_a_dcgan_error(tmp_path_factory, damage, damaged, split):
    with scratch_dir(tmp_path_factory) as d:
        batches = {
            name: (rng_images(1, 2, 3072, seed=i)[0], [i, 9 - i])  # two images, two labels
            for i, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"])
        }
        root = write_cifar(d / "c", batches, [str(i) for i in range(10)])
        (root / damaged).write_bytes(damage((root / damaged).read_bytes()))
        assert traced_peak(lambda: assert_fails_or_is_consistent(root, damaged, split=split)) < 64 << 20


not_cifar_batches = st.one_of(
    st.none(),
    st.integers(),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.lists(st.integers(0, 4), max_size=3).map(lambda s: {b"data": np.zeros(s, np.uint8), b"labels": [0]}),
    st.just({b"labels": [0]}),
    st.just({b"data": np.zeros((1, 3072), np.uint8)}),
    st.just({b"data": [[0] * 3072], b"labels": [0]}),
    st.just({"data": np.zeros((1, 3072), np.uint8), "labels": [0]}),  # str keys, not the archive's bytes
)


@QUICK
@given(batch=not_cifar_batches, variant=st.sampled_from(["cifar10", "cifar100"]))
def test_pickles_that_are_not_cifar_batches_are_a_dcgan_error(tmp_path_factory, batch, variant):
    name = "test_batch" if variant == "cifar10" else "test"
    with scratch_dir(tmp_path_factory) as d:
        root = write_cifar(d / "c", {}, ["a"], variant)
        # CIFAR-100 is recognized by meta + train; the test split reads neither
        (root / "train").write_bytes(b"")
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
        assert_fails_or_is_consistent(root, name, split="test")


class _Call:
    """Pickles as a call of `fn(*args)`: how a hostile file asks the unpickler to build something."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _claim(n: int) -> bytes:
    """A protocol-4 pickle whose BINBYTES8 claims n bytes and holds 100."""
    return b"\x80\x04\x8e" + n.to_bytes(8, "little") + b"x" * 100 + b"."


_shared = "\xff" * 300_000  # one string, pickled once and referenced by each call below
HOSTILE_PICKLES = {
    # numpy.ndarray(shape, dtype) called directly: uninitialized process memory, or a huge allocation
    "ndarray-called": {b"data": _Call(np.ndarray, (16, 3072), np.dtype("u1")), b"labels": list(range(16))},
    "ndarray-huge": {b"data": _Call(np.ndarray, (2**40,), np.dtype("u1")), b"labels": [0]},
    # numpy's own reconstructor asked for a non-empty array (its memory is not initialized)
    "reconstruct-sized": {b"data": _Call(np_multiarray._reconstruct, np.ndarray, (1 << 16, 3072), b"b")},
    # _codecs.encode with another codec, and one string encoded again and again (gigabytes from kilobytes)
    "codec-other": {b"data": _Call(codecs.encode, "abc", "rot13"), b"labels": [0]},
    "codec-amplified": {
        b"data": [_Call(codecs.encode, _shared, "latin1") for _ in range(300)],
        b"labels": [0],
    },
    # arrays of Python objects, and numeric arrays whose state claims more data than it holds
    "object-array": {b"data": np.array([[1, "a"]], dtype=object), b"labels": [0]},
    "float-pixels": {b"data": np.zeros((1, 3072)), b"labels": [0]},
    "labels-not-numbers": {b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", None]},
    "labels-negative": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [-1, 3]},
    "labels-too-few": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]},
    "labels-huge": {b"data": np.zeros((1, 3072), np.uint8), b"labels": [2**70]},
}


@pytest.mark.parametrize("family", [*HOSTILE_PICKLES, "claim-8GiB", "claim-2^60"])
def test_hostile_cifar_pickles_are_refused_within_bounded_memory(tmp_path, family):
    """Each family a careful attacker tried: one clear error naming the batch, and no allocation beyond a
    small multiple of the file's own size."""
    root = write_cifar(tmp_path / "c", {}, ["a"])
    if family.startswith("claim"):
        raw = _claim(2**33 if family == "claim-8GiB" else 2**60)
    else:
        raw = pickle.dumps(HOSTILE_PICKLES[family], protocol=2)
    (root / "test_batch").write_bytes(raw)
    with pytest.raises(DcganError, match="test_batch"):
        list(open_source(root, split="test").items())
    peak = traced_peak(lambda: read_all(root, split="test"))
    assert peak < 8 * len(raw) + (16 << 20)


# ---------------------------------------------------------------- SVHN


@st.composite
def svhn_dataset(draw) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, H, W, 3) uint8 images, and N labels 1-10 (10 is SVHN's digit 0) or None."""
    n, h, w = draw(st.integers(1, 5)), draw(st.integers(1, 12)), draw(st.integers(1, 12))
    labels = draw(st.none() | st.lists(st.integers(1, 10), min_size=n, max_size=n))
    return rng_images(n, h, w, 3, seed=draw(seeds)), None if labels is None else np.array(labels, np.uint8)


def write_svhn(path, images: np.ndarray, labels: np.ndarray | None, compress: bool):
    """An SVHN cropped-digits .mat: X is H×W×3×N, y is N×1."""
    mat = {"X": images.transpose(1, 2, 3, 0)} | ({} if labels is None else {"y": labels[:, None]})
    scipy.io.savemat(path, mat, do_compression=compress)
    return path


@QUICK
@given(data=svhn_dataset(), compress=st.booleans())
def test_svhn_reads_back_pixels_and_maps_label_10_to_0(tmp_path_factory, data, compress):
    images, labels = data
    with scratch_dir(tmp_path_factory) as d:
        src = open_source(write_svhn(d / "train_32x32.mat", images, labels, compress))
        got = list(src.items())
    assert (src.reader, src.count, src.grey) == ("svhn", len(images), False)
    assert src.label_names == list("0123456789")
    np.testing.assert_array_equal(np.stack([raw for raw, _, _ in got]), images)
    want = [None] * len(images) if labels is None else (labels % 10).tolist()
    assert [label for _, label, _ in got] == want


def _mat_data_type_0(b: bytes) -> bytes:  # X's data element claims type 0: scipy's reader used to SIGSEGV
    at = b.index(b"X\0\0\0") + 4
    return b[:at] + (0).to_bytes(4, "little") + b[at + 4 :]


# Any damage, flipped bits included: every tag is checked before scipy reads the file (one flipped bit used to
# crash the process with SIGSEGV or SIGBUS, or raise zlib.error, ZeroDivisionError or UnboundLocalError).
@settings(QUICK, max_examples=80)
@given(data=svhn_dataset(), compress=st.booleans(), damage=damages())
@example(data=(rng_images(2, 32, 32, 3), None), compress=False, damage=_mat_data_type_0)
def test_damaged_svhn_fails_with_a_dcgan_error(tmp_path_factory, data, compress, damage):
    with scratch_dir(tmp_path_factory) as d:
        path = write_svhn(d / "test_32x32.mat", *data, compress)
        path.write_bytes(damage(path.read_bytes()))
        peak = traced_peak(lambda: assert_fails_or_is_consistent(path, path.name))
    assert peak < 4 << 20  # the file holds at most ~3 KB of pixels


def test_a_cifar_tarball_member_larger_than_any_cifar_batch_is_refused_before_it_is_read(
    tmp_path, monkeypatch
):
    """A genuine bomb — a few KB of .tar.gz holding a member of zeros far larger than any CIFAR batch — is
    refused from the member's size, not read. (The bound is lowered here so the bomb stays small.)"""
    monkeypatch.setattr(arrays_module, "MAX_CIFAR_MEMBER", 1 << 20)
    root = write_cifar(tmp_path / "c", {}, ["a", "b"])
    with tarfile.open(tmp_path / "c.tar.gz", "w:gz") as tar:
        tar.add(root / "batches.meta", "cifar-10-batches-py/batches.meta")
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = 8 << 20  # 8 MiB of zeros compress to a few KB
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert (tmp_path / "c.tar.gz").stat().st_size < 64 << 10
    peak = traced_peak(lambda: read_all(tmp_path / "c.tar.gz", split="test"))
    src, _ = read_all(tmp_path / "c.tar.gz", split="test")
    assert isinstance(src, DcganError) and "CIFAR batches are at most" in str(src) and peak < 4 << 20


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


@pytest.mark.parametrize(
    ("variant", "folder"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
def test_the_folder_holding_an_unpacked_cifar_archive_reads(tmp_path, variant, folder):
    """The parent of what `tar xzf cifar-…-python.tar.gz` makes is a source, for CIFAR-100 as for CIFAR-10."""
    pixels = rng_images(1, 2, 3072)[0]
    batches = {"test_batch" if variant == "cifar10" else "test": (pixels, [0, 1])}
    if variant == "cifar100":
        batches["train"] = (pixels, [1, 0])
    write_cifar(tmp_path / folder, batches, ["a", "b"], variant)
    src, got = read_all(tmp_path, split="test")
    assert not isinstance(src, DcganError) and [label for _, label, _ in got] == [0, 1]
