"""prepare → read round trips: the dataset folder, its manifest, skipped files, atomic replacement."""

import json

import lmdb
import numpy as np
import pytest
from PIL import Image

from dcgan.data.dataset import PreparedDataset
from dcgan.data.prepare import _shrink_npy, prepare
from dcgan.errors import DcganError
from dcgan.fileio import sha256_file

from helpers import rng_images, write_idx


def test_folder_round_trip_with_labels_and_a_skipped_file(image_folder, tmp_path):
    (image_folder / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    m = prepare(image_folder, tmp_path / "ds", size=16, class_folders=True, workers=1, progress=False)
    out = tmp_path / "ds"
    images = np.load(out / "images.npy")
    assert images.shape == (6, 16, 16, 3) and images.dtype == np.uint8
    assert np.load(out / "labels.npy").tolist() == [0, 0, 0, 1, 1, 1]
    assert m == json.loads((out / "manifest.json").read_text())
    assert m["counts"] == {"read": 7, "written": 6, "skipped": 1, "ignored_non_images": 0}
    assert m["skipped"][0]["id"] == "dogs/broken.jpg" and "Truncated" in m["skipped"][0]["reason"]
    assert m["label_names"] == ["cats", "dogs"] and m["class_counts"] == [3, 3]
    assert m["images_sha256"] == sha256_file(out / "images.npy")
    assert (m["reader"], m["size"], m["channels"], m["fit"]) == ("image-folder", 16, 3, "crop")
    assert not list(tmp_path.glob(".ds.*"))  # no partial folder left behind


def test_strict_fails_on_the_first_bad_file_and_leaves_nothing(image_folder, tmp_path):
    (image_folder / "cats" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DcganError, match=r"'cats/3.png' in .*: .* \(drop --strict to skip such files\)"):
        prepare(image_folder, tmp_path / "ds", size=16, strict=True, workers=1, progress=False)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds*"))


def test_a_source_where_nothing_decodes_is_an_error(tmp_path):
    (tmp_path / "src").mkdir()
    for i in range(3):
        (tmp_path / "src" / f"{i}.png").write_bytes(b"garbage")
    with pytest.raises(DcganError, match="no image in .* could be read \\(3 failed; first: '0.png'"):
        prepare(tmp_path / "src", tmp_path / "ds", size=8, progress=False)


def test_worker_pool_gives_the_same_bytes_in_the_same_order(tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    for i, a in enumerate(rng_images(80, 20, 30, 3)):
        Image.fromarray(a).save(src / f"{i:03d}.png")
    one = prepare(src, tmp_path / "one", size=8, workers=1, progress=False)
    two = prepare(src, tmp_path / "two", size=8, workers=2, progress=False)
    assert one["images_sha256"] == two["images_sha256"]


def test_max_images_and_an_existing_out(tmp_path):
    p = write_idx(tmp_path / "train-images-idx3-ubyte", rng_images(50, 28, 28))
    m = prepare(p, tmp_path / "ds", size=32, fit="pad", max_images=20, progress=False)
    assert m["shape"] == [20, 32, 32, 1]  # grey source stays grey
    with pytest.raises(DcganError, match="already exists; pass --force"):
        prepare(p, tmp_path / "ds", size=32, progress=False)
    m = prepare(p, tmp_path / "ds", size=16, force=True, progress=False)
    assert PreparedDataset(tmp_path / "ds").images.shape == (50, 16, 16, 1)


def test_a_stale_partial_folder_from_a_killed_run_is_cleared(tmp_path):
    p = write_idx(tmp_path / "x-images-idx3-ubyte", rng_images(5, 8, 8))
    stale = tmp_path / ".ds.partial"
    stale.mkdir()
    (stale / "images.npy").write_bytes(b"half written")
    prepare(p, tmp_path / "ds", size=8, progress=False)
    assert not stale.exists() and len(PreparedDataset(tmp_path / "ds")) == 5


def test_shrink_npy_rewrites_the_header_and_truncates(tmp_path):
    path = tmp_path / "a.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(1000, 4, 4, 3))
    mm[:] = np.arange(1000, dtype=np.uint8)[:, None, None, None]
    mm.flush()
    del mm
    _shrink_npy(path, 7)
    a = np.load(path)
    assert a.shape == (7, 4, 4, 3) and (a[:, 0, 0, 0] == np.arange(7)).all()
    assert path.stat().st_size == 128 + 7 * 48


def test_lmdb_empty_values_are_skipped_and_counted(tmp_path):
    env = lmdb.open(str(tmp_path / "db"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, a in enumerate(rng_images(3, 12, 12, 3)):
            import io

            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="WEBP", lossless=True)
            txn.put(f"k{i}".encode(), buf.getvalue())
        txn.put(b"k9", b"")
    env.close()
    m = prepare(tmp_path / "db", tmp_path / "ds", size=12, progress=False)
    assert m["counts"]["written"] == 3 and m["skipped"][0]["id"] == "k9"
    assert (np.load(tmp_path / "ds" / "images.npy")[1] == rng_images(3, 12, 12, 3)[1]).all()  # lossless webp


def test_bad_max_images(tmp_path):
    with pytest.raises(DcganError, match="--max-images must be at least 1"):
        prepare(tmp_path, tmp_path / "ds", size=8, max_images=0)
