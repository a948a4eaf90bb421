"""Seed-addressable sampling, generator loading (runs, checkpoints, files, pytorch/examples) and `dcgan sample`."""

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.artifacts import load_examples_generator, load_generator
from dcgan.config import ModelConfig
from dcgan.errors import DcganError
from dcgan.images import to_uint8
from dcgan.models import run_generator, z_for_seeds
from dcgan.sampling import generate, parse_seeds

from helpers import ExamplesG, randomize, run_cli

TINY = ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)  # what the `tiny_run` fixture trains


@pytest.fixture
def run(tiny_run):
    return tiny_run


def test_parse_seeds():
    assert parse_seeds("0-3,9") == [0, 1, 2, 3, 9] and parse_seeds("42") == [42]
    for bad in ("a-b", "5-2", "-1", ""):
        with pytest.raises(DcganError):
            parse_seeds(bad)


def test_image_k_of_seed_s_is_the_same_at_any_batch_size(run):
    g = load_generator(run)
    cfg = g.cfg
    assert cfg == TINY and not g.training
    together = generate(g, [5, 6, 7, 8, 9], batch=5)
    alone = generate(g, [7], batch=1)
    in_twos = generate(g, [5, 6, 7, 8, 9], batch=2)
    assert torch.allclose(together[2], alone[0], atol=1e-6) and torch.allclose(together, in_twos, atol=1e-6)
    assert torch.equal(z_for_seeds(cfg, [7])[0], z_for_seeds(cfg, [3, 7])[1])


def test_batch_statistics_differ_and_leave_running_stats_alone(run):
    g = load_generator(run)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    z = z_for_seeds(TINY, range(8))
    assert not torch.allclose(run_generator(g, z, bn="batch"), run_generator(g, z, bn="running"))
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())


def test_runs_checkpoints_and_files_load_the_same_generator(run):
    from_run = load_generator(run)
    from_ckpt = load_generator(run / "checkpoints" / "step-00000005")
    from_file = load_generator(run / "generator.safetensors")
    z = z_for_seeds(TINY, [1])
    assert torch.equal(from_run(z), from_ckpt(z)) and torch.equal(from_run(z), from_file(z))


def test_load_errors(tmp_path):
    with pytest.raises(DcganError, match="holds no generator.safetensors or checkpoint"):
        load_generator(tmp_path)
    (tmp_path / "g.safetensors").write_bytes(b"nonsense")
    with pytest.raises(DcganError, match="not a readable .safetensors"):
        load_generator(tmp_path / "g.safetensors")


def test_pytorch_examples_generator_loads_with_its_shapes(tmp_path):
    ref = randomize(ExamplesG(nz=50, ngf=16, nc=1))
    torch.save(ref.state_dict(), tmp_path / "netG_epoch_24.pth")
    g = load_examples_generator(tmp_path / "netG_epoch_24.pth")
    cfg = g.cfg
    assert (cfg.z_dim, cfg.channels, cfg.g_base) == (50, 1, 128)
    z = torch.randn(2, 50)
    with torch.no_grad():
        assert torch.allclose(g(z), ref(z[:, :, None, None]), atol=1e-6)


def test_to_uint8_maps_the_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    assert to_uint8(x).ravel().tolist() == [0, 128, 255, 255]


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
    g = load_generator(run)
    assert (one == to_uint8(generate(g, [3]))[0]).all()
    r = run_cli("sample", str(run), "--seeds", "9-1", "--grid", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "runs backwards" in r.stderr
