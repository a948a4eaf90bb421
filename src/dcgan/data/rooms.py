"""`dcgan data rooms`: procedural bedrooms drawn from a seed, each with a per-pixel map of what is where.

A room is a box seen in one-point perspective from a camera whose position, height and focal length vary:
back wall, two side walls, floor and ceiling (random colours, wallpaper stripes or plain; planks, tiles or
carpet), a bed against the back wall, 0–2 windows (a sky-gradient pane in a frame with mullions, on the back
wall or perspective-warped on a side wall), and look-alikes that a network must tell from windows: framed
pictures (half of them landscapes with a sky), doors, mirrors; a nightstand with a lamp; lighting that varies
in strength and direction. Room k of seed s depends on (s, k) alone, so any subset, order or number of worker
processes draws the same pictures. Each room is drawn at twice the size and averaged down (anti-aliased);
its class map takes the class at the top-left of each 2×2 block.

    masks.npy     uint8 (N, S, S): the class of every pixel, an index into CLASSES
    objects.npy   int16 (N, C): how many of each class the room holds (walls, floor, ceiling: 1)
    labels.npy    the number of windows (label names windows=0, windows=1, windows=2)
    manifest.json "classes": CLASSES in index order; "generator": {name, seed, num}
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dcgan.data.items import Item, Source
from dcgan.errors import DcganError

CLASSES = ["wall", "floor", "ceiling", "bed", "window", "door", "picture", "mirror", "lamp", "table"]
C = {name: k for k, name in enumerate(CLASSES)}
MAX_WINDOWS = 2
# what a wall may hold besides windows, and how often each appears
P_DOOR, P_PICTURE, P_MIRROR, P_LAMP = 0.5, 0.6, 0.3, 0.6
SUPERSAMPLE = 2

Vec3 = tuple[float, float, float]


@dataclass
class Camera:
    """A pinhole at (x, y, 0) looking down +z at a room x ∈ [-1, 1], y ∈ [0, height], z ∈ [NEAR, depth]."""

    x: float
    y: float
    focal: float
    side: int  # pixels of the drawing

    def project(self, p: Vec3) -> tuple[float, float]:
        x, y, z = p
        c = self.side / 2
        return c + self.focal * (x - self.x) / z, c - self.focal * (y - self.y) / z


@dataclass
class Canvas:
    """The drawing: float RGB in [0, 1] and the class of every pixel, painted back to front."""

    side: int
    rgb: np.ndarray = field(init=False)
    mask: np.ndarray = field(init=False)
    rows: np.ndarray = field(init=False)  # each pixel's row and column, for gradients
    cols: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.rgb = np.zeros((self.side, self.side, 3), np.float32)
        self.mask = np.zeros((self.side, self.side), np.uint8)
        self.rows, self.cols = np.mgrid[0 : self.side, 0 : self.side].astype(np.float32)

    def region(self, polygon: list[tuple[float, float]]) -> np.ndarray:
        """The pixels inside a polygon (screen coordinates), as a boolean map."""
        im = Image.new("L", (self.side, self.side), 0)
        ImageDraw.Draw(im).polygon([(float(u), float(v)) for u, v in polygon], fill=1)
        return np.asarray(im, bool)

    def paint(self, where: np.ndarray, colour: Any, cls: int | None) -> None:
        """Colour (an RGB triple or a per-pixel array) the pixels `where`; `cls` None keeps their class."""
        self.rgb[where] = colour if np.ndim(colour) == 1 else colour[where]
        if cls is not None:
            self.mask[where] = cls

    def vertical(self, where: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        """A colour ramp from `top` at the region's first row to `bottom` at its last."""
        r = self.rows[where]
        lo, hi = (r.min(), r.max()) if r.size else (0.0, 1.0)
        t = ((self.rows - lo) / max(hi - lo, 1.0)).clip(0, 1)[..., None]
        return (1 - t) * top + t * bottom


NEAR = 0.05


def _colour(rng: np.random.Generator, lo: float, hi: float, tint: float = 0.25) -> np.ndarray:
    """A random colour of brightness in [lo, hi] whose channels differ by up to `tint`."""
    base = rng.uniform(lo, hi)
    return (base + rng.uniform(-tint, tint, 3) * base).clip(0, 1).astype(np.float32)


def _rect_on_wall(
    wall: str, u0: float, u1: float, y0: float, y1: float, room: dict[str, float]
) -> list[Vec3]:
    """Corners of an upright rectangle on a wall: `u` runs along the wall (x on the back wall, z on a side
    wall, as a fraction of its length), y is height."""
    if wall == "back":
        z = room["depth"]
        return [(-1 + 2 * u0, y0, z), (-1 + 2 * u1, y0, z), (-1 + 2 * u1, y1, z), (-1 + 2 * u0, y1, z)]
    x = -1.0 if wall == "left" else 1.0
    z0, z1 = (room["near"] + (room["depth"] - room["near"]) * u for u in (u0, u1))
    return [(x, y0, z0), (x, y0, z1), (x, y1, z1), (x, y1, z0)]


def _inset(corners: list[Vec3], du: float, dy: float) -> list[Vec3]:
    """The rectangle shrunk by du along the wall and dy in height on every side (in room units)."""
    (a, b, c, d) = (np.array(p) for p in corners)
    along = (b - a) / max(np.linalg.norm(b - a), 1e-9)
    up = (d - a) / max(np.linalg.norm(d - a), 1e-9)
    out = [
        a + du * along + dy * up,
        b - du * along + dy * up,
        c - du * along - dy * up,
        d + du * along - dy * up,
    ]
    return [tuple(map(float, p)) for p in out]  # type: ignore[misc]


def _lerp3(p: Vec3, q: Vec3, t: float) -> Vec3:
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t, p[2] + (q[2] - p[2]) * t)


class _Room:
    """One room being drawn: its random stream, camera, canvas and the objects placed so far."""

    def __init__(self, seed: int, index: int, size: int) -> None:
        self.rng = rng = np.random.default_rng([seed, index, 0x700])
        side = size * SUPERSAMPLE
        depth = float(rng.uniform(2.2, 3.4))
        height = float(rng.uniform(1.3, 1.7))
        self.room = {"depth": depth, "height": height, "near": NEAR + 0.6}
        # the back wall spans about 55–70% of the frame; the camera stands off-centre at eye height
        focal = side * depth * rng.uniform(0.27, 0.34)
        self.cam = Camera(float(rng.uniform(-0.4, 0.4)), float(height * rng.uniform(0.45, 0.62)), focal, side)
        self.canvas = Canvas(side)
        self.counts = np.zeros(len(CLASSES), np.int16)
        self.used: dict[str, list[tuple[float, float]]] = {"back": [], "left": [], "right": []}

    def poly(self, corners: list[Vec3]) -> np.ndarray:
        return self.canvas.region([self.cam.project(p) for p in corners])

    # ------------------------------------------------------------------ the box

    def shell(self) -> None:
        rng, cv, r = self.rng, self.canvas, self.room
        d, h, n = r["depth"], r["height"], NEAR
        wall, floor, ceiling = (
            _colour(rng, 0.45, 0.9),
            _colour(rng, 0.25, 0.6, 0.35),
            _colour(rng, 0.75, 0.95, 0.1),
        )
        faces = {
            "back": ([(-1, 0, d), (1, 0, d), (1, h, d), (-1, h, d)], wall, C["wall"]),
            "left": ([(-1, 0, n), (-1, 0, d), (-1, h, d), (-1, h, n)], wall * 0.88, C["wall"]),
            "right": ([(1, 0, n), (1, 0, d), (1, h, d), (1, h, n)], wall * 0.94, C["wall"]),
            "floor": ([(-1, 0, n), (1, 0, n), (1, 0, d), (-1, 0, d)], floor, C["floor"]),
            "ceiling": ([(-1, h, n), (1, h, n), (1, h, d), (-1, h, d)], ceiling, C["ceiling"]),
        }
        for corners, colour, cls in faces.values():
            cv.paint(self.poly(corners), colour, cls)
        self.counts[[C["wall"], C["floor"], C["ceiling"]]] = 1
        # wallpaper stripes: vertical lines stay vertical in one-point perspective
        if rng.random() < 0.35:
            stripe = wall * rng.uniform(0.8, 0.92)
            walls = cv.mask == C["wall"]
            period = rng.integers(4, 9) * SUPERSAMPLE
            cv.paint(walls & ((cv.cols // (period / 2)) % 2 == 0), stripe, None)
        # the floor: planks run toward the back wall, tiles are a grid, carpet is plain
        kind = rng.choice(["planks", "tiles", "carpet"])
        if kind != "carpet":
            im = Image.new("L", (cv.side, cv.side), 0)
            draw = ImageDraw.Draw(im)
            lines = int(rng.integers(6, 14))
            for k in range(1, lines):
                x = -1 + 2 * k / lines
                draw.line([self.cam.project((x, 0, n + 0.3)), self.cam.project((x, 0, d))], fill=1, width=1)
            if kind == "tiles":
                z = n + 0.3
                while z < d:
                    draw.line([self.cam.project((-1, 0, z)), self.cam.project((1, 0, z))], fill=1, width=1)
                    z += 2 / lines
            grout = np.asarray(im, bool) & (cv.mask == C["floor"])
            cv.paint(grout, floor * 0.7, None)
        # a skirting board where walls meet the floor
        for wall_name in ("left", "back", "right"):
            corners = _rect_on_wall(wall_name, 0, 1, 0, 0.05, r)
            cv.paint(self.poly(corners) & (cv.mask == C["wall"]), wall * 0.7, None)

    # ------------------------------------------------------------------ what hangs on the walls

    def slot(self, width: float, walls: list[str]) -> tuple[str, float, float] | None:
        """A free stretch of `width` (fraction of the wall) on one of `walls`, or None after a few tries."""
        for _ in range(12):
            wall = str(self.rng.choice(walls))
            u0 = float(self.rng.uniform(0.05, 0.95 - width))
            u1 = u0 + width
            if all(u1 + 0.03 < a or u0 - 0.03 > b for a, b in self.used[wall]):
                self.used[wall].append((u0, u1))
                return wall, u0, u1
        return None

    def window(self) -> bool:
        rng, cv, h = self.rng, self.canvas, self.room["height"]
        place = self.slot(float(rng.uniform(0.24, 0.36)), ["back", "back", "left", "right"])
        if place is None:
            return False
        wall, u0, u1 = place
        y0, y1 = h * rng.uniform(0.3, 0.42), h * rng.uniform(0.8, 0.92)
        outer = _rect_on_wall(wall, u0, u1, y0, y1, self.room)
        frame_colour = _colour(rng, 0.85, 1.0, 0.05) if rng.random() < 0.6 else _colour(rng, 0.25, 0.5, 0.3)
        frame = self.poly(outer)
        cv.paint(frame, frame_colour, C["window"])
        pane = self.poly(_inset(outer, 0.04, 0.04)) & frame
        dusk = rng.random() < 0.25
        top = np.array([0.95, 0.55, 0.35] if dusk else [0.15, 0.35, 0.75], np.float32) * rng.uniform(0.8, 1.1)
        bottom = np.array([0.98, 0.85, 0.6] if dusk else [0.7, 0.85, 0.98], np.float32)
        cv.paint(pane, cv.vertical(pane, top.clip(0, 1), bottom), None)
        if rng.random() < 0.5:  # distant hills along the bottom of the pane
            rows = cv.rows[pane]
            if rows.size:
                line = rows.min() + (rows.max() - rows.min()) * rng.uniform(0.65, 0.85)
                cv.paint(
                    pane & (cv.rows > line + 2 * np.sin(cv.cols / 7)), _colour(rng, 0.2, 0.45, 0.4), None
                )
        # mullions: a cross, or a single upright
        bar = 0.018
        a, b, c, d = outer
        mid_low, mid_high = _lerp3(a, b, 0.5), _lerp3(d, c, 0.5)
        pieces = [self._bar(mid_low, mid_high, bar, vertical=True)]
        if rng.random() < 0.6:
            pieces.append(self._bar(_lerp3(a, d, 0.55), _lerp3(b, c, 0.55), bar, vertical=False))
        for piece in pieces:
            cv.paint(piece & frame, frame_colour, None)
        self.counts[C["window"]] += 1
        return True

    def _bar(self, p: Vec3, q: Vec3, half: float, vertical: bool) -> np.ndarray:
        """A thin strip from p to q on a wall, `half` thick on each side: an upright's thickness runs along
        the wall (x on the back wall, z on a side wall), a crossbar's in height."""
        if not vertical:
            side = np.array([0.0, 1.0, 0.0])
        elif abs(p[0]) == 1.0:
            side = np.array([0.0, 0.0, 1.0])
        else:
            side = np.array([1.0, 0.0, 0.0])
        pts = [
            np.add(p, -half * side),
            np.add(q, -half * side),
            np.add(q, half * side),
            np.add(p, half * side),
        ]
        return self.poly([(float(x[0]), float(x[1]), float(x[2])) for x in pts])

    def framed(self, cls: str) -> bool:
        """A picture or a mirror: a frame around a landscape, colour blocks or a grey sheen."""
        rng, cv, h = self.rng, self.canvas, self.room["height"]
        tall = cls == "mirror"
        place = self.slot(
            float(rng.uniform(0.1, 0.2) if tall else rng.uniform(0.12, 0.28)), ["back", "left", "right"]
        )
        if place is None:
            return False
        wall, u0, u1 = place
        y0 = h * (rng.uniform(0.3, 0.4) if tall else rng.uniform(0.45, 0.6))
        y1 = h * (rng.uniform(0.8, 0.88) if tall else rng.uniform(0.7, 0.85))
        outer = _rect_on_wall(wall, u0, u1, y0, y1, self.room)
        frame = self.poly(outer)
        cv.paint(frame, _colour(rng, 0.15, 0.75, 0.3), C[cls])
        inner = self.poly(_inset(outer, 0.03, 0.03)) & frame
        if tall:  # a mirror: cool grey with a bright diagonal sheen
            base = cv.vertical(
                inner, np.array([0.75, 0.8, 0.85], np.float32), np.array([0.5, 0.55, 0.6], np.float32)
            )
            sheen = ((cv.cols + cv.rows) // (4 * SUPERSAMPLE)) % 5 == 0
            cv.paint(inner, base, None)
            cv.paint(inner & sheen, np.array([0.92, 0.95, 0.97], np.float32), None)
        elif rng.random() < 0.5:  # a landscape: sky over land, a window's look-alike
            sky = cv.vertical(inner, _colour(rng, 0.4, 0.8, 0.4), _colour(rng, 0.7, 1.0, 0.2))
            cv.paint(inner, sky, None)
            rows = cv.rows[inner]
            if rows.size:
                horizon = rows.min() + (rows.max() - rows.min()) * rng.uniform(0.4, 0.7)
                cv.paint(inner & (cv.rows > horizon), _colour(rng, 0.2, 0.6, 0.5), None)
        else:  # colour blocks
            cv.paint(inner, _colour(rng, 0.3, 0.9, 0.5), None)
            split = float(np.median(cv.cols[inner])) if inner.any() else 0.0
            cv.paint(inner & (cv.cols > split), _colour(rng, 0.2, 0.9, 0.5), None)
        self.counts[C[cls]] += 1
        return True

    def door(self) -> bool:
        rng, cv, h = self.rng, self.canvas, self.room["height"]
        place = self.slot(float(rng.uniform(0.16, 0.22)), ["back", "left", "right"])
        if place is None:
            return False
        wall, u0, u1 = place
        outer = _rect_on_wall(wall, u0, u1, 0, h * rng.uniform(0.7, 0.8), self.room)
        wood = _colour(rng, 0.3, 0.75, 0.3)
        cv.paint(self.poly(outer), wood * 0.8, C["door"])
        cv.paint(self.poly(_inset(outer, 0.03, 0.03)), wood, C["door"])
        for t0, t1 in ((0.08, 0.45), (0.55, 0.92)):  # two panels
            a, b, c, d = _inset(outer, 0.07, 0.0)
            panel = [_lerp3(a, d, t0), _lerp3(b, c, t0), _lerp3(b, c, t1), _lerp3(a, d, t1)]
            cv.paint(self.poly(panel) & ~self.poly(_inset(panel, 0.01, 0.01)), wood * 0.75, C["door"])
        a, b, c, d = outer
        knob = _lerp3(_lerp3(a, d, 0.45), _lerp3(b, c, 0.45), 0.85)
        u, v = self.cam.project(knob)
        r = max(1.0, cv.side / 90)
        cv.paint(
            cv.region([(u - r, v - r), (u + r, v - r), (u + r, v + r), (u - r, v + r)]),
            np.array([0.85, 0.75, 0.3]),
            C["door"],
        )
        self.counts[C["door"]] += 1
        return True

    # ------------------------------------------------------------------ furniture on the floor

    def box(
        self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, colour: np.ndarray, cls: int
    ) -> None:
        """A solid box: the faces the camera sees, shaded, side then top then front."""
        if self.cam.x < x0:
            self.canvas.paint(
                self.poly([(x0, y0, z0), (x0, y0, z1), (x0, y1, z1), (x0, y1, z0)]), colour * 0.7, cls
            )
        elif self.cam.x > x1:
            self.canvas.paint(
                self.poly([(x1, y0, z0), (x1, y0, z1), (x1, y1, z1), (x1, y1, z0)]), colour * 0.7, cls
            )
        if self.cam.y > y1:
            self.canvas.paint(
                self.poly([(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)]), colour, cls
            )
        self.canvas.paint(
            self.poly([(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0)]), colour * 0.82, cls
        )

    def bed(self) -> tuple[float, float]:
        """A bed against the back wall; returns its x extent (for the nightstand)."""
        rng, d, h = self.rng, self.room["depth"], self.room["height"]
        width = float(rng.uniform(0.7, 1.1))
        x0 = float(rng.uniform(-0.95, 0.95 - width))
        x1 = x0 + width
        length = float(rng.uniform(0.9, 1.3))
        top = h * float(rng.uniform(0.2, 0.27))
        head = _colour(rng, 0.2, 0.6, 0.3)
        self.box(x0 - 0.02, x1 + 0.02, 0, top + h * rng.uniform(0.12, 0.22), d - 0.06, d, head, C["bed"])
        blanket = _colour(rng, 0.3, 0.9, 0.5)
        self.box(x0, x1, 0, top, d - 0.06 - length, d - 0.06, blanket, C["bed"])
        pillow = _colour(rng, 0.85, 1.0, 0.05)
        pw = width * 0.4
        for px in (x0 + 0.05, x1 - 0.05 - pw) if width > 0.85 else (x0 + (width - pw) / 2,):
            self.box(px, px + pw, top, top + 0.06, d - 0.3, d - 0.08, pillow, C["bed"])
        self.counts[C["bed"]] = 1
        return x0, x1

    def nightstand_and_lamp(self, bed: tuple[float, float]) -> None:
        rng, d, h = self.rng, self.room["depth"], self.room["height"]
        x0, x1 = bed
        w = 0.25
        if x0 - w - 0.05 > -1:
            sx0 = x0 - w - 0.05
        elif x1 + w + 0.05 < 1:
            sx0 = x1 + 0.05
        else:
            return
        top = h * 0.22
        self.box(sx0, sx0 + w, 0, top, d - 0.3, d - 0.02, _colour(rng, 0.2, 0.55, 0.3), C["table"])
        self.counts[C["table"]] += 1
        if rng.random() < P_LAMP:
            cx, cz = sx0 + w / 2, d - 0.16
            stem = 0.012
            self.box(
                cx - stem,
                cx + stem,
                top,
                top + h * 0.12,
                cz - stem,
                cz + stem,
                np.array([0.3, 0.3, 0.3]),
                C["lamp"],
            )
            shade = _colour(rng, 0.8, 1.0, 0.15)
            y0, y1 = top + h * 0.1, top + h * 0.22
            trapezoid = [
                (cx - 0.11, y0, cz - 0.1),
                (cx + 0.11, y0, cz - 0.1),
                (cx + 0.07, y1, cz - 0.1),
                (cx - 0.07, y1, cz - 0.1),
            ]
            self.canvas.paint(self.poly(trapezoid), shade, C["lamp"])
            self.counts[C["lamp"]] += 1

    # ------------------------------------------------------------------ light

    def light(self) -> np.ndarray:
        """The final picture: the drawing under a light of random strength falling from one side."""
        rng, cv = self.rng, self.canvas
        strength = rng.uniform(0.7, 1.1)
        direction = rng.uniform(-1, 1)
        across = (cv.cols / cv.side - 0.5) * direction
        shade = strength * (1 + 0.35 * across) * (1 - 0.15 * ((cv.rows / cv.side - 0.5) ** 2) * 4)
        rgb = cv.rgb * shade[..., None]
        windows = cv.mask == C["window"]
        rgb[windows] = cv.rgb[windows] * (0.5 + 0.5 * strength)  # daylight does not dim with the room
        rgb += rng.normal(0, 0.012, rgb.shape).astype(np.float32)  # a little sensor noise
        return rgb.clip(0, 1)


def draw_room(seed: int, index: int, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Room `index` of `seed`: (size, size, 3) uint8 picture, (size, size) uint8 class map, (C,) int16 counts."""
    r = _Room(seed, index, size)
    rng = r.rng
    r.shell()
    n_windows = int(rng.choice(MAX_WINDOWS + 1, p=[0.25, 0.45, 0.3]))
    # hung in a random order so that no kind always gets the best wall
    wanted = ["window"] * n_windows
    wanted += ["door"] * (rng.random() < P_DOOR) + ["picture"] * (rng.random() < P_PICTURE)
    wanted += ["picture"] * (rng.random() < P_PICTURE / 3) + ["mirror"] * (rng.random() < P_MIRROR)
    for kind in rng.permutation(wanted):
        {
            "window": r.window,
            "door": r.door,
            "picture": lambda: r.framed("picture"),
            "mirror": lambda: r.framed("mirror"),
        }[str(kind)]()
    r.nightstand_and_lamp(r.bed())
    rgb = r.light()
    s = SUPERSAMPLE
    small = rgb.reshape(size, s, size, s, 3).mean(axis=(1, 3))
    picture = (small * 255 + 0.5).astype(np.uint8)
    mask = r.canvas.mask[::s, ::s].copy()
    # what is still visible decides the counts of hidden objects (a window behind the lamp still counts)
    counts = np.where(np.bincount(mask.ravel(), minlength=len(CLASSES)) > 0, r.counts, 0).astype(np.int16)
    return picture, mask, counts


def _draw(index: int, seed: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return draw_room(seed, index, size)


def read_rooms(num: int, seed: int = 0, size: int = 64, workers: int = 1) -> Source:
    """A Source of `num` rooms drawn from `seed` by `workers` processes, with masks.npy and objects.npy."""
    if num < 1 or seed < 0:
        raise DcganError(f"--num must be at least 1 and --seed 0 or more, got {num} and {seed}")
    if size < 16:
        raise DcganError(f"rooms are drawn at 16×16 or larger; got --size {size}")
    draw = functools.partial(_draw, seed=seed, size=size)
    kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # id → (mask, counts) until prepare asks for them

    def items() -> Iterator[Item]:
        kept.clear()
        indices = range(num)
        if workers > 1 and num >= 64:
            from dcgan.data.prepare import process_pool

            with process_pool(workers) as pool:
                yield from _yield(pool.imap(draw, indices, chunksize=32))
            return
        yield from _yield(map(draw, indices))

    def _yield(drawn: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Iterator[Item]:
        for k, (picture, mask, counts) in enumerate(drawn):
            sid = f"room {k}"
            kept[sid] = (mask, counts)
            yield picture, int(min(counts[C["window"]], MAX_WINDOWS)), sid

    def extras(ids: list[str]) -> dict[str, np.ndarray]:
        masks = np.zeros((len(ids), size, size), np.uint8)
        objects = np.zeros((len(ids), len(CLASSES)), np.int16)
        for j, sid in enumerate(ids):
            masks[j], objects[j] = kept.pop(sid)
        kept.clear()
        return {"masks": masks, "objects": objects}

    about: dict[str, Any] = {
        "classes": CLASSES,
        "generator": {"name": "rooms", "seed": seed, "num": num},
    }
    return Source(
        "rooms",
        Path(f"rooms-seed{seed}"),
        num,
        items,
        [f"windows={k}" for k in range(MAX_WINDOWS + 1)],
        extras=extras,
        about=about,
    )
