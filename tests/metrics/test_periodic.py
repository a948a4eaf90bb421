"""`--eval-every`: collapse warnings from the FID and diversity histories, and training that keeps the best
generator."""

import json

import pytest

from dcgan.artifacts import load_generator
from dcgan.data.dataset import PreparedDataset
from dcgan.metrics import fid as M
from dcgan.metrics.evaluate import real_features
from dcgan.metrics.extractors import load_extractor
from dcgan.metrics.periodic import collapse_warnings

from helpers import spawn


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


def test_two_ranks_share_the_evaluation_and_score_what_one_process_scores(
    tiny_run, tiny_extractor, private_cache, tmp_path
):
    from dcgan.config import ModelConfig, TrainConfig
    from dcgan.metrics.evaluate import generated_features

    worker = (
        "import json, sys\nfrom dcgan.api import train\nfrom dcgan.config import TrainConfig\n"
        "train(sys.argv[1], sys.argv[2], TrainConfig.from_dict(json.loads(sys.argv[3])), log=lambda s: None)"
    )
    model = ModelConfig.from_dict(json.loads((tiny_run / "config.json").read_text())["train"]["model"])
    cfg = TrainConfig(
        preset="tiny", model=model, batch=8, kimg=0.032, precision="fp32", device="cpu", ckpt_every=4,
        log_every=2, eval_every=2, eval_num=1000, extractor=str(tiny_extractor / "ex.safetensors"),
    )  # fmt: skip
    fids = {}
    for world in (1, 2):  # 1,000 seeds: two batches of 500, one on each rank
        run = tmp_path / f"w{world}"
        spawn(worker, str(tiny_run.parent / "ds"), str(run), json.dumps(cfg.to_dict()), world=world,
              env={"DCGAN_CACHE": str(private_cache)})  # fmt: skip
        rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        fids[world] = [(r["step"], v) for r in rows for k, v in r.items() if k.startswith("fid[")]
        assert (run / "best.safetensors").is_file()
    assert [s for s, _ in fids[2]] == [s for s, _ in fids[1]] == [2, 4]
    for (_, a), (_, b) in zip(fids[1], fids[2]):  # the same model and the same 1,000 seeds
        assert b == pytest.approx(a, rel=1e-4)
    # per-rank BatchNorm: the ranks' running averages differ; what is scored is rank 0's, the one saved
    run = tmp_path / "rank-bn"
    spawn(worker, str(tiny_run.parent / "ds"), str(run), json.dumps({**cfg.to_dict(), "bn": "rank"}),
          env={"DCGAN_CACHE": str(private_cache)})  # fmt: skip
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    last = next(v for r in rows for k, v in r.items() if k.startswith("fid[") and r["step"] == 4)
    ex = load_extractor(tiny_extractor / "ex.safetensors")
    real, _, _ = real_features(PreparedDataset(tiny_run.parent / "ds"), ex, 1000)
    fake, _ = generated_features(load_generator(run / "checkpoints" / "step-00000004"), ex, 1000)
    assert M.fid(real, fake) == pytest.approx(last, rel=1e-6)  # rank 1's own averages give ~1e-4 off
