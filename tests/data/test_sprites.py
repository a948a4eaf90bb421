"""Wesnoth unit sprites (src/dcgan/data/sprites.py): races as labels, animation frames grouped by unit, on a
folder the test draws and, when Debian's wesnoth-1.16-data is installed (make test installs it), on the real one."""

import numpy as np
import pytest
from PIL import Image

from dcgan.data import sprites
from dcgan.data.catalog import get_dataset
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError


@pytest.mark.parametrize(
    "stem, unit",
    [
        ("bowman", "bowman"),
        ("bowman-bow-attack-1", "bowman"),
        ("bowman-ne-melee-defend-2", "bowman"),
        ("lonely-attack-3", "lonely-attack"),  # no base picture: the frame number goes
        ("orphan", "orphan"),
    ],
)
def test_a_frame_belongs_to_the_shortest_base_picture_it_extends(stem, unit):
    assert sprites.unit_of(stem, {"bowman", "bowman-bow", "orphan"}) == unit


def draw(path, size, mode, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    img.paste(Image.new("RGBA", (size[0] // 2, size[1] // 2), (*colour, 255)), (size[0] // 4, size[1] // 4))
    (img.convert("P") if mode == "P" else img).save(path)


def test_races_are_labels_and_units_group_their_frames(tmp_path):
    units = tmp_path / "units"
    draw(units / "elves" / "archer.png", (72, 72), "RGBA", (0, 200, 0))
    draw(units / "elves" / "archer-bow-attack-1.png", (72, 72), "RGBA", (0, 190, 0))
    draw(units / "monsters" / "bat" / "bat.png", (120, 100), "P", (90, 0, 0))
    draw(units / "monsters" / "bat" / "bat-die-2.png", (120, 100), "RGBA", (80, 0, 0))
    draw(units / "unknown-unit.png", (72, 72), "RGBA", (1, 1, 1))  # loose in units/: no race, left out
    (units / "elves" / "notes.txt").write_text("not a sprite")
    m = get_dataset("sprites", tmp_path / "s", source=units, progress=False, workers=1)[tmp_path / "s"]
    ds = PreparedDataset(tmp_path / "s")
    assert m["shape"] == [4, 64, 64, 3] and ds.label_names == ["elves", "monsters"]
    assert ds.labels.tolist() == [0, 0, 1, 1]
    units_of = [ds.manifest["attributes"][0]["values"][i] for i in ds.array("attributes")[:, 0]]
    assert units_of == ["elves/archer", "elves/archer", "monsters/bat/bat", "monsters/bat/bat"]
    # padded on white, not cropped: the 120×100 bat keeps white bands above and below
    assert (ds.images[2, 0] == 255).all() and (ds.images[:, 32, 32] < 255).any(axis=-1).all()


def test_a_missing_package_says_how_to_install_it(tmp_path):
    with pytest.raises(DcganError, match="apt-get install wesnoth-1.16-data"):
        sprites.read_sprites(tmp_path / "nothing")
    (tmp_path / "empty" / "race").mkdir(parents=True)
    with pytest.raises(DcganError, match="no PNG sprites"):
        sprites.read_sprites(tmp_path / "empty")


@pytest.mark.skipif(not sprites.WESNOTH_UNITS.is_dir(), reason="needs Debian's wesnoth-1.16-data")
def test_the_debian_package_gives_thousands_of_sprites_in_21_races(tmp_path):
    src = sprites.read_sprites()
    assert 5_000 < src.count < 7_000 and len(src.label_names) == 21 and "elves-wood" in src.label_names
    rels = [sid for _, _, sid in src.items()]
    unit = src.extras(rels)["attributes"][:, 0]
    names = src.about["attributes"][0]["values"]
    # animation frames make units of many pictures: on average several frames per unit
    assert len(np.unique(unit)) < src.count / 3
    archer = names.index("elves-wood/archer")
    assert {r for r, u in zip(rels, unit) if u == archer} >= {"elves-wood/archer.png"}
