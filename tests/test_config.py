"""Presets checked layer by layer against PAPER.md §2, and invalid configs rejected with a clear message."""

import json

import pytest

from dcgan.config import PRESETS, ModelConfig, get_preset
from dcgan.errors import DcganError


def test_paper64_is_figure_1():
    c = get_preset("paper64")
    assert (c.image_size, c.channels, c.z_dim, c.z_dist, c.kernel_size) == (64, 3, 100, "uniform", 5)
    assert c.g_base == 1024 and c.g_input == "linear" and c.d_output == "linear"
    assert c.g_layers == ((2, 512), (2, 256), (2, 128), (2, 3))
    assert c.d_layers == ((2, 128), (2, 256), (2, 512), (2, 1024))


def test_imagenet32_is_the_released_model():
    c = get_preset("imagenet32")
    assert (c.image_size, c.z_dim, c.z_dist, c.kernel_size, c.g_base) == (32, 256, "uniform", 3, 512)
    assert c.g_layers == ((2, 512), (1, 256), (2, 256), (1, 128), (2, 128), (1, 3))
    assert c.d_layers == ((1, 128), (2, 128), (1, 256), (2, 256), (1, 512), (2, 512))
    assert c.d_feature_channels == 1792  # × 4×4 grid = the paper's 28,672 CIFAR features
    assert c.d_feature_channels * 16 == 28_672


def test_svhn32_is_the_released_model():
    c = get_preset("svhn32")
    assert (c.image_size, c.z_dim, c.z_dist, c.kernel_size, c.g_base) == (32, 100, "normal", 5, 256)
    assert c.g_layers == ((2, 128), (2, 64), (2, 3))
    assert c.d_layers == ((2, 64), (2, 128), (2, 256))
    assert c.d_feature_channels * 16 == 7_168  # the SVHN protocol's feature vector


def test_examples64_is_the_pytorch_examples_layout():
    c = get_preset("examples64")
    assert (c.z_dist, c.kernel_size, c.g_input, c.d_output, c.g_base) == ("normal", 4, "convt", "conv", 512)
    assert [w for _, w in c.g_layers] == [256, 128, 64, 3]
    assert [w for _, w in c.d_layers] == [64, 128, 256, 512]


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_through_json(name):
    c = PRESETS[name]
    assert ModelConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_pyramid_builds_the_doubling_schedule():
    c = ModelConfig.pyramid(128, channels=1, width=32, max_width=256)
    assert c.d_layers == ((2, 32), (2, 64), (2, 128), (2, 256), (2, 256))
    assert c.g_base == 256 and c.g_layers[-1] == (2, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 48}, "power of two from 16 to 256, got 48"),
        ({"image_size": 512}, "power of two from 16 to 256"),
        ({"channels": 0}, "channels must be 1 (grey) or 3 (RGB), got 0"),
        ({"z_dim": -1}, "z_dim must be a positive integer, got -1"),
        ({"z_dist": "cauchy"}, "z_dist must be one of uniform, normal"),
        ({"kernel_size": 9}, "kernel_size must be an integer from 2 to 7"),
        ({"g_input": "mlp"}, "g_input must be one of linear, convt"),
        ({"image_size": 32}, "expected 3 stride-2 layers, got 4"),
        ({"g_layers": ((2, 512), (2, 256), (2, 128), (2, 1))}, "G's last layer must output the image's 3"),
        ({"g_layers": ((3, 512),)}, "stride 1 or 2"),
        ({"g_layers": ()}, "at least one"),
        ({"kernel_size": 4, "d_layers": ((1, 64), (2, 128), (2, 256), (2, 512), (2, 512))}, "odd kernel"),
    ],
)
def test_invalid_configs_raise_one_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=None) as e:
        ModelConfig(**kwargs)
    assert isinstance(e.value, DcganError)
    assert message in str(e.value)


def test_unknown_preset_and_keys_are_named():
    with pytest.raises(DcganError, match="choose one of: paper64"):
        get_preset("paper128")
    with pytest.raises(DcganError, match="unknown model config keys \\['ngf'\\]"):
        ModelConfig.from_dict({"ngf": 64})
