"""The families of `make fuzz`: for each kind of file `dcgan` reads, a small valid seed, the command a user
would run on it, and which of its files a case damages (make_case). The seeds are written with the suite's
helpers (tests/helpers.py, put on the path by campaign.py)."""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from damage import damage_bytes, damage_json, damage_npy, damage_pickle, damage_torch


@dataclass
class Family:
    name: str
    build: Callable[[Path], Path]  # writes the valid seed under a folder, returns what the target reads
    argv: Callable[[Path, Path], list[str]]  # (input, scratch folder) → a `dcgan` command line
    pick: Callable[[Path], list[Path]] = lambda p: (
        [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    )
    share: float = 1.0  # of --per-family: a slow command (the report draws a figure, ~0.4 s) runs fewer


def _prepare(inp: Path, scratch: Path) -> list[str]:
    return ["prepare", str(inp), str(scratch / "out"), "--size", "8", "--workers", "1", "--quiet"]


def _idx(root: Path, gz: bool) -> Path:
    from helpers import rng_images, write_idx

    d = root / "idx"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", rng_images(12, 8, 8), gz=gz)
    write_idx(d / "train-labels-idx1-ubyte", np.arange(12, dtype=np.uint8) % 10, gz=gz)
    return d


def _npy(root: Path) -> Path:
    from helpers import rng_images

    np.save(root / "x.npy", rng_images(12, 8, 8, 3))
    return root / "x.npy"


def _npz(root: Path) -> Path:
    from helpers import rng_images

    np.savez_compressed(root / "x.npz", x=rng_images(12, 8, 8, 3), y=np.arange(12) % 3)
    return root / "x.npz"


def _cifar(root: Path) -> Path:
    from helpers import write_cifar10

    return write_cifar10(root / "cifar-10-batches-py", n_per_batch=3)


def _cifar_tar(root: Path) -> Path:
    folder = _cifar(root)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as t:
        t.add(folder, arcname=folder.name)
    shutil.rmtree(folder)
    return root / "cifar-10-python.tar.gz"


def _svhn(root: Path) -> Path:
    import scipy.io

    from helpers import rng_images

    x = rng_images(6, 32, 32, 3).transpose(1, 2, 3, 0)
    scipy.io.savemat(root / "train_32x32.mat", {"X": x, "y": (np.arange(6) % 10 + 1)[:, None]})
    return root / "train_32x32.mat"


FORMATS = (("png", "PNG", {}), ("jpg", "JPEG", {}), ("gif", "GIF", {}), ("bmp", "BMP", {}),
           ("webp", "WEBP", {}), ("tif", "TIFF", {}), ("png", "PNG", {"bits": 16}))  # fmt: skip


def _image_files(d: Path) -> None:
    from helpers import encoded, rng_images

    for i, (ext, fmt, kw) in enumerate(FORMATS):
        a = rng_images(1, 10 + i, 12, 3, seed=i)[0]
        if kw.get("bits"):
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(a[..., 0].astype(np.uint16) * 257).save(buf, format="PNG")
            data = buf.getvalue()
        else:
            data = encoded(a, fmt)
        (d / ("a" if i % 2 else "b")).mkdir(parents=True, exist_ok=True)
        (d / ("a" if i % 2 else "b") / f"{i}.{ext}").write_bytes(data)


def _folder(root: Path) -> Path:
    _image_files(root / "images")
    return root / "images"


def _zip(root: Path) -> Path:
    folder = _folder(root)
    with zipfile.ZipFile(root / "images.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, f.relative_to(root))
    shutil.rmtree(folder)
    return root / "images.zip"


def _lmdb(root: Path) -> Path:
    from helpers import encoded, rng_images, write_lmdb

    values = {f"{i:04d}".encode(): encoded(a, "WEBP") for i, a in enumerate(rng_images(40, 12, 12, 3))}
    values |= {f"big{i}".encode(): encoded(a) for i, a in enumerate(rng_images(2, 40, 40, 3, seed=1))}
    return write_lmdb(root / "db", values)


def _dataset(root: Path) -> Path:
    from dcgan.data.prepare import prepare

    np.save(root / "x.npy", np.random.default_rng(0).integers(0, 256, (12, 8, 8, 3), np.uint8))
    np.save(root / "y.npy", np.arange(12) % 3)
    prepare(root / "x.npy", root / "ds", size=8, progress=False)
    (root / "x.npy").unlink()
    (root / "y.npy").unlink()
    return root / "ds"


def _run(root: Path) -> Path:
    """A tiny 16² run trained 4 steps with a checkpoint at step 4 (root/run), its dataset beside it (root/ds);
    returns root."""
    from dcgan.data.prepare import prepare
    from dcgan.training.loop import train

    np.save(root / "x.npy", np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), np.uint8))
    prepare(root / "x.npy", root / "ds", size=16, progress=False)
    (root / "x.npy").unlink()
    train(tiny_cfg(), root / "ds", root / "run", progress=False, log=lambda s: None)
    return root


def tiny_cfg():
    from dcgan.config import ModelConfig, TrainConfig

    model = ModelConfig.pyramid(16, channels=3, width=8, z_dim=8)
    return TrainConfig(
        preset="tiny", model=model, batch=4, kimg=0.016, precision="fp32", device="cpu", ckpt_every=4
    )


def _generator(root: Path) -> Path:
    run = _run(root) / "run"
    shutil.copy(run / "generator.safetensors", root / "generator.safetensors")
    shutil.rmtree(run)
    shutil.rmtree(root / "ds")
    return root / "generator.safetensors"


def _examples(root: Path) -> Path:
    import torch

    from helpers import ExamplesG, randomize

    torch.save(randomize(ExamplesG(nz=8, ngf=4, nc=3)).state_dict(), root / "netG_epoch_3.pth")
    return root / "netG_epoch_3.pth"


def _extractor(root: Path) -> Path:
    from dcgan.metrics.extractors import DomainExtractor, ExtractorConfig, save_extractor

    cfg = ExtractorConfig(name="fz", image_size=16, channels=3, classes=3, widths=(4, 4, 4))
    save_extractor(DomainExtractor(cfg), root / "fz.safetensors")
    return root / "fz.safetensors"


class _Zeros(io.RawIOBase):
    """n zero bytes as a file to read from, never held whole."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def _deflated(head: bytes, zeros: int, wbits: int) -> bytes:
    """head then `zeros` zero bytes, deflated (wbits 31: a gzip file, 15: a zlib stream)."""
    c, chunk = zlib.compressobj(9, zlib.DEFLATED, wbits), bytes(1 << 20)
    out = [c.compress(head)] + [c.compress(chunk) for _ in range(zeros >> 20)]
    return b"".join([*out, c.compress(bytes(zeros % (1 << 20))), c.flush()])


def _bombs(root: Path) -> Path:
    """Small files that expand to gigabytes, one per folder: gzipped IDX files whose header claims less or
    more than the stream holds, a zip member, an .npz member, a CIFAR tarball member and a compressed MAT
    element, each of zeros behind a plausible header."""
    d = root / "bombs"
    size = 5 << 30  # past the 4 GiB address-space limit: read whole, it cannot fit
    for name, count in (("idx-short", 60000), ("idx-long", 1 << 24)):
        (d / name).mkdir(parents=True)
        head = bytes([0, 0, 8, 3]) + struct.pack(">III", count, 28, 28)
        (d / name / "train-images-idx3-ubyte.gz").write_bytes(_deflated(head, size, 31))
    (d / "zip").mkdir()
    with (
        zipfile.ZipFile(d / "zip" / "images.zip", "w", zipfile.ZIP_DEFLATED) as z,
        z.open("a/x.png", "w", force_zip64=True) as f,
    ):
        f.write(b"\x89PNG\r\n\x1a\n")
        shutil.copyfileobj(_Zeros(size), f, 1 << 20)
    (d / "npz").mkdir()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (size // 192, 8, 8, 3)}
    )
    with (
        zipfile.ZipFile(d / "npz" / "x.npz", "w", zipfile.ZIP_DEFLATED) as z,
        z.open("x.npy", "w", force_zip64=True) as f,
    ):
        f.write(header.getvalue())
        shutil.copyfileobj(_Zeros(size), f, 1 << 20)
    (d / "cifar").mkdir()
    with tarfile.open(d / "cifar" / "cifar-10-python.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = size
        t.addfile(info, _Zeros(size))
    (d / "mat").mkdir()
    n = (4 << 30) - 4096  # a MAT element's size is 32 bits
    dims = struct.pack("<4i", 32, 32, 3, n // 3072)
    data = n // 3072 * 3072
    array = (
        struct.pack("<II", 6, 8)
        + bytes([9, 0, 0, 0, 0, 0, 0, 0])  # flags: class uint8
        + struct.pack("<II", 5, 16)
        + dims
        + struct.pack("<HH", 1, 1)
        + b"X\0\0\0"  # a small element: the name X
        + struct.pack("<II", 2, data)
    )
    element = struct.pack("<II", 14, len(array) + data) + array
    inner = _deflated(element, data, 15)
    head = b"MATLAB 5.0 MAT-file, fuzz".ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    (d / "mat" / "train_32x32.mat").write_bytes(head + struct.pack("<II", 15, len(inner)) + inner)
    return d


def _bomb_argv(inp: Path, scratch: Path) -> list[str]:
    """`prepare` on the bomb this case chose (make_case marked it with a leading "~")."""
    chosen = next(inp.rglob("~*"))
    target = chosen.rename(chosen.with_name(chosen.name[1:]))
    return _prepare(target.parent if "idx" in target.name else target, scratch)


FAMILIES = [
    Family("idx", lambda r: _idx(r, gz=False), _prepare),
    Family("idx-gz", lambda r: _idx(r, gz=True), _prepare),
    Family("npy", _npy, _prepare),
    Family("npz", _npz, _prepare),
    Family("cifar", _cifar, _prepare),
    Family("cifar-tar", _cifar_tar, _prepare),
    Family("svhn-mat", _svhn, _prepare),
    Family("image-folder", _folder, _prepare),
    Family("zip", _zip, _prepare),
    Family("lmdb", _lmdb, _prepare),
    Family("bombs", _bombs, _bomb_argv),
    Family("dataset", _dataset, lambda p, s: ["info", str(p), "--grid", str(s / "grid.png")]),
    Family("generator", _generator, lambda p, s: ["sample", str(p), "--seeds", "0-3", "--grid", str(s / "g.png")]),
    Family(
        "examples-pth",
        _examples,
        lambda p, s: ["sample", "--from-examples", str(p), "--seeds", "0-3", "--grid", str(s / "g.png")],
    ),
    Family("extractor", _extractor, lambda p, s: ["@extractor", str(p)]),
    Family(
        "run-resume",
        _run,
        lambda p, s: ["@resume", str(p)],
        pick=lambda p: sorted(q for q in (p / "run").rglob("*") if q.is_file()),
    ),
    Family(
        "run-report",
        _run,
        lambda p, s: ["report", str(p / "run"), "--out", str(s / "report.html")],
        pick=lambda p: sorted(q for q in (p / "run").rglob("*") if q.is_file()),
        share=0.1,
    ),
]  # fmt: skip


def make_case(family: Family, seed_path: Path, case_dir: Path, rng: random.Random) -> Path:
    """A copy of the family's seed with one of its files damaged. Bombs are large: the case links to the
    seed's files, marks the bomb it uses with a leading "~" and, half the time, damages its first 4 KiB."""
    inp = case_dir / seed_path.name
    bombs = family.name == "bombs"
    if seed_path.is_dir():
        shutil.copytree(seed_path, inp, copy_function=os.link if bombs else shutil.copy2)
    else:
        shutil.copy(seed_path, inp)
    victim = rng.choice(family.pick(inp))
    data = victim.read_bytes()
    victim.unlink()  # a link to the seed: never write through it
    if bombs:
        victim = victim.with_name("~" + victim.name)
        if rng.random() < 0.5:
            data = damage_bytes(data[:4096], rng) + data[4096:]
        victim.write_bytes(data)
    elif rng.random() < SPECIAL_SHARE:
        special(victim, rng)
    else:
        victim.write_bytes(damage_for(victim)(data, rng))
    return inp


SPECIAL_SHARE = 0.08  # of the cases: the file is no longer a regular file at all
# CIFAR's pickled files: its batches and meta (CIFAR-10), train, test and meta (CIFAR-100)
PICKLED = {*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta", "meta", "train", "test"}


def damage_for(victim: Path) -> Callable[[bytes, random.Random], bytes]:
    """Structured damage (a value of the wrong kind) for what decodes to Python objects, else bytes."""
    if victim.suffix == ".json":
        return damage_json
    structured = {".pt": damage_torch, ".pth": damage_torch, ".npy": damage_npy}.get(victim.suffix)
    if structured is None and victim.name in PICKLED:
        structured = damage_pickle
    if structured is None:
        return damage_bytes
    return lambda data, rng: (structured if rng.random() < 0.5 else damage_bytes)(data, rng)


def special(victim: Path, rng: random.Random) -> None:
    """The file replaced by what a reader must not open blindly: a pipe (reading it waits for a writer), a
    link to an endless device, a dangling link, a link to itself, or an empty folder."""
    kind = rng.choice(("fifo", "dev-zero", "dangling", "loop", "folder"))
    if kind == "fifo":
        os.mkfifo(victim)
    elif kind == "dev-zero":
        victim.symlink_to("/dev/zero")
    elif kind == "dangling":
        victim.symlink_to(victim.with_name("nowhere"))
    elif kind == "loop":
        victim.symlink_to(victim.name)
    else:
        victim.mkdir()
