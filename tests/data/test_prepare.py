"""prepare → read round trips: the dataset folder, its manifest, skipped files, atomic replacement."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time

import lmdb
import numpy as np
import pytest
from PIL import Image

import dcgan
from dcgan.data.dataset import PreparedDataset
from dcgan.data.folder import BUILDING, recover
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
    (stale / BUILDING).write_bytes(b"")  # what a build writes first
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


# ---------------------------------------------------------------- --force replaces a dataset and nothing else


def _tree(root) -> dict[str, bytes]:
    """Every file under root with its bytes: equal trees mean nothing was touched."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def photos(tmp_path):
    """A source folder of a few images inside a project folder that holds other work too."""
    root = tmp_path / "project"
    (root / "photos").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng_images(1, 12, 12, 3, seed=i)[0]).save(root / "photos" / f"{i}.png")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("mine")
    return root


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("photos", "which is the source"),  # `dcgan prepare photos photos --force`
        (".", "holds the source"),  # the folder above the source
        ("..", "holds the source"),
        ("notes", "replaces only a dataset made by `dcgan prepare`"),
        ("notes/todo.txt", "is a file"),
        ("link", "symbolic link"),
        ("fake", "replaces only a dataset made by `dcgan prepare`"),  # manifest.json of another format
        ("broken", "replaces only a dataset made by `dcgan prepare`"),  # manifest.json that is not JSON
    ],
)
def test_force_refuses_anything_but_a_prepared_dataset_before_any_work(photos, out, message):
    prepare(photos / "photos", photos / "ds", size=8, progress=False, workers=1)
    (photos / "link").symlink_to(photos / "ds")
    (photos / "fake").mkdir()
    (photos / "fake" / "manifest.json").write_text('{"format": "someone-else/1"}')
    (photos / "broken").mkdir()
    (photos / "broken" / "manifest.json").write_bytes(b"\xff[")
    before = _tree(photos.parent)
    with pytest.raises(DcganError, match=message):
        prepare(photos / "photos", photos / out, size=8, force=True, progress=False, workers=1)
    assert _tree(photos.parent) == before


def test_force_replaces_a_prepared_dataset_even_inside_the_source_folder(photos):
    prepare(photos / "photos", photos / "photos" / "ds", size=8, progress=False, workers=1)
    prepare(photos / "photos", photos / "photos" / "ds", size=4, force=True, progress=False, workers=1)
    assert PreparedDataset(photos / "photos" / "ds").images.shape == (3, 4, 4, 3)
    assert sorted(p.name for p in (photos / "photos").iterdir()) == ["0.png", "1.png", "2.png", "ds"]


# Every state a kill can leave during `prepare --force` of NEW over OLD, by the step it stopped after:
# (OUT, .OUT.old, .OUT.partial) and which dataset the next run must find in OUT.
SWAP_STATES = {
    "building": (("old",), "old"),  # .partial half written
    "built": (("old", "partial-complete"), "old"),  # killed before the first rename
    "moved-old-aside": (("old-aside", "partial-complete"), "new"),  # between the two renames
    "new-in-place": (("new", "old-aside"), "new"),  # before the old one was removed
    "removing-old": (("new", "old-aside-half"), "new"),  # during its removal
    "removing-old-marks-left": (("new", "old-aside-marks"), "new"),  # only its manifest still there
    "removing-old-empty": (("new", "old-aside-empty"), "new"),  # all but the folder itself removed
    "building-marker-only": (("old", "partial-marker"), "old"),  # killed right after the marker
    "building-unmarked-empty": (("old", "partial-empty"), "old"),  # killed between mkdir and the marker
}


def _make_state(tmp_path, parts):
    """Build OLD (8², 5 images) and NEW (4², 5 images) datasets, then arrange them as `parts` says."""
    src = write_idx(tmp_path / "x-images-idx3-ubyte", rng_images(5, 8, 8))
    prepare(src, tmp_path / "old", size=8, progress=False)
    prepare(src, tmp_path / "new", size=4, progress=False)
    out, old, partial = tmp_path / "ds", tmp_path / ".ds.old", tmp_path / ".ds.partial"
    for part in parts:
        if part == "old":
            (tmp_path / "old").rename(out)
        elif part == "new":
            (tmp_path / "new").rename(out)
        elif part.startswith("old-aside"):
            (tmp_path / "old").rename(old)
            if part.endswith("half"):
                (old / "images.npy").unlink()
            for f in old.iterdir():
                if part.endswith("empty") or (part.endswith("marks") and f.name != "manifest.json"):
                    f.unlink()
        elif part == "partial-complete":
            (tmp_path / "new").rename(partial)
        elif part.startswith("partial-"):
            partial.mkdir()
            if part == "partial-marker":
                (partial / BUILDING).write_bytes(b"")
    if not {"partial-complete", "new", "partial-marker", "partial-empty"} & set(
        parts
    ):  # a build killed half-way
        partial.mkdir()
        (partial / BUILDING).write_bytes(b"")
        (partial / "images.npy").write_bytes(b"\x93NUMPY half")
    return src


@pytest.mark.parametrize("state", list(SWAP_STATES))
def test_a_rerun_recovers_from_a_kill_at_every_step_of_the_force_swap(tmp_path, state):
    parts, expected = SWAP_STATES[state]
    src = _make_state(tmp_path, parts)
    side = {"old": 8, "new": 4}[expected]
    if state == "moved-old-aside":  # OUT is missing here: opening it says how to finish
        with pytest.raises(DcganError, match="run that prepare command again"):
            PreparedDataset(tmp_path / "ds")
    with pytest.raises(DcganError, match="already exists"):  # the rerun without --force recovers, then stops
        prepare(src, tmp_path / "ds", size=8, progress=False)
    ds = PreparedDataset(tmp_path / "ds")
    ds.verify()
    assert ds.image_size == side
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".ds")) == []


def test_kill_9_at_any_moment_of_prepare_force_leaves_a_whole_dataset(tmp_path):
    """The real thing: `dcgan prepare --force` in a subprocess, SIGKILLed at spread-out moments; whatever
    the moment, what the next run starts from (after `recover`) is one whole dataset, old or new."""
    src = tmp_path / "x.npy"
    np.save(src, rng_images(4000, 32, 32, 3))
    cmd = [sys.executable, "-m", "dcgan.cli", "prepare", str(src), str(tmp_path / "ds"), "--quiet"]
    assert subprocess.run([*cmd, "--size", "32"], capture_output=True).returncode == 0
    sizes = {32}
    for i, delay in enumerate(np.linspace(0.3, 3.0, 6)):
        size = 16 if i % 2 else 8
        p = subprocess.Popen([*cmd, "--size", str(size), "--force"], stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        recover(tmp_path / "ds")  # what the next prepare does first
        ds = PreparedDataset(tmp_path / "ds")
        ds.verify()
        assert ds.image_size in sizes | {size}
        sizes.add(ds.image_size)


@pytest.mark.parametrize("hidden", [".ds.partial", ".ds.old", ".ds.whole"])
@pytest.mark.parametrize("kind", ["user-folder", "file", "link", "marked-source", "dataset-source"])
def test_a_folder_by_a_build_name_that_is_not_a_build_leftover_is_refused_and_kept(tmp_path, hidden, kind):
    """dcgan's hidden names for OUT's unfinished copies may hold anything of the user's — their own folder,
    a file, a link, or the very source being prepared (a killed build's folder given as SRC): each is an
    error naming it, and nothing in it is deleted, with or without --force, with or without --dedup."""
    images = rng_images(6, 8, 8)
    out = tmp_path / "ds"
    prepare(write_idx(tmp_path / "x-images-idx3-ubyte", images), out, size=8, progress=False)
    path, src = tmp_path / hidden, write_idx(tmp_path / "y-images-idx3-ubyte", images)
    if kind == "user-folder":
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    elif kind == "file":
        path.write_text("mine")
    elif kind == "link":
        (tmp_path / "elsewhere").mkdir()
        path.symlink_to(tmp_path / "elsewhere")
    else:  # the source itself: a folder of images that a build marked, or a dataset
        path.mkdir()
        for i, a in enumerate(images):
            Image.fromarray(a).save(path / f"{i}.png")
        if kind == "marked-source":
            (path / BUILDING).write_bytes(b"")
        else:
            prepare(
                write_idx(tmp_path / "z-images-idx3-ubyte", images), tmp_path / "d2", size=8, progress=False
            )
            shutil.copy(tmp_path / "d2" / "manifest.json", path / "manifest.json")
        src = path
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    for dedup_radius in (0,) if hidden == ".ds.whole" else (None, 0):  # only --dedup builds in .OUT.whole
        with pytest.raises(DcganError, match=rf"{re.escape(hidden)}' is in the way"):
            dcgan.prepare(src, out, size=8, force=True, dedup_radius=dedup_radius)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_a_build_in_progress_in_another_process_is_not_removed_by_a_second_prepare(tmp_path):
    """The marker is locked while its build runs: a second `prepare` to the same OUT refuses instead of
    deleting the first one's folder from under it; once the lock is gone, the leftover is cleared."""
    src = write_idx(tmp_path / "x-images-idx3-ubyte", rng_images(5, 8, 8))
    partial = tmp_path / ".ds.partial"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_BUILD, str(tmp_path / "ds")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "building"
        with pytest.raises(
            DcganError, match=r"another `dcgan prepare` or `dcgan dedup` is writing '.*ds' now"
        ):
            prepare(src, tmp_path / "ds", size=8, progress=False)
        assert (partial / BUILDING).is_file()
    finally:
        holder.kill()
        holder.wait()
    prepare(src, tmp_path / "ds", size=8, progress=False)  # the holder died: its folder is a leftover now
    assert not partial.exists() and len(PreparedDataset(tmp_path / "ds")) == 5


HOLD_A_BUILD = """
import sys, time
from pathlib import Path
from dcgan.data.folder import make_partial, writing
with writing(Path(sys.argv[1])):
    make_partial(Path(sys.argv[1]))
    print("building", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("leftover", ["marked", "marker-only", "empty", "dataset"])
def test_what_a_killed_build_or_dedup_left_is_cleared(tmp_path, leftover):
    """The other side of the refusals: a marked build, a folder holding only its marker, an empty folder and
    a whole dataset under the build names are cleared by the next run, --dedup's .OUT.whole included."""
    images = rng_images(6, 8, 8)
    src = write_idx(tmp_path / "x-images-idx3-ubyte", images)
    for hidden, dedup_radius in ((".ds.partial", None), (".ds.whole", 0)):
        path = tmp_path / hidden
        if leftover == "dataset":
            prepare(src, path, size=8, progress=False)
        else:
            path.mkdir()
            if leftover != "empty":
                (path / BUILDING).write_bytes(b"")
            if leftover == "marked":
                (path / "images.npy").write_bytes(b"half")
        if hidden == ".ds.whole" and leftover in ("marked", "marker-only"):
            with pytest.raises(DcganError, match="is in the way"):  # a --dedup copy is never a marked build
                dcgan.prepare(src, tmp_path / "ds", size=8, force=True, dedup_radius=dedup_radius)
            continue
        dcgan.prepare(src, tmp_path / "ds", size=8, force=True, dedup_radius=dedup_radius)
        assert not path.exists() and len(PreparedDataset(tmp_path / "ds")) >= 5


def test_another_thread_writing_the_same_out_is_refused_and_the_lock_goes_when_done(tmp_path):
    """The lock is re-entrant in the thread that holds it (prepare --dedup nests), not in the process."""
    import threading

    from dcgan.data.folder import writing

    src = write_idx(tmp_path / "x-images-idx3-ubyte", rng_images(5, 8, 8))
    errors = []

    def other():
        try:
            prepare(src, tmp_path / "ds", size=8, progress=False)
        except DcganError as e:
            errors.append(str(e))

    with writing(tmp_path / "ds"), writing(tmp_path / "ds"):  # the same thread again: nested, not refused
        t = threading.Thread(target=other)
        t.start()
        t.join(60)
    assert len(errors) == 1 and "is writing" in errors[0] and not (tmp_path / "ds").exists()
    assert not (tmp_path / ".ds.lock").exists()
    prepare(src, tmp_path / "ds", size=8, progress=False)
    assert len(PreparedDataset(tmp_path / "ds")) == 5 and not (tmp_path / ".ds.lock").exists()
