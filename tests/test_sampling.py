"""Seed-addressable sampling and `dcgan sample`; the latent algebra of PAPER.md §6 (walks, arithmetic,
vectors) as math; parse_seeds, lerp and slerp as properties over generated inputs."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from dcgan.artifacts import load_generator
from dcgan.config import ModelConfig
from dcgan.device import cpu_has_fast_bf16
from dcgan.errors import DcganError
from dcgan.images import to_uint8
from dcgan.models import build, run_generator, z_for_seeds
from dcgan.sampling import (
    along,
    arithmetic_latents,
    direction,
    generate,
    interpolation_mode,
    lerp,
    parse_seeds,
    slerp,
    walk_latents,
    z_from_spec,
)

from helpers import run_cli

TINY = ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)  # what the `tiny_run` fixture trains
UNIFORM = ModelConfig.pyramid(16, z_dim=8)
NORMAL = ModelConfig.pyramid(16, z_dim=8, z_dist="normal")


@pytest.fixture
def run(tiny_run):
    return tiny_run


# ---------------------------------------------------------------- seeds


def test_parse_seeds():
    assert parse_seeds("0-3,9") == [0, 1, 2, 3, 9] and parse_seeds("42") == [42]
    for bad in ("a-b", "5-2", "-1", ""):
        with pytest.raises(DcganError):
            parse_seeds(bad)


# A part of a seed list: one seed, or a short range lo-hi (short: the expansion stays small).
seed_parts = st.one_of(
    st.integers(0, 10**6).map(lambda s: (s, s)),
    st.tuples(st.integers(0, 10**6), st.integers(0, 20)).map(lambda p: (p[0], p[0] + p[1])),
)
spaces = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def seed_texts(draw) -> tuple[str, list[int]]:
    """A seed list as a user types it ('0-3, 9'), spaces allowed around numbers and dashes, and its seeds."""
    parts = draw(st.lists(seed_parts, min_size=1, max_size=6))
    rendered, expected = [], []
    for lo, hi in parts:
        pad = [draw(spaces) for _ in range(4)]
        one = (
            f"{pad[0]}{lo}{pad[1]}"
            if lo == hi and draw(st.booleans())
            else f"{pad[0]}{lo}{pad[1]}-{pad[2]}{hi}{pad[3]}"
        )
        rendered.append(one)
        expected.extend(range(lo, hi + 1))
    return ",".join(rendered), expected


@settings(max_examples=200, deadline=None)
@given(seed_texts())
def test_parse_seeds_reads_back_every_rendered_list(case):
    text, expected = case
    assert parse_seeds(text) == expected


@st.composite
def malformed_seed_texts(draw) -> str:
    """Valid parts with one broken part put among them."""
    good = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in draw(st.lists(seed_parts, max_size=3))]
    lo = draw(st.integers(0, 1000))
    broken = draw(
        st.one_of(
            st.just(""),  # an empty part: '1,,2' or a trailing comma
            st.just(f"-{lo}"),  # a negative seed
            st.integers(1, 50).map(lambda k: f"{lo + k}-{lo}"),  # a range that runs backwards
            st.just(f"{lo}-{lo}-{lo}"),
            st.just(f"{lo}-"),
            st.just(f"{lo}.5"),
            st.just(f"{lo} {lo}"),
            st.text(
                st.characters(categories=["L", "P", "S"], exclude_characters=","), min_size=1, max_size=5
            ),
        )
    )
    at = draw(st.integers(0, len(good)))
    return ",".join([*good[:at], broken, *good[at:]])


@settings(max_examples=200, deadline=None)
@given(malformed_seed_texts())
def test_malformed_seed_lists_are_a_dcgan_error(text):
    with pytest.raises(DcganError):
        parse_seeds(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=16))
def test_any_text_gives_seeds_or_a_dcgan_error_and_nothing_else(text):
    # numbers of up to 4 digits: a range like 0-99999999999 is valid and would take all memory to expand
    assume(not any(len(run) > 4 for run in "".join(c if c.isdecimal() else " " for c in text).split()))
    try:
        seeds = parse_seeds(text)
    except DcganError:
        return
    assert seeds and all(isinstance(s, int) and s >= 0 for s in seeds)


# ---------------------------------------------------------------- generating


def test_image_k_of_seed_s_is_the_same_at_any_batch_size(run):
    g = load_generator(run)
    cfg = g.cfg
    assert cfg == TINY and not g.training
    together = generate(g, [5, 6, 7, 8, 9], batch=5)
    alone = generate(g, [7], batch=1)
    in_twos = generate(g, [5, 6, 7, 8, 9], batch=2)
    assert torch.allclose(together[2], alone[0], atol=1e-6) and torch.allclose(together, in_twos, atol=1e-6)
    assert torch.equal(z_for_seeds(cfg, [7])[0], z_for_seeds(cfg, [3, 7])[1])
    # and another seed is another image: a generator that ignored its seeds would pass the checks above
    assert not torch.allclose(together[1], together[2], atol=1e-3)
    assert not torch.equal(z_for_seeds(cfg, [3])[0], z_for_seeds(cfg, [7])[0])


def test_bf16_sampling_is_close_to_fp32_and_the_same_at_any_batch_size(run):
    g32, g16 = load_generator(run, "cpu", "fp32"), load_generator(run, "cpu", "bf16")
    assert (g32.precision, g16.precision) == ("fp32", "bf16")
    # auto: bf16 only where it was measured to pay, CPUs that run it natively
    assert load_generator(run, "cpu", "auto").precision == ("bf16" if cpu_has_fast_bf16() else "fp32")
    seeds = list(range(40))
    exact, fast = generate(g32, seeds), generate(g16, seeds, batch=40)
    assert torch.equal(fast, generate(g16, seeds, batch=7)) and torch.equal(fast[3:4], generate(g16, [3]))
    assert not torch.equal(exact, fast)  # bf16 did run
    assert (exact - fast).abs().max() < 0.05  # of the [-1, 1] range
    with pytest.raises(DcganError, match="--precision must be auto, fp32, bf16, fp16, got 'fp8'"):
        load_generator(run, "cpu", "fp8")


def test_sample_cli_grid_and_files(run, tmp_path):
    r = run_cli(
        "sample",
        str(run),
        "--seeds",
        "0-5",
        "--grid",
        str(tmp_path / "g.png"),
        "--outdir",
        str(tmp_path / "d"),
    )
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "g.png").size == (3 * 64 + 4 * 2, 2 * 64 + 3 * 2)  # 16² shown at 64²
    files = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert files == [f"seed{s:06d}.png" for s in range(6)]
    one = np.asarray(Image.open(tmp_path / "d" / "seed000003.png"))
    g = load_generator(run, "cpu", "auto")  # the command's default precision
    assert (one == to_uint8(generate(g, [3]))[0]).all()
    assert not (one == np.asarray(Image.open(tmp_path / "d" / "seed000004.png"))).all()
    r = run_cli("sample", str(run), "--seeds", "9-1", "--grid", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "runs backwards" in r.stderr


def test_sample_outdir_streams_in_chunks_and_keeps_each_seeds_image(run, tmp_path, monkeypatch, capsys):
    """--outdir generates and writes a chunk at a time (memory bounded at any --seeds): the files and the
    grid are what one call gives, for a chunk rounded to whole passes that does not divide the seeds, with
    both BN modes; a seed asked for twice is one file."""
    from dcgan.cli import main
    from dcgan.cli import train as cli_train

    monkeypatch.setattr(cli_train, "SAMPLE_CHUNK", 5)  # rounded down to whole passes of 2: chunks of 4
    g = load_generator(run, "cpu", "auto")
    for bn in ("running", "batch"):
        out = tmp_path / bn
        args = ["sample", str(run), "--seeds", "0-9", "--batch", "2", "--bn", bn, "--outdir", str(out)]
        assert main([*args, "--grid", str(tmp_path / f"{bn}.png")]) == 0
        got = np.stack([np.asarray(Image.open(out / f"seed{s:06d}.png")) for s in range(10)])
        want = to_uint8(generate(g, list(range(10)), bn=bn, batch=2))
        assert (got.reshape(want.shape) == want).all(), bn
    assert "10 files" in capsys.readouterr().out
    assert main(["sample", str(run), "--seeds", "3,5,3,5,5", "--outdir", str(tmp_path / "twice")]) == 0
    assert sorted(p.name for p in (tmp_path / "twice").iterdir()) == ["seed000003.png", "seed000005.png"]
    assert "2 files" in capsys.readouterr().out
    assert main(["sample", str(run), "--batch", "0", "--outdir", str(tmp_path)]) == 2


def test_batch_statistics_of_one_image_are_a_clear_error_where_they_do_not_exist(run, tmp_path, capsys):
    """G's first layer here is a matrix product with BatchNorm1d over its units: one image per pass has no
    statistics. Said before anything is written; a G with BatchNorm2d only takes one image per pass."""
    from dcgan.cli import main

    none = tmp_path / "none"
    # the last pass alone; every one; one seed
    for seeds, batch in (("0-8", "2"), ("0-3", "1"), ("7", "256")):
        args = [
            "sample",
            str(run),
            "--seeds",
            seeds,
            "--batch",
            batch,
            "--bn",
            "batch",
            "--outdir",
            str(none),
        ]
        assert main(args) == 2
        assert "leave one alone" in capsys.readouterr().err and not none.exists()
    convt = build(ModelConfig.pyramid(16, z_dim=8, g_input="convt"), seed=0)[0].eval()
    assert run_generator(convt, z_for_seeds(convt.cfg, [7]), bn="batch").shape == (1, 3, 16, 16)


# ---------------------------------------------------------------- interpolation


def test_slerp_keeps_the_ends_and_moves_the_norm_smoothly():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.linspace(0, 1, 5)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path.norm(dim=1), torch.tensor([3.0, 2.5, 2.0, 1.5, 1.0]))
    assert torch.allclose(lerp(a, b, t)[2], (a + b) / 2)
    assert torch.allclose(slerp(a, 2 * a, t)[2], 1.5 * a)  # parallel: falls back to the line


vectors = st.integers(2, 12).flatmap(
    lambda d: st.tuples(
        *(st.lists(st.floats(-10, 10, width=32), min_size=d, max_size=d).map(torch.tensor) for _ in range(2))
    )
)
times = st.lists(st.floats(0, 1), min_size=1, max_size=8).map(lambda ts: torch.tensor(sorted(ts)))


def _close(x: torch.Tensor, y: torch.Tensor, scale: float) -> bool:
    return torch.allclose(x, y, rtol=1e-4, atol=1e-4 * scale)


@settings(max_examples=200, deadline=None)
@given(vectors, times)
def test_lerp_is_affine_and_reaches_both_ends(ab, t):
    a, b = ab
    scale = 1 + max(a.norm().item(), b.norm().item())
    path = lerp(a, b, t)
    assert path.shape == (len(t), len(a))
    assert _close(path, (1 - t)[:, None] * a + t[:, None] * b, scale)
    ends = lerp(a, b, torch.tensor([0.0, 1.0]))
    assert _close(ends[0], a, scale) and _close(ends[1], b, scale)
    # affine: moving both ends moves the whole path; the path beyond t = 1 continues the same line
    shift = torch.linspace(-1, 1, len(a))
    assert _close(lerp(a + shift, b + shift, t), path + shift, scale)
    assert _close(lerp(a, b, torch.tensor([2.0]))[0], 2 * b - a, 3 * scale)


@settings(max_examples=200, deadline=None)
@given(vectors, times)
def test_slerp_reaches_the_ends_and_its_norm_moves_monotonically(ab, t):
    a, b = ab
    na, nb = a.norm().item(), b.norm().item()
    assume(min(na, nb) > 0.1)
    # opposite directions have no single arc between them, and slerp's fallback covers parallel ones only
    assume(torch.dot(a, b).item() / (na * nb) > -0.99)
    scale = 1 + max(na, nb)
    ends = slerp(a, b, torch.tensor([0.0, 1.0]))
    assert _close(ends[0], a, scale) and _close(ends[1], b, scale)
    norms = slerp(a, b, t).norm(dim=1)
    tol = 1e-4 * scale
    assert (norms >= min(na, nb) - tol).all() and (norms <= max(na, nb) + tol).all()
    steps = norms.diff() * math.copysign(1, nb - na)  # ≥ 0 when the norm moves towards |b|
    assert (steps >= -tol).all(), norms
    assert _close(norms, (1 - t) * na + t * nb, scale)  # |a| to |b| linearly in t


@settings(max_examples=100, deadline=None)
@given(vectors, st.floats(0.05, 20), times)
def test_slerp_of_parallel_vectors_is_the_line(ab, k, t):
    a, _ = ab
    assume(a.norm() > 0.1)
    b = a * k
    scale = 1 + max(a.norm().item(), b.norm().item())
    assert _close(slerp(a, b, t), lerp(a, b, t), scale)


def test_auto_mode_is_linear_for_uniform_and_spherical_for_gaussian_z():
    assert interpolation_mode(UNIFORM, "auto") == "lerp" and interpolation_mode(NORMAL, "auto") == "slerp"
    assert interpolation_mode(UNIFORM, "slerp") == "slerp"
    with pytest.raises(DcganError, match="--mode must be one of"):
        interpolation_mode(UNIFORM, "cubic")


def test_walk_shape_and_errors():
    z = z_for_seeds(NORMAL, [1, 2, 3])
    rows = walk_latents(NORMAL, z, 5)
    assert rows.shape == (2, 5, 8)
    assert torch.allclose(rows[0, -1], rows[1, 0]) and torch.allclose(rows[1, -1], z[2])
    # each row goes from one point to the next, by the prior's mode (slerp for Gaussian z, lerp for uniform)
    t = torch.linspace(0, 1, 5)
    assert torch.allclose(rows[0, 0], z[0]) and torch.allclose(rows[0], slerp(z[0], z[1], t))
    assert not torch.allclose(rows[0], lerp(z[0], z[1], t))
    zu = z_for_seeds(UNIFORM, [1, 2, 3])
    assert torch.allclose(walk_latents(UNIFORM, zu, 5)[1], lerp(zu[1], zu[2], t))
    assert torch.allclose(walk_latents(UNIFORM, zu, 5, mode="slerp")[1], slerp(zu[1], zu[2], t))
    with pytest.raises(DcganError, match="at least 2 points"):
        walk_latents(NORMAL, z[:1], 5)
    with pytest.raises(DcganError, match="--steps must be at least 2"):
        walk_latents(NORMAL, z, 1)


# ---------------------------------------------------------------- arithmetic and vectors


def test_arithmetic_centre_is_y_and_the_noise_stays_in_bounds():
    a, b, c = (z_for_seeds(UNIFORM, s) for s in ([1, 2, 3], [4, 5, 6], [7, 8, 9]))
    zs = arithmetic_latents(a, b, c, noise=0.25, seed=0)
    y = a.mean(0) - b.mean(0) + c.mean(0)
    assert zs.shape == (9, 8) and torch.equal(zs[4], y)
    others = torch.cat([zs[:4], zs[5:]])
    assert (others - y).abs().max() <= 0.25 and (others - y).abs().max() > 0.1
    assert len({tuple(r.tolist()) for r in others}) == 8  # the 8 cells differ from each other
    assert torch.equal(arithmetic_latents(a, b, c, 0.25, 0), zs)  # reproducible by seed
    assert not torch.equal(arithmetic_latents(a, b, c, 0.25, 1), zs)
    assert torch.equal(arithmetic_latents(a, b, c, 0.0, 0), y.expand(9, 8))
    with pytest.raises(DcganError, match="--noise must be non-negative"):
        arithmetic_latents(a, b, c, noise=-0.1)


def test_vectors_and_walking_along_them(tmp_path):
    z_from, z_to = z_for_seeds(NORMAL, [1, 2]), z_for_seeds(NORMAL, [3, 4])
    v = direction(z_from, z_to)
    assert torch.allclose(v, z_to.mean(0) - z_from.mean(0))
    z = z_for_seeds(NORMAL, [5, 6])
    rows = along(z, v, 5, 2.0)
    assert rows.shape == (2, 5, 8) and torch.equal(rows[:, 2], z)
    assert torch.allclose(rows[0, -1], z[0] + 2 * v)
    with pytest.raises(DcganError, match="the vector has shape \\(3,\\); this generator's z has 8 values"):
        along(z, torch.zeros(3), 5, 1.0)
    np.save(tmp_path / "z.npy", np.zeros((2, 7), np.float32))
    with pytest.raises(DcganError, match="shape \\(2, 7\\); this generator's z has 8 values"):
        z_from_spec(NORMAL, str(tmp_path / "z.npy"))
    np.save(tmp_path / "z.npy", z.numpy())
    assert torch.equal(z_from_spec(NORMAL, str(tmp_path / "z.npy")), z)
