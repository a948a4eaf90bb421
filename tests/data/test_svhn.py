"""SVHN .mat files (src/dcgan/data/svhn.py) on files Hypothesis writes: valid ones read back exactly; any
damage fails with a DcganError naming the file — never a crash of scipy's reader."""

import numpy as np
import pytest
import scipy.io
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dcgan.data.sources import open_source
from dcgan.errors import DcganError

from helpers import (
    QUICK,
    assert_fails_or_is_consistent,
    damages,
    rng_images,
    scratch_dir,
    seeds,
    traced_peak,
)


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


def _mat_complex_flag(b: bytes) -> bytes:
    """X's flags say complex: scipy read a missing imaginary part (found by make fuzz)."""
    at = b.index(b"\x06\x00\x00\x00\x08\x00\x00\x00") + 9  # the array-flags element; its second byte
    return b[:at] + bytes([0x9A]) + b[at + 1 :]


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


def test_an_array_flagged_complex_is_refused_before_scipy_reads_its_missing_imaginary_part(tmp_path):
    """Found by make fuzz: flags 0x9a on X made scipy read an imaginary part that is not there (SIGSEGV)."""
    path = write_svhn(tmp_path / "train_32x32.mat", rng_images(2, 32, 32, 3), None, False)
    path.write_bytes(_mat_complex_flag(path.read_bytes()))
    with pytest.raises(DcganError, match=r"flags 0x9a \(complex or unknown\); SVHN's are real arrays"):
        open_source(path)


@given(hw=st.sampled_from([(0, 0), (0, 32), (32, 0), (0, 1), (1, 0)]), n=st.integers(1, 3))
def test_images_without_pixels_are_refused_not_prepared_as_black(tmp_path_factory, hw, n):
    """An X of 0×32×3×N is N images of no pixels: not N black squares."""
    h, w = hw
    with scratch_dir(tmp_path_factory) as d:
        path = write_svhn(d / "x.mat", np.zeros((n, h, w, 3), np.uint8), None, compress=False)
        with pytest.raises(DcganError, match=r"pixels: none to train on"):
            open_source(path)
