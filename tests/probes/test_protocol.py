"""PAPER.md §5's protocols: splits and draws, the supervised control, and `dcgan probe` end to end."""

import json
import random

import numpy as np
import pytest
import torch

from dcgan.config import ModelConfig
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.probes.protocol import Rows, draw, mean_ci, probe, split
from dcgan.probes.supervised import Classifier, Hyper, predict, sample_hyper, train_classifier

from helpers import coloured, prepare_coloured, run_cli


def test_split_and_draws_are_disjoint_balanced_and_reproducible():
    labels = np.repeat(np.arange(5), 40)
    s = split(labels, 50, seed=3)
    assert len(s.val) == 50 and len(s.pool) == 150 and not set(s.val) & set(s.pool)
    assert np.array_equal(split(labels, 50, seed=3).val, s.val)
    assert not np.array_equal(split(labels, 50, seed=4).val, s.val)
    a, b = draw(labels, s.pool, 4, seed=3, index=0), draw(labels, s.pool, 4, seed=3, index=1)
    assert set(a) <= set(s.pool) and len(a) == 20
    assert (np.bincount(labels[a]) == 4).all()
    assert np.array_equal(a, draw(labels, s.pool, 4, seed=3, index=0)) and not np.array_equal(a, b)
    with pytest.raises(DcganError, match="validation split needs"):
        split(labels, 200, seed=0)
    with pytest.raises(DcganError, match="fewer than the 50 labels per class"):
        draw(labels, s.pool, 50, seed=0, index=0)


def test_rows_reads_any_order_and_error_bars_use_the_spread_of_draws():
    x = np.arange(30).reshape(10, 3)
    rows = Rows(x, np.array([7, 2, 9, 0]))
    assert rows.shape == (4, 3) and len(rows) == 4
    assert np.array_equal(rows[1:4], x[[2, 9, 0]])
    r = mean_ci([0.2, 0.3])
    assert r["test_error"] == pytest.approx(0.25) and r["ci95"] == pytest.approx(
        1.96 * np.std([0.2, 0.3], ddof=1)
    )
    assert mean_ci([0.1])["ci95"] == 0


def test_the_control_is_ds_body_with_a_linear_head_and_learns():
    cfg = ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)
    net = Classifier(cfg, classes=4)
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 4)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.body) == len(cfg.d_layers)
    x, y = coloured(64, seed=0)
    xv, yv = coloured(40, seed=1)
    hyper = Hyper(lr=3e-3, weight_decay=1e-4, dropout=0.0, epochs=15, batch=16, beta1=0.9)
    net = train_classifier(cfg, x, y, hyper, seed=0)
    assert (predict(net, xv) == yv).mean() >= 0.9
    # one generator for the whole search (a fresh Random(1) per draw would draw the same Hyper three times)
    rng = random.Random(1)
    draws = [sample_hyper(rng, max_epochs=20) for _ in range(3)]
    assert all(1e-4 <= h.lr <= 3e-3 and 10 <= h.epochs <= 20 and 0 <= h.dropout <= 0.6 for h in draws)
    assert len({h.lr for h in draws}) == 3  # the draws differ
    rng = random.Random(1)
    assert [sample_hyper(rng, max_epochs=20) for _ in range(3)] == draws  # and the seed draws them again


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    prepare_coloured(root, "train", 160, 0)
    prepare_coloured(root, "test", 80, 1)
    x, _ = coloured(20, 2)
    np.save(root / "unlabelled.npy", x)
    r = run_cli("prepare", str(root / "unlabelled.npy"), str(root / "unlabelled"), "--size", "16")
    assert r.returncode == 0, r.stderr
    return root


def test_probe_runs_both_protocols_and_the_control_and_writes_a_table(tiny_run, labelled, tmp_path):
    out = tmp_path / "probe"
    args = [
        "probe", str(tiny_run), "--dataset", str(labelled / "train"), "--test", str(labelled / "test"),
        "--labels-per-class", "5,all", "--draws", "2", "--val", "40", "--C", "1e-3,1e-1",
        "--control", "5", "--trials", "2", "--max-epochs", "2", "--untrained", "--out", str(out), "--device", "cpu",
    ]  # fmt: skip
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "probe.json").read_text())
    few, every = result["budgets"]["5"], result["budgets"]["all"]
    assert few["dcgan_svm"]["labels"] == 20 and len(few["dcgan_svm"]["test_errors"]) == 2
    assert every["dcgan_svm"]["labels"] == 120 and set(every["dcgan_svm"]["val_accuracy_by_C"]) == {
        "0.001",
        "0.1",
    }
    assert every["pixels_svm"]["test_error"] <= 0.05  # the colours separate linearly in pixel space
    assert every["dcgan_svm"]["test_error"] <= 0.25  # and still in the features of a barely trained D
    assert len(few["control"]["trials"]) == 2 and len(few["control"]["test_errors"]) == 2
    assert "control" not in every  # --control 5: the control only where it was asked for
    assert every["untrained_svm"]["test_error"] <= 0.25 and len(few["untrained_svm"]["test_errors"]) == 2
    assert (out / "untrained-features-train.npy").is_file()
    table = (out / "table.md").read_text()
    assert "| DCGAN D features + L2-SVM |" in table and "error, 20 labels (5 per class)" in table
    assert "| Untrained D (same init) features + L2-SVM |" in table
    assert table in r.stdout
    # a second run reuses the cached features
    r = run_cli(*args[:7], "5", *args[8:])
    assert r.returncode == 0 and "reusing" in r.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"draws": 0}, "--draws must be at least 1, got 0"),
        ({"trials": 0, "control": (5,), "budgets": (5,)}, "--trials must be at least 1"),
        ({"max_epochs": 0}, "--max-epochs must be at least 1"),
        ({"budgets": ()}, "label budgets are positive numbers"),
        ({"budgets": (0,)}, "label budgets are positive numbers"),
        ({"Cs": (1e-3, -1.0)}, "--C takes positive numbers"),
        ({"control": (7,)}, "must also be a label budget"),
    ],
)
def test_probe_refuses_numbers_that_would_give_nans_before_any_work(
    tiny_run, labelled, tmp_path, option, message
):
    train, test = PreparedDataset(labelled / "train"), PreparedDataset(labelled / "test")
    with pytest.raises(DcganError, match=message):
        probe(str(tiny_run), train, test, str(tmp_path / "p"), val_size=40, log=lambda s: None, **option)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--dataset", "unlabelled"), "has no labels"),
        (("--labels-per-class", "five"), "takes positive numbers and 'all'"),
        (("--C", "0"), "--C takes positive numbers"),
        (("--val", "500"), "validation split needs"),
        (("--control", "all"), "must also be in --labels-per-class"),
    ],
)
def test_probe_input_errors_are_one_line(tiny_run, labelled, tmp_path, change, message):
    opts = {"--dataset": str(labelled / "train"), "--test": str(labelled / "test"), "--val": "40"}
    key, value = change
    opts[key] = str(labelled / value) if key == "--dataset" else value
    r = run_cli("probe", str(tiny_run), *[s for kv in opts.items() for s in kv], "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_probe_refuses_a_dataset_of_another_size(tiny_run, tmp_path):
    x, y = coloured(40, 0, size=32)
    np.savez(tmp_path / "big.npz", images=x, labels=y)
    r = run_cli("prepare", str(tmp_path / "big.npz"), str(tmp_path / "big"), "--size", "32")
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "probe",
        str(tiny_run),
        "--dataset",
        str(tmp_path / "big"),
        "--test",
        str(tmp_path / "big"),
        "--out",
        str(tmp_path / "p"),
    )
    assert r.returncode == 2 and "D was trained on 16² × 3" in r.stderr
