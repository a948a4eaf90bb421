"""The run report (src/dcgan/report/page.py): self-contained, complete without JavaScript, within its image
budget, and safe with whatever the run folder holds."""

import io
import json
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dcgan.errors import DcganError
from dcgan.report.page import BUDGET, frame_steps, write_report

from helpers import rng_images, run_with_grids


@pytest.fixture
def run(tiny_run, tmp_path):
    """A copy of the tiny run with 40 grids over training."""
    return run_with_grids(tiny_run, tmp_path / "run", 40, seed=3)


def srcs(page: str) -> list[str]:
    return re.findall(r'\bsrc="([^"]*)"', page)


def test_the_report_is_one_file_with_every_section_and_every_grid(run):
    page = write_report(run).read_text()
    assert (run / "report.html").is_file()
    for section in ("summary", "curves", "progress", "final", "dataset", "config"):
        assert f'<section id="{section}">' in page
    assert frame_steps(page) == [0, 5] + [(i + 1) * 100 for i in range(40)]  # all listed: no JS needed
    assert srcs(page) and all(s.startswith("data:image/") for s in srcs(page))  # nothing to fetch
    assert "http://" not in page and "https://" not in page
    assert "No preset named" in page  # the tiny test preset has nothing to compare with


def test_grids_are_thinned_to_the_budget_keeping_the_first_and_the_newest(run):
    page = write_report(run, run / "small.html", budget=1 << 20).read_text()
    steps = frame_steps(page)
    assert steps[0] == 0 and steps[-1] == 4000 and 2 <= len(steps) < 42
    used = sum(len(s) for s in srcs(page))
    assert used <= 1 << 20
    assert "of a 1 MiB budget" in page


def test_a_run_that_changed_the_preset_lists_the_changes(run):
    meta = json.loads((run / "config.json").read_text())
    from dcgan.config import train_config

    cfg = train_config("fmnist32").to_dict()
    meta["train"] = cfg | {"lr": 0.0005, "batch": 64}
    (run / "config.json").write_text(json.dumps(meta))
    page = write_report(run).read_text()
    assert "Changed from the fmnist32 preset" in page and "lr: 0.0002 → 0.0005" in page


def _png_with_a_broken_second_idat() -> bytes:
    """A PNG whose pixels come in two IDAT chunks, the second with a type that is no chunk type: it opens,
    and Pillow raises SyntaxError only when it loads the pixels (found by make fuzz)."""
    good = io.BytesIO()
    Image.fromarray(rng_images(1, 64, 64, 3)[0]).save(good, format="PNG")
    d = good.getvalue()
    at = d.index(b"IDAT")
    n = struct.unpack(">I", d[at - 4 : at])[0]
    pixels = d[at + 4 : at + 4 + n]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        d[: at - 4]
        + chunk(b"IDAT", pixels[: n // 2])
        + chunk(b"\xef%\xb2\xf6", pixels[n // 2 :])
        + d[at + 8 + n :]
    )


def test_text_from_the_run_folder_is_escaped_and_damaged_files_are_left_out(run):
    meta = json.loads((run / "config.json").read_text())
    meta["train"]["preset"] = "<script>alert(1)</script>"
    (run / "config.json").write_text(json.dumps(meta))
    (run / "evaluate.json").write_text(json.dumps({"fid[x]": 12.5, "note": "<img src=x onerror=alert(1)>"}))
    (run / "samples" / "step-00000150.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (run / "samples" / "step-00000250.png").write_bytes(_png_with_a_broken_second_idat())
    (run / "figures").mkdir()
    frames = [Image.fromarray(a) for a in rng_images(3, 16, 16, 3)]
    frames[0].save(run / "figures" / "walk.gif", save_all=True, append_images=frames[1:])
    (run / "figures" / "fake.png").write_bytes(b"GIF89a but not an image")
    page = write_report(run).read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")  # only as escaped text
    assert {"150", "250"}.isdisjoint(str(s) for s in frame_steps(page))  # the damaged grids are left out
    assert "evaluate.json" in page and "12.5" in page
    assert "figures/walk.gif" in page and "data:image/gif;base64," in page and "fake.png" not in page


def test_only_a_run_folder_makes_a_report(tmp_path):
    with pytest.raises(DcganError, match="expected a run folder made by `dcgan train`"):
        write_report(tmp_path)
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(DcganError, match="is not a run's config.json"):
        write_report(tmp_path)


def test_a_run_without_statistics_or_generator_still_reports(run):
    (run / "stats.jsonl").unlink()
    (run / "generator.safetensors").unlink()
    page = write_report(run).read_text()
    assert "No statistics yet" in page and 'id="final"' not in page and frame_steps(page)


def test_the_default_budget_holds_a_long_64px_run(tmp_path, tiny_run):
    """Sixty 8×8 grids of 64² images: the page stays under the budget it states."""
    run = run_with_grids(tiny_run, tmp_path / "run", 100, side=530, seed=4, every=500)
    page = write_report(run).read_text()
    assert sum(len(s) for s in srcs(page)) <= BUDGET
    assert frame_steps(page)[-1] == 50000
    assert np.isclose(len(page), sum(len(s) for s in srcs(page)), rtol=0.1)  # images are most of it


def test_json_nested_past_the_stack_is_left_out_and_the_run_folder_is_not_written(run):
    (run / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (run / "deep2.json").write_text('{"a": ' * 50_000 + "1" + "}" * 50_000)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    page = write_report(run, run.parent / "elsewhere.html").read_text()
    assert "deep.json" not in page and "deep2.json" not in page
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before  # loss.png untouched


def test_json_results_are_tabled_readably(tmp_path):
    """A probe's result: lists of objects entered by index, long per-channel lists cut to their start."""
    from dcgan.report.page import _json_table

    p = tmp_path / "forget.json"
    p.write_text(json.dumps({"object": "window", "layers": [{"layer": 3, "weights": list(range(512))}]}))
    table = _json_table(p)
    assert "<th>layers.0.layer</th><td>3</td>" in table
    assert "layers.0.weights" in table and "(512 values)]" in table and "511" not in table


def test_a_deduplicated_dataset_shows_what_went_and_its_audit_sheet(run, tmp_path):
    """Trained on what `dcgan dedup` wrote: the dataset section says how many duplicates went, from where,
    and embeds the audit sheet."""
    import dcgan

    x = rng_images(60, 16, 16, 3, seed=5)
    np.save(tmp_path / "x.npy", np.concatenate([x, x[[3, 3, 7]]]))
    dcgan.prepare(tmp_path / "x.npy", tmp_path / "p", size=16)
    dcgan.dedup(tmp_path / "p", tmp_path / "d", epochs=2, audit=4, allow_collapsed=True)
    meta = json.loads((run / "config.json").read_text())
    meta["dataset"]["path"] = str(tmp_path / "d")
    (run / "config.json").write_text(json.dumps(meta))
    page = write_report(run).read_text()
    assert "<h3>De-duplication</h3>" in page and "3 images removed in 2 groups (codes within 0 bits" in page
    assert f"{tmp_path / 'p'} (63 images)" in page
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="dedup-audit.png">', page)
