"""Helpers the tests share: small real files in every format the readers take and the damage done to them,
the `dcgan` command in a subprocess, pytorch/examples' networks written out, labelled toy datasets. Fixtures
live in conftest.py."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import pickle
import socket
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from hypothesis import event, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from dcgan.data.sources import open_source
from dcgan.errors import DcganError


def traced_peak(fn) -> int:
    """Peak bytes Python and NumPy allocated while fn ran (a memory-mapped file is not an allocation)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def rng_images(n: int, h: int, w: int, c: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n, h, w) if c is None else (n, h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@contextlib.contextmanager
def scratch_dir(tmp_path_factory) -> Iterator[Path]:
    """A fresh folder for one Hypothesis example, removed after it (tmp_path is one folder shared by every
    example of a test, so one example's files would leak into the next)."""
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as d:
        yield Path(d)


# Damage done to a valid file's bytes, for the readers' "a DcganError or consistent output" properties.
# Positions are fractions of the length, so one strategy fits files of any size; a functools.partial keeps
# Hypothesis' report of a failing example readable (the function and its arguments).


def truncated(data: bytes, at: float) -> bytes:
    return data[: int(len(data) * at)]


def flipped(data: bytes, spots: list[tuple[float, int]], start: int = 0, end: int | None = None) -> bytes:
    """XOR each (position, mask) into data[start:end], e.g. past a header to damage only the payload. A second
    spot on the same byte is left out: it could undo the first."""
    end = len(data) if end is None else end
    out = bytearray(data)
    for i, mask in {start + int((end - start) * where): mask for where, mask in reversed(spots)}.items():
        if i < end:
            out[i] ^= mask
    return bytes(out)


def replaced(data: bytes, by: bytes) -> bytes:
    return by


def with_field(data: bytes, offset: int, width: int, value: int) -> bytes:
    """The big-endian header field data[offset : offset + width] set to value (mod its width)."""
    return data[:offset] + (value % 256**width).to_bytes(width, "big") + data[offset + width :]


def damages(
    kinds: tuple[str, ...] = ("truncate", "flip", "replace"),
    flip_from: int = 0,
    fields: tuple[tuple[int, int], ...] = (),
) -> st.SearchStrategy:
    """Functions bytes → damaged bytes: truncated at any byte, 1-4 bytes flipped (from `flip_from` on),
    replaced by garbage or nothing, or one of the (offset, width) header `fields` set to any value."""
    fraction = st.floats(0, 1, exclude_max=True)
    options = {
        "truncate": st.builds(functools.partial, st.just(truncated), at=fraction),
        "flip": st.builds(
            functools.partial,
            st.just(flipped),
            spots=st.lists(st.tuples(fraction, st.integers(1, 255)), min_size=1, max_size=4),
            start=st.just(flip_from),
        ),
        "replace": st.builds(functools.partial, st.just(replaced), by=st.binary(max_size=300)),
    }
    chosen = [options[k] for k in kinds]
    if fields:
        chosen.append(
            st.sampled_from(fields).flatmap(
                lambda f: st.builds(
                    functools.partial,
                    st.just(with_field),
                    offset=st.just(f[0]),
                    width=st.just(f[1]),
                    value=st.integers(0, 256 ** f[1] - 1),
                )
            )
        )
    return st.one_of(chosen)


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    """An unsigned-byte IDX file as MNIST ships them."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + np.ascontiguousarray(arr, np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_LAYOUT = {  # variant: (label key, label names key, meta file), as the official archives spell them
    "cifar10": (b"labels", b"label_names", "batches.meta"),
    "cifar100": (b"fine_labels", b"fine_label_names", "meta"),
}


def write_cifar(
    root: Path,
    batches: dict[str, tuple[np.ndarray, list[int]]],
    label_names: list[str],
    variant: str = "cifar10",
) -> Path:
    """CIFAR python batches as protocol-2 pickles with bytes keys, from name → (N×3072 uint8 rows of R, G, B
    planes, N labels), and the meta file of label names."""
    label_key, names_key, meta = CIFAR_LAYOUT[variant]
    root.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        batch = {b"data": data, label_key: [int(x) for x in labels]}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    (root / meta).write_bytes(pickle.dumps({names_key: [n.encode() for n in label_names]}, protocol=2))
    return root


def write_cifar10(root: Path, n_per_batch: int = 4) -> Path:
    """A CIFAR-10 python folder: data_batch_1..5, test_batch, batches.meta, of random images."""
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        batches[name] = (data, [int(x) for x in rng.integers(0, 10, n_per_batch)])
    return write_cifar(root, batches, CIFAR10_NAMES)


def write_lmdb(root: Path, values: dict[bytes, bytes]) -> Path:
    """An LSUN-style LMDB database (keys → encoded images) at root."""
    import lmdb

    env = lmdb.open(str(root), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key, value)
    env.close()
    return root


def encoded(a: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    """An image's bytes as a file of format fmt holds them."""
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt, **kw)
    return buf.getvalue()


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `dcgan` entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "dcgan.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=240
    )


# pytorch/examples dcgan/main.py, written out here so their state dicts are built under their key names.
class ExamplesG(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class ExamplesD(nn.Module):
    def __init__(self, ndf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def randomize(net: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial running stats, so eval mode is checked too
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return net.eval()


COLOURS = np.array([[220, 30, 30], [30, 220, 30], [30, 30, 220], [220, 220, 30]])


def coloured(n: int, seed: int, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """n noisy images whose class (0…3) is their dominant colour: linearly separable."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    noise = rng.normal(0, 40, (n, size, size, 3))
    return np.clip(COLOURS[y][:, None, None, :] + noise, 0, 255).astype(np.uint8), y


def prepare_coloured(root, name: str, n: int, seed: int) -> None:
    """root/name: a prepared labelled dataset of `coloured` images, made through the CLI."""
    x, y = coloured(n, seed)
    np.savez(root / f"{name}.npz", images=x, labels=y)
    assert run_cli("prepare", str(root / f"{name}.npz"), str(root / name), "--size", "16").returncode == 0


# ---------------------------------------------------------------- reading back (the readers' contract)

# Each example writes and reads real files: few examples, and no deadline for the slow first one.
QUICK = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**32 - 1)  # pixels come from a seeded generator: Hypothesis varies the structure


def read_all(path, **kw):
    """(Source, its items), or (the DcganError raised on the way, None)."""
    try:
        src = open_source(path, **kw)
        return src, list(src.items())
    except DcganError as e:
        return e, None


def assert_fails_or_is_consistent(path, named: str, **kw) -> None:
    """The readers' contract for a damaged file: a DcganError that names it, or items that agree with the
    Source (its count, its grey flag, its label names) and are uint8 images. Any other exception escapes."""
    src, got = read_all(path, **kw)
    event(type(src).__name__)  # --hypothesis-show-statistics: how often damage was still readable
    if isinstance(src, DcganError):
        assert named in str(src)
        return
    assert src.count == len(got) > 0
    for raw, label, _ in got:
        assert isinstance(raw, np.ndarray) and raw.dtype == np.uint8
        assert raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] in (1, 3, 4))
        assert src.grey == (raw.ndim == 2 or raw.shape[2] == 1)
        assert label is None or src.label_names is None or 0 <= label < len(src.label_names)


def run_with_grids(
    tiny_run: Path, dest: Path, n: int, side: int = 138, seed: int = 0, every: int = 100
) -> Path:
    """A copy of a run at dest with n more grids over training (noise, so they do not compress away), at
    steps every, 2·every, …"""
    import shutil

    shutil.copytree(tiny_run, dest)
    for i, a in enumerate(rng_images(n, side, side, 3, seed=seed)):
        Image.fromarray(a).save(dest / "samples" / f"step-{(i + 1) * every:08d}.png")
    return dest


# ---------------------------------------------------------------- a real browser (Debian's chromium)


@contextlib.contextmanager
def browser(javascript: bool = True, width: int = 1200, height: int = 900) -> Iterator:
    """Headless Debian chromium driven by Selenium through Debian's chromedriver (nothing is downloaded);
    skips the test with the reason where either is missing. The driver keeps the console log."""
    import shutil

    import pytest

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("needs Debian's chromium and chromium-driver (make test installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (make test installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def full_page_screenshot(driver, path: Path) -> None:
    """The whole page, not just the window: the window is grown until its viewport holds the document (the
    window's own frame takes some of its height, and a page may grow as it lays out again)."""
    for _ in range(3):
        height, view = driver.execute_script(
            "return [document.documentElement.scrollHeight, window.innerHeight]"
        )
        if height <= view:
            break
        frame = driver.get_window_size()["height"] - view
        driver.set_window_size(driver.get_window_size()["width"], min(height + frame + 20, 16000))
    height, view = driver.execute_script("return [document.documentElement.scrollHeight, window.innerHeight]")
    assert height <= view, f"the page ({height} px) does not fit a window of at most 16000 px"
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(code: str, *args: str, world: int = 2, timeout: float = 120, env: dict | None = None) -> None:
    """Run `python -c code args` as `world` ranks of one gloo group (as torchrun would: the environment, a
    free port; `env` added) and wait for all of them; any failure fails the test with that rank's stderr."""
    port = free_port()
    procs = []
    for rank in range(world):
        ranks = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                 "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                 "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", **(env or {})}  # fmt: skip
        cmd = [sys.executable, "-c", code, *args]
        procs.append(subprocess.Popen(cmd, env=ranks, stderr=subprocess.PIPE, text=True))
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, err
