"""Pure image transforms for `dcgan prepare`: decode → one colour mode → fit to a square → resize.

Everything here is a function of (input, ImageSpec) with no I/O beyond reading the file it is given, so the
same code runs in the main process for arrays and in worker processes for encoded files.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from dcgan.data import limits
from dcgan.errors import DcganError

FITS = ("crop", "pad", "stretch")
FILTERS = {
    "area": Image.Resampling.BOX,  # pixel-area averaging: the clean choice for downscaling
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}
# What Pillow raises on a corrupt, truncated or hostile file. Decoding untrusted files is the one place where
# a wide net is right: the reason is recorded in the manifest (or raised with --strict), never swallowed.
DECODE_ERRORS = (  # what Pillow's many decoders raise for a damaged or odd file (DDS, BLP, …): a skip reason
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    Image.DecompressionBombError,
)


class DecodeError(DcganError):
    """An input image could not be decoded."""


@dataclass(frozen=True)
class ImageSpec:
    """What every prepared image becomes: size × size × channels uint8."""

    size: int
    channels: int = 3
    fit: str = "crop"  # crop: centre square; pad: centre on a background square; stretch: ignore aspect
    filter: str = "area"
    background: tuple[int, int, int] = (0, 0, 0)  # for padding and for compositing transparent images

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 4 <= self.size <= 4096:
            raise DcganError(f"size must be an integer from 4 to 4096 pixels, got {self.size!r}")
        if self.channels not in (1, 3):
            raise DcganError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        if self.fit not in FITS:
            raise DcganError(f"fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.filter not in FILTERS:
            raise DcganError(f"filter must be one of {', '.join(FILTERS)}, got {self.filter!r}")
        if len(self.background) != 3 or not all(0 <= int(v) <= 255 for v in self.background):
            raise DcganError(f"background must be three values 0-255, got {self.background!r}")


def parse_color(text: str) -> tuple[int, int, int]:
    """'black', 'white', '#rrggbb' or 'r,g,b' → (r, g, b)."""
    named = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "gray": (128, 128, 128)}
    t = text.strip().lower()
    try:
        if t in named:
            return named[t]
        if t.startswith("#") and len(t) == 7:
            return tuple(int(t[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        rgb = tuple(int(v) for v in t.split(","))
        if len(rgb) == 3 and all(0 <= v <= 255 for v in rgb):
            return rgb  # type: ignore[return-value]
    except ValueError:
        pass
    raise DcganError(f"expected a colour as black, white, #rrggbb or r,g,b, got {text!r}")


def decode(raw: bytes | str | Path, spec: ImageSpec) -> Image.Image:
    """Open encoded bytes or a file path; JPEGs decode at reduced scale when that still leaves 2× the target.

    A file is read into memory first, refused by its size when no image within the pixel limit could need
    it (4 bytes a pixel): Pillow sizes some reads by the length a chunk claims, and from a BytesIO such a
    read returns only the bytes that are there."""
    try:
        if not isinstance(raw, bytes):
            size = Path(raw).stat().st_size
            if size > 4 * limits.max_pixels():
                raise DcganError(f"a file of {size:,} bytes, more than an image within the pixel limit")
            raw = Path(raw).read_bytes()
        img = Image.open(io.BytesIO(raw))
        limits.check_pixels("the image", *img.size)  # from the header, before a pixel is decoded
        if img.format == "JPEG":
            w, h = img.size
            scale = 2 * spec.size / (min(w, h) if spec.fit == "crop" else max(w, h))
            if scale < 1:
                img.draft(img.mode, (int(w * scale) + 1, int(h * scale) + 1))
        img.load()
        return ImageOps.exif_transpose(img)
    except DcganError as e:
        raise DecodeError(str(e)) from None
    except DECODE_ERRORS as e:
        raise DecodeError(reason(e)) from None


def reason(e: BaseException) -> str:
    """An error as a skip reason that is the same in every run: without the `<… object at 0x…>` some
    messages carry (Pillow names the BytesIO it could not identify)."""
    return re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", f"{type(e).__name__}: {e}")


def to_mode(img: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode → 'L' or 'RGB'. 16-bit is scaled to 8-bit; transparency is composited on `background`."""
    if img.mode.startswith("I"):  # 16/32-bit integer grey: map the 16-bit range onto 0-255
        # rint(a / 257) without floats: 257 is odd, so a / 257 never ends in .5
        img = Image.fromarray(
            _rows_to_uint8(np.asarray(img), lambda b: (b.astype(np.int64) + 128) // 257), "L"
        )
    elif img.mode == "F":
        img = Image.fromarray(_rows_to_uint8(np.asarray(img), lambda b: np.rint(np.nan_to_num(b))), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "L" and "transparency" in img.info:
        img = img.convert("LA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        canvas = Image.new("RGBA", img.size, (*background, 255))
        img = Image.alpha_composite(canvas, img.convert("RGBA"))
    return img.convert("L" if channels == 1 else "RGB")


def _rows_to_uint8(a: np.ndarray, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """f over ~256k pixels at a time, clipped to 0-255: a 16-bit image near the pixel limit costs a few bytes
    per pixel, not the 24 of whole-image float64 temporaries."""
    out = np.empty(a.shape, np.uint8)
    rows = max(1, (1 << 18) // max(1, a.shape[1]))
    for i in range(0, len(a), rows):
        out[i : i + rows] = np.clip(f(a[i : i + rows]), 0, 255)
    return out


def fill(background: tuple[int, int, int], channels: int) -> tuple[int, ...]:
    """The background as `channels` values: grey is its luma as Pillow converts RGB to L, so padding and
    transparency (composited in RGB, then converted) give a grey image the same background."""
    if channels == 3:
        return tuple(background)
    return (Image.new("RGB", (1, 1), tuple(background)).convert("L").getpixel((0, 0)),)


def fit_square(img: Image.Image, spec: ImageSpec) -> Image.Image:
    """A spec.size² image by the spec's fit: centre crop, pad (no upscaling of small images), or stretch."""
    w, h = img.size
    s = spec.size
    if spec.fit == "crop" and w != h:
        m = min(w, h)
        left, top = (w - m) // 2, (h - m) // 2
        img = img.crop((left, top, left + m, top + m))
    elif spec.fit == "pad" and (w != h or w < s):
        if max(w, h) ** 2 > limits.max_pixels():  # a 10⁶ × 1 strip: shrink it first, not its square canvas
            f = s / max(w, h)
            img = img.resize((max(1, round(w * f)), max(1, round(h * f))), FILTERS[spec.filter])
            w, h = img.size
        side = max(w, h, s)  # small images sit unscaled in the middle of a size² canvas (28² → 32²)
        values = fill(spec.background, 1 if img.mode == "L" else 3)
        canvas = Image.new(img.mode, (side, side), values[0] if img.mode == "L" else values)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    if img.size != (s, s):
        img = img.resize((s, s), FILTERS[spec.filter])
    return img


def process_encoded(raw: bytes | str | Path, spec: ImageSpec) -> np.ndarray | str:
    """Encoded image → (S, S, C) uint8, or the reason it could not be decoded (for the manifest)."""
    try:
        img = decode(raw, spec)
        return _to_array(fit_square(to_mode(img, spec.channels, spec.background), spec))
    except DecodeError as e:
        return str(e)
    except DECODE_ERRORS as e:  # lazily decoded formats can fail during convert/resize too
        return reason(e)


def process_array(a: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Decoded uint8 image (H, W) or (H, W, C) with C in 1, 3, 4 → (S, S, C). Common cases skip Pillow."""
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    if c == 1 and spec.channels == 3:
        a, c = np.repeat(a, 3, axis=2), 3
    if c == spec.channels:
        if (h, w) == (spec.size, spec.size):
            return np.ascontiguousarray(a)
        if spec.fit == "pad" and h <= spec.size and w <= spec.size:
            out = np.empty((spec.size, spec.size, c), np.uint8)
            out[:] = np.asarray(fill(spec.background, c), np.uint8)
            top, left = (spec.size - h) // 2, (spec.size - w) // 2
            out[top : top + h, left : left + w] = a
            return out
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    img = Image.fromarray(a[:, :, 0] if c == 1 else a, mode)
    return _to_array(fit_square(to_mode(img, spec.channels, spec.background), spec))


def _to_array(img: Image.Image) -> np.ndarray:
    a = np.asarray(img, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a  # (S, S, C)
