"""`evaluate`: reproducible by seed, the real side cached under a key and recomputed when damaged; `dcgan
evaluate` writes JSON and refuses bad input in one line."""

import json

import pytest

from dcgan.artifacts import load_generator
from dcgan.data.dataset import PreparedDataset
from dcgan.device import cpu_has_fast_bf16
from dcgan.metrics.evaluate import cache_dir, evaluate, real_features
from dcgan.metrics.extractors import load_extractor

from helpers import run_cli


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


def test_a_bf16_evaluation_has_its_own_real_side_and_stays_close(tiny_run, tiny_extractor, private_cache):
    """G and the extractor in bf16: the real features are cached apart from fp32's, and the metrics move
    little (the fp32 cache entry keeps the key it had before precision was part of it)."""
    ex = load_extractor(tiny_extractor / "ex.safetensors")
    ds = PreparedDataset(tiny_extractor / "train")
    exact = evaluate(load_generator(tiny_run, "cpu", "fp32"), ds, ex, num=60, metrics=["fid"])
    fast = evaluate(load_generator(tiny_run, "cpu", "bf16"), ds, ex, num=60, metrics=["fid"])
    assert (exact["precision"], fast["precision"]) == ("fp32", "bf16")
    assert exact["reference"]["cache"] != fast["reference"]["cache"]
    assert len(list(private_cache.rglob("*.npz"))) == 2
    fid = f"fid[{ex.name}]"
    assert exact["metrics"][fid] != fast["metrics"][fid]
    assert fast["metrics"][fid] == pytest.approx(exact["metrics"][fid], rel=0.05)


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
    assert result["precision"] == ("bf16" if cpu_has_fast_bf16() else "fp32")  # --precision auto
    assert "fid[colours-" in r.stdout
    for extra, message in [
        (["--extractor", "fmnist"], "takes 32² × 1 images but the generator has 16² × 3"),
        (["--extractor", str(tmp_path / "none.safetensors")], "neither a file, a shipped extractor"),
        (["--extractor", str(tiny_extractor / "ex.safetensors"), "--metrics", "fid,isc"], "--metrics takes"),
        (["--extractor", str(tiny_extractor / "ex.safetensors"), "--num", "5"], "at least 10 samples"),
    ]:
        r = run_cli(*args, *extra)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_cache_dir_follows_the_environment(private_cache):
    assert cache_dir().is_relative_to(private_cache)
