"""The de-duplication audit sheet: random duplicate pairs to check by eye, and what the verdicts prove.

`dcgan dedup` writes two files beside the de-duplicated dataset:
    dedup-audit.png   the first pairs as tiles: kept image | removed image | |difference| ×4, Hamming distance
    dedup-audit.html  every audited pair (self-contained: data URIs), a "same / different" choice for each,
                      and, as the choices are made, the one-sided 95% Clopper–Pearson upper bound on the
                      false-positive rate that they support; the verdicts download as JSON.
The pairs are drawn uniformly from all (kept, removed) pairs, so the bound speaks for all of them. A bound
below 1% needs at least 299 pairs judged with none different; 0 of 100 only bounds the rate below ~3%.
Without JavaScript the page lists the pairs; count the different ones and use `clopper_pearson_upper`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dcgan.data.dedup import Duplicates, hamming
from dcgan.fileio import atomic_path
from dcgan.images import make_grid, png_data_uri, upscale

AUDIT_PNG, AUDIT_HTML = "dedup-audit.png", "dedup-audit.html"
PNG_PAIRS = 60  # tiles in the PNG; the page holds them all


def clopper_pearson_upper(false: int, audited: int, confidence: float = 0.95) -> float:
    """The one-sided upper confidence bound on a rate after `false` of `audited` trials (exact, binomial)."""
    from scipy.stats import beta

    if audited <= 0 or not 0 <= false <= audited:
        raise ValueError(f"need 0 ≤ false ≤ audited and audited ≥ 1, got {false} of {audited}")
    return 1.0 if false == audited else float(beta.ppf(confidence, false + 1, audited - false))


def audit_pairs(dups: Duplicates, n: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """Up to n (kept, removed, Hamming distance) pairs drawn uniformly from every group's removed images."""
    pairs = [(int(g[0]), int(x)) for g in dups.groups for x in g[1:]]
    if not pairs:
        return []
    pick = np.sort(np.random.default_rng(seed).choice(len(pairs), size=min(n, len(pairs)), replace=False))
    chosen = [pairs[k] for k in pick]
    dist = hamming(dups.codes[[a for a, _ in chosen]], dups.codes[[b for _, b in chosen]])
    return [(a, b, int(d)) for (a, b), d in zip(chosen, dist)]


def tile(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, 3W + gaps, 3): kept | removed | |a − b| amplified 4× (black where equal)."""
    diff = np.minimum(np.abs(a.astype(np.int16) - b.astype(np.int16)) * 4, 255).astype(np.uint8)
    three = upscale(np.stack([a, b, diff]))
    if three.shape[3] == 1:
        three = three.repeat(3, axis=3)
    return make_grid(three, ncols=3, pad=2)


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((14, image.shape[1], 3), 255, np.uint8)
    img = Image.fromarray(strip)
    ImageDraw.Draw(img).text((2, 1), text, fill=(0, 0, 0), font=ImageFont.load_default())
    return np.concatenate([image, np.asarray(img)])


def write_audit(
    images: np.ndarray, pairs: list[tuple[int, int, int]], out: Path, title: str, summary: str
) -> tuple[Path, Path]:
    """The PNG and the HTML page of `pairs` of `images` (N, S, S, C), written atomically into `out`."""
    tiles = [tile(images[a], images[b]) for a, b, _ in pairs]
    png_path, html_path = out / AUDIT_PNG, out / AUDIT_HTML
    with atomic_path(png_path) as tmp:
        if tiles:
            captioned = [
                _caption(t, f"#{k + 1}  {d} bits") for k, (t, (_, _, d)) in enumerate(zip(tiles, pairs))
            ]
            Image.fromarray(make_grid(np.stack(captioned[:PNG_PAIRS]), ncols=4, pad=6)).save(
                tmp, format="PNG"
            )
        else:
            Image.new("RGB", (240, 30), "white").save(tmp, format="PNG")
    rows = "".join(
        f'<li data-pair="{k + 1}" data-kept="{a}" data-removed="{b}"><img src="{png_data_uri(t)}" '
        f'alt="pair {k + 1}: image {a} kept, image {b} removed, {d} bits apart">'
        f"<span>#{k + 1} — kept {a}, removed {b}, {d} bits</span>"
        f'<label><input type="radio" name="p{k + 1}" value="same"> same</label>'
        f'<label><input type="radio" name="p{k + 1}" value="different"> different</label></li>'
        for k, ((a, b, d), t) in enumerate(zip(pairs, tiles))
    )
    page = _PAGE.format(
        title=html.escape(title),
        summary=html.escape(summary),
        n=len(pairs),
        rows=rows or "<li>No duplicates were found: nothing to audit.</li>",
        pairs_json=html.escape(json.dumps([[a, b, d] for a, b, d in pairs])),
    )
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return png_path, html_path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dedup audit — {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
ol {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; padding: 0;
      list-style: none; }}
li {{ border: 1px solid #ddd; padding: 6px; border-radius: 4px; }}
li.different {{ border-color: #c33; background: #fee; }} li.same {{ border-color: #393; background: #efe; }}
li img {{ display: block; image-rendering: pixelated; max-width: 100%; }}
li span {{ display: block; color: #555; font-size: 12px; }}
#verdict {{ position: sticky; top: 0; background: #fff; padding: 8px 0; border-bottom: 1px solid #ccc; }}
</style></head><body>
<h1>De-duplication audit: {title}</h1>
<p>{summary}</p>
<p>{n} pairs drawn at random from all the duplicates found. Each shows the image kept, the image removed,
and their difference (×4; black where equal). Mark each pair; the bound below is the one-sided 95%
Clopper–Pearson upper bound on the share of removed images that were <em>not</em> duplicates.</p>
<div id="verdict"><noscript>With JavaScript off: count the pairs that are different (k) of those you
judged (n); the bound is scipy.stats.beta.ppf(0.95, k + 1, n − k).</noscript>
<output id="bound">Judged 0 of {n} pairs.</output> <button id="save" type="button" hidden>download
verdicts.json</button></div>
<ol id="pairs" data-pairs="{pairs_json}">{rows}</ol>
<script>
"use strict";
// P(X <= k) for X ~ Binomial(n, p), summed in log space
function binomCdf(k, n, p) {{
  if (p <= 0) return 1; if (p >= 1) return k >= n ? 1 : 0;
  let logTerm = n * Math.log1p(-p), sum = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {{
    logTerm += Math.log((n - i + 1) / i) + Math.log(p) - Math.log1p(-p);
    sum += Math.exp(logTerm);
  }}
  return Math.min(1, sum);
}}
// the p at which P(X <= k) falls to 5%: the one-sided 95% upper bound
function upperBound(k, n) {{
  if (k >= n) return 1;
  let lo = 0, hi = 1;
  for (let it = 0; it < 100; it++) {{
    const mid = (lo + hi) / 2;
    if (binomCdf(k, n, mid) > 0.05) lo = mid; else hi = mid;
  }}
  return hi;
}}
function update() {{
  const items = [...document.querySelectorAll("#pairs li[data-pair]")];
  let judged = 0, different = 0; const verdicts = {{}};
  for (const li of items) {{
    const v = li.querySelector("input:checked");
    li.className = v ? v.value : "";
    if (v) {{ judged++; if (v.value === "different") different++;
              verdicts[li.dataset.pair] = {{kept: +li.dataset.kept, removed: +li.dataset.removed,
                                             verdict: v.value}}; }}
  }}
  const out = document.getElementById("bound");
  out.dataset.judged = judged; out.dataset.different = different;
  if (!judged) {{ out.textContent = `Judged 0 of ${{items.length}} pairs.`; return; }}
  const b = upperBound(different, judged);
  out.dataset.bound = b.toFixed(6);
  out.textContent = `Judged ${{judged}} of ${{items.length}}: ${{different}} different. ` +
    `False-positive rate ≤ ${{(100 * b).toFixed(2)}}% (95% one-sided Clopper–Pearson).`;
  const save = document.getElementById("save");
  save.hidden = false;
  save.onclick = () => {{
    const blob = new Blob([JSON.stringify({{judged, different, upper_bound_95: b, verdicts}}, null, 1)],
                          {{type: "application/json"}});
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = "verdicts.json"; a.click();
  }};
}}
document.getElementById("pairs").addEventListener("change", update);
update();
</script>
</body></html>
"""
