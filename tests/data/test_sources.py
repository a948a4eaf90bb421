"""Every reader on real files it builds, and on truncated, corrupt and wrong-magic ones."""

import gzip
import os
import pickle
import re
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from dcgan.data.arrays import parse_idx
from dcgan.data.cifar import safe_unpickle
from dcgan.data.items import Unreadable
from dcgan.data.sources import IMAGE_EXTS, open_source
from dcgan.errors import DcganError

from helpers import damages, encoded, flipped, read_all, rng_images, scratch_dir, write_cifar10, write_idx


def items(src):
    return list(src.items())


# ---------------------------------------------------------------- folders and zips


def test_folder_reads_recursively_with_class_labels(image_folder):
    (image_folder / "notes.txt").write_text("not an image")
    (image_folder / "cats" / ".hidden.png").write_bytes(b"")
    src = open_source(image_folder, class_folders=True)
    assert (src.reader, src.count, src.label_names, src.ignored) == ("image-folder", 6, ["cats", "dogs"], 1)
    got = items(src)
    assert [label for _, label, _ in got] == [0, 0, 0, 1, 1, 1]
    assert got[3][2] == "dogs/0.jpg" and os.path.isfile(got[3][0])


def test_folder_labels_need_class_subfolders(image_folder):
    Image.new("RGB", (8, 8)).save(image_folder / "loose.png")
    with pytest.raises(DcganError, match="must sit in a class subfolder.*'loose.png'"):
        open_source(image_folder, class_folders=True)
    assert open_source(image_folder).count == 7  # without --labels a loose file is fine


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(DcganError, match="no images found .*1 other files ignored"):
        open_source(tmp_path)


def _zip(folder: Path, path: Path, compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, "wrapper/" + f.relative_to(folder).as_posix())
        z.writestr("__MACOSX/wrapper/._0.png", b"junk")
    return path


def test_zip_reads_members_and_labels_under_a_wrapper_folder(image_folder, tmp_path):
    src = open_source(_zip(image_folder, tmp_path / "imgs.zip"), class_folders=True)
    assert (src.reader, src.count, src.label_names) == ("zip", 6, ["cats", "dogs"])
    got = items(src)
    assert isinstance(got[0][0], bytes) and got[0][2] == "wrapper/cats/0.png"


def test_corrupt_zip_and_corrupt_member(image_folder, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DcganError, match="not a readable zip archive"):
        open_source(bad)
    path = _zip(image_folder, tmp_path / "stored.zip", zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    png = data.find(b"IDAT")  # flip bytes inside the first PNG member's data: its CRC no longer matches
    data[png + 10 : png + 20] = b"\xff" * 10
    path.write_bytes(bytes(data))
    raws = [raw for raw, _, _ in items(open_source(path))]
    assert "CRC" in raws[0].reason and isinstance(raws[1], bytes)


# ---------------------------------------------------------------- CIFAR


def test_cifar10_folder_and_tarball(tmp_path):
    root = write_cifar10(tmp_path / "cifar-10-batches-py")
    src = open_source(tmp_path)  # finds the cifar-10-batches-py subfolder
    assert (src.reader, src.count, src.split) == ("cifar10", 20, "train")
    assert src.label_names[:2] == ["airplane", "automobile"]
    first = items(src)[0][0]
    raw = pickle.loads((root / "data_batch_1").read_bytes(), encoding="bytes")[b"data"][0]
    assert first.shape == (32, 32, 3) and (first[:, :, 0].ravel() == raw[:1024]).all()  # R plane first
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(root, arcname="cifar-10-batches-py")
    src = open_source(tgz, split="test")
    assert (src.count, src.split) == (4, "test")


def test_cifar100(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 6), ("test", 2)):
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": [1] * n,
            b"coarse_labels": [0] * n,
        }
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    (tmp_path / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"apple", b"fish"]}, protocol=2))
    src = open_source(tmp_path)
    assert (src.reader, src.count, src.label_names) == ("cifar100", 6, ["apple", "fish"])
    assert {label for _, label, _ in items(src)} == {1}


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_restricted_unpickler_refuses_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps({b"data": _Evil()}, protocol=2)
    with pytest.raises(DcganError, match="refusing to load posix.system"):
        safe_unpickle(payload, "data_batch_1")
    assert not (tmp_path / "pwned").exists()
    root = write_cifar10(tmp_path / "c")
    (root / "data_batch_3").write_bytes(payload)
    with pytest.raises(DcganError, match="data_batch_3 is not a valid CIFAR batch"):
        open_source(root)
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_incomplete_cifar(tmp_path):
    root = write_cifar10(tmp_path / "c")
    data = (root / "data_batch_2").read_bytes()
    (root / "data_batch_2").write_bytes(data[: len(data) // 2])
    with pytest.raises(DcganError, match="data_batch_2 is not a valid CIFAR batch"):
        open_source(root)
    (root / "data_batch_2").unlink()
    with pytest.raises(DcganError, match="lacks data_batch_2"):
        open_source(root)
    assert open_source(root, split="test").count == 4
    with pytest.raises(DcganError, match="has splits train, test; got --split 'extra'"):
        open_source(root, split="extra")


# ---------------------------------------------------------------- SVHN


def test_svhn_mat_maps_label_10_to_0(tmp_path):
    x = rng_images(5, 32, 32, 3).transpose(1, 2, 3, 0)  # SVHN stores 32×32×3×N
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [10], [9]])})
    src = open_source(tmp_path / "train_32x32.mat")
    got = items(src)
    assert (src.reader, src.count) == ("svhn", 5)
    assert [label for _, label, _ in got] == [0, 1, 2, 0, 9]
    assert (got[1][0] == x[:, :, :, 1]).all()


def test_bad_mat_files(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"A": np.zeros((3, 3))})
    with pytest.raises(DcganError, match="is not SVHN: expected X of shape 32×32×3×N"):
        open_source(tmp_path / "other.mat")
    x = rng_images(5, 32, 32, 3).transpose(1, 2, 3, 0)
    scipy.io.savemat(tmp_path / "t.mat", {"X": x, "y": np.ones((5, 1))})
    data = (tmp_path / "t.mat").read_bytes()
    (tmp_path / "t.mat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DcganError, match="t.mat"):
        open_source(tmp_path / "t.mat")
    (tmp_path / "junk.mat").write_text("MATLAB? no")
    with pytest.raises(DcganError, match="not a readable .mat file"):
        open_source(tmp_path / "junk.mat")


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_images_with_labels_beside(tmp_path, gz):
    imgs = rng_images(7, 28, 28)
    labels = np.arange(7, dtype=np.uint8) % 3
    p = write_idx(tmp_path / "train-images-idx3-ubyte", imgs, gz)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, gz)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs[:2], gz)
    src = open_source(p)
    got = items(src)
    assert (src.reader, src.count, src.grey, src.split) == ("idx", 7, True, "train")
    assert (got[4][0] == imgs[4]).all() and [g[1] for g in got] == labels.tolist()
    assert open_source(tmp_path, split="test").count == 2  # a folder picks the split's file


def test_idx_wrong_magic_truncated_and_bad_gzip(tmp_path):
    with pytest.raises(DcganError, match="wrong magic number 504b0304"):
        parse_idx(b"PK\x03\x04rest", "x")
    p = write_idx(tmp_path / "a-images-idx3-ubyte", rng_images(10, 28, 28))
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(
        DcganError, match=r"is truncated: its header says 10×28×28 = 7,840 bytes .* holds 7,740"
    ):
        open_source(p)
    g = tmp_path / "b-images-idx3-ubyte.gz"
    whole = gzip.compress(b"\0\0\x08\x03" + rng_images(1, 100, 100).tobytes())
    g.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DcganError, match="could not be read"):
        open_source(g)
    with pytest.raises(DcganError, match="only unsigned-byte IDX"):
        parse_idx(b"\0\0\x0d\x01\0\0\0\x01abcd", "floats")


def test_idx_labels_that_do_not_match(tmp_path):
    p = write_idx(tmp_path / "train-images-idx3-ubyte", rng_images(5, 8, 8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DcganError, match="5 images but 4 labels"):
        open_source(p)


# ---------------------------------------------------------------- NumPy


def test_npy_nchw_and_float_arrays(tmp_path):
    a = rng_images(4, 3, 8, 8)  # N×C×H×W
    np.save(tmp_path / "a.npy", a)
    got = items(open_source(tmp_path / "a.npy"))
    assert got[0][0].shape == (8, 8, 3) and (got[0][0] == a[0].transpose(1, 2, 0)).all()
    np.savez(
        tmp_path / "b.npz", x=np.linspace(-1, 1, 4 * 16).reshape(4, 4, 4).astype(np.float32), y=[0, 1, 2, 1]
    )
    src = open_source(tmp_path / "b.npz")
    got = items(src)
    assert got[0][0][0, 0] == 0 and got[-1][0][-1, -1] == 255 and [g[1] for g in got] == [0, 1, 2, 1]


def test_bad_npy(tmp_path):
    np.save(tmp_path / "big.npy", np.full((2, 4, 4), 300.0))
    with pytest.raises(DcganError, match=r"floats in \[300.0, 300.0\]"):
        open_source(tmp_path / "big.npy")
    np.save(tmp_path / "vec.npy", np.zeros((5, 7), np.uint8))
    with pytest.raises(DcganError, match=r"shape \(5, 7\); expected images"):
        open_source(tmp_path / "vec.npy")
    np.save(tmp_path / "t.npy", rng_images(10, 8, 8))
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:300])
    with pytest.raises(DcganError, match="not a readable NumPy file"):
        open_source(tmp_path / "t.npy")


# ---------------------------------------------------------------- detection


def test_unknown_sources_say_what_was_expected(tmp_path):
    with pytest.raises(DcganError, match="does not exist"):
        open_source(tmp_path / "nope")
    (tmp_path / "foo.txt").write_text("hello")
    with pytest.raises(DcganError, match=r"expected a folder of images.*got '.*foo.txt' \(a text file\)"):
        open_source(tmp_path / "foo.txt")
    Image.new("RGB", (4, 4)).save(tmp_path / "one.png")
    with pytest.raises(DcganError, match="an image; a dataset needs a folder of them"):
        open_source(tmp_path / "one.png")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(DcganError, match="an empty file"):
        open_source(tmp_path / "empty.bin")


# ---------------------------------------------------------------- properties (Hypothesis)

QUICK = settings(max_examples=30, deadline=None)  # each example writes and reads real files

folder = st.builds(
    str.__add__, st.sampled_from(["", "", "."]), st.text(alphabet="abc", min_size=1, max_size=2)
)
stem = st.text(alphabet="xyz", min_size=1, max_size=2)  # never a folder's name, so paths cannot clash
extension = st.sampled_from([".png", ".JPG", ".jpeg", ".webp", ".Tiff", ".txt", ".json", ""])


def tree_path(dirs: list[str], hidden: bool, name: str, ext: str) -> str:
    return "/".join([*dirs, ("." if hidden else "") + name + ext])


@st.composite
def file_trees(draw) -> dict[str, bytes]:
    """Relative path → contents: 1-8 files up to two folders deep, some of them hidden or not images."""
    path = st.builds(tree_path, st.lists(folder, max_size=2), st.booleans(), stem, extension)
    return {
        p: draw(st.binary(max_size=16)) for p in draw(st.lists(path, min_size=1, max_size=8, unique=True))
    }


def is_hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def is_image(rel: str) -> bool:
    return not is_hidden(rel) and os.path.splitext(rel)[1].lower() in IMAGE_EXTS


def write_tree(root: Path, tree: dict[str, bytes]) -> Path:
    for rel, data in tree.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def zip_tree(path: Path, tree: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for rel, data in tree.items():
            z.writestr(rel, data)
    return path


def assert_labels_name_a_folder(path: Path) -> None:
    """With --labels: an error naming an image outside any class folder, or labels whose names are folders
    that hold the image."""
    try:
        src = open_source(path, class_folders=True)
    except DcganError as e:
        assert "must sit in a class subfolder" in str(e)
        return
    assert src.label_names == sorted(set(src.label_names))
    for _, label, sid in src.items():
        assert src.label_names[label] in sid.split("/")[:-1]


@QUICK
@given(tree=file_trees(), compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_a_folder_and_its_zip_hold_the_same_images(tmp_path_factory, tree, compression):
    images = {rel: data for rel, data in tree.items() if is_image(rel)}
    with scratch_dir(tmp_path_factory) as d:
        root, archive = write_tree(d / "tree", tree), zip_tree(d / "tree.zip", tree, compression)
        for path in (root, archive):
            if not images:
                with pytest.raises(DcganError, match="no images found"):
                    open_source(path)
                continue
            src = open_source(path)
            got = list(src.items())
            assert (src.count, src.ignored, src.encoded) == (
                len(images),
                len(tree) - len(images) - sum(map(is_hidden, tree)),
                True,
            )
            contents = [raw if isinstance(raw, bytes) else Path(raw).read_bytes() for raw, _, _ in got]
            assert dict(zip([sid for _, _, sid in got], contents)) == images
            assert [sid for _, _, sid in got] == sorted(images)  # the same order: a dataset is the same
            assert_labels_name_a_folder(path)


@QUICK
@given(tree=file_trees(), junk=st.lists(st.sampled_from(["__MACOSX/._x.png", "a/", "b/c/"]), unique=True))
def test_zip_leaves_out_folders_and_macos_resource_forks(tmp_path_factory, tree, junk):
    images = sorted(rel for rel in tree if is_image(rel))
    with scratch_dir(tmp_path_factory) as d:
        path = zip_tree(d / "a.zip", tree | dict.fromkeys(junk, b""))
        if images:
            assert [sid for _, _, sid in open_source(path).items()] == images
        else:
            with pytest.raises(DcganError, match="no images found in the zip"):
                open_source(path)


def _pick_member(tree: dict[str, bytes], which: int) -> str:
    """One non-empty image of the tree to damage (the example is skipped when there is none)."""
    damageable = sorted(rel for rel in tree if is_image(rel) and tree[rel])
    assume(damageable)
    return damageable[which % len(damageable)]


@QUICK
@given(
    tree=file_trees(),
    spots=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=3),
    which=st.integers(0, 7),
)
def test_a_damaged_member_of_a_stored_zip_is_unreadable_and_the_others_are_intact(
    tmp_path_factory, tree, spots, which
):
    target = _pick_member(tree, which)
    with scratch_dir(tmp_path_factory) as d:
        path = zip_tree(d / "a.zip", tree, zipfile.ZIP_STORED)
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(target)
        # where the member's data begins: after its 30-byte local header, name and extra field
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        path.write_bytes(flipped(path.read_bytes(), spots, start, start + info.compress_size))
        got = {sid: raw for raw, _, sid in open_source(path).items()}
    assert "CRC" in got.pop(target).reason
    assert got == {rel: data for rel, data in tree.items() if is_image(rel) and rel != target}


def _member_headers(b: bytes, name: str) -> list[int]:
    """Offsets of the local and central-directory headers of member `name`."""
    found, raw = [], name.encode()
    for sig, name_at in ((b"PK\x03\x04", 30), (b"PK\x01\x02", 46)):
        at = b.find(sig)
        while at != -1:
            if b[at + name_at : at + name_at + len(raw)] == raw:
                found.append((sig, at))
            at = b.find(sig, at + 4)
    return found


def _set_member(b: bytes, name: str, what: str, value: int) -> bytes:
    """One field of member `name`, in its local header and its central-directory entry alike."""
    fields = {  # (offset in the local header, offset in the central entry, width)
        "method": (8, 10, 2),
        "flags": (6, 8, 2),
        "size": (22, 24, 4),
    }
    out = bytearray(b)
    for sig, at in _member_headers(b, name):
        local, central, width = fields[what]
        off = at + (local if sig == b"PK\x03\x04" else central)
        out[off : off + width] = (
            value if what != "flags" else int.from_bytes(b[off : off + width], "little") | value
        ).to_bytes(width, "little")
    return bytes(out)


@QUICK
@given(
    tree=file_trees(),
    which=st.integers(0, 7),
    damage=st.sampled_from(["garbled", "method-99", "encrypted", "claims-4GiB"]),
)
def test_any_damaged_member_of_a_deflated_zip_is_skipped_with_a_reason_and_the_rest_read(
    tmp_path_factory, tree, which, damage
):
    target = _pick_member(tree, which)
    with scratch_dir(tmp_path_factory) as d:
        path = zip_tree(d / "a.zip", tree, zipfile.ZIP_DEFLATED)
        b = path.read_bytes()
        if damage == "garbled":
            with zipfile.ZipFile(path) as z:
                info = z.getinfo(target)
            start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
            end = start + min(8, info.compress_size)  # the member's own bytes, not its neighbour's header
            b = b[:start] + bytes(x ^ 0x5A for x in b[start:end]) + b[end:]
        else:
            what, value = {
                "method-99": ("method", 99),
                "encrypted": ("flags", 1),
                "claims-4GiB": ("size", 2**32 - 1),
            }[damage]
            b = _set_member(b, target, what, value)
        path.write_bytes(b)
        got = {sid: raw for raw, _, sid in open_source(path).items()}
    assert isinstance(got.pop(target), Unreadable)
    assert got == {rel: data for rel, data in tree.items() if is_image(rel) and rel != target}


NAMES = [  # one for every reader open_source picks by name, and some it does not know
    "a.npy",
    "a.npz",
    "a.mat",
    "a.zip",
    "a.tar.gz",
    "a.tgz",
    "a.tar",
    "train-images-idx3-ubyte",
    "t10k-images-idx3-ubyte.gz",
    "a.txt",
    "a.png",
    "a.bin",
]


@QUICK
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=400))
def test_garbage_under_any_name_is_a_dcgan_error_naming_the_file(tmp_path_factory, name, data):
    with scratch_dir(tmp_path_factory) as d:
        (d / name).write_bytes(data)
        with pytest.raises(DcganError, match=re.escape(name)):
            list(open_source(d / name).items())


@QUICK
@given(tree=file_trees(), damage=damages(("truncate",)))
def test_a_truncated_zip_is_a_dcgan_error(tmp_path_factory, tree, damage):
    with scratch_dir(tmp_path_factory) as d:
        path = zip_tree(d / "a.zip", tree)
        path.write_bytes(damage(path.read_bytes()))
        with pytest.raises(DcganError, match="a.zip"):
            open_source(path)


@QUICK
@given(
    tree=file_trees(),
    spots=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_a_damaged_zip_directory_is_a_dcgan_error_or_lists_what_it_can(tmp_path_factory, tree, spots):
    """Flipped bytes anywhere in the central directory (versions, methods, sizes, offsets, names)."""
    with scratch_dir(tmp_path_factory) as d:
        path = zip_tree(d / "a.zip", tree)
        data = path.read_bytes()
        path.write_bytes(flipped(data, spots, start=data.index(b"PK\x01\x02")))
        src, got = read_all(path)
        if isinstance(src, DcganError):
            assert "a.zip" in str(src)
        else:
            assert all(isinstance(raw, bytes | Unreadable) for raw, _, _ in got)


@QUICK
@given(
    tree=file_trees(),
    spots=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_a_damaged_local_header_leaves_its_member_unreadable_not_a_crash(tmp_path_factory, tree, spots):
    """Flipped bytes in the members' own headers (flags, names, sizes), which zipfile reads only when a member
    is opened: e.g. the UTF-8 flag set on a name that is not UTF-8 (found by make fuzz)."""
    with scratch_dir(tmp_path_factory) as d:
        path = zip_tree(d / "a.zip", tree)
        data = path.read_bytes()
        path.write_bytes(flipped(data, spots, end=data.index(b"PK\x01\x02")))
        src, got = read_all(path)
        if isinstance(src, DcganError):
            assert "a.zip" in str(src)
        else:
            assert all(isinstance(raw, bytes | Unreadable) for raw, _, _ in got)


def test_a_member_with_no_name_and_a_name_in_no_encoding_are_left_out(tmp_path):
    """Both found by make fuzz: an empty name in the directory (zipfile's is_dir indexed it), and a local
    header whose UTF-8 flag is set on bytes that are not UTF-8."""
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo(""), b"abc")
        z.writestr("cc.png", b"x")
    src, got = read_all(path)
    assert not isinstance(src, DcganError) and [sid for _, _, sid in got] == ["cc.png"] and src.ignored == 1
    path = zip_tree(tmp_path / "b.zip", {"b.png": encoded(rng_images(1, 8, 8, 3)[0])})
    data = bytearray(path.read_bytes())
    data[7] |= 0x08  # general purpose flags, bit 11: the name is UTF-8
    data[30] = 0xC6  # and its first byte starts a sequence that the next byte does not continue
    path.write_bytes(bytes(data))
    src, got = read_all(path)
    assert isinstance(got[0][0], Unreadable) and "UnicodeDecodeError" in got[0][0].reason


def test_a_zip_that_needs_a_future_version_is_a_dcgan_error(tmp_path):
    """zipfile raises NotImplementedError for "version needed to extract" 25.1 (found by make fuzz)."""
    path = zip_tree(tmp_path / "a.zip", {"a/x.png": b"x"})
    data = bytearray(path.read_bytes())
    data[data.index(b"PK\x01\x02") + 6] = 251
    path.write_bytes(bytes(data))
    with pytest.raises(
        DcganError, match=r"'.*a.zip' is not a readable zip archive \(zip file version 25.1\)"
    ):
        open_source(path)


def test_a_fifo_or_a_dangling_link_among_the_images_is_left_out_not_waited_on(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(rng_images(1, 8, 8, 3)[0]).save(root / "a.png")
    os.mkfifo(root / "pipe.png")  # opening it for reading would block until someone writes
    (root / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (root / "link.png").symlink_to(root / "a.png")
    src = open_source(root)
    assert [sid for _, _, sid in src.items()] == ["a.png", "link.png"] and src.ignored == 2


@pytest.mark.parametrize(
    "name",
    [
        "pipe",
        "pipe.npy",
        "pipe.npz",
        "pipe.zip",
        "pipe.mat",
        "pipe.tar.gz",
        "data.mdb",
        "train-images-idx3-ubyte",
    ],
)
def test_a_fifo_given_as_the_source_is_refused_not_waited_on(tmp_path, name):
    """Opening a pipe for reading blocks until someone writes to it: the source must be refused first."""
    os.mkfifo(tmp_path / name)
    assert_refused_in_time(tmp_path / name, "is not a regular file or a folder")


def test_a_fifo_named_like_idx_images_in_a_folder_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "train-images-idx3-ubyte")
    Image.fromarray(rng_images(1, 8, 8, 3)[0]).save(tmp_path / "a.png")
    assert_refused_in_time(tmp_path, None)


def assert_refused_in_time(path, message):
    """open_source(path) in a thread: a DcganError containing `message` (or a readable source when None)
    within 10 s; a thread still waiting on a pipe fails the test instead of hanging the suite."""
    result = []
    t = threading.Thread(target=lambda: result.append(read_all(path)[0]), daemon=True)
    t.start()
    t.join(10)
    assert result, f"open_source({str(path)!r}) is still waiting"
    if message is None:
        assert not isinstance(result[0], DcganError), result[0]
    else:
        assert isinstance(result[0], DcganError) and message in str(result[0]), result[0]
