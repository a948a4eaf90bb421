"""torch.distributed's one owner: the World from torchrun's environment, and global BatchNorm run by two real
gloo processes against single-process BatchNorm on the whole batch (values, gradients, running averages)."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dcgan.training.distributed import World, from_environment

# Each rank normalizes its half of one seeded batch and back-propagates its half of one seeded gradient.
WORKER = """
import sys, torch
from dcgan.training import distributed as D
world = D.init("cpu")
shape, layout, out = eval(sys.argv[1]), sys.argv[2], sys.argv[3]
g = torch.Generator().manual_seed(0)
x, dy = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
w, b = torch.randn(shape[1], generator=g, dtype=torch.float64), torch.randn(shape[1], generator=g, dtype=torch.float64)
part = slice(world.rank * shape[0] // world.size, (world.rank + 1) * shape[0] // world.size)
mine = x[part].clone()
if layout == "channels_last":
    mine = mine.contiguous(memory_format=torch.channels_last)
mine.requires_grad_()
w.requires_grad_(), b.requires_grad_()
rm, rv = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
y = D.global_batch_norm(mine, w, b, rm, rv, 0.1, 1e-5)
y.backward(dy[part])
out = out.format(rank=world.rank)
torch.save({"y": y.detach(), "dx": mine.grad, "dw": w.grad, "db": b.grad, "rm": rm, "rv": rv}, out)
D.shutdown()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(code: str, *args: str, world: int = 2, timeout: float = 120) -> None:
    """Run `python -c code args` as `world` ranks of one gloo group (as torchrun would: the environment, a
    free port) and wait for all of them; any failure fails the test with that rank's stderr."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
               "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-c", code, *args], env=env, stderr=subprocess.PIPE, text=True))
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, err


def run_ranks(tmp_path, shape, layout, world=2) -> list[dict]:
    spawn(WORKER, repr(shape), layout, str(tmp_path / "rank{rank}.pt"), world=world)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]


@pytest.mark.parametrize(
    ("shape", "layout"),
    [((8, 3, 5, 5), "contiguous"), ((6, 4, 3, 3), "channels_last"), ((10, 16), "contiguous")],
)
def test_global_batch_norm_is_batch_norm_over_the_whole_batch(tmp_path, shape, layout):
    ranks = run_ranks(tmp_path, shape, layout)
    g = torch.Generator().manual_seed(0)
    x, dy = (
        torch.randn(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
    )
    w, b = (
        torch.randn(shape[1], generator=g, dtype=torch.float64),
        torch.randn(shape[1], generator=g, dtype=torch.float64),
    )
    x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
    rm, rv = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    y.backward(dy)

    def close(a, b):
        return torch.allclose(a, b, rtol=0, atol=1e-12)

    assert close(torch.cat([r["y"] for r in ranks]), y.detach())
    assert close(torch.cat([r["dx"] for r in ranks]), x.grad)  # through the global statistics
    assert close(sum(r["dw"] for r in ranks), w.grad) and close(sum(r["db"] for r in ranks), b.grad)
    for r in ranks:  # the running averages of the whole batch, on every rank
        assert close(r["rm"], rm) and close(r["rv"], rv)


def test_the_world_comes_from_torchruns_environment():
    assert from_environment({}) == World(0, 1, 0) and World().main
    w = from_environment({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.main) == (5, 8, 1, False)


def test_only_one_module_imports_torch_distributed():
    src = Path(__file__).resolve().parents[2] / "src" / "dcgan"
    users = sorted(str(f.relative_to(src)) for f in src.rglob("*.py") if "torch.distributed" in f.read_text())
    assert users == ["training/distributed.py"]
