"""Forgetting an object (src/dcgan/probes/forget.py, segmenter.py, models.dropping, sampling.read_drops):
the drop removes exactly the maps named, the regression finds planted filters, box files and drops files
from anywhere get one clear line, and `dcgan forget` / `dcgan sample --drop` end to end."""

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dcgan.artifacts import load_generator
from dcgan.errors import DcganError
from dcgan.models import dropping, run_generator, z_for_seeds
from dcgan.probes import forget as fg
from dcgan.probes import segmenter as seg
from dcgan.sampling import read_drops

from helpers import run_cli


def test_dropping_zeroes_exactly_the_named_maps_and_only_while_asked(tiny_run):
    g = load_generator(tiny_run)
    z = z_for_seeds(g.cfg, range(4))
    layer = 1
    plain = fg.layer_features(g, z, layer)
    with dropping(g, layer, [0, 2]):
        dropped = fg.layer_features(g, z, layer)
        images = run_generator(g, z)
    assert (dropped[:, [0, 2]] == 0).all() and torch.equal(dropped[:, 1], plain[:, 1])
    assert not torch.equal(images, run_generator(g, z))  # dropping changes the pictures…
    assert torch.equal(fg.layer_features(g, z, layer), plain)  # …and is gone afterwards
    with pytest.raises(DcganError, match="hidden layers 1…"), dropping(g, 9, [0]):
        pass
    with pytest.raises(DcganError, match="channels 0…"), dropping(g, layer, [10_000]):
        pass


def test_the_regression_finds_the_filters_that_fire_inside_the_object():
    """Plant it: channels 3 and 5 are high exactly where the object is; the fit must weight them positive
    and the noise channels near zero."""
    rng = np.random.default_rng(0)
    n, c, side = 40, 12, 8
    masks = np.zeros((n, 32, 32), bool)
    for k in range(n):
        x, y = rng.integers(0, 24, 2)
        masks[k, y : y + 8, x : x + 8] = True
    where = torch.from_numpy(fg.inside(masks, side)).float()
    feats = torch.from_numpy(rng.normal(0, 1, (n, c, side, side))).float().abs()
    feats[:, 3] += 3 * where
    feats[:, 5] += 2 * where
    fit = fg.fit_regression(feats, fg.inside(masks, side))
    w = fit["weights"]
    assert set(np.argsort(-w)[:2]) == {3, 5} and fit["train_accuracy"] > 0.95
    assert fit["positives"] == fit["negatives"] == int(fg.inside(masks, side).sum())
    with pytest.raises(DcganError, match="too few"):
        fg.fit_regression(feats, np.zeros((n, side, side), bool))


def test_class_iou_counts_pixels():
    truth = np.array([[[0, 0, 1, 1]]])
    pred = np.array([[[0, 1, 1, 1]]])
    iou = seg.class_iou(pred, truth, 3)
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(2 / 3) and np.isnan(iou[2])


def test_box_masks_and_box_files(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"boxes": {"3": [[1, 2, 5, 6]], "7": []}}))
    boxes = fg.read_boxes(str(p), 16)
    m = fg.box_masks(boxes, [3, 4, 7], 16)
    assert m[0].sum() == 16 and m[0, 2:6, 1:5].all() and not m[1:].any()


# keys the readers look for, seeds, and noise: so that the wrapped forms and every type check are reached
_keys = st.sampled_from(["boxes", "size", "layer", "width", "channels", "0", "7", "²", "-1"]) | st.text(
    max_size=3
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=True) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=14,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json)
def test_any_json_as_boxes_or_drops_is_read_or_refused_in_one_line(tiny_run, tmp_path, doc):
    p = tmp_path / "f.json"
    p.write_text(json.dumps(doc))
    g = load_generator(tiny_run)
    for read in (lambda: fg.read_boxes(str(p), 16), lambda: read_drops(str(p), g)):
        try:
            read()
        except DcganError as e:
            assert "\n" not in str(e)


@pytest.mark.parametrize(
    "content, says",
    [
        (b"\xff\xfe not json", "not a JSON object"),
        (b'{"boxes": {"x": [[0, 0, 1, 1]]}}', "is not a seed"),
        ('{"boxes": {"²": [[0, 0, 1, 1]]}}'.encode(), "is not a seed"),
        (b'{"size": 32, "boxes": {"1": [[0, 0, 1, 1]]}}', "drawn on 32² samples"),
        (b'{"boxes": {"7": [[0, 0, 1, 1]], "07": []}}', "seed 7 appears twice"),
        (b'{"boxes": {"1": [[0, 0, 99, 1]]}}', "not inside the 16×16"),
        (b'{"boxes": {"1": [[3, 0, 1, 1]]}}', "x0 < x1"),
        (b'{"boxes": {"1": [[0, 0, 1, "a"]]}}', "not [x0, y0, x1, y1]"),
        (b'{"boxes": {}}', "no boxes"),
    ],
)
def test_broken_box_files_say_what_was_expected(tmp_path, content, says):
    p = tmp_path / "b.json"
    p.write_bytes(content)
    with pytest.raises(DcganError, match=re.escape(says)):
        fg.read_boxes(str(p), 16)


def test_a_drops_file_for_another_architecture_is_refused(tiny_run, tmp_path):
    g = load_generator(tiny_run)
    _, width, _ = g.hidden_layers()[0]
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"layer": 1, "width": width + 1, "channels": [0]}))
    with pytest.raises(DcganError, match="another architecture"):
        read_drops(str(p), g)
    p.write_text(json.dumps({"layer": 1, "width": width, "channels": [width]}))
    with pytest.raises(DcganError, match=f"0…{width - 1}"):
        read_drops(str(p), g)
    p.write_text(json.dumps({"layer": True, "width": width, "channels": [0]}))
    with pytest.raises(DcganError, match="must be integers"):
        read_drops(str(p), g)
    p.write_text(json.dumps({"layer": 1, "width": width, "channels": [1, 0, 1]}))
    assert read_drops(str(p), g) == (1, [0, 1])


def test_removal_is_undefined_not_total_when_the_samples_had_none_of_the_object(tiny_run):
    g = load_generator(tiny_run)
    net = seg.Segmenter(3, 4)
    z = z_for_seeds(g.cfg, range(6))
    before = {"object_pixels": 0.0, "area": np.array([1.0, 0.0, 0.0, 0.0])}
    row = fg.measure(g, net, z, 1, [0], 1, None, before)
    assert np.isnan(row["removal"]) and np.isnan(row["area_change"][1:]).all()
    named = fg._named({"r": row["removal"], "a": row["area_change"]}, ["w", "x", "y", "z"])
    assert named["r"] is None and named["a"]["x"] is None and isinstance(named["a"]["w"], float)


def test_dcgan_forget_and_sample_drop_end_to_end(tiny_run, rooms16, tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"boxes": {str(s): [[2, 2, 10, 9]] for s in range(0, 30, 2)}}))
    out = tmp_path / "forget"
    args = (
        "forget", str(tiny_run), "--dataset", str(rooms16), "--out", str(out), "--boxes", str(boxes),
        "--fit-seeds", "0-29", "--eval-seeds", "100-139", "--layer", "1", "--layer", "2", "--draws", "2",
        "--segmenter-images", "250",
    )  # fmt: skip
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "with positive weight" in r.stdout and re.search(r"random \(\d+\), 2 draws", r.stdout)
    result = json.loads((out / "forget.json").read_text())
    assert [x["layer"] for x in result["layers"]] == [1, 2]
    for lay in result["layers"]:
        n_pos = lay["regression"]["positive_filters"]
        assert (
            len(lay["positive_channels"]) == n_pos == lay["positive"]["dropped"] >= lay["negative"]["dropped"]
        )
        negative = sorted(range(len(lay["weights"])), key=lambda c: lay["weights"][c])[
            : lay["negative"]["dropped"]
        ]
        assert all(lay["weights"][c] < 0 for c in negative)  # the control never drops a positive filter
        assert set(lay["positive_channels"]) == {c for c, w in enumerate(lay["weights"]) if w > 0}
        assert (
            lay["curve"][-1]["dropped"] == n_pos and lay["curve"][-1]["removal"] == lay["positive"]["removal"]
        )
        assert set(lay["none"]["area"]) == set(result["segmenter"]["heldout_iou"])
    ious = result["segmenter"]["heldout_iou"]
    assert ious["wall"] is not None and ious["wall"] > 0.3  # it learned something from 250 tiny rooms
    for n in (1, 2):
        fig = np.asarray(Image.open(out / f"forget-layer{n}.png"))
        assert fig.shape[0] > 3 * 64  # three rows of samples
    # the drops file renders the run without the maps; the segmenter is reused on the next call
    drops = json.loads((out / "drops-layer1.json").read_text())
    assert drops["layer"] == 1 and drops["channels"] == result["layers"][0]["positive_channels"]
    r = run_cli("sample", str(tiny_run), "--seeds", "0-7", "--outdir", str(tmp_path / "a"))
    r2 = run_cli(
        "sample",
        str(tiny_run),
        "--seeds",
        "0-7",
        "--outdir",
        str(tmp_path / "b"),
        "--drop",
        str(out / "drops-layer1.json"),
    )
    assert r.returncode == 0 and r2.returncode == 0, r2.stderr
    a = np.asarray(Image.open(tmp_path / "a" / "seed000000.png"))
    b = np.asarray(Image.open(tmp_path / "b" / "seed000000.png"))
    assert (a != b).any() == bool(drops["channels"])
    stamp = (out / "segmenter.safetensors").stat().st_mtime_ns
    r = run_cli(*args)
    assert r.returncode == 0 and (out / "segmenter.safetensors").stat().st_mtime_ns == stamp
    assert (
        json.loads((out / "forget.json").read_text())["layers"][0]["weights"]
        == result["layers"][0]["weights"]
    )


def test_forget_refuses_what_it_cannot_do_in_one_line(tiny_run, rooms16, tmp_path):
    base = ("forget", str(tiny_run), "--dataset", str(rooms16), "--out", str(tmp_path / "f"))
    quick = ("--segmenter-images", "250", "--fit-seeds", "0-9", "--eval-seeds", "20-29", "--draws", "1")
    for extra, says in (
        (("--object", "unicorn"), "--object must be one of"),
        (("--layer", "7"), "--layer must be 1…"),
        (("--fit-seeds", "0-25"), "share seed 20"),
        (("--eval-seeds", "100-60099"), "at most 20,000 and 50,000"),
        (("--segmenter-images", "10"), "at least 64"),
    ):
        r = run_cli(*base, *quick, *extra)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    np.save(tmp_path / "x.npy", np.zeros((40, 16, 16, 3), np.uint8))
    assert (
        run_cli("prepare", str(tmp_path / "x.npy"), str(tmp_path / "plain"), "--size", "16").returncode == 0
    )
    r = run_cli("forget", str(tiny_run), "--dataset", str(tmp_path / "plain"), "--out", str(tmp_path / "g"))
    assert r.returncode == 2 and "masks.npy" in r.stderr
    r = run_cli(*base, "--segmenter", str(tmp_path / "typo.safetensors"))
    assert r.returncode == 2 and "is not a file" in r.stderr
    boxes = tmp_path / "b.json"
    boxes.write_text(json.dumps({"boxes": {"500": [[0, 0, 4, 4]]}}))
    r = run_cli(*base, *quick, "--boxes", str(boxes))
    assert r.returncode == 2 and "outside --fit-seeds (first 500)" in r.stderr
    assert not (tmp_path / "f" / "segmenter.safetensors").exists()  # refused before anything trained
