"""CUDA paths: training in bf16 and fp16, the GPU-resident dataset, and CPU/GPU agreement. Skipped without a GPU."""

import numpy as np
import pytest
import torch

from dcgan.config import ModelConfig, TrainConfig
from dcgan.data.prepare import prepare
from dcgan.sampling import generate, load_generator
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
    cfg = TrainConfig(preset="tiny", model=TINY, batch=32, kimg=0.32, precision=precision, device="cuda",
                      ckpt_every=5, log_every=1)
    s = train(cfg, ds, tmp_path / "run", progress=False, log=lambda s: None)
    assert s["status"] == "finished" and s["step"] == 10


def test_cuda_and_cpu_generators_agree(ds, tmp_path):
    cfg = TrainConfig(preset="tiny", model=TINY, batch=32, kimg=0.064, precision="fp32", device="cuda")
    train(cfg, ds, tmp_path / "run", progress=False, log=lambda s: None)
    g_cpu, _ = load_generator(tmp_path / "run", "cpu")
    g_gpu, _ = load_generator(tmp_path / "run", "cuda")
    torch.backends.cudnn.allow_tf32 = False
    assert torch.allclose(generate(g_cpu, range(8)), generate(g_gpu, range(8)), atol=1e-4)
