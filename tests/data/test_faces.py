"""Faces drawn from a seed (src/dcgan/data/faces.py): deterministic per face, attributes that match what is
drawn, and the dataset folder with attributes.npy."""

import numpy as np
import pytest

from dcgan.data import faces
from dcgan.data.catalog import get_dataset
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError

from helpers import run_cli


def test_face_k_of_a_seed_is_the_same_whatever_else_is_drawn():
    a = faces.draw_attributes(7, 3)
    assert (a == faces.draw_attributes(7, 3)).all() and not (a == faces.draw_attributes(8, 3)).all()
    bg = (230, 236, 242)
    assert (faces.render_face(a, 32, bg) == faces.render_face(a, 32, bg)).all()


def test_the_derived_columns_agree_with_the_drawn_ones_and_hit_their_rates():
    rows = np.stack([faces.draw_attributes(0, k) for k in range(3000)])
    col = {name: rows[:, j] for j, name in enumerate(faces.ATTRIBUTES)}
    value = {name: np.array(faces.ATTRIBUTES[name])[col[name]] for name in faces.ATTRIBUTES}
    assert ((value["smiling"] == "yes") == np.isin(value["mouth"], faces.SMILE_MOUTHS)).all()
    assert ((value["glasses"] == "yes") == (value["accessory"] != "NONE")).all()
    assert ((value["beard"] == "yes") == (value["facial_hair"] != "NONE")).all()
    assert ((value["long_hair"] == "yes") == np.isin(value["hair"], faces.LONG_HAIR)).all()
    for name, p in [("smiling", 0.45), ("glasses", 0.3), ("beard", 0.25), ("long_hair", 0.5)]:
        assert abs((value[name] == "yes").mean() - p) < 0.04, name
    # independent: smiling is as common with long hair as without
    long = value["long_hair"] == "yes"
    assert abs((value["smiling"][long] == "yes").mean() - (value["smiling"][~long] == "yes").mean()) < 0.06


def test_what_is_drawn_shows_the_attribute(tmp_path):
    """Sunglasses darken the eye band; a beard darkens the chin: the pixels carry the labels."""
    base = faces.draw_attributes(0, 0).copy()
    names = list(faces.ATTRIBUTES)
    base[names.index("accessory")] = 0
    base[names.index("facial_hair")] = 0
    base[names.index("skin")] = faces.SKIN.index("PALE")
    shades = base.copy()
    shades[names.index("accessory")] = faces.ATTRIBUTES["accessory"].index("SUNGLASSES")
    bg = (230, 236, 242)
    plain, dark = faces.render_face(base, 64, bg).astype(int), faces.render_face(shades, 64, bg).astype(int)
    eyes = slice(22, 32), slice(18, 46)
    assert dark[eyes].mean() < plain[eyes].mean() - 30


def test_the_dataset_has_attributes_labels_and_the_generator_in_its_manifest(tmp_path):
    r = run_cli(
        "data", "faces", "--num", "80", "--seed", "3", "--label", "glasses", "--out", str(tmp_path / "f"),
        "--workers", "2", "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    ds = PreparedDataset(tmp_path / "f")
    attrs = ds.array("attributes")
    assert ds.images.shape == (80, 64, 64, 3) and attrs.shape == (80, len(faces.ATTRIBUTES))
    assert (attrs == np.stack([faces.draw_attributes(3, k) for k in range(80)])).all()
    assert (ds.labels == attrs[:, list(faces.ATTRIBUTES).index("glasses")]).all()
    assert ds.label_names == ["glasses=no", "glasses=yes"] and ds.manifest["generator"]["seed"] == 3
    assert [a["name"] for a in ds.manifest["attributes"]] == list(faces.ATTRIBUTES)
    # the same faces as one process draws them, whatever the pool
    one = faces.read_faces(80, seed=3, workers=1)
    assert all((img == ds.images[k]).all() for k, (img, _, _) in enumerate(one.items()))
    again = (
        "data",
        "faces",
        "--num",
        "80",
        "--seed",
        "3",
        "--label",
        "glasses",
        "--out",
        str(tmp_path / "f"),
    )
    r = run_cli(*again)
    assert r.returncode == 0 and "80 images" in r.stdout  # already there: kept


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num": 0}, "--num must be at least 1"),
        ({"label": "hat"}, "--label must be one of"),
        ({"base_url": "http://x"}, "--url does not apply to faces"),
    ],
)
def test_impossible_requests_are_refused(tmp_path, options, message):
    with pytest.raises(DcganError, match=message):
        get_dataset("faces", tmp_path / "f", progress=False, **options)


def test_from_does_not_apply_to_drawn_faces(tmp_path):
    with pytest.raises(DcganError, match="faces are drawn, not read"):
        get_dataset("faces", tmp_path / "f", source=tmp_path, progress=False)


def test_a_kept_dataset_must_be_the_one_asked_for(tmp_path):
    get_dataset("faces", tmp_path / "f", num=20, size=16, progress=False, workers=1)
    with pytest.raises(DcganError, match=r"already holds faces with generator .* pass --force"):
        get_dataset("faces", tmp_path / "f", num=30, size=16, progress=False)
    with pytest.raises(DcganError, match="already holds faces with size 16"):
        get_dataset("faces", tmp_path / "f", num=20, size=32, progress=False)
    assert (
        len(get_dataset("faces", tmp_path / "f", num=30, size=16, force=True, progress=False, workers=1)) == 1
    )
