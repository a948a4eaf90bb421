"""CUDA paths: training in bf16 and fp16, the GPU-resident dataset, and CPU/GPU agreement. Skipped without a GPU."""

import dataclasses

import numpy as np
import pytest
import torch

from dcgan.artifacts import load_generator
from dcgan.config import ModelConfig, TrainConfig
from dcgan.data.prepare import prepare
from dcgan.sampling import generate
from dcgan.training.loop import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
TINY = ModelConfig.pyramid(32, channels=3, width=16, z_dim=16)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu")
    np.save(root / "x.npy", np.random.default_rng(0).integers(0, 256, (256, 32, 32, 3), np.uint8))
    prepare(root / "x.npy", root / "ds", size=32, progress=False)
    return root / "ds"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_runs_in_every_precision(ds, tmp_path, precision):
    cfg = TrainConfig(
        preset="tiny",
        model=TINY,
        batch=32,
        kimg=0.32,
        precision=precision,
        device="cuda",
        ckpt_every=5,
        log_every=1,
    )
    s = train(cfg, ds, tmp_path / "run", progress=False, log=lambda s: None)
    assert s["status"] == "finished" and s["step"] == 10


def test_cuda_and_cpu_generators_agree(ds, tmp_path):
    cfg = TrainConfig(preset="tiny", model=TINY, batch=32, kimg=0.064, precision="fp32", device="cuda")
    train(cfg, ds, tmp_path / "run", progress=False, log=lambda s: None)
    g_cpu = load_generator(tmp_path / "run", "cpu")
    g_gpu = load_generator(tmp_path / "run", "cuda")
    torch.backends.cudnn.allow_tf32 = False
    assert torch.allclose(generate(g_cpu, range(8)), generate(g_gpu, range(8)), atol=1e-4)


def test_the_cuda_graph_step_trains_like_the_eager_step():
    from dcgan.device import resolve
    from dcgan.training.trainer import Trainer

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    cfg = TrainConfig(preset="tiny", model=TINY, batch=32, precision="fp32", device="cuda")
    eager, graphed = Trainer(cfg, resolve("cuda", "fp32")), Trainer(cfg, resolve("cuda", "fp32"))
    graphed.capture((3, 32, 32))
    assert eager.graphed is None and graphed.graphed is not None
    # capturing ran warm-up steps; the state must be back where it was
    assert all(
        torch.equal(a, b) for a, b in zip(eager.g.state_dict().values(), graphed.g.state_dict().values())
    )
    data = torch.randint(0, 256, (32, 32, 32, 3), dtype=torch.uint8, device="cuda").permute(0, 3, 1, 2)
    losses = {}
    for t in (eager, graphed):
        for step in range(5):
            t.step = step
            losses.setdefault(id(t), []).append(torch.cat(t.train_step(data)))
    assert torch.allclose(
        torch.stack(losses[id(eager)]), torch.stack(losses[id(graphed)]), rtol=1e-3, atol=1e-4
    )
    for a, b in zip(eager.g.parameters(), graphed.g.parameters()):  # Adam moves each weight ≤ ~lr per step
        assert torch.allclose(a, b, atol=5 * cfg.lr), (a - b).abs().max()
    d1, _ = graphed.train_step(data)
    d2, _ = graphed.train_step(data)
    # each step's own statistics, not a stale buffer
    assert torch.isfinite(d1).all() and not torch.equal(d1, d2)


def test_svm_on_cuda_matches_cpu():
    from sklearn.datasets import make_classification

    from dcgan.probes.svm import fit_svm

    x, y = make_classification(n_samples=3000, n_features=3000, n_informative=50, n_classes=4, random_state=0)
    x = torch.tensor(x, dtype=torch.float32)
    cpu, gpu = fit_svm(x, torch.tensor(y), 1e-3), fit_svm(x.cuda(), torch.tensor(y), 1e-3)
    assert gpu.weight.is_cuda and gpu.objective == pytest.approx(cpu.objective, rel=1e-3)
    assert (gpu.predict(x.cuda()) == cpu.predict(x)).float().mean() > 0.99


def test_eval_every_during_graphed_cuda_training(ds, tmp_path, monkeypatch):
    """Periodic evaluation runs G eagerly between CUDA-graph replays; training must go on unchanged."""
    import json

    from dcgan.metrics.extractors import DomainExtractor, ExtractorConfig, save_extractor

    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    save_extractor(DomainExtractor(ExtractorConfig("rand", 32, 3, 4)), tmp_path / "ex.safetensors")
    base = dict(preset="tiny", model=TINY, batch=32, kimg=0.32, precision="fp32", device="cuda", log_every=1)
    plain = train(TrainConfig(**base), ds, tmp_path / "plain", progress=False, log=lambda s: None)
    cfg = TrainConfig(**base, eval_every=3, eval_num=64, extractor=str(tmp_path / "ex.safetensors"))
    evald = train(cfg, ds, tmp_path / "eval", progress=False, log=lambda s: None)
    assert plain["step"] == evald["step"] == 10 and (tmp_path / "eval" / "best.safetensors").is_file()
    rows = [json.loads(r) for r in (tmp_path / "eval" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if any(k.startswith("fid[") for k in r)] == [3, 6, 9]
    losses = {r["step"]: r["loss_D"] for r in rows if "loss_D" in r}
    base_losses = {
        r["step"]: r["loss_D"]
        for r in map(json.loads, (tmp_path / "plain" / "stats.jsonl").read_text().splitlines())
        if "loss_D" in r
    }
    assert sorted(losses) == list(range(1, 11))  # two empty histories would compare equal below
    assert losses == pytest.approx(base_losses, rel=1e-2)  # evaluating did not disturb the graphed step


def test_the_fast_cuda_step_trains_like_the_plain_eager_step():
    """torch.compile + D's real and fake in one split-BN call + the CUDA graph, against the same nets run
    eagerly, uncompiled, with separate real and fake passes (fp32: only the summation order differs).
    cuda_layers' forms equal the plain layers exactly: tests/training/test_cuda_layers.py checks them on CPU."""
    from dcgan.device import resolve
    from dcgan.training.trainer import Trainer

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    model = ModelConfig.pyramid(32, 3, width=16, z_dim=16, g_input="convt", d_output="conv")
    plain_cfg = TrainConfig(
        preset="tiny", model=model, batch=32, precision="fp32", device="cuda", compile=False
    )
    plain = Trainer(plain_cfg, resolve("cuda", "fp32"))
    fast = Trainer(dataclasses.replace(plain_cfg, compile=True), resolve("cuda", "fp32"))
    plain.split_d = False
    fast.capture((3, 32, 32))
    assert fast.compiled and fast.graphed is not None and fast.split_d
    assert "SpaceToDepthConv2d" in {type(m).__name__ for m in fast.d.modules()}
    data = torch.randint(0, 256, (32, 32, 32, 3), dtype=torch.uint8, device="cuda").permute(0, 3, 1, 2)
    for step in range(5):
        plain.step = fast.step = step
        a, b = torch.cat(plain.train_step(data)), torch.cat(fast.train_step(data))
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), (step, a, b)
    for (name, x), y in zip(plain.d.state_dict().items(), fast.d.state_dict().values()):
        assert torch.allclose(x.float(), y.float(), atol=5 * plain_cfg.lr), name  # BN running stats too


def test_the_cli_trains_on_cuda_with_and_without_compile(ds, tmp_path):
    from helpers import run_cli

    for flag in ([], ["--no-compile"]):
        out = tmp_path / f"run{len(flag)}"
        r = run_cli(
            "train", str(ds), "--preset", "svhn32", "--out", str(out), "--kimg", "0.5", "--batch", "64", *flag
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert ("compiling" in r.stdout + r.stderr) == (not flag)
        assert (out / "generator.safetensors").is_file()
