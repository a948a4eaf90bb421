"""Colour modes, EXIF orientation and the three fits, on real encoded files."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dcgan.data.transforms import (
    FILTERS,
    FITS,
    ImageSpec,
    parse_color,
    process_array,
    process_encoded,
    to_mode,
)
from dcgan.errors import DcganError

from helpers import damages, rng_images, scratch_dir, traced_peak


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


# ---------------------------------------------------------------- properties (Hypothesis)

QUICK = settings(max_examples=40, deadline=None)  # Pillow's first resize of a kind is slow
colours = st.tuples(*[st.integers(0, 255)] * 3)
side = st.integers(1, 48)
long_side = side | st.integers(200, 300)
specs = st.builds(
    ImageSpec,
    size=st.integers(4, 32),
    channels=st.sampled_from([1, 3]),
    fit=st.sampled_from(FITS),
    filter=st.sampled_from(sorted(FILTERS)),
    background=colours,
)


@st.composite
def images(draw, h=side, w=long_side, c=(None, 1, 3, 4)):
    """(H, W) or (H, W, C) uint8 of any aspect, down to 1-pixel lines."""
    shape = (draw(h), draw(w), draw(st.sampled_from(c)))
    return rng_images(1, *shape, seed=draw(st.integers(0, 2**32 - 1)))[0]


def colour_of(a: np.ndarray, channels: int, background) -> np.ndarray:
    """docs/DATA.md's colour step in floats: alpha composited on the background, then grey as ITU-R 601 luma
    or RGB with grey copied to all three channels. (H, W, channels) float64."""
    a = (a[:, :, None] if a.ndim == 2 else a).astype(np.float64)
    if a.shape[2] == 4:
        alpha = a[:, :, 3:] / 255
        a = a[:, :, :3] * alpha + np.asarray(background, np.float64) * (1 - alpha)
    if channels == 1 and a.shape[2] == 3:
        return a @ np.array([[0.299], [0.587], [0.114]])
    return np.repeat(a, 3, axis=2) if channels == 3 and a.shape[2] == 1 else a


@QUICK
@given(image=images(), spec=specs)
def test_any_image_becomes_size_by_size_by_channels_uint8_the_same_way_every_time(image, spec):
    before = image.copy()
    out = process_array(image, spec)
    assert out.shape == (spec.size, spec.size, spec.channels) and out.dtype == np.uint8
    assert out.flags.c_contiguous
    # a source's pixels (maybe a read-only memmap) stay as they are
    np.testing.assert_array_equal(image, before)
    strided = np.zeros((image.shape[0], 2 * image.shape[1], *image.shape[2:]), np.uint8)
    strided[:, ::2] = image  # the same pixels as a non-contiguous view, as a transposed N×C×H×W source gives
    np.testing.assert_array_equal(process_array(strided[:, ::2], spec), out)
    np.testing.assert_array_equal(process_array(image, spec), out)


@QUICK
@given(data=st.data(), spec=specs)
def test_a_size_by_size_array_with_the_spec_channels_passes_through_untouched(data, spec):
    s = st.just(spec.size)
    image = data.draw(images(s, s, (None, 1) if spec.channels == 1 else (3,)))
    out = process_array(image, spec)
    np.testing.assert_array_equal(out, image.reshape(spec.size, spec.size, spec.channels))


@QUICK
@given(data=st.data(), spec=specs.filter(lambda s: s.fit == "pad"))
def test_pad_keeps_a_small_image_unscaled_and_centred_on_the_background(data, spec):
    image = data.draw(images(st.integers(1, spec.size), st.integers(1, spec.size)))
    h, w = image.shape[:2]
    out = process_array(image, spec).astype(int)
    top, left = (spec.size - h) // 2, (spec.size - w) // 2
    inner = out[top : top + h, left : left + w]
    assert np.abs(inner - colour_of(image, spec.channels, spec.background)).max() <= 1.5  # rounding twice
    out[top : top + h, left : left + w] = -1
    border = out[(out >= 0).all(axis=2)]
    # grey: the background's luma, as a transparent image composited on it gets (it was its red value once)
    expected = colour_of(np.asarray([[spec.background]], np.uint8), spec.channels, spec.background).reshape(
        -1
    )
    assert np.abs(border - expected).max() <= 1


@QUICK
@given(data=st.data(), spec=specs)
def test_colour_modes_convert_as_documented(data, spec):
    s = st.just(spec.size)  # no resize: the pixels show the colour step alone
    image = data.draw(images(s, s))
    out = process_array(image, spec).astype(float)
    want = colour_of(image, spec.channels, spec.background)
    assert np.abs(out - want).max() <= 1.5  # Pillow's fixed-point luma and compositing round twice
    if image.ndim == 2 or image.shape[2] == 1:  # grey → RGB → grey gives the grey back exactly
        back = process_array(process_array(image, ImageSpec(spec.size, 3)), ImageSpec(spec.size, 1))
        np.testing.assert_array_equal(back, image.reshape(spec.size, spec.size, 1))


@QUICK
@given(data=st.data(), spec=specs.filter(lambda s: s.fit == "crop"), tall=st.booleans())
def test_crop_takes_the_centre_square_without_resampling_when_the_short_side_fits(data, spec, tall):
    s, longer = st.just(spec.size), st.integers(spec.size, 3 * spec.size)
    image = data.draw(images(longer, s, (3,)) if tall else images(s, longer, (3,)))
    rgb = ImageSpec(spec.size, 3, "crop", spec.filter)
    m = (max(image.shape[:2]) - spec.size) // 2
    centre = image[m : m + spec.size] if tall else image[:, m : m + spec.size]
    np.testing.assert_array_equal(process_array(image, rgb), centre)


@QUICK
@given(h=side, w=long_side, spec=specs, colour=colours)
def test_a_one_colour_image_stays_that_colour_under_every_fit_and_filter(h, w, spec, colour):
    spec = ImageSpec(spec.size, 3, spec.fit, spec.filter, colour)  # the pad canvas is the same colour
    flat = np.empty((h, w, 3), np.uint8)
    flat[:] = colour
    assert (process_array(flat, spec) == colour).all()


def encode_lossless(image: np.ndarray) -> bytes:
    """A PNG of an (H, W[, C]) uint8 image in mode L, RGB or RGBA."""
    grey = image.ndim == 2 or image.shape[2] == 1
    return encode(Image.fromarray(image.reshape(image.shape[:2]) if grey else image))


@QUICK
@given(image=images(), spec=specs, as_path=st.booleans())
def test_an_encoded_image_becomes_what_its_pixels_do(tmp_path_factory, image, spec, as_path):
    png = encode_lossless(image)
    with scratch_dir(tmp_path_factory) as d:
        raw = str(d / "a.png") if as_path else png
        if as_path:
            (d / "a.png").write_bytes(png)
        out = process_encoded(raw, spec)
    np.testing.assert_array_equal(out, process_array(image, spec))


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # Pillow notes a damaged TIFF
# Every format Pillow writes here, TIFF and BMP too (a damaged header can claim millions of rows): the
# image's size is checked against the pixel limit before anything is decoded.
@settings(QUICK, max_examples=80)
@given(
    image=images(st.integers(1, 24), st.integers(1, 24), (3,)),
    fmt=st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"]),
    damage=damages(),
    spec=specs,
)
def test_damaged_encoded_bytes_give_a_reason_or_an_image_never_an_exception(image, fmt, damage, spec):
    data = damage(encode(Image.fromarray(image), fmt))
    out = process_encoded(data, spec)
    if isinstance(out, str):
        # the reason the manifest records is the same every run (Pillow's own message names the BytesIO
        # object by its address: that part is left out)
        assert out and process_encoded(data, spec) == out and " at 0x" not in out
    else:
        assert out.shape == (spec.size, spec.size, spec.channels) and out.dtype == np.uint8
        np.testing.assert_array_equal(process_encoded(data, spec), out)


def test_an_image_over_the_pixel_limit_is_skipped_with_its_size_before_decoding(monkeypatch):
    monkeypatch.setenv("DCGAN_MAX_PIXELS", "1000")
    spec = ImageSpec(8, 3, "crop", "area", (0, 0, 0))
    assert process_encoded(encode(Image.new("RGB", (40, 40)), "PNG"), spec) == (
        "the image is 40×40 = 1,600 pixels, over the limit of 1,000; raise DCGAN_MAX_PIXELS if such images are real"
    )
    assert process_encoded(encode(Image.new("RGB", (30, 30)), "PNG"), spec).shape == (8, 8, 3)


def test_a_file_larger_than_any_image_within_the_pixel_limit_is_skipped_unread(monkeypatch, tmp_path):
    """Files are read whole before decoding (Pillow sizes some reads by a chunk's claimed length): so a file
    longer than 4 bytes a pixel of the limit is refused by its size."""
    monkeypatch.setenv("DCGAN_MAX_PIXELS", "1000")
    spec = ImageSpec(8, 3, "crop", "area", (0, 0, 0))
    big = encode(Image.new("RGB", (30, 30)), "PNG") + bytes(5000)
    (tmp_path / "big.png").write_bytes(big)
    assert process_encoded(str(tmp_path / "big.png"), spec) == (
        f"a file of {len(big):,} bytes, more than an image within the pixel limit"
    )
    (tmp_path / "ok.png").write_bytes(encode(Image.new("RGB", (30, 30)), "PNG"))
    assert process_encoded(tmp_path / "ok.png", spec).shape == (8, 8, 3)


def test_a_thin_strip_is_padded_without_making_its_square_canvas():
    """A 10⁶ × 1 PNG (a few KB) under --fit pad: shrunk first, never a 10⁶ × 10⁶ canvas."""
    strip = encode(Image.new("L", (1_000_000, 1), 200), "PNG")
    spec = ImageSpec(16, 1, "pad", "area", (0, 0, 0))
    peak = traced_peak(lambda: process_encoded(strip, spec))
    out = process_encoded(strip, spec)
    assert out.shape == (16, 16, 1) and peak < 64 << 20
    bright = out[:, :, 0].min(1) > 0  # the strip: one full row across the middle, black around it
    assert bright.sum() == 1 and bright[7] and out[:, :, 0].sum() == out[7, :, 0].sum()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 65535), min_size=1, max_size=64), st.sampled_from(["I;16", "I"]))
def test_16_bit_grey_maps_each_value_to_the_nearest_of_256_levels(values, mode):
    a = np.array(values, np.uint16 if mode == "I;16" else np.int32).reshape(1, -1)
    img = Image.fromarray(a)
    assert img.mode == mode
    out = np.asarray(to_mode(img, 1, (0, 0, 0)))
    assert (out == np.clip(np.rint(a / 257.0), 0, 255)).all()


def test_a_large_16_bit_image_converts_in_a_few_bytes_per_pixel():
    """Whole-image float64 temporaries took ~24 bytes per pixel; row blocks keep it near the input's own."""
    a = np.random.default_rng(0).integers(0, 65536, (3000, 3000), dtype=np.uint16)
    img = Image.fromarray(a)
    peak = traced_peak(lambda: to_mode(img, 1, (0, 0, 0)))
    assert peak < 6 * a.size, peak / a.size
