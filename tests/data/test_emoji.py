"""The emoji reader (src/dcgan/data/emoji.py) on npm package tarballs the tests pack: the package's layout,
skin-tone variants kept apart as attributes, and damaged or hostile tarballs failing with one clear error."""

import io
import json
import tarfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcgan.data import emoji
from dcgan.data.catalog import get_dataset
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError

from helpers import QUICK, damages, encoded, run_cli, scratch_dir


def entries() -> list[dict]:
    """Three emoji as emoji.json describes them; the second has two skin-tone variants."""
    return [
        {"short_name": "grin", "image": "1f601.png", "category": "Smileys & Emotion", "sort_order": 2},
        {
            "short_name": "wave",
            "image": "1f44b.png",
            "category": "People & Body",
            "sort_order": 1,
            "skin_variations": {
                "1F3FB": {"image": "1f44b-1f3fb.png"},
                "1F3FF": {"image": "1f44b-1f3ff.png"},
            },
        },
        {"short_name": "flag-ee", "image": "1f1ea-1f1ea.png", "category": "Flags", "sort_order": 3},
    ]


def pngs(names: list[str]) -> dict[str, bytes]:
    """64×64 RGBA PNGs, each a different colour, transparent outside a centre square."""
    out = {}
    for k, name in enumerate(names):
        a = np.zeros((64, 64, 4), np.uint8)
        a[16:48, 16:48] = (40 * k % 256, 200, 255 - 30 * k, 255)
        out[name] = encoded(a)
    return out


def pack(path, meta, images: dict[str, bytes], extra: dict[str, bytes] | None = None):
    """A tarball laid out as `npm pack` lays one out: everything under package/."""
    files = {"package/package.json": b'{"name": "emoji-datasource-google"}'}
    files["package/emoji.json"] = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    files.update({f"package/img/google/64/{k}": v for k, v in images.items()})
    files.update(extra or {})
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


ALL = ["1f601.png", "1f44b.png", "1f44b-1f3fb.png", "1f44b-1f3ff.png", "1f1ea-1f1ea.png"]


def test_every_emoji_and_variant_is_read_in_sort_order_with_category_labels_and_attributes(tmp_path):
    tgz = pack(tmp_path / "e.tgz", entries(), pngs(ALL))
    m = get_dataset("emoji", tmp_path / "emoji", source=tgz, progress=False, workers=1)[tmp_path / "emoji"]
    ds = PreparedDataset(tmp_path / "emoji")
    assert m["shape"] == [5, 64, 64, 3] and ds.label_names == ["Flags", "People & Body", "Smileys & Emotion"]
    # wave (sort order 1) and its two variants, then grin, then the flag
    assert ds.labels.tolist() == [1, 1, 1, 2, 0]
    attrs = ds.array("attributes")
    names = {a["name"]: a["values"] for a in ds.manifest["attributes"]}
    assert names["base"] == ["wave", "grin", "flag-ee"] and names["skin_tone"] == ["none", "1F3FB", "1F3FF"]
    assert attrs.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [2, 0]]
    # transparent pixels take the white background; the opaque square keeps its colour
    assert (ds.images[:, 0, 0] == 255).all() and tuple(ds.images[3, 32, 32]) == (0, 200, 255)


def test_a_package_folder_reads_like_its_tarball_and_a_missing_png_is_recorded_as_skipped(tmp_path):
    root = tmp_path / "node_modules" / "emoji-datasource-google"
    (root / "img/google/64").mkdir(parents=True)
    (root / "emoji.json").write_text(json.dumps(entries()))
    for name, data in pngs(ALL[:-1]).items():  # the flag's PNG is missing
        (root / "img/google/64" / name).write_bytes(data)
    src = emoji.read_emoji(root)
    got = list(src.items())
    assert src.count == 5 and [sid for _, _, sid in got] == ALL[1:4] + ALL[:1] + ALL[4:]
    m = get_dataset("emoji", tmp_path / "e", source=root, progress=False, workers=1)[tmp_path / "e"]
    assert m["counts"]["skipped"] == 1 and m["skipped"][0]["id"] == "1f1ea-1f1ea.png"
    assert PreparedDataset(tmp_path / "e").array("attributes").shape == (4, 2)


def test_the_cli_prints_what_it_wrote_and_refuses_options_of_other_datasets(tmp_path):
    tgz = pack(tmp_path / "e.tgz", entries(), pngs(ALL))
    r = run_cli("data", "emoji", "--from", str(tgz), "--out", str(tmp_path / "e"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "5 images 64×64×3, 3 classes + attributes.npy" in r.stdout
    r = run_cli("data", "emoji", "--from", str(tgz), "--out", str(tmp_path / "e2"), "--num", "5")
    assert r.returncode == 2 and "--num does not apply to emoji" in r.stderr and "Traceback" not in r.stderr


def test_a_fetched_tarball_must_be_the_pinned_release(tmp_path):
    (tmp_path / emoji.TARBALL).write_bytes(b"not the package")
    with pytest.raises(DcganError, match="is not emoji-datasource-google 16.0.0"):
        emoji.fetch_emoji(tmp_path)


@pytest.mark.parametrize(
    "meta, message",
    [
        (b"{not json", "not valid JSON"),
        ({"image": "x.png"}, "not a list of emoji"),
        ([{"image": 3, "category": "c", "short_name": "s"}], "not a list of emoji"),
        ([], "not a list of emoji"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_a_wrong_emoji_json_is_one_clear_error(tmp_path, meta, message):
    tgz = pack(tmp_path / "e.tgz", meta, pngs(ALL))
    with pytest.raises(DcganError, match=message):
        emoji.read_emoji(tgz)


def test_a_member_claiming_more_than_a_png_can_be_is_refused_at_its_header(tmp_path):
    big = pack(tmp_path / "e.tgz", entries(), {**pngs(ALL), "huge.png": b"\0" * (emoji.MAX_PNG + 1)})
    with pytest.raises(DcganError, match="claims 4,194,305 bytes, more than"):
        emoji.read_emoji(big)


@QUICK
@given(damage=damages(), compressed=st.booleans())
def test_a_damaged_tarball_is_a_clear_error_or_reads_consistently(tmp_path_factory, damage, compressed):
    with scratch_dir(tmp_path_factory) as d:
        tgz = pack(d / "e.tgz", entries(), pngs(ALL))
        data = tgz.read_bytes()
        if not compressed:  # damage the tar itself, not only the gzip stream around it
            import gzip

            data = gzip.decompress(data)
        bad = d / ("bad.tgz" if compressed else "bad.tar")
        bad.write_bytes(damage(data))
        try:
            src = emoji.read_emoji(bad)
            got = list(src.items())
        except DcganError as e:
            assert str(bad) in str(e) or "emoji" in str(e)
            return
        assert len(got) == src.count and all(0 <= label < len(src.label_names) for _, label, _ in got)
        kept = [sid for raw, _, sid in got if isinstance(raw, bytes)]
        assert len(src.extras(kept)["attributes"]) == len(kept)


def test_a_tarball_that_unpacks_past_the_memory_budget_is_refused_before_it_is_held(tmp_path, monkeypatch):
    """A gzip of zeros (a bomb): the stream is cut at the budget, whatever the tar headers say."""
    zeros = {"package/img/google/64/zeros.bin": b"\0" * (3 << 20)}
    tgz = pack(tmp_path / "e.tgz", entries(), pngs(ALL), extra=zeros)
    monkeypatch.setenv("DCGAN_MAX_MEMORY", str(2 << 20))
    with pytest.raises(DcganError, match="unpacks to more than a reader may hold"):
        emoji.read_emoji(tgz)
