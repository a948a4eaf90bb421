"""Presets checked layer by layer against PAPER.md §2, invalid configs rejected with a clear message, and
ModelConfig/TrainConfig round trips through JSON for generated valid configs."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcgan.config import (
    D_OUTPUTS,
    DEVICES,
    G_INPUTS,
    ON_NAN,
    PRECISIONS,
    PRESETS,
    SCHEDULES,
    Z_DISTS,
    ModelConfig,
    TrainConfig,
    get_preset,
)
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


# ---------------------------------------------------------------- properties over generated configs

sizes = st.sampled_from([16, 32, 64, 128, 256])


@st.composite
def pyramids(draw) -> ModelConfig:
    """ModelConfig.pyramid over sizes, widths, channels and the choices of z, G's input and D's output."""
    return ModelConfig.pyramid(
        draw(sizes),
        channels=draw(st.sampled_from([1, 3])),
        width=draw(st.integers(1, 128)),
        max_width=draw(st.integers(1, 2048)),
        z_dim=draw(st.integers(1, 512)),
        z_dist=draw(st.sampled_from(Z_DISTS)),
        kernel_size=draw(st.integers(2, 7)),
        g_input=draw(st.sampled_from(G_INPUTS)),
        d_output=draw(st.sampled_from(D_OUTPUTS)),
    )


@st.composite
def layered(draw) -> ModelConfig:
    """Hand-written layer lists: the stride-2 layers the size needs, stride-1 layers anywhere (odd kernels)."""
    size, channels = draw(sizes), draw(st.sampled_from([1, 3]))
    n = (size // 4).bit_length() - 1

    def layers() -> list[tuple[int, int]]:
        strides = [2] * n + [1] * draw(st.integers(0, 3))
        order = draw(st.permutations(strides))
        return [(s, draw(st.integers(1, 64))) for s in order]

    g, d = layers(), layers()
    g[-1] = (g[-1][0], channels)
    odd = any(s == 1 for s, _ in g + d)
    return ModelConfig(
        image_size=size,
        channels=channels,
        z_dim=draw(st.integers(1, 300)),
        g_base=draw(st.integers(1, 64)),
        g_layers=tuple(g),
        d_layers=tuple(d),
        kernel_size=draw(st.sampled_from([3, 5, 7] if odd else [2, 3, 4, 5, 6, 7])),
    )


def through_json(d: dict) -> dict:
    return json.loads(json.dumps(d, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(st.one_of(pyramids(), layered()))
def test_model_configs_round_trip_through_json(cfg):
    back = ModelConfig.from_dict(through_json(cfg.to_dict()))
    assert back == cfg and hash(back) == hash(cfg)
    assert isinstance(back.g_layers, tuple) and all(isinstance(x, tuple) for x in back.d_layers)


positive = st.floats(1e-3, 1e3, allow_nan=False)


@st.composite
def train_configs(draw) -> TrainConfig:
    length = draw(st.sampled_from(["epochs", "kimg", None]))
    return TrainConfig(
        preset=draw(st.sampled_from([*PRESETS, "tiny"])),
        model=draw(pyramids()),
        batch=draw(st.integers(2, 4096)),
        lr=draw(st.floats(1e-7, 1.0)),
        beta1=draw(st.floats(0, 1, exclude_max=True)),
        beta2=draw(st.floats(0, 1, exclude_max=True)),
        schedule=draw(st.sampled_from(SCHEDULES)),
        fuse_d=draw(st.booleans()),
        compile=draw(st.booleans()),
        epochs=draw(positive) if length == "epochs" else None,
        kimg=draw(positive) if length == "kimg" else None,
        seed=draw(st.integers(0, 2**32)),
        precision=draw(st.sampled_from(PRECISIONS)),
        device=draw(st.sampled_from(DEVICES)),
        sample_every=draw(st.integers(1, 10**6)),
        ckpt_every=draw(st.integers(1, 10**6)),
        log_every=draw(st.integers(1, 10**6)),
        keep=draw(st.integers(1, 100)),
        on_nan=draw(st.sampled_from(ON_NAN)),
        eval_every=draw(st.integers(0, 10**6)),
        eval_num=draw(st.integers(10, 10**6)),
        extractor=draw(st.one_of(st.none(), st.sampled_from(["fmnist", "runs/ex.safetensors"]))),
        eval_patience=draw(st.integers(1, 100)),
    )


@settings(max_examples=150, deadline=None)
@given(train_configs())
def test_train_configs_round_trip_through_json(cfg):
    d = through_json(cfg.to_dict())
    assert isinstance(d["model"], dict)  # the model nests as a plain dict, as config.json stores it
    assert TrainConfig.from_dict(d) == cfg


# A bad value for a field and a word its error must name.
BAD_MODEL = st.one_of(
    st.one_of(
        st.integers(-64, 300).filter(lambda s: s < 16 or s & (s - 1)), st.sampled_from([512, 1024])
    ).map(lambda v: ("image_size", v)),
    st.integers(-3, 8).filter(lambda c: c not in (1, 3)).map(lambda v: ("channels", v)),
    st.integers(-100, 0).map(lambda v: ("z_dim", v)),
    st.text(max_size=8).filter(lambda s: s not in Z_DISTS).map(lambda v: ("z_dist", v)),
    st.integers(-100, 0).map(lambda v: ("g_base", v)),
    st.one_of(st.integers(-5, 1), st.integers(8, 50)).map(lambda v: ("kernel_size", v)),
    st.text(max_size=8).filter(lambda s: s not in G_INPUTS).map(lambda v: ("g_input", v)),
    st.text(max_size=8).filter(lambda s: s not in D_OUTPUTS).map(lambda v: ("d_output", v)),
)
BAD_TRAIN = st.one_of(
    st.integers(-10, 1).map(lambda v: ("batch", v)),
    st.one_of(st.floats(max_value=0), st.just(float("nan"))).map(lambda v: ("lr", v)),
    st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=1)).map(lambda v: ("beta1", v)),
    st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=1)).map(lambda v: ("beta2", v)),
    st.text(max_size=8).filter(lambda s: s not in SCHEDULES).map(lambda v: ("schedule", v)),
    st.text(max_size=8).filter(lambda s: s not in PRECISIONS).map(lambda v: ("precision", v)),
    st.text(max_size=8).filter(lambda s: s not in DEVICES).map(lambda v: ("device", v)),
    st.text(max_size=8).filter(lambda s: s not in ON_NAN).map(lambda v: ("on_nan", v)),
    st.floats(max_value=0).map(lambda v: ("epochs", v)),
    st.floats(max_value=0).map(lambda v: ("kimg", v)),
    st.sampled_from(["sample_every", "ckpt_every", "log_every", "keep"]).flatmap(
        lambda f: st.integers(-10, 0).map(lambda v: (f, v))
    ),
    st.integers(-100, -1).map(lambda v: ("eval_every", v)),
    st.integers(-10, 9).map(lambda v: ("eval_num", v)),
    st.integers(-10, 0).map(lambda v: ("eval_patience", v)),
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(pyramids(), layered()), BAD_MODEL)
def test_an_invalid_model_value_is_a_dcgan_error_naming_the_field(cfg, bad):
    field, value = bad
    with pytest.raises(DcganError, match=field):
        dataclasses.replace(cfg, **{field: value})
    with pytest.raises(DcganError, match=field):
        ModelConfig.from_dict({**cfg.to_dict(), field: value})


@settings(max_examples=150, deadline=None)
@given(train_configs(), BAD_TRAIN)
def test_an_invalid_training_value_is_a_dcgan_error_naming_the_field(cfg, bad):
    field, value = bad
    # epochs and kimg are alternatives: a bad one is judged alone
    cfg = dataclasses.replace(cfg, epochs=None, kimg=None)
    with pytest.raises(DcganError, match=field):
        dataclasses.replace(cfg, **{field: value})
    with pytest.raises(DcganError, match=field):
        TrainConfig.from_dict({**cfg.to_dict(), field: value})
