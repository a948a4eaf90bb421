"""Bedrooms drawn from a seed (src/dcgan/data/rooms.py): deterministic per room, a class map that matches the
picture, counts and labels that match the map, and the dataset folder with masks.npy and objects.npy."""

import numpy as np
import pytest

from dcgan.data import rooms
from dcgan.data.dataset import PreparedDataset

from helpers import run_cli

W = rooms.C["window"]


def test_room_k_of_a_seed_is_the_same_whatever_else_is_drawn():
    a, am, ac = rooms.draw_room(7, 3, 32)
    b, bm, bc = rooms.draw_room(7, 3, 32)
    assert (a == b).all() and (am == bm).all() and (ac == bc).all()
    assert not (a == rooms.draw_room(8, 3, 32)[0]).all()
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8 and am.shape == (32, 32)


def test_every_room_has_the_shell_and_a_bed_and_the_counts_match_the_map():
    drawn = [rooms.draw_room(0, k, 64) for k in range(200)]
    for _, mask, counts in drawn:
        present = np.bincount(mask.ravel(), minlength=len(rooms.CLASSES)) > 0
        assert (present == (counts > 0)).all()
        assert present[[rooms.C[c] for c in ("wall", "floor", "ceiling", "bed")]].all()
    windows = np.array([c[W] for _, _, c in drawn])
    assert set(windows) <= {0, 1, 2}
    assert 0.15 < (windows == 0).mean() < 0.45 and (windows == 2).mean() > 0.15
    # the look-alikes are common enough to matter
    for name in ("door", "picture", "mirror", "lamp"):
        assert np.mean([c[rooms.C[name]] > 0 for _, _, c in drawn]) > 0.1, name


def test_the_class_map_follows_the_edges_of_the_picture():
    """Where the map changes class the picture changes colour, far more often than elsewhere: the masks
    are of the pixels drawn, not of a shifted or rescaled copy."""
    on_edge, off_edge, shifted = [], [], []
    for k in range(30):
        img, mask, _ = rooms.draw_room(1, k, 64)
        step = np.abs(np.diff(img.astype(np.int32), axis=1)).sum(-1) > 24  # colour edges between neighbours
        changes = np.diff(mask.astype(np.int32), axis=1) != 0
        on_edge.append(step[changes].mean())
        off_edge.append(step[~changes].mean())  # textures, frames and mullions inside one class
        moved = np.diff(np.roll(mask, 2, axis=1).astype(np.int32), axis=1) != 0
        shifted.append(step[moved].mean())
    assert np.mean(on_edge) > 0.85 and np.mean(off_edge) < 0.2
    assert np.mean(shifted) < np.mean(on_edge) - 0.2  # a map two pixels off would not fit


def test_window_panes_are_sky_and_rooms_without_windows_have_none():
    blue = []
    for k in range(60):
        img, mask, counts = rooms.draw_room(2, k, 64)
        if counts[W] == 0:
            assert not (mask == W).any()
            continue
        pane = img[mask == W].astype(int)
        blue.append(pane[:, 2].mean() - img[mask == rooms.C["wall"]][:, 2].astype(int).mean())
    assert np.mean(blue) > 10  # bluer than the walls they are in, on average


def test_the_dataset_has_masks_objects_and_window_labels(tmp_path):
    out = tmp_path / "r"
    r = run_cli("data", "rooms", "--num", "70", "--seed", "4", "--size", "32", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "masks.npy" in r.stdout
    ds = PreparedDataset(out)
    masks, objects = ds.array("masks"), ds.array("objects")
    assert ds.images.shape == (70, 32, 32, 3) and masks.shape == (70, 32, 32) and masks.dtype == np.uint8
    assert objects.shape == (70, len(rooms.CLASSES))
    assert ds.manifest["classes"] == rooms.CLASSES and ds.manifest["generator"] == {
        "name": "rooms",
        "seed": 4,
        "num": 70,
    }
    assert ds.label_names == ["windows=0", "windows=1", "windows=2"]
    assert (ds.labels == objects[:, W]).all()
    for k in (0, 33, 69):  # the same rooms one process draws, aligned row by row, whatever the pool
        img, mask, counts = rooms.draw_room(4, k, 32)
        assert (ds.images[k] == img).all() and (masks[k] == mask).all() and (objects[k] == counts).all()
    # asked again with the same draw: kept; with another: refused, with what to do
    assert (
        run_cli("data", "rooms", "--num", "70", "--seed", "4", "--size", "32", "--out", str(out)).returncode
        == 0
    )
    r = run_cli("data", "rooms", "--num", "70", "--seed", "5", "--size", "32", "--out", str(out))
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--fit", "pad"], "--fit"),
        (["--background", "#ffffff"], "--background"),
        (["--from", "/tmp"], "drawn, not read"),
        (["--num", "0"], "--num must be at least 1"),
        (["--size", "8"], "16×16 or larger"),
    ],
)
def test_options_rooms_cannot_take_are_refused_in_one_line(tmp_path, flags, says):
    r = run_cli("data", "rooms", "--out", str(tmp_path / "r"), *flags)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()
