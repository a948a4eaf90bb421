"""torch.distributed's one owner: the World from torchrun's environment, and global BatchNorm run by two real
gloo processes against single-process BatchNorm on the whole batch (values, gradients, running averages)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcgan.training.distributed import World, from_environment

from helpers import free_port, run_cli, spawn

# Each rank normalizes its half of one seeded batch (x + OFFSET, in DTYPE) and back-propagates its half of one
# seeded gradient; the parameters and running averages are float64, or float32 beside a lower-precision x.
WORKER = """
import sys, torch
from dcgan.training import distributed as D
world = D.init("cpu")
shape, layout, out, dtype, offset = eval(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
g = torch.Generator().manual_seed(0)
f64 = dict(generator=g, dtype=torch.float64)
x, dy, w, b = torch.randn(shape, **f64) + offset, torch.randn(shape, **f64), torch.randn(shape[1], **f64), torch.randn(shape[1], **f64)
params = torch.float64 if dtype == "float64" else torch.float32
w, b = w.to(params).requires_grad_(), b.to(params).requires_grad_()
part = slice(world.rank * shape[0] // world.size, (world.rank + 1) * shape[0] // world.size)
mine = x[part].to(getattr(torch, dtype))
if layout == "channels_last":
    mine = mine.contiguous(memory_format=torch.channels_last)
mine.requires_grad_()
rm, rv = torch.zeros(shape[1], dtype=params), torch.ones(shape[1], dtype=params)
y = D.global_batch_norm(mine, w, b, rm, rv, 0.1, 1e-5)
y.backward(dy[part].to(y.dtype))
out = out.format(rank=world.rank)
torch.save({"y": y.detach(), "dx": mine.grad, "dw": w.grad, "db": b.grad, "rm": rm, "rv": rv}, out)
D.shutdown()
"""


def run_ranks(tmp_path, shape, layout, dtype="float64", offset=0.0, world=2) -> list[dict]:
    spawn(WORKER, repr(shape), layout, str(tmp_path / "rank{rank}.pt"), dtype, str(offset), world=world)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]


@pytest.mark.parametrize(
    ("shape", "layout", "dtype", "offset", "tol"),
    [
        ((8, 3, 5, 5), "contiguous", "float64", 0.0, 1e-12),
        ((6, 4, 3, 3), "channels_last", "float64", 0.0, 1e-12),
        ((10, 16), "contiguous", "float64", 0.0, 1e-12),
        ((8, 3, 5, 5), "channels_last", "float32", 1000.0, 5e-4),  # |μ| ≫ σ: x's own rounding, ~1e-4
        ((8, 3, 5, 5), "channels_last", "bfloat16", 0.0, 5e-2),  # as training runs on CPUs
    ],
)
def test_global_batch_norm_is_batch_norm_over_the_whole_batch(tmp_path, shape, layout, dtype, offset, tol):
    ranks = run_ranks(tmp_path, shape, layout, dtype, offset)
    g = torch.Generator().manual_seed(0)
    f64 = {"generator": g, "dtype": torch.float64}
    x, dy = torch.randn(shape, **f64) + offset, torch.randn(shape, **f64)
    w, b = torch.randn(shape[1], **f64), torch.randn(shape[1], **f64)
    x = x.to(getattr(torch, dtype)).double()  # the reference sees the same rounded inputs, in float64
    x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
    rm, rv = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    y.backward(dy)

    def close(a, b):  # relative to the reference's scale
        return (a.double() - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())

    assert close(torch.cat([r["y"] for r in ranks]), y.detach())
    assert close(torch.cat([r["dx"] for r in ranks]), x.grad)  # through the global statistics
    assert close(sum(r["dw"] for r in ranks), w.grad) and close(sum(r["db"] for r in ranks), b.grad)
    for r in ranks:  # the running averages of the whole batch, on every rank
        assert close(r["rm"], rm) and close(r["rv"], rv)


def test_broadcast_buffers_gives_every_rank_rank_0s_running_averages(tmp_path):
    worker = (
        "import sys, torch\nfrom dcgan.training import distributed as D\nworld = D.init('cpu')\n"
        "bn = torch.nn.BatchNorm2d(3)\nbn.running_mean.fill_(world.rank + 1.0)\nD.broadcast_buffers(bn)\n"
        "torch.save(bn.running_mean, sys.argv[1].format(rank=world.rank))\nD.shutdown()"
    )
    spawn(worker, str(tmp_path / "rank{rank}.pt"))
    assert all(torch.equal(torch.load(tmp_path / f"rank{r}.pt"), torch.ones(3)) for r in (0, 1))


def test_the_world_comes_from_torchruns_environment():
    assert from_environment({}) == World(0, 1, 0) and World().main
    w = from_environment({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.main) == (5, 8, 1, False)


def test_only_one_module_imports_torch_distributed():
    src = Path(__file__).resolve().parents[2] / "src" / "dcgan"
    users = sorted(str(f.relative_to(src)) for f in src.rglob("*.py") if "torch.distributed" in f.read_text())
    assert users == ["training/distributed.py"]


# The Trainer alone (STEPS = a number) or the whole loop (STEPS = "loop") on a tiny grey 16² DCGAN, fp32.
TRAINER = """
import json, sys, torch
from dcgan.config import ModelConfig, TrainConfig
from dcgan.data.dataset import PreparedDataset
from dcgan.device import resolve
from dcgan.training import distributed as D
from dcgan.training.loop import train
from dcgan.training.trainer import Trainer
ds, out, steps, kw = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
cfg = TrainConfig(preset="tiny", model=ModelConfig.pyramid(16, channels=1, width=8, z_dim=8), batch=16,
                  precision="fp32", device="cpu", log_every=1, **kw)
if steps == "loop":
    train(cfg, ds, out, progress=False, log=lambda s: None)
    sys.exit()
with D.joined("cpu") as world:
    t = Trainer(cfg, resolve("cpu", "fp32"), world)
    data = PreparedDataset(ds)
    for _ in range(int(steps)):
        t.train_step(data.batch(t.rows(len(data))))
    state = {**{"G." + k: v for k, v in t.g.state_dict().items()}, **{"D." + k: v for k, v in t.d.state_dict().items()}}
    torch.save(state, f"{out}/rank{world.rank}.pt")
"""


def trained(ds, out, world, steps=6, **kw) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    spawn(TRAINER, str(ds), str(out), str(steps), json.dumps(kw), world=world)
    return [torch.load(out / f"rank{r}.pt") for r in range(world)]


def gap(a: dict, b: dict) -> float:
    """The largest difference of a parameter (not the BN buffers) between two state dicts."""
    return max((a[k] - b[k]).abs().max().item() for k in a if "running" not in k and "num_batches" not in k)


@pytest.mark.parametrize(
    "kw", [{}, {"schedule": "alternate"}, {"fuse_d": True}], ids=["both", "alternate", "fuse-d"]
)
def test_two_ranks_hold_identical_weights_and_train_as_one_process(discs, tmp_path, kw):
    two = trained(discs, tmp_path / "two", world=2, **kw)
    for k in two[0]:  # the gradients averaged by DDP, the global BN statistics: every tensor equal
        assert torch.equal(two[0][k], two[1][k]), k
    (one,) = trained(discs, tmp_path / "one", world=1, **kw)
    (rank_bn,) = trained(discs, tmp_path / "rank", world=2, bn="rank", **kw)[:1]
    # the same global minibatches, z and statistics: equal but for the order of float sums (Adam's first
    # steps move every weight by ~lr = 2e-4, so a wrong batch, z or statistic shows at that scale)
    assert gap(two[0], one) < 1e-6  # measured ~1e-8
    assert gap(rank_bn, one) > 1e-4  # per-rank statistics are another model


def files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if "tensorboard" not in p.parts}


def loop(ds, run, world, steps, **kw) -> list[dict]:
    spawn(
        TRAINER,
        str(ds),
        str(run),
        "loop",
        json.dumps({"kimg": steps * 16 / 1000, "ckpt_every": 4, **kw}),
        world=world,
    )
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def test_the_loop_on_two_ranks_writes_the_one_process_run_and_resumes_across_world_sizes(discs, tmp_path):
    from dcgan.fileio import read_safetensors

    one = loop(discs, tmp_path / "one", 1, 8)
    two = loop(discs, tmp_path / "two", 2, 8)
    assert files(tmp_path / "two") == files(tmp_path / "one")  # only rank 0 wrote, and all of it
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, 9))
    for a, b in zip(one, two):  # the global batch's losses, not rank 0's half
        assert abs(a["loss_D"] - b["loss_D"]) < 1e-5 and abs(a["D_x"] - b["D_x"]) < 1e-5

    def weights(run):
        return read_safetensors(run / "checkpoints" / "step-00000008" / "G.safetensors")[0]

    assert gap(weights(tmp_path / "two"), weights(tmp_path / "one")) < 1e-6
    loop(discs, tmp_path / "resumed", 1, 4)  # four steps on one process, then on to 8 on two
    resumed = loop(discs, tmp_path / "resumed", 2, 8)
    assert [r["step"] for r in resumed] == list(range(1, 9))
    assert gap(weights(tmp_path / "resumed"), weights(tmp_path / "one")) < 1e-6
    loop(discs, tmp_path / "two-resumed", 2, 4)  # at the same world size resuming is exact, as on one
    loop(discs, tmp_path / "two-resumed", 2, 8)
    same, two_g = weights(tmp_path / "two-resumed"), weights(tmp_path / "two")
    assert all(torch.equal(same[k], two_g[k]) for k in two_g)


# ---------------------------------------------------------------- the command: --nproc and torchrun


@pytest.fixture(scope="module")
def noise32(tmp_path_factory):
    """256 grey 32² noise images, prepared: fmnist32's input."""
    from dcgan.data.prepare import prepare

    root = tmp_path_factory.mktemp("noise32")
    np.save(root / "x.npy", np.random.default_rng(0).integers(0, 256, (256, 32, 32), np.uint8))
    prepare(root / "x.npy", root / "ds", size=32, progress=False)
    return root / "ds"


def train_args(ds, run, *more):
    return ["train", str(ds), "--preset", "fmnist32", "--out", str(run), "--batch", "16", "--precision", "fp32",
            "--device", "cpu", "--no-report", "--quiet", *more]  # fmt: skip


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the workers of a launcher)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("more", "says"),
    [
        (["--batch", "15"], "--batch 15 does not divide among 2 processes"),
        (["--preset", "paper64"], "needs 64×64×3"),
    ],
)
def test_a_user_error_on_two_processes_is_one_line_and_exit_2(noise32, tmp_path, more, says):
    r = run_cli(*train_args(noise32, tmp_path / "run", "--nproc", "2", *more))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and says in r.stderr, r.stderr


def test_a_killed_rank_stops_the_run_with_its_last_checkpoint_intact(noise32, tmp_path):
    from dcgan.artifacts import latest_checkpoint
    from dcgan.config import PRESETS
    from dcgan.models import build
    from dcgan.training.checkpoint import load_checkpoint

    run = tmp_path / "run"
    args = train_args(noise32, run, "--nproc", "2", "--kimg", "100", "--ckpt-every", "10")
    proc = subprocess.Popen([sys.executable, "-m", "dcgan.cli", *args], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(run / "checkpoints" / "step-00000010", proc)
        os.kill(max(children(proc.pid)), signal.SIGKILL)
        _, err = proc.communicate(timeout=60)  # not the 10 minutes of a collective's timeout
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGKILL
    assert "lost the others" in err and "killed by signal 9" in err and "Traceback" not in err, err
    g, d = build(PRESETS["fmnist32"])
    assert load_checkpoint(latest_checkpoint(run), g, d)["step"] % 10 == 0  # no half-step was saved


def test_sigterm_to_one_rank_stops_every_rank_at_one_step_with_a_checkpoint(noise32, tmp_path):
    """A scheduler's SIGTERM may reach one process only: every rank stops after the same step, rank 0 saves
    it and says so, and the launcher exits 128 + 15 without calling it a failure."""
    from dcgan.artifacts import latest_checkpoint
    from dcgan.config import PRESETS
    from dcgan.models import build
    from dcgan.training.checkpoint import load_checkpoint

    run = tmp_path / "run"
    args = train_args(noise32, run, "--nproc", "2", "--kimg", "100", "--ckpt-every", "10")
    cmd = [sys.executable, "-m", "dcgan.cli", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(run / "checkpoints" / "step-00000010", proc)
        os.kill(max(children(proc.pid)), signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted at step" in out and "Traceback" not in err and "of 2 exited" not in err, err
    step = int(latest_checkpoint(run).name[5:])
    g, d = build(PRESETS["fmnist32"])
    assert step > 10 and load_checkpoint(latest_checkpoint(run), g, d)["step"] == step


def test_a_killed_launcher_leaves_a_checkpoint_and_the_same_command_finishes(noise32, tmp_path):
    from dcgan.artifacts import latest_checkpoint

    run = tmp_path / "run"
    args = train_args(noise32, run, "--nproc", "2", "--kimg", "1.6", "--ckpt-every", "10")
    proc = subprocess.Popen([sys.executable, "-m", "dcgan.cli", *args], stderr=subprocess.PIPE, text=True)
    wait_for(run / "checkpoints" / "step-00000010", proc)
    workers = children(proc.pid)
    proc.kill()  # the workers get SIGTERM from the kernel, save at the next step and stop
    proc.wait()
    end = time.monotonic() + 60
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers)
    assert int(latest_checkpoint(run).name[5:]) > 10  # saved at the step where it stopped
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert latest_checkpoint(run).name == "step-00000100"


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args, "-m", "dcgan"]


def test_two_nodes_on_localhost_write_one_run(noise32, tmp_path):
    run, port = tmp_path / "run", free_port()
    rendezvous = [
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]
    nodes = [
        subprocess.Popen(
            [*torchrun(*rendezvous, "--node-rank", str(i)), *train_args(noise32, run, "--kimg", "0.32")],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in nodes:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [20] and (run / "checkpoints" / "step-00000020").is_dir()


def test_torchrun_max_restarts_resumes_by_itself(noise32, tmp_path):
    run = tmp_path / "run"
    cmd = [*torchrun("--standalone", "--nproc-per-node", "2", "--max-restarts", "1"),
           *train_args(noise32, run, "--kimg", "1.6", "--ckpt-every", "10", "--log-every", "10")]  # fmt: skip
    env = {**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}  # as docs/TRAINING.md says
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(run / "checkpoints" / "step-00000010", proc)
        os.kill(max(children(proc.pid)), signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == list(range(10, 101, 10))  # the restart resumed from a checkpoint: no gap, no repeat


def test_a_failure_of_rank_0_alone_stops_every_rank_with_its_one_line(noise32, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("not a folder")  # only rank 0 writes, so only rank 0 meets it
    r = run_cli(*train_args(noise32, run, "--nproc", "2", "--kimg", "0.16", "--ckpt-every", "5"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not save the checkpoint for step 5" in lines[0], r.stderr
