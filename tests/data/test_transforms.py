"""Colour modes, EXIF orientation and the three fits, on real encoded files."""

import io

import numpy as np
import pytest
from PIL import Image

from dcgan.data.transforms import ImageSpec, parse_color, process_array, process_encoded
from dcgan.errors import DcganError


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_grey_rgb_and_palette_become_the_requested_channels():
    spec3, spec1 = ImageSpec(8, 3), ImageSpec(8, 1)
    grey = Image.fromarray(np.full((8, 8), 200, np.uint8), "L")
    out = process_encoded(encode(grey), spec3)
    assert out.shape == (8, 8, 3) and (out == 200).all()
    pal = Image.fromarray(np.full((8, 8, 3), (255, 0, 0), np.uint8)).convert("P")
    assert (process_encoded(encode(pal), spec3)[0, 0] == (255, 0, 0)).all()
    red = Image.fromarray(np.full((8, 8, 3), (255, 0, 0), np.uint8))
    assert process_encoded(encode(red), spec1)[0, 0, 0] == 76  # ITU-R 601 luma of pure red


def test_rgba_is_composited_on_the_background():
    a = np.zeros((8, 8, 4), np.uint8)
    a[:4, :, :] = (0, 0, 255, 255)  # top half opaque blue, bottom half transparent
    img = Image.fromarray(a, "RGBA")
    out = process_encoded(encode(img), ImageSpec(8, 3, background=(255, 255, 255)))
    assert (out[0, 0] == (0, 0, 255)).all() and (out[7, 7] == (255, 255, 255)).all()
    out = process_encoded(encode(img), ImageSpec(8, 3, background=(0, 0, 0)))
    assert (out[7, 7] == 0).all()


def test_cmyk_jpeg_and_16_bit_png_are_converted():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red in CMYK
    out = process_encoded(encode(cmyk, "JPEG", quality=95), ImageSpec(8, 3))
    assert out[4, 4, 0] > 200 and out[4, 4, 1] < 60
    a16 = np.full((8, 8), 65535 // 2, np.uint16)
    img16 = Image.fromarray(a16)
    assert img16.mode.startswith("I")
    out = process_encoded(encode(img16), ImageSpec(8, 1))
    assert out.shape == (8, 8, 1) and abs(int(out[0, 0, 0]) - 127) <= 1


def test_exif_orientation_is_respected():
    a = np.zeros((10, 20, 3), np.uint8)
    a[:, :10] = 255  # left half white in the stored pixels
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = process_encoded(encode(img, "JPEG", exif=exif, quality=95), ImageSpec(10, 3, fit="stretch"))
    # after rotating clockwise the white half is on top
    assert out[:5].mean() > 200 and out[5:].mean() < 50


def test_crop_takes_the_centre_square():
    a = np.zeros((10, 30, 3), np.uint8)
    a[:, 10:20] = 255
    out = process_array(a, ImageSpec(10, 3, fit="crop"))
    assert out.shape == (10, 10, 3) and (out == 255).all()


def test_pad_centres_small_images_without_upscaling():
    a = np.full((28, 28), 9, np.uint8)
    out = process_array(a, ImageSpec(32, 1, fit="pad"))
    assert out.shape == (32, 32, 1)
    assert (out[2:30, 2:30] == 9).all() and out[:2].sum() == 0 and out[:, :2].sum() == 0


def test_pad_makes_large_images_square_then_shrinks():
    a = np.full((20, 40, 3), 255, np.uint8)
    out = process_array(a, ImageSpec(10, 3, fit="pad", background=(0, 0, 0)))
    assert out.shape == (10, 10, 3)
    assert out[0].max() < 10 and out[5].min() == 255  # bars above and below, image in the middle


def test_stretch_ignores_aspect():
    a = np.zeros((10, 40, 3), np.uint8)
    a[:, :20] = 255
    out = process_array(a, ImageSpec(8, 3, fit="stretch"))
    assert (out[:, :4] == 255).all() and (out[:, 4:] == 0).all()


def test_area_filter_averages():
    a = np.zeros((8, 8), np.uint8)
    a[::2, ::2] = 255  # one white pixel in every 2×2 block
    out = process_array(a, ImageSpec(4, 1, filter="area"))
    assert (np.abs(out.astype(int) - 64) <= 1).all()


def test_undecodable_bytes_return_a_reason():
    reason = process_encoded(b"not an image at all", ImageSpec(8))
    assert isinstance(reason, str) and "cannot identify" in reason
    truncated = encode(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "PNG"
    )
    assert isinstance(process_encoded(truncated[: len(truncated) // 2], ImageSpec(8)), str)


def test_spec_and_colour_validation():
    with pytest.raises(DcganError, match="fit must be one of crop, pad, stretch"):
        ImageSpec(8, fit="zoom")
    with pytest.raises(DcganError, match="size must be an integer"):
        ImageSpec(0)
    assert parse_color("#ff8000") == (255, 128, 0) and parse_color("white") == (255, 255, 255)
    assert parse_color("1,2,3") == (1, 2, 3)
    with pytest.raises(DcganError, match="expected a colour"):
        parse_color("chartreuse-ish")
