"""A fuzzing campaign: thousands of damaged and hostile files per family against the commands that read them.

    python fuzz/campaign.py --per-family 1000 --record docs/RELIABILITY.md      (make fuzz)

Each family starts from small valid files of one kind (IDX, .npy, CIFAR, a run's checkpoint, ...), damages
one of them per case (truncation, flipped bytes, header fields set to extremes, spans inserted, deleted or
repeated, JSON values of the wrong type) and hands the result to the command a user would run on it, in a
worker process under a 4 GiB address-space limit. Each case ends as one of

    clean     a DcganError: exit 2 and one line that names the problem
    accepted  the command succeeded (the damage did not matter, or was skipped and listed)
    crash     a traceback, more than one line, or the worker killed by a signal
    hang      no answer within --timeout seconds
    memory    MemoryError or an allocation failure under the address-space limit

and the counts per family are printed (and, with --record, written into RELIABILITY.md between its fuzz
markers). A case that crashed, hung or blew memory is kept under fuzz/findings/ to reproduce. Cases are a
function of (family, index, --seed), so `--family idx --only 417` replays one — except in the families built
from a freshly trained run, whose files hold timings: there the finding's folder is the exact case.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the suite's writers of valid files in every format

OUTCOMES = ("clean", "accepted", "crash", "hang", "memory")
ADDRESS_SPACE = 4 << 30
# A worker is replaced after this many cases: each `dcgan` command is a fresh process, and a long-lived one
# slowly grows its address space (~25 KB a case: interpreter caches) toward the limit, which would count
# as a memory failure of whatever case happened to cross it.
RECYCLE = 1000


# ---------------------------------------------------------------- damage


EXTREMES = (0, 1, 2**7, 2**8 - 1, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**40, 2**63 - 1, 2**64 - 1)


def damage_bytes(data: bytes, rng: random.Random) -> bytes:
    """One of: truncate, flip 1-8 bytes, set a 1/2/4/8-byte field to an extreme (either byte order), insert,
    delete or repeat a span, or replace everything by random bytes. Damage near the start (headers) is
    drawn more often than its share of the length."""
    n = len(data)

    def spot() -> int:
        return min(int(rng.expovariate(1 / 64)), n - 1) if rng.random() < 0.6 else rng.randrange(max(n, 1))

    kind = rng.choice(("truncate", "flip", "field", "insert", "delete", "repeat", "replace"))
    if n == 0 or kind == "replace":
        return rng.randbytes(rng.choice((0, 1, 16, 300, 5000)))
    if kind == "truncate":
        return data[: spot()]
    out = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            out[spot()] ^= rng.randint(1, 255)
    elif kind == "field":
        width = rng.choice((1, 2, 4, 8))
        value = rng.choice(EXTREMES) % 256**width
        at = spot()
        out[at : at + width] = value.to_bytes(width, rng.choice(("big", "little")))
    elif kind == "insert":
        at = spot()
        out[at:at] = rng.randbytes(rng.choice((1, 4, 100, 4096)))
    elif kind == "delete":
        at = spot()
        del out[at : at + rng.choice((1, 4, 100, 4096))]
    else:
        at = spot()
        out[at:at] = bytes(out[at : at + rng.choice((4, 100, 4096))]) * rng.choice((2, 100))
    return bytes(out)


WRONG = (None, True, -1, 0, 2**63, 1e308, float("nan"), "", "x" * 300, [], [1, "a"], {}, {"k": None})


def damage_json(data: bytes, rng: random.Random) -> bytes:
    """A JSON object with one value (at any depth) replaced by one of the wrong type, or a key deleted; or
    the bytes damaged as any file's are; or, now and then, arrays nested past Python's recursion limit."""
    if rng.random() < 0.03:
        depth = rng.choice((1_000, 100_000))
        return b"[" * depth + b"]" * depth
    try:
        doc = json.loads(data)
    except ValueError:
        return damage_bytes(data, rng)
    if rng.random() < 0.3 or not isinstance(doc, dict) or not doc:
        return damage_bytes(data, rng)
    node, key = doc, None
    while True:
        key = rng.choice(list(node))
        child = node[key]
        if isinstance(child, dict) and child and rng.random() < 0.5:
            node = child
            continue
        break
    if rng.random() < 0.3:
        del node[key]
    else:
        node[key] = rng.choice(WRONG)
    return json.dumps(doc).encode()


# ---------------------------------------------------------------- families: valid seeds and their targets


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
    train(_tiny_cfg(), root / "ds", root / "run", progress=False, log=lambda s: None)
    return root


def _tiny_cfg():
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
    else:
        victim.write_bytes((damage_json if victim.suffix == ".json" else damage_bytes)(data, rng))
    return inp


# ---------------------------------------------------------------- the worker: one command per case


def worker() -> None:
    """Read cases (JSON lines) on stdin; answer each with its outcome on stdout."""
    import torch

    from dcgan import api
    from dcgan.cli import main
    from dcgan.errors import DcganError

    torch.set_num_threads(1)
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    # answers go to a private copy of fd 1; fd 1 itself (where C libraries and children write) is /dev/null
    real_out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    print("ready", file=real_out, flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        argv, err = case["argv"], io.StringIO()
        outcome, detail = "accepted", ""
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                if argv[0] == "@extractor":
                    api.extractor(argv[1], device="cpu")
                    rc = 0
                elif argv[0] == "@resume":
                    api.train(Path(argv[1]) / "ds", Path(argv[1]) / "run", _tiny_cfg(), progress=False)
                    rc = 0
                else:
                    rc = main(argv)
            if rc == 2:
                lines = err.getvalue().strip().splitlines()
                outcome = "clean" if len(lines) == 1 and "Traceback" not in lines[0] else "crash"
                detail = err.getvalue().strip()[-300:]
            elif rc != 0:
                outcome, detail = "crash", f"exit status {rc}: {err.getvalue().strip()[-300:]}"
        except DcganError as e:
            outcome, detail = ("clean" if "\n" not in str(e) else "crash"), str(e)[:300]
        except MemoryError:
            outcome, detail = "memory", "MemoryError\n" + traceback.format_exc()[-1500:]
        except BaseException as e:  # classifying every escape is the point
            text = f"{type(e).__name__}: {e}"
            oom = isinstance(e, RuntimeError) and "allocate" in str(e)
            outcome, detail = (
                ("memory" if oom else "crash"),
                text[:300] + "\n" + traceback.format_exc()[-1500:],
            )
        print(json.dumps({"outcome": outcome, "detail": detail}), file=real_out, flush=True)


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            start_new_session=True,  # a hang is killed with whatever it started
        )
        if self._line(120) != "ready":
            raise RuntimeError("the fuzz worker did not start")
        self.served = 0

    def _line(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline().strip() or None

    def run(self, argv: list[str], timeout: float) -> tuple[str, str]:
        assert self.proc.stdin is not None
        self.served += 1
        self.proc.stdin.write(json.dumps({"argv": argv}) + "\n")
        self.proc.stdin.flush()
        line = self._line(timeout)
        if line is not None:
            answer = json.loads(line)
            return answer["outcome"], answer["detail"]
        if self.proc.poll() is None:
            self.kill()
            return "hang", f"no answer in {timeout:.0f} s"
        code = self.proc.wait()
        name = signal.Signals(-code).name if code < 0 else f"exit status {code}"
        return "crash", f"worker died: {name}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None


# ---------------------------------------------------------------- the campaign


def campaign(
    families: list[Family],
    per_family: int,
    seed: int,
    timeout: float,
    only: int | None,
    keep: Path,
    show: bool,
) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    w = Worker()
    with tempfile.TemporaryDirectory(prefix="dcgan-fuzz-") as tmp:
        for fam in families:
            seeds = Path(tmp) / fam.name / "seed"
            seeds.mkdir(parents=True)
            seed_path = fam.build(seeds)
            c = counts[fam.name] = Counter()
            t0 = time.perf_counter()
            for i in range(max(1, round(per_family * fam.share))) if only is None else [only]:
                rng = random.Random(f"{fam.name}/{seed}/{i}")
                case_dir = Path(tmp) / fam.name / f"case-{i}"
                case_dir.mkdir()
                inp = make_case(fam, seed_path, case_dir, rng)
                scratch = case_dir / "scratch"
                scratch.mkdir()
                argv = fam.argv(inp, scratch)
                if not w.alive() or w.served >= RECYCLE:
                    w.kill()
                    w = Worker()
                outcome, detail = w.run(argv, timeout)
                c[outcome] += 1
                if show:
                    print(
                        f"  {fam.name} #{i}: {outcome}: {(detail.splitlines() or [''])[0][:160]}", flush=True
                    )
                if outcome in ("crash", "hang", "memory"):
                    shutil.rmtree(scratch, ignore_errors=True)
                    dest = keep / f"{fam.name}-{i}"
                    shutil.rmtree(dest, ignore_errors=True)
                    shutil.copytree(case_dir, dest, symlinks=True)
                    (dest / "finding.txt").write_text(f"{outcome}\n{' '.join(argv)}\n\n{detail}\n")
                    print(
                        f"  {fam.name} #{i}: {outcome}: {detail.splitlines()[0] if detail else ''}",
                        flush=True,
                    )
                    if not w.alive():
                        w = Worker()
                shutil.rmtree(case_dir, ignore_errors=True)
            dt = time.perf_counter() - t0
            print(
                f"{fam.name:14s} " + " ".join(f"{o} {c[o]:5d}" for o in OUTCOMES) + f"   ({dt:.0f} s)",
                flush=True,
            )
            shutil.rmtree(seeds.parent, ignore_errors=True)
    w.kill()
    return counts


def table(counts: dict[str, Counter]) -> str:
    rows = ["| family | inputs | " + " | ".join(OUTCOMES) + " |", "|---|---:|" + "---:|" * len(OUTCOMES)]
    total: Counter = Counter()
    for name, c in counts.items():
        total.update(c)
        rows.append(f"| {name} | {sum(c.values()):,} | " + " | ".join(f"{c[o]:,}" for o in OUTCOMES) + " |")
    rows.append(
        f"| **all** | {sum(total.values()):,} | " + " | ".join(f"{total[o]:,}" for o in OUTCOMES) + " |"
    )
    return "\n".join(rows)


def record(path: Path, counts: dict[str, Counter], command: str, seconds: float) -> None:
    """Replace what lies between RELIABILITY.md's fuzz markers by this campaign's table."""
    begin, end = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"
    text = path.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{path} has no {begin} … {end} markers to record into")
    block = (
        f"{begin}\n`{command}` — {time.strftime('%Y-%m-%d')}, {seconds / 60:.0f} min, each case under a "
        f"{ADDRESS_SPACE >> 30} GiB address-space limit:\n\n{table(counts)}\n{end}"
    )
    path.write_text(text[: text.index(begin)] + block + text[text.index(end) + len(end) :])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-family", type=int, default=1000, help="cases per family (default 1000)")
    p.add_argument("--family", action="append", help="only these families (repeatable)")
    p.add_argument("--only", type=int, help="replay one case index")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60, help="seconds a case may take (default 60)")
    p.add_argument("--keep", type=Path, default=ROOT / "fuzz" / "findings", help="where failing cases go")
    p.add_argument("--record", type=Path, help="write the counts into this file's fuzz markers")
    p.add_argument("--show", action="store_true", help="print every case's outcome and message")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker()
        return 0
    chosen = [f for f in FAMILIES if not args.family or f.name in args.family]
    if args.family and len(chosen) != len(set(args.family)):
        raise SystemExit(f"unknown family; choose from {', '.join(f.name for f in FAMILIES)}")
    t0 = time.perf_counter()
    counts = campaign(chosen, args.per_family, args.seed, args.timeout, args.only, args.keep, args.show)
    print(table(counts))
    if args.record:
        cmd = "python fuzz/campaign.py " + " ".join(sys.argv[1:])
        record(args.record, counts, cmd.replace(f" --record {args.record}", ""), time.perf_counter() - t0)
    bad = sum(c[o] for c in counts.values() for o in ("crash", "hang", "memory"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
