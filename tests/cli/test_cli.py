"""The `dcgan` command as users run it: real subprocesses, exit codes, one-line errors, examples in --help."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dcgan import threads
from dcgan.cli import build_parser
from dcgan.cli.common import threads_argument

from helpers import run_cli, write_idx


def test_prepare_then_info_with_a_grid(image_folder, tmp_path):
    out = tmp_path / "ds"
    r = run_cli("prepare", str(image_folder), str(out), "--size", "16", "--labels", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote 6 images 16×16×3 to") and "0 skipped" in r.stdout
    r = run_cli("info", str(out), "--grid", str(tmp_path / "g.png"), "--num", "4")
    assert r.returncode == 0, r.stderr
    assert "6 × 16×16×3" in r.stdout and "cats" in r.stdout and "image-folder" in r.stdout
    grid = Image.open(tmp_path / "g.png")
    assert grid.size == (2 * 64 + 3 * 2, 2 * 64 + 3 * 2)  # 2×2 cells of 16² images shown at 64², 2-px gaps
    r = run_cli("info", str(out), "--json")
    assert json.loads(r.stdout)["shape"] == [6, 16, 16, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prepare", "{tmp}/missing", "{tmp}/out", "--size", "32"], "does not exist"),
        (["prepare", "{tmp}/notes.txt", "{tmp}/out", "--size", "32"], "(a text file)"),
        (
            ["prepare", "{tmp}/train-images-idx3-ubyte", "{tmp}/out", "--size", "0"],
            "size must be an integer from 4",
        ),
        (
            ["prepare", "{tmp}/train-images-idx3-ubyte", "{tmp}/out", "--size", "8", "--background", "mauve"],
            "expected a colour",
        ),
        (["prepare", "{tmp}/empty", "{tmp}/out", "--size", "8"], "no images found"),
        (["prepare", "{tmp}/train-images-idx3-ubyte", "{tmp}/exists", "--size", "8"], "already exists"),
        (["info", "{tmp}/empty"], "expected a dataset folder made by `dcgan prepare`"),
        (["data", "fashion-mnist", "--dir", "{tmp}/empty", "--out", "{tmp}/fm"], "is not in"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_traceback(tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "exists").mkdir()
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 8, 8), np.uint8))
    r = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith(f"dcgan {args[0]}: error:")


def test_argparse_mistakes_exit_2():
    r = run_cli("prepare", "x")
    assert r.returncode == 2 and "required" in r.stderr


def test_parsing_a_command_imports_no_torch():
    """Every CPU command re-executes itself under tcmalloc after parsing its flags: a parser (or an argument
    type) that imported torch (1.2–1.5 s) would make every command pay for it twice."""
    args = ["train", "data", "--out", "run", "--threads", "2", "--precision", "auto", "--device", "cpu"]
    code = f"import sys; from dcgan.cli import build_parser; build_parser().parse_args({args!r}); "
    code += "print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
    from dcgan.cli.probes import SALIENCY_RULES
    from dcgan.probes.saliency import RULES

    assert SALIENCY_RULES == RULES  # --rule's choices, written out in the CLI for this reason


def test_threads_argument():
    assert threads_argument("auto") == threads.AUTO and threads_argument("3") == 3
    for bad in ("0", "-1", "two", "", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="--threads takes"):
            threads_argument(bad)


def test_every_command_help_ends_with_an_example():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "example:\n  dcgan " + name in text, name


def test_an_error_quoting_a_hostile_file_is_one_line_that_cannot_drive_the_terminal(tmp_path, capsys):
    """A CIFAR batch whose class name carries a newline, an ANSI escape and a record separator (which
    str.splitlines also breaks on): the message quotes it escaped (found by make fuzz)."""
    from dcgan.cli import main

    from helpers import write_cifar10

    root = write_cifar10(tmp_path / "cifar-10-batches-py")
    (root / "data_batch_2").write_bytes(b"\x80\x02cnumpy\nnd\x1b[31mar\x1eray\n.")
    assert main(["prepare", str(root), str(tmp_path / "out"), "--size", "8", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "\x1b" not in err and "\x1e" not in err
    assert "data_batch_2 is not a valid CIFAR batch" in err and "\\x1b[31m" in err
