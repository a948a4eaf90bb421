"""Nearest neighbours (exact, chunked) and the memorization report."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.data.prepare import prepare
from dcgan.errors import DcganError
from dcgan.probes.memorization import nearest

from helpers import rng_images, run_cli


def brute(q: np.ndarray, b: np.ndarray) -> np.ndarray:
    qf, bf = q.reshape(len(q), -1) / 255.0, b.reshape(len(b), -1) / 255.0
    return np.sqrt(((qf[:, None] - bf[None]) ** 2).sum(-1))


def test_chunked_search_matches_brute_force():
    q, b = rng_images(7, 6, 6, 3, seed=1), rng_images(50, 6, 6, 3, seed=2)
    d, i = nearest(q, b, k=3, chunk=8)  # many chunks, one partial
    full = brute(q, b)
    assert (i.numpy() == np.argsort(full, 1)[:, :3]).all()
    assert np.allclose(d.numpy(), np.sort(full, 1)[:, :3], atol=1e-4)


def test_a_copied_image_is_found_at_distance_zero():
    b = rng_images(30, 8, 8, 1)
    d, i = nearest(b[[4, 17]], b, k=1, chunk=7)
    assert i[:, 0].tolist() == [4, 17] and torch.all(d < 1e-3)
    with pytest.raises(DcganError, match="cannot be compared"):
        nearest(b, rng_images(3, 8, 8, 3), k=1)


def test_memorization_cli_writes_panels_and_json(tiny_run, tmp_path):
    for name, seed in (("train", 0), ("test", 1)):
        np.save(tmp_path / f"{name}.npy", rng_images(40, 16, 16, 3, seed=seed))
        prepare(tmp_path / f"{name}.npy", tmp_path / name, size=16, progress=False)
    r = run_cli(
        "memorization",
        str(tiny_run),
        "--dataset",
        str(tmp_path / "train"),
        "--heldout",
        str(tmp_path / "test"),
        "--num",
        "20",
        "--k",
        "3",
        "--panels",
        "4",
        "--out",
        str(tmp_path / "m"),
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "m" / "memorization.json").read_text())
    assert summary["samples"] == 20 and summary["k"] == 3
    assert {"sample_to_train", "nnd_sample_to_heldout", "heldout_to_train"} <= set(summary)
    assert len(summary["closest_pairs"]) == 10
    assert Image.open(tmp_path / "m" / "nearest.png").size == (4 * 66 + 2, 4 * 66 + 2)  # 4 rows: sample + 3
    np.save(tmp_path / "grey.npy", rng_images(5, 16, 16, seed=3))
    prepare(tmp_path / "grey.npy", tmp_path / "grey", size=16, progress=False)
    r = run_cli(
        "memorization", str(tiny_run), "--dataset", str(tmp_path / "grey"), "--out", str(tmp_path / "x")
    )
    assert r.returncode == 2 and "this generator makes 16²×3" in r.stderr


def test_in_d_feature_space_the_search_is_exact_and_a_copy_is_at_distance_zero(tiny_run):
    from dcgan.api import load_discriminator
    from dcgan.probes.memorization import d_embedding

    base = rng_images(60, 16, 16, 3, seed=4)
    embed = d_embedding(load_discriminator(tiny_run, "cpu"), base)
    q = np.concatenate([base[[7, 31]], rng_images(3, 16, 16, 3, seed=5)])
    d, i = nearest(q, base, k=4, chunk=16, embed=embed)
    fq, fb = embed(q, torch.device("cpu")), embed(base, torch.device("cpu"))
    full = torch.cdist(fq.double(), fb.double()).numpy()
    assert (i.numpy() == np.argsort(full, 1)[:, :4]).all()
    assert np.allclose(d.numpy(), np.sort(full, 1)[:, :4], atol=1e-3)
    assert i[:2, 0].tolist() == [7, 31] and (d[:2, 0] < 1e-3).all()
    assert torch.allclose(fb.norm(dim=1), torch.ones(60))  # unit length: distances are in [0, 2]


def test_the_cli_compares_in_d_space_when_asked(tiny_run, tmp_path):
    np.save(tmp_path / "train.npy", rng_images(40, 16, 16, 3, seed=0))
    prepare(tmp_path / "train.npy", tmp_path / "train", size=16, progress=False)
    r = run_cli(
        "memorization", str(tiny_run), "--dataset", str(tmp_path / "train"), "--num", "10", "--space", "d",
        "--out", str(tmp_path / "m"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "m" / "memorization.json").read_text())
    assert "D features" in summary["distance"] and summary["samples"] == 10
