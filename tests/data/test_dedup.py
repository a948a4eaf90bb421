"""De-duplication by semantic hashing (src/dcgan/data/dedup.py): the pair search against brute force, the
groups, the hash's health and refusal when it collapses, and `dcgan dedup` / `prepare --dedup` end to end."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcgan import api
from dcgan.data import dedup
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError

from helpers import run_cli

FAST = dedup.HashConfig(epochs=3, min_steps=0, batch=64, seed=0)


def blobs(n: int, seed: int, size: int = 16) -> np.ndarray:
    """n smooth colour pictures (4×4 random colours, enlarged and blurred by a 2× area step): distinct, with
    the low-frequency structure real images have."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float32)
    big = low.repeat(size // 4, 1).repeat(size // 4, 2)
    return np.clip(big + rng.normal(0, 4, big.shape), 0, 255).astype(np.uint8)


@st.composite
def codes_with_neighbours(draw):
    """Packed codes of `bits` bits: random ones, and copies of some with a few bits flipped."""
    bits = draw(st.sampled_from([16, 24, 64, 128]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2, 60))
    raw = rng.integers(0, 2, (n, bits)).astype(np.uint8)
    for _ in range(draw(st.integers(0, 30))):
        src, dst = rng.integers(n, size=2)
        raw[dst] = raw[src]
        flips = rng.choice(bits, size=int(rng.integers(0, 6)), replace=False)
        raw[dst, flips] ^= 1
    return bits, np.packbits(raw, axis=1), draw(st.integers(0, 5))


@settings(max_examples=80, deadline=None)
@given(case=codes_with_neighbours())
def test_multi_index_hashing_finds_exactly_the_pairs_brute_force_does(case):
    bits, codes, radius = case
    i, j, d = dedup.near_pairs(codes, bits, radius)
    unpacked = np.unpackbits(codes, axis=1, count=bits).astype(int)
    dist = np.abs(unpacked[:, None] - unpacked[None]).sum(-1)
    want = {(a, b) for a in range(len(codes)) for b in range(a + 1, len(codes)) if dist[a, b] <= radius}
    assert set(zip(i.tolist(), j.tolist())) == want
    assert (d == dist[i, j]).all() and (i < j).all()


def test_groups_are_connected_components_each_led_by_its_first_image():
    i, j = np.array([5, 1, 7, 2]), np.array([9, 5, 8, 3])
    assert [g.tolist() for g in dedup.groups_of(10, i, j)] == [[1, 5, 9], [2, 3], [7, 8]]
    assert dedup.groups_of(10, np.zeros(0, int), np.zeros(0, int)) == []


def test_exact_copies_collide_and_distinct_images_do_not():
    x = blobs(400, seed=1)
    copies = x[[3, 3, 50, 200]]
    data = np.concatenate([x, copies])  # 400, 401 copy 3; 402 copies 50; 403 copies 200
    found = dedup.find_duplicates(data, FAST, radius=0, progress=False)
    groups = [g.tolist() for g in found.groups]
    assert [3, 400, 401] in groups and [50, 402] in groups and [200, 403] in groups
    assert found.removed.tolist() == [400, 401, 402, 403] and len(found.keep(len(data))) == 400
    h = found.health
    assert h["active_bits"] > 64 and h["distinct_codes"] == 400 and h["largest_collision"] == 3
    assert len(h["on_rate"]) == 128 and 0 < h["bit_entropy"] <= 128


def test_one_code_for_most_images_is_refused_with_its_numbers_unless_allowed():
    x = np.concatenate([np.repeat(blobs(1, seed=2), 250, axis=0), blobs(50, seed=3)])
    with pytest.raises(DcganError, match=r"one code is shared by 250 of 300 images.*--allow-collapsed"):
        dedup.find_duplicates(x, FAST, progress=False)
    found = dedup.find_duplicates(x, FAST, allow_collapsed=True, progress=False)
    assert dedup.collapsed(found.health) is not None


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("bits", 0, "bits must be"),
        ("dropout", 1.0, "dropout must be"),
        ("threshold", "mean", "threshold must be zero or median"),
        ("epochs", 0, "epochs must be"),
    ],
)
def test_impossible_hash_settings_are_refused(field, value, message):
    with pytest.raises(DcganError, match=message):
        dedup.HashConfig(**{field: value})


def test_a_radius_outside_the_code_is_refused():
    with pytest.raises(DcganError, match="--radius must be 0…127"):
        dedup.near_pairs(np.zeros((3, 16), np.uint8), 128, 128)


def test_grey_and_odd_sized_images_hash_too():
    grey = blobs(120, seed=3, size=20)[..., :1]
    found = dedup.find_duplicates(np.concatenate([grey, grey[:2]]), FAST, progress=False)
    assert found.removed.tolist() == [120, 121]


@pytest.fixture
def planted(tmp_path):
    """A prepared, labelled dataset of 300 blobs with 3 exact copies at the end (rows 300-302)."""
    x = blobs(300, seed=4)
    x = np.concatenate([x, x[[10, 20, 20]]])
    y = np.arange(len(x)) % 3
    np.savez(tmp_path / "p.npz", images=x, labels=y)
    api.prepare(tmp_path / "p.npz", tmp_path / "p", size=16)
    return tmp_path / "p"


def test_the_cli_writes_the_dataset_without_duplicates_its_record_and_the_audit(planted, tmp_path):
    r = run_cli("dedup", str(planted), "--out", str(tmp_path / "d"), "--epochs", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "removed 3 of 303 images (1.0%) in 2 groups" in r.stdout and "bits vary" in r.stdout
    src, ds = PreparedDataset(planted), PreparedDataset(tmp_path / "d")
    assert len(ds) == 300 and (ds.images == src.images[:300]).all() and (ds.labels == src.labels[:300]).all()
    m = ds.manifest
    assert m["derived_from"]["images"] == 303 and m["dedup"]["removed"] == 3
    assert sum(m["class_counts"]) == 300
    ds.verify()  # the manifest's sha256 is of the new images
    record = json.loads((tmp_path / "d" / "dedup.json").read_text())
    assert [(g["kept"], g["removed"]) for g in record["group_list"]] == [(10, [300]), (20, [301, 302])]
    assert record["config"]["epochs"] == 3 and record["health"]["images"] == 303
    assert (tmp_path / "d" / "dedup-audit.html").is_file() and (tmp_path / "d" / "dedup-audit.png").is_file()
    r = run_cli("dedup", str(planted), "--out", str(tmp_path / "d"), "--epochs", "3", "--quiet")
    assert r.returncode == 2 and "already exists" in r.stderr  # never over a folder without --force
    for bad, message in (
        (["--radius", "500"], "--radius must be"),
        (["--audit", "-1"], "--audit must be 0 or more"),
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--dropout", "1"], "dropout must be"),
    ):
        r = run_cli("dedup", str(planted), "--out", str(tmp_path / "e"), *bad)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, bad
    assert not (tmp_path / "e").exists()


def test_per_image_arrays_follow_the_kept_images(tmp_path):
    from dcgan.data.faces import read_faces
    from dcgan.data.prepare import prepare, write_subset

    prepare(read_faces(12, seed=5, size=16), tmp_path / "f", size=16, progress=False)
    write_subset(PreparedDataset(tmp_path / "f"), np.array([1, 4, 11]), tmp_path / "g", {"why": "test"})
    f, g = PreparedDataset(tmp_path / "f"), PreparedDataset(tmp_path / "g")
    assert (g.array("attributes") == f.array("attributes")[[1, 4, 11]]).all()
    assert (g.labels == f.labels[[1, 4, 11]]).all() and g.manifest["why"] == "test"


def test_prepare_with_dedup_leaves_only_the_clean_dataset(tmp_path):
    x = blobs(200, seed=6)
    np.save(tmp_path / "x.npy", np.concatenate([x, x[:5]]))
    r = run_cli(
        "prepare", str(tmp_path / "x.npy"), str(tmp_path / "out"), "--size", "16", "--dedup", "--quiet"
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 200 images" in r.stdout and "removed 5 duplicates in 5 groups" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.npy"]  # no hidden whole copy left
    m = PreparedDataset(tmp_path / "out").manifest
    assert m["derived_from"] == {"source": str((tmp_path / "x.npy").resolve()), "images": 205, "kept": 200}
    assert json.loads((tmp_path / "out" / "dedup.json").read_text())["removed"] == 5
