"""Helpers every command module uses: a subcommand parser whose help ends with an example, and the
generator a command names by its RUN argument."""

from __future__ import annotations

import argparse
import ctypes.util
import os
import sys
from collections.abc import Sequence
from typing import Any

from dcgan.errors import DcganError


def parser_for(sub: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def log(msg: str) -> None:
    """Progress lines of long commands: on stderr, so stdout keeps only the results."""
    print(msg, file=sys.stderr, flush=True)


def generator_from_args(a: argparse.Namespace) -> Any:
    """G (its ModelConfig in `.cfg`) from the command's RUN argument (or --from-examples), on --device."""
    from dcgan import api

    precision = getattr(a, "precision", "fp32")
    if getattr(a, "from_examples", None):
        return api.load_examples_generator(a.from_examples, a.device, precision)
    if not a.run:
        raise DcganError(
            "give a run folder, a checkpoint or a generator .safetensors (or --from-examples PTH)"
        )
    return api.load_generator(a.run, a.device, precision)


def run_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder, checkpoint folder or generator .safetensors")
    device_arguments(p)
    precision_argument(p)


def precision_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16"),
        help="how G (and evaluate's extractor) run: auto (default) bf16 on CPUs that run it natively "
        "(~2× faster there; 99%% of pixels within one level of fp32's), else fp32",
    )


def threads_argument(text: str) -> int:
    """--threads: "auto" (0, dcgan.threads.AUTO) or a positive count. Parsed here without importing
    dcgan.threads, which imports torch: the command re-executes under tcmalloc after parsing."""
    if text == "auto":
        return 0
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--threads takes 'auto' or a number of threads ≥ 1, got {text!r}")
    return int(text)


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=threads_argument,
        default=0,
        metavar="auto|N",
        help="CPU threads: auto (default) times training steps and generation and feature batches and keeps "
        "the count fastest as the machine's load changes; N pins N (as OMP_NUM_THREADS does)",
    )


def device_arguments(p: argparse.ArgumentParser) -> None:
    """--device, and --threads for when it is the CPU."""
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    add_threads(p)


def preload_tcmalloc(argv: Sequence[str]) -> None:
    """Re-exec under tcmalloc when it is installed: glibc malloc maps and frees the activation buffers of
    every step or batch, which costs ~1.3× in training on CPU. DCGAN_NO_TCMALLOC=1 turns this off."""
    preload = os.environ.get("LD_PRELOAD", "")
    if sys.platform != "linux" or "tcmalloc" in preload or os.environ.get("DCGAN_NO_TCMALLOC"):
        return
    lib = ctypes.util.find_library("tcmalloc_minimal")
    if lib:
        env = {**os.environ, "LD_PRELOAD": f"{lib} {preload}".strip(), "DCGAN_NO_TCMALLOC": "1"}
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "dcgan.cli", *argv], env)
