"""`dcgan annotate`: a page to draw an object's boxes on G's samples by hand, as the paper did for §6.3.1
(52 window boxes on 150 samples), for `dcgan forget --boxes`.

One self-contained HTML file (samples as data URIs; opens from disk, nothing is served): every sample
enlarged, its seed under it; drag on a sample to draw a box, click a box to remove it. The boxes, in pixels of
the sample, are kept in a text area as the JSON `forget` reads — {"boxes": {"SEED": [[x0, y0, x1, y1], …]}} —
and a button downloads it. Boxes already in the file the page is made for are shown again, so a session can
go on where it stopped. Without JavaScript the page lists the samples and the format to write by hand.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from dcgan.fileio import atomic_path
from dcgan.images import png_data_uri

SCALE = 4  # screen pixels per sample pixel


def write_page(
    images: np.ndarray,
    seeds: list[int],
    path: Path,
    download_name: str,
    title: str,
    boxes: dict[int, list[tuple[float, float, float, float]]] | None = None,
    what: str = "instance of the object",
) -> Path:
    """The page for `images` (N, S, S, C) uint8 of `seeds`, written atomically at `path`; `boxes` are shown
    as already drawn (those of seeds not shown are kept in the download)."""
    size = images.shape[1]
    cells = "".join(
        f'<figure data-seed="{s}"><div class="frame"><img src="{png_data_uri(img)}" width="{size * SCALE}" '
        f'height="{size * SCALE}" alt="sample of seed {s}" draggable="false"></div>'
        f"<figcaption>seed {s}</figcaption></figure>"
        for s, img in zip(seeds, images)
    )
    # every box of the file, shown or not: the download must not lose boxes drawn on other seeds
    start = {str(s): [list(b) for b in v] for s, v in (boxes or {}).items() if v}
    page = _PAGE.format(
        title=html.escape(title),
        what=html.escape(what),
        n=len(seeds),
        size=size,
        scale=SCALE,
        cells=cells,
        name=html.escape(download_name),
        name_js=json.dumps(download_name).replace("</", "<\\/"),
        start=html.escape(json.dumps(start)),
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>annotate — {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
#samples {{ display: flex; flex-wrap: wrap; gap: 10px; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; color: #555; }}
.frame {{ position: relative; cursor: crosshair; line-height: 0; user-select: none; }}
.frame img {{ image-rendering: pixelated; }}
.box {{ position: absolute; box-sizing: border-box; border: 2px solid #f0f; background: rgba(255, 0, 255, .12); cursor: pointer; }}
.box.drawing {{ border-style: dashed; }}
#bar {{ position: sticky; top: 0; background: #fff; padding: 8px 0; border-bottom: 1px solid #ccc; z-index: 2; }}
textarea {{ width: 100%; height: 5em; font: 12px monospace; }}
</style></head><body>
<h1>Draw boxes: {title}</h1>
<p>{n} samples, {size}×{size}, shown {scale}× enlarged. Drag on a sample to draw a box around each
{what}; click a box to remove it. Then download the boxes (or copy them from the box below) and
give the file to <code>dcgan forget RUN --boxes FILE</code>.</p>
<noscript><p>JavaScript is off: write the file by hand, in pixels of the {size}×{size} sample, as
<code>{{"boxes": {{"SEED": [[x0, y0, x1, y1], ...], ...}}}}</code>.</p></noscript>
<div id="bar"><output id="count">0 boxes on 0 samples</output>
<button id="save" type="button">download {name}</button>
<textarea id="json" readonly aria-label="the boxes as JSON"></textarea></div>
<div id="samples" data-start="{start}">{cells}</div>
<script>
"use strict";
const SCALE = {scale}, SIZE = {size};
const boxes = JSON.parse(document.getElementById("samples").dataset.start);
const clamp = v => Math.max(0, Math.min(SIZE, v));
let dragging = false;
function show() {{
  let n = 0, samples = 0;
  for (const fig of document.querySelectorAll("figure[data-seed]")) {{
    const frame = fig.querySelector(".frame"), list = boxes[fig.dataset.seed] || [];
    frame.querySelectorAll(".box:not(.drawing)").forEach(b => b.remove());
    list.forEach((b, i) => {{
      const div = document.createElement("div");
      div.className = "box"; div.title = "click to remove";
      Object.assign(div.style, {{left: b[0] * SCALE + "px", top: b[1] * SCALE + "px",
        width: (b[2] - b[0]) * SCALE + "px", height: (b[3] - b[1]) * SCALE + "px"}});
      div.addEventListener("click", e => {{ e.stopPropagation(); list.splice(i, 1); show(); }});
      div.addEventListener("mousedown", e => e.stopPropagation());
      frame.appendChild(div);
    }});
  }}
  const kept = Object.fromEntries(Object.entries(boxes).filter(([, v]) => v.length));
  for (const v of Object.values(kept)) {{ n += v.length; samples++; }}
  document.getElementById("json").value = JSON.stringify({{size: SIZE, boxes: kept}});
  document.getElementById("count").textContent = `${{n}} boxes on ${{samples}} samples`;
}}
for (const fig of document.querySelectorAll("figure[data-seed]")) {{
  const frame = fig.querySelector(".frame");
  frame.addEventListener("mousedown", down => {{
    if (down.button !== 0 || dragging) return;  // the left button, one box at a time
    down.preventDefault(); dragging = true;
    const at = e => {{ const r = frame.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }};
    const [x0, y0] = at(down);
    const div = document.createElement("div"); div.className = "box drawing"; frame.appendChild(div);
    const move = e => {{
      const [x, y] = at(e);
      Object.assign(div.style, {{left: Math.min(x, x0) + "px", top: Math.min(y, y0) + "px",
        width: Math.abs(x - x0) + "px", height: Math.abs(y - y0) + "px"}});
    }};
    const up = e => {{
      window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); div.remove();
      dragging = false;
      const [x, y] = at(e);
      const b = [Math.min(x, x0), Math.min(y, y0), Math.max(x, x0), Math.max(y, y0)]
        .map(v => Math.round(clamp(v / SCALE) * 10) / 10);
      if (b[2] - b[0] >= 1 && b[3] - b[1] >= 1) (boxes[fig.dataset.seed] ||= []).push(b);
      show();
    }};
    window.addEventListener("mousemove", move); window.addEventListener("mouseup", up);
  }});
}}
document.getElementById("save").addEventListener("click", () => {{
  const blob = new Blob([document.getElementById("json").value], {{type: "application/json"}});
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = {name_js}; a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}});
show();
</script>
</body></html>
"""
