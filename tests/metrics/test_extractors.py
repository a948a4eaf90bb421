"""Extractors: the shipped Fashion-MNIST one classifies the test set and ranks real, blurred and noise images
by FID; `dcgan extractor train` and train_extractor make a named extractor and refuse bad input."""

import itertools
import json
from dataclasses import asdict

import numpy as np
import pytest
from safetensors.torch import save_file
from scipy.ndimage import gaussian_filter

from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.metrics import fid as M
from dcgan.metrics.extractors import (
    META_KEY,
    DomainExtractor,
    ExtractorConfig,
    accuracy,
    load_extractor,
    train_extractor,
)

from helpers import run_cli


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


def test_the_trained_extractor_is_named_by_its_hash_and_records_its_training(tiny_extractor):
    ex = load_extractor(tiny_extractor / "ex.safetensors")
    assert ex.name.startswith("colours-") and len(ex.name) == len("colours-") + 4
    assert (ex.cfg.image_size, ex.cfg.channels, ex.cfg.classes) == (16, 3, 4)
    recipe = ex.cfg.trained_on["recipe"]
    assert (recipe["epochs"], recipe["batch"]) == (1, 32)
    # the recorded accuracy is the one the loaded extractor gets (to within one near-tie of 64 images): the
    # file holds the trained weights
    test = PreparedDataset(tiny_extractor / "test")
    assert accuracy(ex, test) == pytest.approx(ex.cfg.trained_on["test_accuracy"], abs=1 / 64)  # ≤ 1 near-tie
    assert ex.cfg.trained_on["test_accuracy"] > 0.5  # 4 colours, chance is 0.25
    feats = ex.features(test.images[:8])
    assert feats.shape == (8, 128) and not np.allclose(feats[0], feats[1])


def test_train_extractor_needs_at_least_one_epoch(tiny_extractor):
    train = PreparedDataset(tiny_extractor / "train")
    test = PreparedDataset(tiny_extractor / "test")
    for epochs in (0, -1):
        with pytest.raises(DcganError, match="--epochs must be at least 1"):
            train_extractor(train, test, "x", epochs=epochs, batch=32, log=lambda s: None)


def test_extractor_train_cli_refuses_unlabelled_data_and_a_batch_larger_than_the_set(
    tiny_run, tiny_extractor, tmp_path
):
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


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"classes": 2**40}, "does not hold the weights of the extractor"),  # would be a 2^40-row head
        ({"widths": [4096, 4096, 4096]}, "does not hold the weights of the extractor"),
        ({"name": 7}, "is not an extractor"),
        ({"widths": 3}, "is not an extractor"),
        ({"unknown": 1}, "is not an extractor"),
        ("[1, 2]", "is not an extractor"),
        ("{broken", "is not an extractor"),
    ],
)
def test_an_extractor_file_whose_config_lies_is_refused_before_the_net_is_built(tmp_path, edit, message):
    net = DomainExtractor(ExtractorConfig("toy", 16, 3, 4))
    meta = dict(asdict(net.cfg), **edit) if isinstance(edit, dict) else None
    text = json.dumps(meta) if meta is not None else edit
    tensors = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(tmp_path / "ex.safetensors"), metadata={META_KEY: text})
    with pytest.raises(DcganError, match=message):
        load_extractor(tmp_path / "ex.safetensors")
