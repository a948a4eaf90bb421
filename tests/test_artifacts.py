"""Weights files and run folders: G loads the same from a run, a checkpoint and a file; load errors name the
file; pytorch/examples state dicts import by their shapes."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from dcgan.artifacts import (
    load_examples_generator,
    load_examples_state_dict,
    load_generator,
    read_best,
    save_best,
    save_weights,
)
from dcgan.config import ModelConfig, get_preset
from dcgan.errors import DcganError
from dcgan.models import Discriminator, Generator, build, z_for_seeds

from helpers import ExamplesD, ExamplesG, randomize, scratch_dir

TINY = ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)  # what the `tiny_run` fixture trains


def test_runs_checkpoints_and_files_load_the_same_generator(tiny_run):
    from_run = load_generator(tiny_run)
    from_ckpt = load_generator(tiny_run / "checkpoints" / "step-00000005")
    from_file = load_generator(tiny_run / "generator.safetensors")
    z = z_for_seeds(TINY, [1])
    assert torch.equal(from_run(z), from_ckpt(z)) and torch.equal(from_run(z), from_file(z))
    # the very tensors on disk, buffers included: a loader that rebuilt G from a seed would pass the above
    stored = load_file(str(tiny_run / "generator.safetensors"))
    assert stored.keys() == from_run.state_dict().keys()
    assert all(torch.equal(from_run.state_dict()[k], v) for k, v in stored.items())
    assert from_run.cfg == TINY and not from_run.training


def test_save_then_load_is_the_same_generator(tmp_path):
    g, _ = build(TINY, seed=3)
    save_weights(g, tmp_path / "g.safetensors", TINY)
    loaded = load_generator(tmp_path / "g.safetensors")
    assert loaded.cfg == TINY
    assert all(torch.equal(g.state_dict()[k], v) for k, v in loaded.state_dict().items())
    other, _ = build(TINY, seed=4)
    z = z_for_seeds(TINY, [0, 1])
    with torch.no_grad():
        assert torch.equal(loaded(z), g.eval()(z)) and not torch.equal(loaded(z), other.eval()(z))


def test_load_errors(tmp_path):
    with pytest.raises(DcganError, match="holds no generator.safetensors or checkpoint"):
        load_generator(tmp_path)
    (tmp_path / "g.safetensors").write_bytes(b"nonsense")
    with pytest.raises(DcganError, match="not a readable .safetensors"):
        load_generator(tmp_path / "g.safetensors")
    with pytest.raises(DcganError, match="does not exist; give a run folder"):
        load_generator(tmp_path / "missing.safetensors")
    (tmp_path / "netG_epoch_3.pth").write_bytes(b"")
    with pytest.raises(
        DcganError, match="looks like a pytorch/examples checkpoint; pass it with --from-examples"
    ):
        load_generator(tmp_path / "netG_epoch_3.pth")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(DcganError, match="carries no dcgan_model_config metadata"):
        load_generator(tmp_path / "foreign.safetensors")


def test_pytorch_examples_generator_loads_with_its_shapes(tmp_path):
    ref = randomize(ExamplesG(nz=50, ngf=16, nc=1))
    torch.save(ref.state_dict(), tmp_path / "netG_epoch_24.pth")
    g = load_examples_generator(tmp_path / "netG_epoch_24.pth")
    cfg = g.cfg
    assert (cfg.z_dim, cfg.channels, cfg.g_base) == (50, 1, 128)
    z = torch.randn(2, 50)
    with torch.no_grad():
        assert torch.allclose(g(z), ref(z[:, :, None, None]), atol=1e-6)


def test_pytorch_examples_importer_refuses_other_files(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(DcganError, match="is not a readable PyTorch weights file"):
        load_examples_generator(tmp_path / "empty.pth")
    torch.save(ExamplesD().state_dict(), tmp_path / "netD_epoch_1.pth")
    with pytest.raises(DcganError, match="is not a pytorch/examples netG state dict"):
        load_examples_generator(tmp_path / "netD_epoch_1.pth")


def test_a_pth_that_is_not_a_pickle_is_a_dcgan_error(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(DcganError, match="is not a readable PyTorch weights file"):
        load_examples_generator(tmp_path / "junk.pth")


def test_pytorch_examples_state_dicts_load_and_give_the_same_outputs():
    cfg = get_preset("examples64")
    ref_g, ref_d = randomize(ExamplesG()), randomize(ExamplesD())
    g, d = Generator(cfg).eval(), Discriminator(cfg).eval()
    load_examples_state_dict(g, ref_g.state_dict())
    # a checkpoint saved from nn.DataParallel carries a `module.` prefix
    load_examples_state_dict(d, {f"module.{k}": v for k, v in ref_d.state_dict().items()})
    z = torch.randn(4, 100, 1, 1)
    with torch.no_grad():
        x = g(z)
        assert torch.allclose(x, ref_g(z), atol=1e-6)
        assert torch.allclose(torch.sigmoid(d(x)), ref_d(x), atol=1e-6)  # D returns logits


def test_examples_state_dict_of_another_shape_is_a_clear_error():
    g = Generator(get_preset("examples64"))
    with pytest.raises(DcganError, match="examples64 preset with the same --ngf"):
        load_examples_state_dict(g, ExamplesG(ngf=32).state_dict())


def test_the_best_generator_carries_its_own_record(tmp_path):
    """best.safetensors and best.json are two writes; a kill between them must not leave a generator
    described by another step's record: the record inside the weights file is the one that counts."""
    cfg = ModelConfig.pyramid(16, channels=1, width=4, z_dim=4)
    g, _ = build(cfg, seed=0)
    assert read_best(tmp_path) is None
    save_best(g, tmp_path, cfg, {"step": 4, "fid[x-0000]": 9.0})
    save_best(g, tmp_path, cfg, {"step": 6, "fid[x-0000]": 7.0})
    # killed before this write
    (tmp_path / "best.json").write_text(json.dumps({"step": 4, "fid[x-0000]": 9.0}))
    assert read_best(tmp_path) == {"step": 6, "fid[x-0000]": 7.0}
    save_weights(g, tmp_path / "best.safetensors", cfg)  # a file from before records went inside
    assert read_best(tmp_path) == {"step": 4, "fid[x-0000]": 9.0}
    (tmp_path / "best.safetensors").write_bytes(b"torn")
    assert read_best(tmp_path) is None  # unreadable: the next evaluation writes a new one


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(
    edit=st.one_of(
        st.tuples(st.sampled_from(["g_base", "z_dim", "channels", "image_size", "g_layers"]), json_values),
        st.tuples(st.just("g_base"), st.sampled_from([2**22, 2**40, 0, -1])),  # a huge model, or none
        st.tuples(st.just("whole"), json_values),
        st.tuples(st.just("not-json"), st.text(max_size=10)),
    )
)
def test_a_weights_file_whose_config_lies_is_refused_before_the_model_is_built(tmp_path_factory, edit):
    """Metadata that is not JSON, not an object, an invalid config, or a config of another (say 2^22-wide)
    network than the tensors stored: a DcganError before anything of the claimed size is allocated."""
    cfg = ModelConfig.pyramid(16, channels=1, width=4, z_dim=4)
    g, _ = build(cfg, seed=0)
    with scratch_dir(tmp_path_factory) as d:
        spec = cfg.to_dict()
        key, value = edit
        if key == "whole":
            text = json.dumps(value)
        elif key == "not-json":
            text = "{" + value
        else:
            spec[key] = value
            text = json.dumps(spec)
        tensors = {k: v.contiguous() for k, v in g.state_dict().items()}
        save_file(tensors, str(d / "g.safetensors"), metadata={"dcgan_model_config": text})
        try:
            loaded = load_generator(d / "g.safetensors")
        except DcganError:
            return
        assert loaded.cfg == cfg  # accepted only when the edit changed nothing that matters


def test_an_examples_pth_of_1d_weights_or_mismatched_layers_is_a_clear_error(tmp_path):
    state = ExamplesG(nz=8, ngf=4, nc=1).state_dict()
    torch.save({**state, "main.0.weight": torch.zeros(8)}, tmp_path / "flat.pth")
    with pytest.raises(DcganError, match="not 4-d"):
        load_examples_generator(tmp_path / "flat.pth")
    torch.save({**state, "main.3.weight": torch.zeros(32, 17, 4, 4)}, tmp_path / "odd.pth")
    with pytest.raises(DcganError, match="does not hold the weights of the pytorch/examples netG"):
        load_examples_generator(tmp_path / "odd.pth")
