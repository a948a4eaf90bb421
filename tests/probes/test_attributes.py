"""The face arithmetic scored (src/dcgan/probes/attributes.py): recipes and their targets, the attribute
classifier on drawn faces, and the whole scoring run through the CLI."""

import numpy as np
import pytest

from dcgan.data.catalog import get_dataset
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.probes import attributes

from helpers import run_cli


def test_the_papers_recipes_have_the_targets_the_figures_claim():
    smile = attributes.parse_recipe("smile")
    assert smile.target == {"long_hair": 0, "smiling": 1}  # smiling woman − neutral woman + neutral man
    glasses = attributes.parse_recipe("glasses")
    assert glasses.target == {"glasses": 1, "long_hair": 1}


@pytest.mark.parametrize(
    "text, message",
    [
        ("smiling=yes", r"a recipe is 'A - B \+ C'"),
        ("smiling=maybe - smiling=no + smiling=no", "expected NAME=yes or NAME=no"),
        ("smiling=yes - beard=no + smiling=no", "beard, smiling is missing"),
        ("smiling=no - smiling=yes + smiling=no", "outside yes/no"),
    ],
)
def test_impossible_recipes_are_refused(text, message):
    with pytest.raises(DcganError, match=message):
        attributes.parse_recipe(text)


def test_matches_sums_the_probability_of_every_combination_with_the_wanted_values():
    names = ("a", "b")
    probs = np.array([[0.1, 0.2, 0.3, 0.4]])  # combos: (a,b) = 00, 10, 01, 11
    assert attributes._matches(probs, names, {"a": 1, "b": 0}) == pytest.approx([0.2])
    assert attributes._matches(probs, names, {"a": 1, "b": 1}) == pytest.approx([0.4])
    assert (attributes.joint(np.array([[1, 0], [0, 1], [1, 1]])) == [1, 2, 3]).all()


@pytest.fixture(scope="module")
def faces16(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    get_dataset("faces", root / "f", num=400, size=16, progress=False, workers=2)
    return root / "f"


def tiny_model():
    from dcgan.config import ModelConfig

    return ModelConfig.pyramid(16, channels=3, width=16, z_dim=8)


def test_the_classifier_learns_the_drawn_attributes_and_refuses_other_columns(faces16):
    ds = PreparedDataset(faces16)
    clf = attributes.train_attribute_classifier(
        ds, ("glasses",), tiny_model(), images=300, heldout=100, epochs=8
    )
    assert clf.accuracy["glasses"] > 0.8  # 72% have none: sunglasses and frames are plain even at 16²
    with pytest.raises(DcganError, match="has no attribute 'hat'"):
        attributes.binary_columns(ds, ("hat",))
    with pytest.raises(DcganError, match="is not yes/no"):
        attributes.binary_columns(ds, ("mouth",))


def test_scoring_runs_end_to_end_and_the_cli_refuses_a_bad_recipe(faces16, tmp_path):
    from dcgan import api
    from dcgan.config import TrainConfig
    from dcgan.training.loop import train

    cfg = TrainConfig(preset="tiny", model=tiny_model(), batch=16, kimg=0.1, precision="fp32", device="cpu")
    train(cfg, faces16, tmp_path / "run", progress=False, log=lambda s: None)
    results, figures = api.arithmetic_score(
        tmp_path / "run", faces16, ["smile", "glasses"], trials=5, pool=64, classifier_images=300, epochs=1,
        confident=0.0,
    )  # fmt: skip
    res = results[0]
    assert results[1]["target"] == {"glasses": "yes", "long_hair": "yes"}
    assert set(res) >= {"latent3", "latent1", "pixels3", "prior", "classifier_accuracy", "target"}
    assert all(0 <= res[k] <= 1 for k in ("latent3", "latent1", "pixels3", "prior"))
    assert figures["smile"].shape[0] == 5 * 11 and res["exemplars"] == {"A": 64, "B": 64, "C": 64}
    r = run_cli(
        "arithmetic-score", str(tmp_path / "run"), "--dataset", str(faces16), "--recipe", "smiling=yes - x + y",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert r.returncode == 2 and "expected NAME=yes" in r.stderr and "Traceback" not in r.stderr
