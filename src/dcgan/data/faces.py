"""`dcgan data faces`: cartoon faces drawn from a seed, with every attribute that drew them kept as labels.

Each face is an Avataaars-style SVG from the `python-avatars` package, rasterized offline by `resvg-py` into
a square around the head, and composited on a flat background. Face k of seed s depends on (s, k) alone, so
any subset, order or number of worker processes draws the same pictures. The attributes are drawn from
curated lists (no hats, costumes or props that would hide the face) with fixed probabilities, so that the
attributes the paper's face arithmetic needs — smiling, glasses, beard, hair length — are common and
independent of one another:

    attributes.npy  int16 (N, A): column j is an index into the value names of attribute j
    manifest.json   "attributes": [{"name": ..., "values": [...]}, ...] in column order

The label (labels.npy, `--label`) is one of the columns; `smiling` by default.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dcgan.data.items import Item, Source
from dcgan.errors import DcganError

# ------------------------------------------------------------------ what a face is drawn from

SKIN = ["TANNED", "YELLOW", "PALE", "LIGHT", "BROWN", "DARK_BROWN", "BLACK"]
SHORT_HAIR = [
    "NONE", "BUZZCUT", "CAESAR", "CAESAR_SIDE_PART", "FRIZZLE", "POMPADOUR", "QUIFF", "SHAVED_SIDES",
    "SHORT_CURLY", "SHORT_FLAT", "SHORT_ROUND", "SHORT_WAVED", "SIDES",
]  # fmt: skip
LONG_HAIR = [
    "BIG_HAIR", "BOB", "BUN", "CURLY", "CURVY", "FRIDA", "FRO", "LONG_HAIR_CURLY", "LONG_NOT_TOO_LONG",
    "LOOSE_HAIR", "MIA_WALLACE", "STRAIGHT_1", "STRAIGHT_2", "STRAIGHT_STRAND",
]  # fmt: skip
HAIR_COLOR = [
    "AUBURN",
    "BLACK",
    "BLONDE",
    "BLONDE_GOLDEN",
    "BROWN",
    "BROWN_DARK",
    "PLATINUM",
    "RED",
    "SILVER_GRAY",
]
EYES = ["DEFAULT", "HAPPY", "SIDE", "SQUINT", "SURPRISED", "WINK", "CLOSED"]
EYEBROWS = [
    "DEFAULT_NATURAL",
    "FLAT_NATURAL",
    "RAISED_EXCITED_NATURAL",
    "SAD_CONCERNED_NATURAL",
    "UP_DOWN_NATURAL",
]
SMILE_MOUTHS = ["SMILE", "BIG_SMILE", "TWINKLE"]
NEUTRAL_MOUTHS = ["SERIOUS", "DEFAULT"]
OTHER_MOUTHS = ["SAD", "CONCERNED", "DISBELIEF", "SCREAM_OPEN", "GRIMACE"]
NOSE = ["DEFAULT", "SMALL", "WIDE"]
GLASSES = ["PRESCRIPTION_1", "PRESCRIPTION_2", "ROUND", "KURT", "WAYFARERS", "SUNGLASSES"]
BEARDS = ["BEARD_LIGHT", "BEARD_MEDIUM", "BEARD_MAGESTIC", "MOUSTACHE_FANCY", "MOUSTACHE_MAGNUM"]
CLOTHING = [
    "BLAZER_SHIRT", "BLAZER_SWEATER", "COLLAR_SWEATER", "HOODIE", "OVERALL", "SHIRT_CREW_NECK",
    "SHIRT_SCOOP_NECK", "SHIRT_V_NECK",
]  # fmt: skip
CLOTHING_COLOR = [
    "BLACK", "BLUE_01", "BLUE_02", "BLUE_03", "GRAY_01", "GRAY_02", "HEATHER", "PASTEL_BLUE", "PASTEL_GREEN",
    "PASTEL_ORANGE", "PASTEL_YELLOW", "PINK", "RED", "WHITE",
]  # fmt: skip

P_LONG_HAIR, P_GLASSES, P_BEARD = 0.5, 0.3, 0.25
P_MOUTH = {"smile": 0.45, "neutral": 0.4, "other": 0.15}

# column → value names; the derived yes/no columns come last
ATTRIBUTES: dict[str, list[str]] = {
    "skin": SKIN,
    "hair": SHORT_HAIR + LONG_HAIR,
    "hair_color": HAIR_COLOR,
    "eyes": EYES,
    "eyebrows": EYEBROWS,
    "mouth": SMILE_MOUTHS + NEUTRAL_MOUTHS + OTHER_MOUTHS,
    "nose": NOSE,
    "accessory": ["NONE", *GLASSES],
    "facial_hair": ["NONE", *BEARDS],
    "clothing": CLOTHING,
    "clothing_color": CLOTHING_COLOR,
    "smiling": ["no", "yes"],
    "glasses": ["no", "yes"],
    "beard": ["no", "yes"],
    "long_hair": ["no", "yes"],
}
DEFAULT_LABEL = "smiling"
# the head's square in the avatars' 264×280 canvas: hair to chin and the top of the shoulders
VIEWBOX = "32 8 200 200"


def draw_attributes(seed: int, index: int) -> np.ndarray:
    """The attribute row of face `index` of `seed`: (A,) int16 in ATTRIBUTES' column order."""
    rng = np.random.default_rng([seed, index])
    names = ATTRIBUTES

    def pick(values: list[str]) -> str:
        return values[int(rng.integers(len(values)))]

    long_hair = rng.random() < P_LONG_HAIR
    glasses = rng.random() < P_GLASSES
    beard = rng.random() < P_BEARD
    family = rng.choice(list(P_MOUTH), p=list(P_MOUTH.values()))
    mouth = pick({"smile": SMILE_MOUTHS, "neutral": NEUTRAL_MOUTHS, "other": OTHER_MOUTHS}[str(family)])
    chosen = {
        "skin": pick(SKIN),
        "hair": pick(LONG_HAIR if long_hair else SHORT_HAIR),
        "hair_color": pick(HAIR_COLOR),
        "eyes": pick(EYES),
        "eyebrows": pick(EYEBROWS),
        "mouth": mouth,
        "nose": pick(NOSE),
        "accessory": pick(GLASSES) if glasses else "NONE",
        "facial_hair": pick(BEARDS) if beard else "NONE",
        "clothing": pick(CLOTHING),
        "clothing_color": pick(CLOTHING_COLOR),
        "smiling": "yes" if family == "smile" else "no",
        "glasses": "yes" if glasses else "no",
        "beard": "yes" if beard else "no",
        "long_hair": "yes" if long_hair else "no",
    }
    return np.array([names[k].index(v) for k, v in chosen.items()], np.int16)


def face_svg(row: np.ndarray) -> str:
    """The SVG of one attribute row, cropped to the head."""
    import python_avatars as pa

    value = {name: ATTRIBUTES[name][int(i)] for name, i in zip(ATTRIBUTES, row)}
    avatar = pa.Avatar(
        style=pa.AvatarStyle.TRANSPARENT,
        top=pa.HairType[value["hair"]],
        eyebrows=pa.EyebrowType[value["eyebrows"]],
        eyes=pa.EyeType[value["eyes"]],
        nose=pa.NoseType[value["nose"]],
        mouth=pa.MouthType[value["mouth"]],
        facial_hair=pa.FacialHairType[value["facial_hair"]],
        skin_color=pa.SkinColor[value["skin"]],
        hair_color=pa.HairColor[value["hair_color"]],
        facial_hair_color=pa.HairColor[value["hair_color"]],
        accessory=pa.AccessoryType[value["accessory"]],
        clothing=pa.ClothingType[value["clothing"]],
        clothing_color=pa.ClothingColor[value["clothing_color"]],
    )
    svg = avatar.render()
    head = 'width="264px" height="280px" viewBox="0 0 264 280"'
    if head not in svg:  # a python-avatars release with another canvas: refuse rather than crop wrongly
        raise DcganError(
            "this python-avatars release draws on another canvas than the 264×280 one dcgan crops; "
            "install python-avatars==1.4.1"
        )
    return svg.replace(head, f'width="200px" height="200px" viewBox="{VIEWBOX}"', 1)


def render_face(row: np.ndarray, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """(size, size, 3) uint8: the face of one attribute row on a flat background."""
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=face_svg(row), width=size, height=size)
    face = Image.open(io.BytesIO(bytes(png))).convert("RGBA")
    canvas = Image.new("RGBA", face.size, (*background, 255))
    canvas.alpha_composite(face)
    return np.asarray(canvas.convert("RGB"))


def _draw(index: int, seed: int, size: int, background: tuple[int, int, int]) -> np.ndarray:
    return render_face(draw_attributes(seed, index), size, background)


def check_installed() -> None:
    try:
        import python_avatars  # noqa: F401
        import resvg_py  # noqa: F401
    except ImportError as e:
        raise DcganError(
            f"`dcgan data faces` needs python-avatars and resvg-py ({e.name} is missing); "
            "run pip install 'dcgan[faces]'"
        ) from None


def read_faces(
    num: int,
    seed: int = 0,
    size: int = 64,
    background: tuple[int, int, int] = (230, 236, 242),
    label: str = DEFAULT_LABEL,
    workers: int = 1,
) -> Source:
    """A Source of `num` faces drawn from `seed` (rendered by `workers` processes), with attributes.npy."""
    check_installed()
    if num < 1 or seed < 0:
        raise DcganError(f"--num must be at least 1 and --seed 0 or more, got {num} and {seed}")
    if label not in ATTRIBUTES:
        raise DcganError(f"--label must be one of {', '.join(ATTRIBUTES)}; got {label!r}")
    column = list(ATTRIBUTES).index(label)
    draw = functools.partial(_draw, seed=seed, size=size, background=background)

    def items() -> Iterator[Item]:
        indices = range(num)
        if workers > 1 and num >= 64:
            from dcgan.data.prepare import process_pool

            with process_pool(workers) as pool:
                for k, image in enumerate(pool.imap(draw, indices, chunksize=32)):
                    yield image, int(draw_attributes(seed, k)[column]), f"face {k}"
            return
        for k in indices:
            yield draw(k), int(draw_attributes(seed, k)[column]), f"face {k}"

    def extras(ids: list[str]) -> dict[str, np.ndarray]:
        rows = [draw_attributes(seed, int(i.split()[1])) for i in ids]
        return {"attributes": np.stack(rows) if rows else np.zeros((0, len(ATTRIBUTES)), np.int16)}

    about: dict[str, Any] = {
        "attributes": [{"name": k, "values": v} for k, v in ATTRIBUTES.items()],
        "generator": {"name": "faces", "seed": seed, "num": num, "label": label},
    }
    return Source(
        "faces",
        Path(f"faces-seed{seed}"),
        num,
        items,
        [f"{label}={v}" for v in ATTRIBUTES[label]],
        extras=extras,
        about=about,
    )
