"""PreparedDataset: memory-mapped minibatches in the caller's order, normalization, and refusing bad folders."""

import contextlib
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcgan.data.dataset import PreparedDataset, to_unit_range
from dcgan.data.prepare import prepare
from dcgan.errors import DcganError

from helpers import rng_images


@pytest.fixture
def ds_path(tmp_path):
    np.savez(tmp_path / "src.npz", images=rng_images(40, 8, 8, 3), labels=np.arange(40) % 4)
    prepare(tmp_path / "src.npz", tmp_path / "ds", size=8, progress=False)
    return tmp_path / "ds"


def test_batches_keep_the_callers_order_and_are_channels_last(ds_path):
    ds = PreparedDataset(ds_path)
    assert isinstance(ds.images, np.memmap) and len(ds) == 40 and ds.labels.tolist()[:5] == [0, 1, 2, 3, 0]
    idx = np.array([31, 2, 17, 2, 0])
    x = ds.batch(idx)
    assert x.shape == (5, 3, 8, 8) and x.dtype == torch.uint8
    assert x.is_contiguous(memory_format=torch.channels_last)
    expected = rng_images(40, 8, 8, 3)[idx].transpose(0, 3, 1, 2)
    assert (x.numpy() == expected).all()


def test_random_batches_follow_the_generator(ds_path):
    ds = PreparedDataset(ds_path, in_memory=True)
    a = ds.random_batch(16, torch.Generator().manual_seed(3))
    b = ds.random_batch(16, torch.Generator().manual_seed(3))
    c = ds.random_batch(16, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)  # the seed decides (a constant would pass the first)


def test_to_unit_range():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8)
    y = to_unit_range(x)
    assert y.dtype == torch.float32 and y[0] == -1 and y[1] == 1 and abs(y[2].item() - 0.0039) < 1e-3
    assert to_unit_range(x, "cpu", torch.bfloat16).dtype == torch.bfloat16


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(DcganError, match="expected a dataset folder made by `dcgan prepare`"):
        PreparedDataset(tmp_path)


def test_a_modified_folder_is_refused(ds_path):
    np.save(ds_path / "images.npy", rng_images(39, 8, 8, 3))
    with pytest.raises(
        DcganError, match=r"holds uint8 \[39, 8, 8, 3\] but the manifest says uint8 \[40, 8, 8, 3\]"
    ):
        PreparedDataset(ds_path)


def test_verify_detects_changed_bytes(ds_path):
    ds = PreparedDataset(ds_path)
    ds.verify()
    images = np.load(ds_path / "images.npy")
    images[0, 0, 0, 0] ^= 1
    np.save(ds_path / "images.npy", images)
    with pytest.raises(DcganError, match="does not match its manifest's sha256"):
        PreparedDataset(ds_path).verify()


def test_a_foreign_manifest_is_refused(ds_path):
    (ds_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DcganError, match="is not a dcgan-dataset/1 manifest"):
        PreparedDataset(ds_path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    change=st.one_of(
        st.tuples(
            st.just("drop"),
            st.sampled_from(["format", "shape", "images_sha256", "counts", "labels", "source"]),
        ),
        st.tuples(
            st.sampled_from(["format", "shape", "counts", "labels", "label_names", "skipped", "background"]),
            json_values,
        ),
        st.tuples(st.just("whole"), json_values),
        st.tuples(st.just("bytes"), st.binary(max_size=40)),
    )
)
def test_a_damaged_manifest_is_one_clear_error_or_still_describes_the_dataset(ds_path, change, capsys):
    """PreparedDataset and `dcgan info` on a manifest.json that is not JSON, not an object, or missing or
    mistyping any key: a DcganError (exit 2) or a description — never another exception. (The folder is
    shared by the examples on purpose: each restores the manifest it damaged.)"""
    from dcgan.cli import main

    manifest = ds_path / "manifest.json"
    good = manifest.read_bytes()
    try:
        m = json.loads(good)
        key, value = change
        if key == "drop":
            m.pop(value, None)
        elif key == "whole":
            m = value
        elif key != "bytes":
            m[key] = value
        manifest.write_bytes(value if key == "bytes" else json.dumps(m).encode())
        with contextlib.suppress(DcganError):
            PreparedDataset(ds_path)
        assert main(["info", str(ds_path)]) in (0, 2)
    finally:
        manifest.write_bytes(good)
        capsys.readouterr()
