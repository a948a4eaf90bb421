"""Checkpoints survive a kill at any moment: every state that saving, re-saving and rotating can be cut
short in leaves, after `recover_checkpoints`, only whole checkpoints, and never fewer than it had."""

from __future__ import annotations

import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dcgan.artifacts import CHECKPOINT_FILES, latest_checkpoint, list_checkpoints, step_name
from dcgan.config import ModelConfig
from dcgan.models import build
from dcgan.training.checkpoint import load_checkpoint, recover_checkpoints, remove_checkpoint, save_checkpoint

from helpers import scratch_dir

TINY = ModelConfig.pyramid(16, channels=1, width=4, z_dim=4)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One real checkpoint folder to copy: G, D and a state.pt that load."""
    run = tmp_path_factory.mktemp("whole")
    g, d = build(TINY, seed=0)
    return save_checkpoint(run, 1, g, d, {"step": 1}, TINY, keep=1)


# What a kill can leave of one step's folders: (the visible step-N, its hidden .partial, its .deleting)
VISIBLE = st.sampled_from(["absent", "whole", "missing-state", "missing-G", "empty"])
PARTIAL = st.sampled_from(["absent", "whole", "missing-state", "empty"])
DELETING = st.sampled_from(["absent", "whole", "half"])


def _place(whole, folder, kind) -> None:
    if kind == "absent":
        return
    shutil.copytree(whole, folder)
    missing = {"missing-state": ["state.pt"], "missing-G": ["G.safetensors"], "half": ["D.safetensors"]}
    for name in missing.get(kind, CHECKPOINT_FILES if kind == "empty" else []):
        (folder / name).unlink()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(VISIBLE, PARTIAL, DELETING), min_size=1, max_size=4))
def test_every_state_a_kill_leaves_recovers_to_whole_checkpoints(whole, tmp_path_factory, steps):
    with scratch_dir(tmp_path_factory) as run:
        root = run / "checkpoints"
        root.mkdir()
        for i, (visible, partial, deleting) in enumerate(steps, start=1):
            name = step_name(i * 10)
            _place(whole, root / name, visible)
            _place(whole, root / f".{name}.partial", partial)
            _place(whole, root / f".{name}.deleting", deleting)
        before = [p.name for p in list_checkpoints(run)]
        recover_checkpoints(run)
        after = [p.name for p in list_checkpoints(run)]
        # the listing only ever shows whole checkpoints, recovery loses none and gains the finished partials
        assert set(before) <= set(after)
        expected = {step_name(i * 10) for i, (v, p, _) in enumerate(steps, 1) if v == "whole" or p == "whole"}
        assert set(after) == expected
        assert not [p.name for p in root.iterdir() if p.name.startswith(".")]
        if after:
            g, d = build(TINY)
            assert load_checkpoint(latest_checkpoint(run), g, d) == {"step": 1}


def test_rotation_and_resaving_leave_no_half_checkpoint_in_the_listing(tmp_path, monkeypatch):
    g, d = build(TINY, seed=0)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, g, d, {"step": step}, TINY, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [step_name(2), step_name(3)]
    # a kill in the middle of deleting: the folder was hidden first, so the listing never shows it half gone
    real_rmtree = shutil.rmtree

    def killed(path, *a, **kw):  # the delete gets as far as one file, then the process dies
        if not path.exists():
            return None
        (path / "state.pt").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        remove_checkpoint(tmp_path / "checkpoints" / step_name(2))
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert [p.name for p in list_checkpoints(tmp_path)] == [step_name(3)]
    # the same step saved again (after a rollback) replaces it whole
    save_checkpoint(tmp_path, 3, g, d, {"step": 33}, TINY, keep=2)
    recover_checkpoints(tmp_path)
    assert load_checkpoint(latest_checkpoint(tmp_path), *build(TINY)) == {"step": 33}
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [step_name(3)]
    assert torch.equal(build(TINY, seed=0)[0].main[0].weight, g.main[0].weight)
