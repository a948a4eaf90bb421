"""Helpers every command module uses: a subcommand parser whose help ends with an example, and the
generator a command names by its RUN argument."""

from __future__ import annotations

import argparse
import sys
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

    if getattr(a, "from_examples", None):
        return api.load_examples_generator(a.from_examples, a.device)
    if not a.run:
        raise DcganError(
            "give a run folder, a checkpoint or a generator .safetensors (or --from-examples PTH)"
        )
    return api.load_generator(a.run, a.device)


def run_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder, checkpoint folder or generator .safetensors")
    device_arguments(p)


def threads_argument(text: str) -> int:
    from dcgan.threads import parse_threads

    try:
        return parse_threads(text)
    except DcganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=threads_argument,
        default=0,
        metavar="auto|N",
        help="CPU threads: auto (default) times the work and keeps the fastest count as the machine's load "
        "changes; N pins N (as OMP_NUM_THREADS does)",
    )


def device_arguments(p: argparse.ArgumentParser) -> None:
    """--device, and --threads for when it is the CPU."""
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    add_threads(p)
