"""Pictures: G's output to uint8, grids in row-major order with their padding, enlarging, PNG and GIF files."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from dcgan.images import make_grid, save_gif, save_png, save_pngs, to_uint8, upscale


def test_to_uint8_maps_the_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    assert to_uint8(x).ravel().tolist() == [0, 128, 255, 255]


def test_to_uint8_puts_channels_last():
    x = torch.stack([torch.full((2, 3), -1.0), torch.zeros(2, 3), torch.ones(2, 3)])[None]  # (1, 3, 2, 3)
    y = to_uint8(x)
    assert y.shape == (1, 2, 3, 3) and y.dtype == np.uint8
    assert (y[0, :, :] == [0, 128, 255]).all()  # every pixel: R 0, G 128, B 255


def test_grid_places_images_row_major_between_padding():
    images = np.stack([np.full((2, 3, 1), 10 * (i + 1), np.uint8) for i in range(5)])  # 5 cells of 2×3
    grid = make_grid(images, ncols=3, pad=1, pad_value=255)
    assert grid.shape == (2 * (2 + 1) + 1, 3 * (3 + 1) + 1, 1)
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 1 + r * 3, 1 + c * 4
        assert (grid[y : y + 2, x : x + 3] == 10 * (i + 1)).all(), i
    assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()  # the padding
    assert (grid[4:6, 9:12] == 255).all()  # the sixth cell is empty
    assert make_grid(images).shape[:2] == (2 * (2 + 2) + 2, 3 * (3 + 2) + 2)  # default: ⌈√5⌉ = 3 columns
    with pytest.raises(ValueError, match="expected images as \\(N, H, W, C\\)"):
        make_grid(images[0])


def test_upscale_enlarges_by_a_whole_factor_and_never_shrinks():
    images = np.arange(2 * 16 * 16 * 3, dtype=np.uint8).reshape(2, 16, 16, 3)
    big = upscale(images)
    assert big.shape == (2, 64, 64, 3)
    assert (big[:, ::4, ::4] == images).all() and (big[:, 3::4, 3::4] == images).all()  # nearest neighbour
    assert upscale(np.zeros((1, 20, 20, 1), np.uint8)).shape == (1, 60, 60, 1)  # 3×: a whole factor
    assert upscale(np.zeros((1, 100, 100, 1), np.uint8)).shape == (1, 100, 100, 1)


def test_png_and_gif_files_hold_the_pixels(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    save_png(rgb, tmp_path / "rgb.png")
    save_png(rgb[:, :, :1], tmp_path / "grey.png")
    assert (np.asarray(Image.open(tmp_path / "rgb.png")) == rgb).all()
    assert (np.asarray(Image.open(tmp_path / "grey.png")) == rgb[:, :, 0]).all()
    frames = np.stack([np.full((16, 16, 1), v, np.uint8) for v in (0, 255, 0)])
    save_gif(frames, tmp_path / "a.gif")
    gif = Image.open(tmp_path / "a.gif")
    shown = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]
    assert len(shown) == 3 and gif.info["loop"] == 0 and shown[0].shape == (128, 128)  # enlarged to 128²
    assert (shown[0] == 0).all() and (shown[1] == 255).all()
    assert not list(tmp_path.glob(".*"))  # written atomically: no temp file left


def test_save_pngs_writes_every_image_atomically(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    paths = [tmp_path / f"s{i}.png" for i in range(40)]
    save_pngs(rgb, paths)
    assert all((np.asarray(Image.open(p)) == x).all() for p, x in zip(paths, rgb))
    save_pngs(rgb[:2, :, :, :1], paths[:2])  # grey, over existing files
    assert (np.asarray(Image.open(paths[1])) == rgb[1, :, :, 0]).all()
    assert not list(tmp_path.glob(".*"))
    with pytest.raises(ValueError, match="3 images for 2 paths"):
        save_pngs(rgb[:3], paths[:2])
    # a file that cannot be written fails the whole set: no temp left, the others keep their old content
    with pytest.raises(OSError):
        save_pngs(rgb[:2], [paths[0], paths[1] / "x.png"])  # a "folder" that is a file
    assert (np.asarray(Image.open(paths[0])) == rgb[0, :, :, 0]).all() and not list(tmp_path.glob(".*"))
