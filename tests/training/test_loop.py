"""Training: a golden loss curve, exact resume, kill/interrupt/NaN/disk-full behaviour, every preset dry-run."""

import contextlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from dcgan.artifacts import latest_checkpoint, list_checkpoints
from dcgan.config import PRESETS, ModelConfig, TrainConfig
from dcgan.data.dataset import batch_indices
from dcgan.data.prepare import prepare
from dcgan.errors import DcganError
from dcgan.models import build
from dcgan.training import checkpoint as ckpt_mod
from dcgan.training import loop as loop_mod
from dcgan.training import trainer as trainer_mod
from dcgan.training.checkpoint import load_checkpoint
from dcgan.training.loop import train
from dcgan.training.trainer import TrainingDiverged

from helpers import run_cli, scratch_dir

TINY = ModelConfig.pyramid(16, channels=1, width=8, z_dim=8)
quiet = {"progress": False, "log": lambda s: None}


def tiny_cfg(steps: int, **kw) -> TrainConfig:
    fields = {
        "preset": "tiny",
        "model": TINY,
        "batch": 16,
        "kimg": steps * 16 / 1000,
        "precision": "fp32",
        "device": "cpu",
        "log_every": 1,
        "seed": 0,
        **kw,
    }
    return TrainConfig(**fields)


def stats(run):
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


# Losses of the first 20 steps of the tiny model, seed 0, CPU fp32: silent numeric changes fail here.
GOLDEN_D = [
    1.26252,
    1.22051,
    1.21702,
    1.19788,
    1.17854,
    1.15046,
    1.17048,
    1.13846,
    1.13542,
    1.11495,
    1.1163,
    1.11234,
    1.10589,
    1.11787,
    1.10033,
    1.07458,
    1.08665,
    1.08754,
    1.073,
    1.0657,
]
GOLDEN_G = [
    0.67228,
    0.66471,
    0.65635,
    0.66081,
    0.65322,
    0.65058,
    0.63989,
    0.62471,
    0.63017,
    0.6288,
    0.61734,
    0.6207,
    0.61263,
    0.60461,
    0.61022,
    0.60452,
    0.60355,
    0.60321,
    0.60385,
    0.61463,
]


@pytest.mark.parametrize("threads", [1, 2])  # the count changes BatchNorm's rounding only (dcgan/threads.py)
def test_golden_loss_curve(discs, tmp_path, threads):
    train(tiny_cfg(20, threads=threads), discs, tmp_path / "run", **quiet)
    rows = stats(tmp_path / "run")
    assert {r["threads"] for r in rows} == {threads}
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert np.allclose([r["loss_D"] for r in rows], GOLDEN_D, atol=2e-4)
    assert np.allclose([r["loss_G"] for r in rows], GOLDEN_G, atol=2e-4)
    assert set(rows[0]) >= {
        "step",
        "epoch",
        "images_seen",
        "loss_D",
        "loss_G",
        "D_x",
        "D_G_z",
        "img_per_s",
        "lr",
    }


@pytest.mark.parametrize("threads", [1, 2])  # a pinned count: bit-identical at each
@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16 on CPU also runs cpu_conv's GEMM gradients
def test_resume_is_bit_identical(discs, tmp_path, precision, threads):
    kw = {"ckpt_every": 4, "precision": precision, "threads": threads}
    train(tiny_cfg(8, **kw), discs, tmp_path / "straight", **quiet)
    train(tiny_cfg(4, **kw), discs, tmp_path / "halves", **quiet)  # stops at 4
    s = train(tiny_cfg(8, **kw), discs, tmp_path / "halves", **quiet)  # resumes
    assert s["step"] == 8
    for name in ("G", "D"):
        a = load_file(str(tmp_path / "straight" / "checkpoints" / "step-00000008" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "halves" / "checkpoints" / "step-00000008" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert [r["loss_D"] for r in stats(tmp_path / "straight")] == [
        r["loss_D"] for r in stats(tmp_path / "halves")
    ]


def test_a_thread_change_is_recorded(discs, tmp_path, monkeypatch, capsys):
    """What the loop does with a Tuner's change: a stats.jsonl record and a line on stderr; the loss records
    carry the count in use."""
    from dcgan.threads import Change

    class OneChange:
        def __init__(self, threads, device):
            self.steps = 0

        def observe(self, seconds, items):
            self.steps += 1
            assert seconds > 0 and items == 16
            if self.steps == 3:
                torch.set_num_threads(1)
                return Change(1, 2, "start", {1: 0.001, 2: 0.002})
            return None

        def close(self):
            pass

    @contextlib.contextmanager
    def one_change(threads, device):
        yield OneChange(threads, device)

    monkeypatch.setattr(loop_mod, "tuned", one_change)
    torch.set_num_threads(2)
    train(tiny_cfg(5), discs, tmp_path / "run", **quiet)
    rows = stats(tmp_path / "run")
    change = [r for r in rows if "threads_was" in r]
    assert change == [
        {
            "step": 3,
            "kimg": 0.048,
            "threads": 1,
            "threads_was": 2,
            "threads_reason": "start",
            "threads_trial_ms": {"1": 1.0, "2": 2.0},
        }
    ]
    assert [r["threads"] for r in rows if "loss_D" in r] == [2, 2, 1, 1, 1]
    assert "step 3: threads 2 → 1 (start; per image 1: 1 ms, 2: 2 ms)" in capsys.readouterr().err
    assert (tmp_path / "run" / "loss.png").is_file()  # the figure skips the record without losses


def test_adaptive_threads_train_and_put_the_count_back(discs, tmp_path, monkeypatch):
    """Under --threads auto (OMP_NUM_THREADS unset) a run trains, each record names the count in use, and the
    process has the count it started with afterwards; a pinned run leaves no OMP_NUM_THREADS behind."""
    monkeypatch.delenv("OMP_NUM_THREADS")
    torch.set_num_threads(2)
    train(tiny_cfg(30), discs, tmp_path / "auto", **quiet)
    assert all(r["threads"] in (1, 2) for r in stats(tmp_path / "auto") if "loss_D" in r)
    train(tiny_cfg(3, threads=1), discs, tmp_path / "pinned", **quiet)
    assert {r["threads"] for r in stats(tmp_path / "pinned")} == {1}
    assert "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() == 2


def test_data_order_depends_only_on_seed_and_images_seen():
    whole = batch_indices(10, 0, 30, seed=3)
    parts = np.concatenate([batch_indices(10, s, 6, seed=3) for s in range(0, 30, 6)])
    assert (whole == parts).all()
    assert all(sorted(whole[i : i + 10]) == list(range(10)) for i in (0, 10, 20))  # every epoch sees each row
    assert not (batch_indices(10, 0, 10, seed=4) == whole[:10]).all()


def test_checkpoint_holds_the_whole_state(discs, tmp_path):
    train(tiny_cfg(3, ckpt_every=3), discs, tmp_path / "run", **quiet)
    state = torch.load(latest_checkpoint(tmp_path / "run") / "state.pt", weights_only=True)
    assert (state["step"], state["images_seen"]) == (3, 48)
    assert {"opt_g", "opt_d", "rng", "fixed_z", "config", "dcgan_version"} <= set(state)
    assert set(state["rng"]) == {"torch", "numpy", "python"}
    assert state["config"]["model"] == TINY.to_dict()


def test_a_checkpoint_from_before_the_rollbacks_rename_resumes_the_same(discs, tmp_path):
    """state.pt once called the rollback counter "restarts": such a checkpoint resumes exactly."""
    train(tiny_cfg(4, ckpt_every=2), discs, tmp_path / "straight", **quiet)
    train(tiny_cfg(2, ckpt_every=2), discs, tmp_path / "old", **quiet)
    path = latest_checkpoint(tmp_path / "old") / "state.pt"
    state = torch.load(path, weights_only=True)
    state["restarts"] = state.pop("rollbacks")
    torch.save(state, path)
    train(tiny_cfg(4, ckpt_every=2), discs, tmp_path / "old", **quiet)
    assert [r["loss_D"] for r in stats(tmp_path / "old")] == [
        r["loss_D"] for r in stats(tmp_path / "straight")
    ]


def test_alternate_schedule_updates_d_and_g_on_alternate_minibatches(discs, tmp_path):
    train(tiny_cfg(4, schedule="alternate", ckpt_every=4), discs, tmp_path / "run", **quiet)
    g, d = build(TINY)
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"), g, d)
    assert state["opt_g"]["state"][0]["step"].item() == 2 and state["opt_d"]["state"][0]["step"].item() == 2
    rows = stats(tmp_path / "run")  # logged every step: G-only steps have no D statistics, not fake ones
    assert rows[0]["loss_D"] is None and rows[0]["loss_G"] > 0 and rows[1]["loss_G"] is None


@pytest.fixture
def nan_at_step_6(monkeypatch):
    """D's loss becomes NaN on its 6th call (step 6 of the `both` schedule)."""
    real, calls = trainer_mod.d_loss, {"n": 0}

    def poisoned(a, b):
        calls["n"] += 1
        out = real(a, b)
        return out * float("nan") if calls["n"] == 6 else out

    monkeypatch.setattr(trainer_mod, "d_loss", poisoned)


def test_nan_stops_naming_the_step_and_leaves_the_checkpoint(discs, tmp_path, nan_at_step_6):
    with pytest.raises(
        TrainingDiverged, match=r"loss_D became nan at step 6; the last good checkpoint step-00000004"
    ):
        train(tiny_cfg(10, ckpt_every=4), discs, tmp_path / "run", **quiet)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-00000004"]
    assert load_checkpoint(latest_checkpoint(tmp_path / "run"), *build(TINY))["step"] == 4


def test_nan_rollback_continues_with_fresh_data(discs, tmp_path, nan_at_step_6):
    s = train(tiny_cfg(10, ckpt_every=4, on_nan="rollback"), discs, tmp_path / "run", **quiet)
    assert s["status"] == "finished" and s["step"] == 10
    rows = stats(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 11))  # the diverged steps were dropped
    state = torch.load(latest_checkpoint(tmp_path / "run") / "state.pt", weights_only=True)
    assert state["rollbacks"] == 1


def test_failed_save_is_clear_and_keeps_the_previous_checkpoint(discs, tmp_path, monkeypatch):
    real = ckpt_mod.save_weights
    calls = {"n": 0}

    def disk_full(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the second checkpoint's G
            raise OSError(28, "No space left on device")
        return real(*a, **kw)

    monkeypatch.setattr(ckpt_mod, "save_weights", disk_full)
    with pytest.raises(DcganError, match="No space left on device.*step-00000002 is intact"):
        train(tiny_cfg(6, ckpt_every=2), discs, tmp_path / "run", **quiet)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-00000002"]
    assert not list((tmp_path / "run" / "checkpoints").glob(".*"))  # no partial left
    load_checkpoint(latest_checkpoint(tmp_path / "run"), *build(TINY))


def test_a_half_written_checkpoint_is_ignored_and_cleared(discs, tmp_path):
    train(tiny_cfg(2, ckpt_every=2), discs, tmp_path / "run", **quiet)
    partial = tmp_path / "run" / "checkpoints" / ".step-00000004.partial"
    partial.mkdir()
    (partial / "G.safetensors").write_bytes(b"torn")
    assert latest_checkpoint(tmp_path / "run").name == "step-00000002"
    train(tiny_cfg(4, ckpt_every=2), discs, tmp_path / "run", **quiet)
    assert not partial.exists() and latest_checkpoint(tmp_path / "run").name == "step-00000004"


def test_a_changed_recipe_or_wrong_dataset_is_refused(discs, tmp_path):
    train(tiny_cfg(1), discs, tmp_path / "run", **quiet)
    with pytest.raises(DcganError, match=r"started with other settings \(lr: 0.0002 → 0.001\)"):
        train(tiny_cfg(2, lr=1e-3), discs, tmp_path / "run", **quiet)
    with pytest.raises(DcganError, match=r"holds 16×16×1 images but preset fmnist32 needs 32×32×1"):
        train(TrainConfig(preset="fmnist32", model=PRESETS["fmnist32"]), discs, tmp_path / "other", **quiet)
    assert not (tmp_path / "other").exists()


def test_fuse_d_normalizes_real_and_fake_together(discs, tmp_path):
    train(tiny_cfg(2), discs, tmp_path / "a", **quiet)
    train(tiny_cfg(2, fuse_d=True), discs, tmp_path / "b", **quiet)
    plain, fused = stats(tmp_path / "a"), stats(tmp_path / "b")
    assert all(np.isfinite(r["loss_D"]) for r in fused)
    assert fused[0]["D_x"] != plain[0]["D_x"]  # one BN batch of real and fake: other statistics, other D(x)


def test_a_run_started_before_the_compile_setting_resumes_and_compile_may_change(discs, tmp_path):
    train(tiny_cfg(2, ckpt_every=1), discs, tmp_path / "run", **quiet)
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    del meta["train"]["compile"]  # config.json as earlier versions wrote it
    (tmp_path / "run" / "config.json").write_text(json.dumps(meta))
    assert train(tiny_cfg(3, compile=False), discs, tmp_path / "run", **quiet)["step"] == 3
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["compile"] is False
    assert TrainConfig.from_dict({"preset": "tiny", "model": TINY.to_dict()}).compile is True


@pytest.fixture(scope="module")
def discs32(tmp_path_factory, discs):
    root = tmp_path_factory.mktemp("discs32")
    prepare(discs / "images.npy", root / "ds", size=32, fit="stretch", progress=False)
    return root / "ds"


def _train_cmd(ds, run, kimg, *extra):
    return [
        sys.executable,
        "-m",
        "dcgan.cli",
        "train",
        str(ds),
        "--preset",
        "fmnist32",
        "--out",
        str(run),
        "--kimg",
        str(kimg),
        "--batch",
        "16",
        "--precision",
        "fp32",
        "--quiet",
        *extra,
    ]


def _wait_for(pred, timeout=120):
    t = time.monotonic()
    while not pred():
        if time.monotonic() - t > timeout:
            raise TimeoutError
        time.sleep(0.05)


def test_sigkill_mid_run_then_the_same_command_resumes_and_finishes(discs32, tmp_path):
    run = tmp_path / "run"
    cmd = _train_cmd(discs32, run, 16 * 200 / 1000, "--ckpt-every", "50", "--log-every", "5")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(
        lambda: len(list_checkpoints(run)) >= 1 and (run / "stats.jsonl").exists() and len(stats(run)) > 5
    )
    proc.kill()
    proc.wait()
    killed_at = latest_checkpoint(run).name
    assert killed_at != "step-00000200"  # killed mid-run, not after the end
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "finished at step 200" in r.stdout
    steps = [row["step"] for row in stats(run)]
    assert steps == sorted(set(steps)) and steps[-1] == 200, killed_at  # no duplicated or lost records


def test_sigint_saves_a_checkpoint_and_exits_130(discs32, tmp_path):
    run = tmp_path / "run"
    cmd = _train_cmd(discs32, run, 16 * 100_000 / 1000, "--ckpt-every", "100000", "--log-every", "5")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (run / "stats.jsonl").exists() and len(stats(run)) >= 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at step" in out and "run the same command to continue" in out
    step = load_checkpoint(latest_checkpoint(run), *build(PRESETS["fmnist32"]))["step"]
    assert step >= 10 and "Traceback" not in err


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_dry_runs_through_the_cli(preset, tmp_path):
    cfg = PRESETS[preset]
    rng = np.random.default_rng(0)
    np.save(
        tmp_path / "x.npy", rng.integers(0, 256, (8, cfg.image_size, cfg.image_size, cfg.channels), np.uint8)
    )
    prepare(tmp_path / "x.npy", tmp_path / "ds", size=cfg.image_size, channels=cfg.channels, progress=False)
    r = run_cli(
        "train",
        str(tmp_path / "ds"),
        "--preset",
        preset,
        "--out",
        str(tmp_path / "run"),
        "--dry-run",
        "--batch",
        "8",
        "--quiet",
        *(["--no-report"] if preset == "fmnist32" else []),
    )
    assert r.returncode == 0, r.stderr
    assert "finished at step 2" in r.stdout
    assert (tmp_path / "run" / "generator.safetensors").is_file()
    assert os.path.getsize(tmp_path / "run" / "samples" / "latest.png") > 0
    assert (tmp_path / "run" / "report.html").is_file() == (preset != "fmnist32")  # --no-report there


def test_wrong_dataset_for_the_preset_exits_2(discs, tmp_path):
    r = run_cli("train", str(discs), "--preset", "paper64", "--out", str(tmp_path / "run"), "--dry-run")
    assert r.returncode == 2 and "holds 16×16×1 images but preset paper64 needs 64×64×3" in r.stderr
    assert "Traceback" not in r.stderr


def test_tensorboard_events_when_the_extra_is_installed(discs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_cfg(4), discs, tmp_path / "run", **quiet)
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss_D")] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / "config.json").write_bytes(b"{not json"), "is not a run's config.json"),
        (lambda run: (run / "config.json").write_bytes(b"\xff\xfe["), "is not a run's config.json"),
        (lambda run: (run / "config.json").write_text("[]"), "is not a run's config.json"),
        (lambda run: (run / "config.json").write_text('{"train": {}}'), "is not a run's config.json"),
        (
            lambda run: ((run / "config.json").unlink(), (run / "config.json").mkdir()),
            r"config.json \(not a file\)",
        ),
        (lambda run: ((run / "config.json").unlink(), os.mkfifo(run / "config.json")), r"\(not a file\)"),
        (lambda run: torch.save({}, latest_checkpoint(run) / "state.pt"), "cannot be resumed"),
        (lambda run: torch.save([1, 2], latest_checkpoint(run) / "state.pt"), "not a training state"),
        (
            lambda run: (latest_checkpoint(run) / "state.pt").write_bytes(pickle.dumps(Payload())),
            "could not be loaded",
        ),
        (
            lambda run: (latest_checkpoint(run) / "state.pt").write_bytes(b"PK\x03\x04 torn"),
            "could not be loaded",
        ),
        (
            lambda run: (latest_checkpoint(run) / "G.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{}"),
            "could not be loaded",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the payload pickle
def test_a_damaged_run_folder_is_one_clear_error_before_any_training(discs, tmp_path, damage, message):
    train(tiny_cfg(2, ckpt_every=2), discs, tmp_path / "run", **quiet)
    damage(tmp_path / "run")
    with pytest.raises(DcganError, match=message):
        train(tiny_cfg(4, ckpt_every=2), discs, tmp_path / "run", **quiet)


class Payload:
    """A pickle that would run code when loaded without weights_only."""

    def __reduce__(self):
        return (print, ("this must never run",))


wrong_values = st.one_of(
    st.none(),
    st.integers(-(2**40), -1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=2),
    st.builds(lambda n: torch.zeros(n), st.integers(0, 3)),
)
state_fields = st.sampled_from(["step", "images_seen", "rollbacks", "elapsed", "fixed_z", "opt_g", "rng"])


@settings(max_examples=12, deadline=None)
@given(field=state_fields, value=wrong_values)
def test_a_training_state_with_a_field_of_the_wrong_kind_is_one_clear_error(
    tmp_path_factory, discs, trained_state, field, value
):
    """Each field of state.pt replaced by a value of another kind (a string step, a negative count, a NaN
    elapsed, a fixed z of another shape, a list for an optimizer, None for the RNG states): one line that
    says the checkpoint cannot be resumed, before any step — never a traceback from inside the loop."""
    if field == "elapsed" and type(value) is float and 0 <= value < float("inf"):
        return  # a valid number of seconds
    with scratch_dir(tmp_path_factory) as d:
        shutil.copytree(trained_state, d / "run")
        path = latest_checkpoint(d / "run") / "state.pt"
        state = torch.load(path, weights_only=True)
        state[field] = value
        torch.save(state, path)
        with pytest.raises(DcganError, match="cannot be resumed|could not be loaded") as e:
            train(tiny_cfg(4, ckpt_every=2), discs, d / "run", **quiet)
        assert "\n" not in str(e.value)  # one line, even for a tensor where a number belongs


@pytest.fixture(scope="module")
def trained_state(tmp_path_factory, discs):
    run = tmp_path_factory.mktemp("state") / "run"
    train(tiny_cfg(2, ckpt_every=2), discs, run, **quiet)
    return run
