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
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from damage import damage_bytes, damage_json  # noqa: F401 (re-exported for tests and replays)
from families import FAMILIES, Family, make_case, tiny_cfg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the suite's writers of valid files in every format

OUTCOMES = ("clean", "accepted", "crash", "hang", "memory")
ADDRESS_SPACE = 4 << 30
# A worker is replaced after this many cases: each `dcgan` command is a fresh process, and a long-lived one
# slowly grows its address space (~25 KB a case: interpreter caches) toward the limit, which would count
# as a memory failure of whatever case happened to cross it.
RECYCLE = 1000


# ---------------------------------------------------------------- damage


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
                    api.train(Path(argv[1]) / "ds", Path(argv[1]) / "run", tiny_cfg(), progress=False)
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
                    shutil.copytree(case_dir, dest, symlinks=True, copy_function=copy_any)
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


def copy_any(src: str, dst: str) -> None:
    """shutil.copy2, and a pipe recreated as one (a finding may be a pipe where a file belongs)."""
    if stat.S_ISFIFO(os.lstat(src).st_mode):
        os.mkfifo(dst)
    else:
        shutil.copy2(src, dst)


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
