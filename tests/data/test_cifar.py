"""CIFAR-10/100 batches (src/dcgan/data/cifar.py) on files Hypothesis writes: valid ones read back exactly;
damaged and hostile pickles fail with a DcganError naming the batch, within bounded memory."""

import codecs
import io
import pickle
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy._core import multiarray as np_multiarray

from dcgan.data import cifar as cifar_module
from dcgan.data.sources import open_source
from dcgan.errors import DcganError

from helpers import (
    QUICK,
    assert_fails_or_is_consistent,
    damages,
    read_all,
    rng_images,
    scratch_dir,
    seeds,
    traced_peak,
    write_cifar,
)


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


def test_a_cifar_tarball_member_larger_than_any_cifar_batch_is_refused_before_it_is_read(
    tmp_path, monkeypatch
):
    """A genuine bomb — a few KB of .tar.gz holding a member of zeros far larger than any CIFAR batch — is
    refused from the member's size, not read. (The bound is lowered here so the bomb stays small.)"""
    monkeypatch.setattr(cifar_module, "MAX_CIFAR_MEMBER", 1 << 20)
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


wrong_labels = st.one_of(
    st.lists(st.integers(0, 9).map(str), min_size=2, max_size=2),  # digit strings: int64 would convert them
    st.lists(st.floats(0, 9), min_size=2, max_size=2),
    st.lists(st.integers(10**6, 2**63 - 1), min_size=1, max_size=2).map(lambda x: [0, *x][-2:]),
    st.lists(st.integers(2**63, 2**70), min_size=2, max_size=2),
    st.lists(st.booleans(), min_size=2, max_size=2),
    st.lists(st.integers(-(2**63), -1), min_size=2, max_size=2),
)


@QUICK
@given(labels=wrong_labels)
def test_labels_that_are_not_small_non_negative_integers_are_refused_by_name(tmp_path_factory, labels):
    """Strings, floats, booleans, negative numbers and class indices of a million or more (which would size
    the per-class counts) are one error naming the batch, never a dataset."""
    with scratch_dir(tmp_path_factory) as d:
        root = write_cifar(d / "c", {}, ["a"])
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}
        (root / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
        src, got = read_all(root, split="test")
        assert isinstance(src, DcganError) and "test_batch" in str(src), (src, got)
