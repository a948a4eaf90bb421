"""The run report: one self-contained HTML file (`dcgan report RUN`, refreshed by `dcgan train` at every
checkpoint) that shows a run without TensorBoard, a server or the network.

Images are data URIs; the page reads fully with JavaScript off (every grid over training is listed), and a
few lines of script turn that list into a scrubber. Every text that comes from a file (config values, file
names, result tables) is HTML-escaped. Images of all kinds share a byte budget (BUDGET, 8 MiB by default):
grids over training are downscaled and thinned to fit, and a figure that would not fit is named instead.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import shlex
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import dcgan
from dcgan.artifacts import GENERATOR_FILE, STEP_DIR, load_generator, read_best, step_name
from dcgan.config import config_diff, train_config
from dcgan.data.dataset import PreparedDataset
from dcgan.data.transforms import DECODE_ERRORS
from dcgan.errors import DcganError
from dcgan.fileio import atomic_path
from dcgan.images import make_grid, to_uint8, upscale
from dcgan.report.audit import AUDIT_HTML, AUDIT_PNG
from dcgan.sampling import generate
from dcgan.training.stats import STATS_FILE, is_number, plot_losses, read_stats

REPORT_FILE = "report.html"
BUDGET = 8 << 20  # bytes of (base64-encoded) images in one page
MAX_FRAMES = 60  # grids over training shown at most
THUMB = 320  # older grids are shrunk to this width
_KNOWN = {"config.json", "best.json", "loss.png", REPORT_FILE}


def write_report(run: str | os.PathLike, out: str | os.PathLike | None = None, budget: int = BUDGET) -> Path:
    """Write the report of the run folder `run` to `out` (default RUN/report.html), atomically."""
    run = Path(run)
    if not (run / "config.json").is_file():
        raise DcganError(f"expected a run folder made by `dcgan train` (with config.json), got {str(run)!r}")
    path = Path(out) if out is not None else run / REPORT_FILE
    page = build_report(run, budget)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def build_report(run: Path, budget: int = BUDGET) -> str:
    try:
        meta = json.loads((run / "config.json").read_bytes())
        train = meta["train"]
        if not isinstance(train, dict):
            raise TypeError("train is not an object")
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise DcganError(
            f"{str(run / 'config.json')!r} is not a run's config.json ({type(e).__name__})"
        ) from None
    images = _Images(budget)
    stats = read_stats(run / STATS_FILE)
    sections = [
        _summary(run, meta, stats),
        _curves(run, stats, images),
        _progress(run, images),
        _final(run, images),
        _dataset(meta.get("dataset"), images),
        _config(train),
        _extras(run, images),
    ]
    body = "\n".join(s for s in sections if s)
    title = f"dcgan report · {run.resolve().name}"
    return _PAGE.format(
        title=_e(title),
        body=body,
        footer=_e(
            f"made by dcgan {dcgan.__version__} on {time.strftime('%Y-%m-%d %H:%M')} · images "
            f"{images.used / 2**20:.1f} of a {images.budget / 2**20:.0f} MiB budget"
            + (f" · left out for size: {', '.join(images.left_out)}" if images.left_out else "")
        ),
        script=_SCRIPT,
    )


# ---------------------------------------------------------------- images within a budget


class _Images:
    """PNG/GIF data URIs, counted against the page's byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used, self.left_out = budget, 0, []

    def fits(self, nbytes: int) -> bool:
        return self.used + math.ceil(nbytes * 4 / 3) <= self.budget

    def uri(self, data: bytes, mime: str, name: str) -> str | None:
        """The data URI of `data`, or None (and `name` listed as left out) when it does not fit."""
        if not self.fits(len(data)):
            self.left_out.append(name)
            return None
        encoded = base64.b64encode(data).decode("ascii")
        self.used += len(encoded)
        return f"data:{mime};base64,{encoded}"

    def png(self, image: np.ndarray | Image.Image, name: str) -> str | None:
        img = image if isinstance(image, Image.Image) else Image.fromarray(_squeeze(image))
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
        return self.uri(buf.getvalue(), "image/png", name)


def _squeeze(a: np.ndarray) -> np.ndarray:
    return a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a


def _img(uri: str | None, alt: str, cls: str = "") -> str:
    if uri is None:
        return f'<p class="missing">{_e(alt)}: left out (over the page\'s image budget)</p>'
    return f'<img src="{uri}" alt="{_e(alt)}"{f" class={cls!r}" if cls else ""}>'


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------- sections


def _summary(run: Path, meta: dict, stats: list[dict]) -> str:
    train = meta["train"]
    last = next((r for r in reversed(stats) if "loss_D" in r), None)
    facts = [
        ("run", str(run.resolve())),
        ("preset", train.get("preset")),
        (
            "dataset",
            (meta.get("dataset") or {}).get("path") if isinstance(meta.get("dataset"), dict) else None,
        ),
    ]
    if last:
        facts += [
            ("step", f"{last['step']:,}"),
            (
                "images shown",
                f"{last['kimg']:,.1f} k"
                + (f" · epoch {last['epoch']:.2f}" if is_number(last.get("epoch")) else ""),
            ),
            ("training time", f"{last['time'] / 60:.1f} min" if is_number(last.get("time")) else None),
            ("throughput", f"{last['img_per_s']:,.0f} img/s" if is_number(last.get("img_per_s")) else None),
        ]
    best = read_best(run)
    if best:
        score = next(((k, v) for k, v in best.items() if k.startswith("fid[") and is_number(v)), None)
        if score and is_number(best.get("step")):
            facts.append(("best", f"{score[0]} {score[1]:.2f} at step {best['step']:,} (best.safetensors)"))
    warnings = [(r["step"], w) for r in stats if isinstance(r.get("warnings"), list) for w in r["warnings"]]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
    warn = ""
    if warnings:
        items = "".join(f"<li>step {s:,}: {_e(w)}</li>" for s, w in warnings[-20:])
        warn = f'<div class="warn"><strong>Collapse warnings</strong><ul>{items}</ul></div>'
    return f'<section id="summary"><h2>Run</h2><table class="facts">{rows}</table>{warn}</section>'


def _curves(run: Path, stats: list[dict], images: _Images) -> str:
    if not stats:
        return (
            '<section id="curves"><h2>Curves</h2><p>No statistics yet (stats.jsonl is empty).</p></section>'
        )
    with tempfile.TemporaryDirectory() as tmp:  # drawn now, from stats.jsonl; the run folder is not written
        plot_losses(run / STATS_FILE, Path(tmp) / "loss.png")
        if not (Path(tmp) / "loss.png").is_file():
            return ""
        uri = images.uri((Path(tmp) / "loss.png").read_bytes(), "image/png", "loss.png")
    alt = "losses, D outputs, throughput and FID against thousands of images shown"
    return f'<section id="curves"><h2>Curves</h2>{_img(uri, alt, "wide")}</section>'


def _frames(run: Path) -> list[tuple[int, Path]]:
    found = []
    folder = run / "samples"
    if folder.is_dir():
        for p in folder.iterdir():
            m = STEP_DIR.match(p.stem)
            if m and p.suffix == ".png" and p.is_file():
                found.append((int(m.group(1)), p))
    return sorted(found)


def _progress(run: Path, images: _Images) -> str:
    """The fixed-z grids over training: the newest at full size, the others as thumbnails; thinned evenly
    (the first and the newest kept) to MAX_FRAMES and to half the budget."""
    frames = _frames(run)
    if not frames:
        return ""
    share = images.budget // 2
    keep = _thin(frames, MAX_FRAMES)
    encoded = list(_encode_frames(keep))
    while len(encoded) > 2 and sum(len(d) for _, d in encoded) * 4 / 3 > share:
        keep = _thin(keep, max(2, len(keep) * 2 // 3))
        encoded = [e for e in encoded if e[0] in {s for s, _ in keep}]
    figures = []
    for step, data in encoded:
        uri = images.uri(data, "image/png", f"samples/{step_name(step)}.png")
        figures.append(
            f'<figure data-step="{step}">{_img(uri, f"fixed-z samples at step {step:,}")}'
            f"<figcaption>step {step:,}</figcaption></figure>"
        )
    note = f"{len(encoded)} of {len(frames)} grids" if len(encoded) < len(frames) else f"{len(frames)} grids"
    return (
        '<section id="progress"><h2>Samples over training</h2>'
        f"<p>The same z at every grid ({note}; older ones shrunk). Newest last.</p>"
        f'<div class="frames">{"".join(figures)}</div></section>'
    )


def _thin(frames: list, n: int) -> list:
    if len(frames) <= n:
        return frames
    idx = sorted({round(i * (len(frames) - 1) / (n - 1)) for i in range(n)})
    return [frames[i] for i in idx]


def _encode_frames(frames: list[tuple[int, Path]]) -> Iterator[tuple[int, bytes]]:
    for i, (step, path) in enumerate(frames):
        try:
            with Image.open(path) as img:
                img.load()
                if i < len(frames) - 1 and img.width > THUMB:
                    img = img.resize((THUMB, round(img.height * THUMB / img.width)), Image.Resampling.BOX)
                buf = io.BytesIO()
                img.save(buf, format="PNG", optimize=True)
        except DECODE_ERRORS:
            continue  # a damaged grid is left out; the others still show
        yield step, buf.getvalue()


def _final(run: Path, images: _Images) -> str:
    """64 samples (seeds 0-63) of the exported generator."""
    path = run / GENERATOR_FILE
    if not path.is_file():
        return ""
    try:
        g = load_generator(path)
    except DcganError as e:
        return f'<section id="final"><h2>Final samples</h2><p class="missing">{_e(e)}</p></section>'
    grid = make_grid(upscale(to_uint8(generate(g, list(range(64))))), 8)
    uri = images.png(grid, GENERATOR_FILE)
    return (
        '<section id="final"><h2>Final samples</h2>'
        f"<p>Seeds 0-63 of generator.safetensors: <code>{_e(shlex.join(['dcgan', 'sample', str(run), '--seeds', '0-63']))}</code></p>"
        f"{_img(uri, 'seeds 0-63 of the exported generator')}</section>"
    )


def _dataset(info: Any, images: _Images) -> str:
    if not isinstance(info, dict):
        return ""
    facts = [(k, info.get(k)) for k in ("path", "images", "images_sha256")]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
    grid = dedup = ""
    try:
        ds = PreparedDataset(str(info.get("path")))
        idx = np.linspace(0, len(ds) - 1, min(64, len(ds))).round().astype(np.int64)
        grid = _img(
            images.png(make_grid(upscale(np.asarray(ds.images[idx])), 8), "real images"), "real images"
        )
    except (DcganError, OSError, ValueError, TypeError) as e:
        grid = f'<p class="missing">real images not shown: {_e(e)}</p>'
    else:
        try:
            dedup = _dedup(ds, images)
        except (OSError, ValueError, TypeError) as e:  # a damaged record or audit sheet
            dedup = f'<p class="missing">de-duplication record not shown: {_e(e)}</p>'
    return f'<section id="dataset"><h2>Dataset</h2><table class="facts">{rows}</table>{grid}{dedup}</section>'


def _dedup(ds: PreparedDataset, images: _Images) -> str:
    """What `dcgan dedup` (or `prepare --dedup`) recorded in the dataset: how many duplicates went, from
    which source, and its audit sheet of pairs to check by eye."""
    found = ds.manifest.get("dedup")
    if not isinstance(found, dict):
        return ""

    def count(v: Any) -> str:
        return f"{v:,}" if type(v) is int else "?"

    facts = {
        "de-duplicated": f"{count(found.get('removed'))} images removed in {count(found.get('groups'))} groups "
        f"(codes within {found.get('radius', '?')} bits; {found.get('method', '')})",
    }
    origin = ds.manifest.get("derived_from")
    if isinstance(origin, dict):
        facts["from"] = f"{origin.get('source') or origin.get('path')} ({count(origin.get('images'))} images)"
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts.items())
    sheet, page = ds.path / AUDIT_PNG, ds.path / AUDIT_HTML
    figure = ""
    if sheet.is_file() and sheet.stat().st_size <= images.budget and _image_format(sheet) == "PNG":
        caption = f"{AUDIT_PNG}: random pairs, kept and removed, to check by eye; verdicts on {page}"
        uri = images.uri(sheet.read_bytes(), "image/png", AUDIT_PNG)
        figure = f"<figure>{_img(uri, AUDIT_PNG)}<figcaption>{_e(caption)}</figcaption></figure>"
    return f'<h3>De-duplication</h3><table class="facts">{rows}</table>{figure}'


def _config(train: dict) -> str:
    preset = train.get("preset")
    try:
        diff = config_diff(train_config(str(preset)).to_dict(), train)
        note = (
            f"<p>Changed from the {_e(preset)} preset:</p><ul>{''.join(f'<li><code>{_e(d)}</code></li>' for d in diff)}</ul>"
            if diff
            else f"<p>The {_e(preset)} preset, unchanged.</p>"
        )
    except (DcganError, TypeError, ValueError, KeyError):
        note = f"<p>No preset named {_e(preset)} to compare with.</p>"
    try:
        flat = list(_flatten(train))
    except RecursionError:
        flat = [("(config)", "nested too deeply to show")]
    rows = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in flat)
    return (
        f'<section id="config"><h2>Configuration</h2>{note}'
        f'<details><summary>Resolved configuration</summary><table class="facts">{rows}</table></details></section>'
    )


LONG_LIST = 12  # a longer list of numbers (a probe's per-channel values) is shown by its start and length


def _flatten(d: dict | list, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) rows of a JSON result; lists of objects are entered by index (layers.0.removal)."""
    for k, v in d.items() if isinstance(d, dict) else enumerate(d):
        if isinstance(v, dict) or (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
            yield from _flatten(v, f"{prefix}{k}.")
        elif isinstance(v, list) and len(v) > LONG_LIST:
            yield f"{prefix}{k}", json.dumps(v[:LONG_LIST])[:-1] + f", … ({len(v):,} values)]"
        else:
            yield f"{prefix}{k}", json.dumps(v) if isinstance(v, list) else v


def _extras(run: Path, images: _Images) -> str:
    """What other commands left in the run folder (or RUN/figures/): images and GIFs (interpolations,
    arithmetic, walks, memorization panels, network probes) and JSON results (evaluate, probe)."""
    found = [p for p in sorted(run.iterdir()) if p.is_file() and p.name not in _KNOWN]
    if (run / "figures").is_dir():
        found += sorted(p for p in (run / "figures").rglob("*") if p.is_file())
    parts = []
    for p in found:
        name = str(p.relative_to(run))
        suffix = p.suffix.lower()
        if suffix in (".png", ".gif", ".jpg", ".jpeg") and p.stat().st_size <= images.budget:
            fmt = _image_format(p)
            if fmt is not None:
                mime = "image/gif" if fmt == "GIF" else "image/jpeg" if fmt == "JPEG" else "image/png"
                parts.append(
                    f"<figure>{_img(images.uri(p.read_bytes(), mime, name), name)}<figcaption>{_e(name)}</figcaption></figure>"
                )
        elif suffix == ".json" and p.stat().st_size <= 1 << 20:
            table = _json_table(p)
            if table:
                parts.append(f"<h3>{_e(name)}</h3>{table}")
    if not parts:
        return ""
    return f'<section id="extras"><h2>Figures and results</h2><div class="extras">{"".join(parts)}</div></section>'


def _image_format(path: Path) -> str | None:
    try:
        with Image.open(path) as img:
            img.verify()
            return img.format if img.format in ("PNG", "GIF", "JPEG") else None
    except DECODE_ERRORS:
        return None


def _json_table(path: Path, max_rows: int = 200) -> str:
    try:
        doc = json.loads(path.read_bytes())
        rows_of = list(_flatten(doc)) if isinstance(doc, dict) else []
    except (ValueError, OSError, RecursionError):  # not JSON, unreadable, or nested past Python's stack
        return ""
    if not rows_of:
        return ""
    rows = []
    for k, v in rows_of:
        if isinstance(v, float):
            v = f"{v:.6g}"
        rows.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
        if len(rows) == max_rows:
            rows.append("<tr><td colspan=2>…</td></tr>")
            break
    return f'<table class="facts">{"".join(rows)}</table>'


def frame_steps(page: str) -> list[int]:
    """The steps of the grids over training in a report, in order (for tests and tools)."""
    return [int(s) for s in re.findall(r'<figure data-step="(\d+)">', page)]


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 1.5em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }}
table.facts {{ border-collapse: collapse; }} table.facts th {{ text-align: left; padding: .15em 1em .15em 0;
  font-weight: 600; vertical-align: top; }} table.facts td {{ padding: .15em 0; word-break: break-all; }}
img {{ image-rendering: pixelated; max-width: 100%; }} img.wide {{ width: 760px; image-rendering: auto; }}
.frames {{ display: flex; flex-wrap: wrap; gap: .6em; }} .frames figure {{ margin: 0; }}
.frames img {{ width: 160px; }} figcaption {{ font-size: .85em; color: #555; }}
.scrub .frames figure {{ display: none; }} .scrub .frames figure.on {{ display: block; }}
.scrub .frames img {{ width: 512px; }} .scrubber {{ width: 512px; display: block; margin: .5em 0; }}
.warn {{ background: #fff2f0; border-left: 4px solid #d33; padding: .4em 1em; margin: 1em 0; }}
.missing {{ color: #a33; }} .extras figure {{ display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }}
.extras img {{ max-width: 512px; }} footer {{ margin-top: 3em; color: #777; font-size: .85em; }}
</style></head>
<body><h1>{title}</h1>
{body}
<footer>{footer}</footer>
<script>{script}</script>
</body></html>
"""

# Turns the list of grids into one grid and a slider (the list stays for readers without JavaScript).
_SCRIPT = """
(function () {
  var section = document.getElementById("progress");
  if (!section) return;
  var figures = section.querySelectorAll(".frames figure");
  if (figures.length < 2) return;
  var slider = document.createElement("input");
  slider.type = "range"; slider.min = 0; slider.max = figures.length - 1; slider.value = figures.length - 1;
  slider.className = "scrubber"; slider.setAttribute("aria-label", "step");
  function show(i) {
    for (var k = 0; k < figures.length; k++) figures[k].classList.toggle("on", k === i);
  }
  slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
  section.insertBefore(slider, section.querySelector(".frames"));
  section.classList.add("scrub");
  show(figures.length - 1);
})();
"""
