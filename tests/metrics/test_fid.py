"""Metrics: the formulas against torchmetrics, their behaviour on real Fashion-MNIST through the shipped
extractor, the real-feature cache, `dcgan evaluate` and `dcgan extractor train`."""

import itertools
import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from dcgan.artifacts import load_generator
from dcgan.data.dataset import PreparedDataset
from dcgan.metrics import fid as M
from dcgan.metrics.evaluate import cache_dir, evaluate, real_features
from dcgan.metrics.extractors import accuracy, load_extractor
from dcgan.metrics.periodic import collapse_warnings

from helpers import prepare_coloured, run_cli


class Passthrough(nn.Module):
    """torchmetrics' custom-extractor hook, fed features directly."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _gaussians(n=600, d=16, shift=0.5, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) @ np.diag(rng.uniform(0.5, 1.5, d)) + shift
    return a, b


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")  # it is the reference
def test_fid_and_kid_agree_with_torchmetrics():
    a, b = _gaussians()
    ref = FrechetInceptionDistance(feature=Passthrough(16), normalize=False).double()
    ref.update(torch.tensor(a), real=True)
    ref.update(torch.tensor(b), real=False)
    assert M.fid(a, b) == pytest.approx(ref.compute().item(), rel=1e-6)
    kid = KernelInceptionDistance(feature=Passthrough(16), subsets=1, subset_size=len(a))
    kid.update(torch.tensor(a, dtype=torch.float32), real=True)
    kid.update(torch.tensor(b, dtype=torch.float32), real=False)
    assert M.kid(a, b, subsets=1, subset_size=len(a))[0] == pytest.approx(kid.compute()[0].item(), rel=1e-4)


def test_metric_formulas_on_known_cases():
    a, b = _gaussians()
    assert abs(M.fid(a, a)) < 1e-8
    twin, _ = _gaussians(seed=1)  # another sample of a's distribution
    assert abs(M.kid(a, twin)[0]) < 0.02 * M.kid(a, b)[0]  # unbiased: ≈ 0 for one distribution
    assert -0.05 * M.kid(a, b)[0] < M.kid(a, a)[0] <= 0  # the very same set: the diagonal pulls it just below
    p, r = M.precision_recall(a, a + 100)  # disjoint manifolds
    assert p == 0 and r == 0
    assert M.precision_recall(a, a[::-1]) == (1.0, 1.0)
    sure = np.eye(10)[np.arange(1000) % 10] * 50  # confident and balanced: the score is the class count
    assert M.classifier_score(sure)[0] == pytest.approx(10, rel=1e-3)
    assert M.classifier_score(np.zeros((1000, 10)))[0] == pytest.approx(1)  # no confidence: 1
    assert M.diversity(a) > 2 * M.diversity(a * 0.1)


def test_the_shipped_fmnist_extractor_classifies_the_test_set(fashion_mnist):
    ex = load_extractor("fmnist")
    assert ex.name.startswith("fmnist-") and ex.cfg.trained_on["test_accuracy"] >= 0.90
    test = PreparedDataset(fashion_mnist / "test")
    assert accuracy(ex, test) >= 0.90


def test_fid_ranks_real_blurred_and_noise_images(fashion_mnist):
    ex = load_extractor("fmnist")
    train, test = (PreparedDataset(fashion_mnist / s).images[:2000] for s in ("train", "test"))
    f_train, f_test = ex.features(train), ex.features(test)
    noise = np.random.default_rng(0).integers(0, 256, test.shape, dtype=np.uint8)
    real_vs_real, real_vs_noise = M.fid(f_train, f_test), M.fid(f_train, ex.features(noise))
    assert real_vs_noise > 50 * real_vs_real
    blurred = [
        M.fid(f_train, ex.features(gaussian_filter(test, (0, s, s, 0)).astype(np.uint8)))
        for s in (0.5, 1, 1.5, 2)
    ]
    assert real_vs_real < blurred[0] and all(x < y for x, y in itertools.pairwise(blurred)), blurred
    p, r = M.precision_recall(f_train, f_test)
    assert p > 0.6 and r > 0.6


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tiny_extractor(tmp_path_factory):
    """An extractor for 16² RGB images (the tiny run's), trained 1 epoch through the CLI."""
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


def test_evaluate_is_reproducible_and_caches_the_real_side(tiny_run, tiny_extractor, private_cache):
    g = load_generator(tiny_run)
    ex = load_extractor(tiny_extractor / "ex.safetensors")
    ds = PreparedDataset(tiny_extractor / "train")
    first = evaluate(g, ds, ex, num=60, seed=3)
    assert not first["reference"]["cached"] and len(list(private_cache.rglob("*.npz"))) == 1
    again = evaluate(g, ds, ex, num=60, seed=3)
    assert again["reference"]["cached"] and again["metrics"] == first["metrics"]
    assert set(first["metrics"]) >= {
        f"fid[{ex.name}]",
        f"kid[{ex.name}]",
        f"precision[{ex.name}]",
        f"score[{ex.name}]",
    }
    other = evaluate(g, ds, ex, num=60, seed=4)
    assert other["metrics"][f"fid[{ex.name}]"] != first["metrics"][f"fid[{ex.name}]"]
    # a different count is a different key; a damaged entry is recomputed, not trusted
    evaluate(g, ds, ex, num=50, metrics=["fid"])
    assert len(list(private_cache.rglob("*.npz"))) == 2
    entry = next(p for p in private_cache.rglob("*.npz") if real_features(ds, ex, 60)[2]["cache"] == str(p))
    entry.write_bytes(entry.read_bytes()[:200])  # damaged on disk
    feats, _, info = real_features(ds, ex, 60)
    assert not info["cached"] and feats.shape == (60, 128)


def test_evaluate_cli_writes_json_and_refuses_bad_input(tiny_run, tiny_extractor, private_cache, tmp_path):
    args = [
        "evaluate",
        str(tiny_run),
        "--dataset",
        str(tiny_extractor / "train"),
        "--num",
        "40",
        "--device",
        "cpu",
    ]
    r = run_cli(
        *args, "--extractor", str(tiny_extractor / "ex.safetensors"), "--out", str(tmp_path / "e.json")
    )
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["samples"] == 40 and result["seeds"] == [0, 39] and result["extractor"]["name"] in r.stdout
    assert "fid[colours-" in r.stdout
    for extra, message in [
        (["--extractor", "fmnist"], "takes 32² × 1 images but the generator has 16² × 3"),
        (["--extractor", str(tmp_path / "none.safetensors")], "neither a file, a shipped extractor"),
        (["--extractor", str(tiny_extractor / "ex.safetensors"), "--metrics", "fid,isc"], "--metrics takes"),
        (["--extractor", str(tiny_extractor / "ex.safetensors"), "--num", "5"], "at least 10 samples"),
    ]:
        r = run_cli(*args, *extra)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_cli(
        "extractor",
        "train",
        str(tiny_run.parent / "ds"),
        "--test",
        str(tiny_run.parent / "ds"),
        "--name",
        "x",
        "--out",
        str(tmp_path / "x.safetensors"),
    )
    assert r.returncode == 2 and "has no labels" in r.stderr
    labelled = str(tiny_extractor / "train")
    r = run_cli(
        "extractor",
        "train",
        labelled,
        "--test",
        labelled,
        "--name",
        "x",
        "--batch",
        "1000",
        "--out",
        str(tmp_path / "x.safetensors"),
    )
    assert r.returncode == 2 and "--batch must be between 2 and the training set's 256 images" in r.stderr


def test_cache_dir_follows_the_environment(private_cache):
    assert cache_dir().is_relative_to(private_cache)


def test_collapse_warnings_name_the_rising_fid_and_the_lost_diversity():
    steady = [1.0] * 5
    assert collapse_warnings([5, 4, 3, 2], steady[:4], 1.0, patience=3) == []
    rising = collapse_warnings([9, 2, 3, 4, 5], steady, 1.0, patience=3)
    assert len(rising) == 1 and "FID rose 3 evaluations in a row (2.00 → 3.00 → 4.00 → 5.00)" in rising[0]
    assert collapse_warnings([2, 3, 4], steady[:3], 1.0, patience=3) == []  # not enough history yet
    assert collapse_warnings([3, 2], [0.1, 0.2], 1.0, patience=3) == []  # early training: low but growing
    narrow = collapse_warnings([3, 2], [0.45, 0.2], 1.0, patience=3)
    assert len(narrow) == 1 and "diversity fell to 0.200 (from 0.450), under 50%" in narrow[0]


def test_training_with_eval_every_keeps_the_best_generator(tiny_run, tiny_extractor, private_cache, tmp_path):
    from dcgan.api import train
    from dcgan.config import ModelConfig, TrainConfig
    from dcgan.errors import DcganError
    from dcgan.metrics.evaluate import generated_features

    ds = tiny_run.parent / "ds"
    model = ModelConfig.from_dict(json.loads((tiny_run / "config.json").read_text())["train"]["model"])
    base = dict(preset="tiny", model=model, batch=8, kimg=0.048, precision="fp32", device="cpu")
    with pytest.raises(DcganError, match="none is shipped"):  # 16² RGB: no shipped extractor fits
        train(ds, tmp_path / "no", TrainConfig(**base, eval_every=2), log=lambda s: None)
    run = tmp_path / "run"
    cfg = TrainConfig(
        **base, ckpt_every=3, log_every=2, eval_every=2, eval_num=24,
        extractor=str(tiny_extractor / "ex.safetensors"), eval_patience=1,
    )  # fmt: skip
    summary = train(ds, run, cfg, log=lambda s: None)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    ex = load_extractor(tiny_extractor / "ex.safetensors")
    key = f"fid[{ex.name}]"
    evals = [r for r in rows if key in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert {2, 4, 6} <= {r["step"] for r in rows if "loss_D" in r}  # the loss records are all still there
    best = min(evals, key=lambda r: r[key])
    assert summary["best"]["step"] == best["step"] and best.get("best")
    # best.safetensors is the generator that scored that FID
    real, _, _ = real_features(PreparedDataset(ds), ex, 24)
    fake, _ = generated_features(load_generator(run / "best.safetensors"), ex, 24)
    assert M.fid(real, fake) == pytest.approx(best[key], rel=1e-4)
    assert (run / "loss.png").stat().st_size > 0
