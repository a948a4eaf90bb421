"""`evaluate`: reproducible by seed, the real side cached under a key and recomputed when damaged; `dcgan
evaluate` writes JSON and refuses bad input in one line."""

import json

import pytest

from dcgan.artifacts import load_generator
from dcgan.data.dataset import PreparedDataset
from dcgan.device import cpu_has_fast_bf16
from dcgan.metrics.evaluate import cache_dir, evaluate, real_features
from dcgan.metrics.extractors import load_extractor

from helpers import run_cli, spawn


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


def test_evaluate_on_two_ranks_splits_the_samples_and_scores_as_one(
    tiny_run, tiny_extractor, private_cache, tmp_path
):
    """`torchrun … -m dcgan evaluate`: 1,200 samples are 3 batches of ≤500, two on rank 0 and one on rank 1;
    rank 0 alone prints and writes, and the numbers are one process's."""
    args = ["evaluate", str(tiny_run), "--dataset", str(tiny_extractor / "train"), "--num", "1200", "--device",
            "cpu", "--precision", "fp32", "--extractor", str(tiny_extractor / "ex.safetensors"), "--out"]  # fmt: skip
    r = run_cli(*args, str(tmp_path / "one.json"))
    assert r.returncode == 0, r.stderr
    worker = "import sys\nfrom dcgan.cli import main\nsys.exit(main(sys.argv[1:]))"
    spawn(worker, *args, str(tmp_path / "two.json"), env={"DCGAN_CACHE": str(private_cache)})
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert two["samples"] == 1200 and two["seeds"] == [0, 1199]
    assert two["metrics"].keys() == one["metrics"].keys()
    for k, v in one["metrics"].items():
        assert two["metrics"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
