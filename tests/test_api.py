"""The whole pipeline from `import dcgan` alone — prepare, train, sample, walk, arithmetic, vectors,
memorization, an extractor, evaluate, probe, grids — in this process, on a tiny labelled dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import dcgan
from dcgan.cli import main

from helpers import coloured


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    for name, n, seed in (("train", 96, 0), ("test", 48, 1)):
        x, y = coloured(n, seed)  # 16² RGB, 4 classes by dominant colour
        np.savez(root / f"{name}.npz", images=x, labels=y)
    return root


def test_the_whole_pipeline_through_the_python_api(data, tmp_path):
    train = dcgan.prepare(data / "train.npz", tmp_path / "train", size=16)
    test = dcgan.prepare(data / "test.npz", tmp_path / "test", size=16)
    assert isinstance(train, dcgan.PreparedDataset) and train.labels is not None and len(test) == 48

    model = dcgan.ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)
    cfg = dcgan.TrainConfig(preset="tiny", model=model, batch=8, kimg=0.08, precision="fp32", device="cpu")
    run = tmp_path / "run"
    summary = dcgan.train(train, run, cfg, log=lambda s: None)
    assert summary["status"] == "finished" and summary["step"] == 10
    page = (run / "report.html").read_text()  # refreshed at the checkpoint
    assert "step 10" in page and 'id="final"' in page
    again = dcgan.train(train, run, cfg, log=lambda s: None)  # the same call again: nothing left to do
    assert again["step"] == 10
    page = dcgan.write_report(run, tmp_path / "r.html").read_text()
    assert page.count("<figure data-step=") == 2  # steps 0, 10

    g = dcgan.load_generator(run, device="cpu")
    images = dcgan.sample(run, "0-7")
    assert images.shape == (8, 16, 16, 3) and images.dtype == np.uint8
    assert np.array_equal(dcgan.sample(g, [5])[0], images[5])  # a path or the loaded G; any batch
    assert not np.array_equal(images[0], images[1])

    grid, frames = dcgan.interpolate(g, "1,2,3", steps=4)
    assert grid.ndim == 3 and len(frames) == 2 * 3 + 3  # two segments less their ends, the way back
    figure, z = dcgan.arithmetic(run, "1,2", "3,4", "5,6")
    ya = dcgan.latents(g, "1,2").mean(0) - dcgan.latents(g, "3,4").mean(0) + dcgan.latents(g, "5,6").mean(0)
    assert z.shape == (9, 8) and torch.allclose(z[4], ya) and figure.shape[1] > figure.shape[0]
    turn = dcgan.vector(g, "1,2", "3,4")
    assert dcgan.walk(g, turn, "0-1", steps=3).shape == dcgan.walk(g, turn.numpy(), [0, 1], steps=3).shape
    sheet = dcgan.sheet(g, range(6), cols=3)
    assert sheet.shape[2] == 3 and sheet.shape[1] > sheet.shape[0] / 3

    report, panels = dcgan.memorization(g, train, test, num=20, k=2)
    assert report["samples"] == 20 and report["heldout_images"] == 48 and panels.ndim == 3

    ex = dcgan.train_extractor(train, test, "toy", tmp_path / "toy.safetensors", epochs=1, batch=16, log=str)
    assert ex.name.startswith("toy-") and 0 <= ex.trained_on["test_accuracy"] <= 1
    result = dcgan.evaluate(run, train, tmp_path / "toy.safetensors", num=20, out=tmp_path / "eval.json")
    assert result["run"] == str(run) and np.isfinite(result["metrics"][f"fid[{ex.name}]"])
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"] == result["metrics"]
    assert dcgan.evaluate(g, train.path, ex, num=20)["metrics"] == result["metrics"]  # objects or paths

    probed = dcgan.probe(
        run, train, test, tmp_path / "probe", budgets=[5], draws=2, val_size=20, Cs=[1e-2], log=str
    )
    assert probed["budgets"]["5"]["dcgan_svm"]["draws"] == 2 and (tmp_path / "probe" / "table.md").is_file()

    dcgan.save_grid(images, tmp_path / "grid.png")
    dcgan.save_png(grid, tmp_path / "walk.png")
    dcgan.save_gif(frames, tmp_path / "walk.gif")
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size[0] > 64  # 8 cells of 16² enlarged to 64²
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == len(frames)


def test_user_mistakes_are_dcgan_errors_with_a_message(data, tmp_path):
    with pytest.raises(dcgan.DcganError, match="dataset folder made by `dcgan prepare`"):
        dcgan.dataset(tmp_path)
    with pytest.raises(dcgan.DcganError, match="integers from 0 to 2"):
        dcgan.seeds([1, -2])
    with pytest.raises(dcgan.DcganError, match="either cfg or preset"):
        dcgan.train(tmp_path, tmp_path / "run", dcgan.train_config("fmnist32"), kimg=1)
    g = dcgan.Generator(dcgan.ModelConfig.pyramid(16, channels=3, width=8, z_dim=8))
    with pytest.raises(dcgan.DcganError, match="z has 8 values"):
        dcgan.interpolate(g, np.zeros((2, 5)))


def test_cli_main_runs_in_this_process_and_never_replaces_it(data, tmp_path, capsys):
    """`dcgan train` re-executes itself under tcmalloc from the console entry point only: main() called
    from a notebook must return here (were it to exec, this test process would be gone)."""
    np.save(tmp_path / "grey.npy", np.random.default_rng(0).integers(0, 256, (16, 32, 32), np.uint8))
    assert (
        main(["prepare", str(tmp_path / "grey.npy"), str(tmp_path / "grey"), "--size", "32", "--quiet"]) == 0
    )
    args = ["train", str(tmp_path / "grey"), "--preset", "fmnist32", "--out", str(tmp_path / "run")]
    assert main([*args, "--batch", "8", "--dry-run", "--quiet", "--device", "cpu"]) == 0
    assert main(["sample", str(tmp_path / "nowhere"), "--grid", str(tmp_path / "g.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
