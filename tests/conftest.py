"""Fixtures built by the tests themselves: small real files in every format the readers take."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings
from PIL import Image

from helpers import run_cli

# `make test` draws the same Hypothesis examples every run, so a failure is reproducible and CI does not
# flicker; HYPOTHESIS_PROFILE=explore draws new ones each run (with the example database) to hunt for more.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# One intra-op thread per test process: `pytest -n 2` on two cores would otherwise run 2 × 2 threads that wait
# on each other, and a pinned count keeps training bit-reproducible (dcgan/threads.py). Subprocesses inherit
# it; tests of the thread Tuner unset it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _restore_threads():
    """A test that pins or tunes threads leaves the next test the count and OMP_NUM_THREADS it found."""
    count, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    yield
    torch.set_num_threads(count)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Two class folders of small RGB images of different sizes and formats."""
    root = tmp_path / "images"
    rng = np.random.default_rng(1)
    for cls, fmt in (("cats", "png"), ("dogs", "jpeg")):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            a = rng.integers(0, 256, (40 + 8 * i, 50, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{i}.{'jpg' if fmt == 'jpeg' else fmt}", format=fmt.upper())
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run of a tiny 16² RGB DCGAN (z 8-d), trained 5 steps on noise, with a checkpoint at step 5."""
    from dcgan.config import ModelConfig, TrainConfig
    from dcgan.data.prepare import prepare
    from dcgan.training.loop import train

    root = tmp_path_factory.mktemp("tiny_run")
    np.save(root / "x.npy", np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), np.uint8))
    prepare(root / "x.npy", root / "ds", size=16, progress=False)
    model = ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)
    cfg = TrainConfig(
        preset="tiny", model=model, batch=8, kimg=0.04, precision="fp32", device="cpu", ckpt_every=5
    )
    train(cfg, root / "ds", root / "run", progress=False, log=lambda s: None)
    return root / "run"


@pytest.fixture(scope="session")
def discs(tmp_path_factory) -> Path:
    """64 grey 16² images of bright discs at random places, prepared: the training tests' tiny dataset."""
    from dcgan.data.prepare import prepare

    root = tmp_path_factory.mktemp("discs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    imgs = np.stack([((yy - cy) ** 2 + (xx - cx) ** 2 < 16) * 220 for cy, cx in rng.integers(4, 12, (64, 2))])
    np.save(root / "src.npy", imgs.astype(np.uint8))
    prepare(root / "src.npy", root / "ds", size=16, progress=False)
    return root / "ds"


@pytest.fixture(scope="session")
def fashion_mnist(tmp_path_factory) -> Path:
    """Fashion-MNIST 32² prepared from Debian's dataset-fashion-mnist (make test installs it): folder with
    train/ and test/. Skips where the package is missing."""
    from dcgan.data import download

    if not download.DEBIAN_DIR.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (make test installs it)")
    root = tmp_path_factory.mktemp("fashion-mnist")
    r = run_cli("data", "fashion-mnist", "--out", str(root), "--quiet")
    assert r.returncode == 0, r.stderr
    return root


@pytest.fixture(scope="session")
def rooms16(tmp_path_factory) -> Path:
    """300 rooms of `dcgan data rooms` at 16², with masks.npy: enough for a tiny segmenter to learn walls."""
    out = tmp_path_factory.mktemp("rooms") / "r16"
    r = run_cli("data", "rooms", "--num", "300", "--size", "16", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    return out
