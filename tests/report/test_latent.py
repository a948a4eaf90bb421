"""Latent-space figures (PAPER.md §6): the arithmetic figure's geometry, and walks, arithmetic, vectors and
large images through the CLI. The latent math itself is tested in tests/test_sampling.py."""

import numpy as np
from PIL import Image, ImageSequence

from dcgan.artifacts import load_generator, save_weights
from dcgan.config import ModelConfig
from dcgan.images import make_grid, upscale
from dcgan.models import z_for_seeds
from dcgan.report import latent

from helpers import run_cli


def test_the_figures_centre_cell_is_g_of_y_exactly(tiny_run):
    g = load_generator(tiny_run)
    cfg = g.cfg
    a, b, c = (z_for_seeds(cfg, s) for s in ([1, 2, 3], [4, 5, 6], [7, 8, 9]))
    figure, _ = latent.arithmetic(g, a, b, c, noise=0.25)
    g_y = upscale(latent.images(g, (a.mean(0) - b.mean(0) + c.mean(0))[None]))[0]  # (64, 64, 3)
    left = make_grid(upscale(latent.images(g, a[:1])), ncols=4)  # the exemplar panel: 4 columns
    x0 = left.shape[1] + 12  # panels are 12 px apart
    side = g_y.shape[0]
    top, lft = 2 + (side + 2), x0 + 2 + (side + 2)  # the 3×3 grid's middle cell
    assert (figure[top : top + side, lft : lft + side] == g_y).all()
    neighbour = figure[2 : 2 + side, x0 + 2 : x0 + 2 + side]
    assert not (neighbour == g_y).all()


def test_interpolate_cli_writes_a_grid_and_a_looping_gif(tiny_run, tmp_path):
    r = run_cli(
        "interpolate",
        str(tiny_run),
        "--seeds",
        "1,2,3,4",
        "--steps",
        "5",
        "--grid",
        str(tmp_path / "w.png"),
        "--gif",
        str(tmp_path / "w.gif"),
        "--device",
        "cpu",
    )
    assert r.returncode == 0, r.stderr
    # 3 segments × 5 steps of 64² + gaps
    assert Image.open(tmp_path / "w.png").size == (5 * 66 + 2, 3 * 66 + 2)
    gif = Image.open(tmp_path / "w.gif")
    frames = list(ImageSequence.Iterator(gif))
    assert len(frames) == 3 * 4 + 4 and gif.info["loop"] == 0  # each segment minus its end, then back home
    first = np.asarray(frames[0].convert("RGB"))
    assert first.shape == (128, 128, 3)


def test_sheet_arithmetic_vector_and_walk_through_the_cli(tiny_run, tmp_path):
    run = str(tiny_run)
    r = run_cli("sheet", run, "--seeds", "0-11", "--cols", "6", "--out", str(tmp_path / "s.png"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "s.png").size == (6 * 66 + 2, 2 * (64 + 14 + 2) + 2)  # cells with captions
    r = run_cli(
        "arithmetic", run, "--a", "1,2,3", "--b", "4,5,6", "--c", "7,8,9", "--out", str(tmp_path / "a.png")
    )
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "a.npy").shape == (9, 8)
    r = run_cli("vector", run, "--from", "1,2", "--to", "3,4", "--out", str(tmp_path / "v.npy"))
    assert r.returncode == 0 and np.load(tmp_path / "v.npy").shape == (8,)
    r = run_cli(
        "walk",
        run,
        "--vector",
        str(tmp_path / "v.npy"),
        "--seeds",
        "0-2",
        "--steps",
        "5",
        "--out",
        str(tmp_path / "t.png"),
    )
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "t.png").size == (5 * 66 + 2, 3 * 66 + 2)
    np.save(tmp_path / "bad.npy", np.zeros(5, np.float32))
    r = run_cli("walk", run, "--vector", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "this generator's z has 8 values" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("interpolate", run, "--seeds", "1", "--grid", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "at least 2 points" in r.stderr


def test_spatial_z_paints_larger_images_with_a_convolutional_g(tmp_path, tiny_run):
    from dcgan.models import build

    cfg = ModelConfig.pyramid(16, z_dim=8, kernel_size=4, g_input="convt", z_dist="normal")
    g, _ = build(cfg, seed=0)
    save_weights(g, tmp_path / "g.safetensors", cfg)
    r = run_cli(
        "sample",
        str(tmp_path / "g.safetensors"),
        "--seeds",
        "0-1",
        "--spatial",
        "3",
        "--outdir",
        str(tmp_path / "big"),
        "--device",
        "cpu",
    )
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "big" / "seed000000.png").size == (24, 24)  # 16 · (3 + 3) / 4
    r = run_cli("sample", str(tiny_run), "--seeds", "0", "--spatial", "2", "--grid", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "needs a generator whose first layer is a transposed convolution" in r.stderr
