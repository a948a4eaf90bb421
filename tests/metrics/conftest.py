"""Fixtures the metrics tests share: a private feature cache and a tiny extractor trained through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import prepare_coloured, run_cli


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """DCGAN_CACHE pointed at an empty folder of this test's own."""
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def tiny_extractor(tmp_path_factory) -> Path:
    """An extractor for 16² RGB images (the tiny run's), trained 1 epoch through the CLI: a folder with
    train/ and test/ (labelled `coloured` images, 4 classes) and ex.safetensors."""
    root = tmp_path_factory.mktemp("extractor")
    prepare_coloured(root, "train", 256, 0)
    prepare_coloured(root, "test", 64, 1)
    r = run_cli(
        "extractor", "train", str(root / "train"), "--test", str(root / "test"), "--name", "colours",
        "--epochs", "1", "--batch", "32", "--device", "cpu", "--out", str(root / "ex.safetensors"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "extractor colours-" in r.stdout and "test accuracy" in r.stdout
    return root
