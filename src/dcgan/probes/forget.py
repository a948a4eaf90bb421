"""Forgetting to draw an object (PAPER.md §6.3.1, Fig. 6), measured.

The paper: on 150 samples, 52 window boxes drawn by hand; a logistic regression on the feature maps of G's
second-highest convolution layer predicts whether an activation lies inside a window box (negatives:
random activations of the same images); every feature map whose weight is positive is dropped at all
spatial locations, and the samples are drawn again with and without them.

Here the object's pixels come either from boxes a person drew (`--boxes`, seed → [x0, y0, x1, y1] lists) or
from a segmenter trained on the dataset's class maps (`dcgan data rooms`), and the same segmenter measures
the result on other seeds: how much of the object is gone, how often a sample still has any, what the other
classes' areas do, KID and FID in the segmenter's feature space — against dropping as many random filters
(mean ± sd over draws) and the most negative ones, and as a curve over the number of filters dropped.

"Second-highest" is ambiguous (counting the output layer or not); G's hidden layers are numbered from the
output down here (1 = the last before the output) and the paper's count of ~200 positive filters fits
layer 2 of its bedroom G (16×16×256), so 2 is the default and any layer may be measured.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from dcgan.errors import DcganError
from dcgan.fileio import read_small_json
from dcgan.images import labelled_grid, to_uint8
from dcgan.models import Generator, dropping, run_generator, z_for_seeds
from dcgan.probes import segmenter as seg
from dcgan.progress import silent

# distances of samples' segmenter features from the real images' ({"kid", "kid_std", "fid"}): the metrics
# stage comes later in the pipeline, so api.forget hands them in
Score = Callable[[np.ndarray], dict[str, float]]
ANY_PIXELS = 8  # a sample "has" the object when the segmenter finds at least this many of its pixels (64²)
MAX_BOXES_BYTES = 1 << 24
MAX_FIT, MAX_EVAL, MAX_ANNOTATE = 20_000, 50_000, 2_000  # samples held in memory at once


# ---------------------------------------------------------------- the object's pixels


def read_boxes(
    path: str, size: int, allow_empty: bool = False
) -> dict[int, list[tuple[float, float, float, float]]]:
    """Boxes drawn on samples: a JSON object {"boxes": {"SEED": [[x0, y0, x1, y1], …], …}} (or the inner
    object alone) in pixels of the size×size sample, as `dcgan annotate` writes it."""
    doc = read_small_json(path, MAX_BOXES_BYTES, "--boxes")
    if isinstance(doc, dict) and isinstance(doc.get("boxes"), dict):
        drawn_on = doc.get("size", size)
        if drawn_on != size:
            raise DcganError(
                f"--boxes {path!r} was drawn on {str(drawn_on)[:20]}² samples; this G draws {size}²"
            )
        doc = doc["boxes"]
    want = 'a JSON object {"boxes": {"SEED": [[x0, y0, x1, y1], ...]}}'
    if not isinstance(doc, dict):
        raise DcganError(f"--boxes {path!r} is not {want}")
    out: dict[int, list[tuple[float, float, float, float]]] = {}
    for key, boxes in doc.items():
        if not (isinstance(key, str) and re.fullmatch(r"[0-9]{1,19}", key)) or not isinstance(boxes, list):
            raise DcganError(
                f"--boxes {path!r}: {str(key)[:40]!r} is not a seed with a list of boxes; expected {want}"
            )
        parsed = []
        for b in boxes:
            ok = (
                isinstance(b, list)
                and len(b) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
            )
            if not ok or not all(math.isfinite(v) for v in b):
                raise DcganError(
                    f"--boxes {path!r}: seed {key} has {str(b)[:60]}, not [x0, y0, x1, y1] numbers"
                )
            x0, y0, x1, y1 = (float(v) for v in b)
            if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
                raise DcganError(
                    f"--boxes {path!r}: seed {key} box {b} is not inside the {size}×{size} sample with x0 < x1, y0 < y1"
                )
            parsed.append((x0, y0, x1, y1))
        if int(key) in out:
            raise DcganError(f"--boxes {path!r}: seed {int(key)} appears twice (as {key!r} too)")
        out[int(key)] = parsed
    if not allow_empty and not any(out.values()):
        raise DcganError(f"--boxes {path!r} holds no boxes")
    return out


def check_boxes(boxes: dict[int, list[tuple[float, float, float, float]]], fit_seeds: Sequence[int]) -> None:
    """Every box must be on a fit sample: boxes elsewhere would be silently left out of the fit."""
    fit = set(fit_seeds)
    outside = sorted(k for k, v in boxes.items() if v and k not in fit)
    if outside:
        raise DcganError(
            f"--boxes has boxes on seeds outside --fit-seeds (first {outside[0]}); fit on the seeds they were "
            "drawn on"
        )


def box_masks(
    boxes: dict[int, list[tuple[float, float, float, float]]], seeds: Sequence[int], size: int
) -> np.ndarray:
    """(N, size, size) bool: the pixels inside any box of each seed (a seed without boxes has none)."""
    masks = np.zeros((len(seeds), size, size), bool)
    for k, s in enumerate(seeds):
        for x0, y0, x1, y1 in boxes.get(s, []):
            masks[k, int(y0) : math.ceil(y1), int(x0) : math.ceil(x1)] = True
    return masks


# ---------------------------------------------------------------- the regression


@torch.no_grad()
def layer_features(g: Generator, z: torch.Tensor, layer: int, batch: int = 256) -> torch.Tensor:
    """(N, C, h, w) float32: the post-ReLU maps of G's hidden layer `layer` (1 = nearest the output), eval-mode BN."""
    index = g.hidden_layers()[layer - 1][0]
    got: list[torch.Tensor] = []
    handle = g.main[index].register_forward_hook(lambda _m, _i, out: got.append(out.float().cpu()))
    try:
        run_generator(g, z, "running", batch)
    finally:
        handle.remove()
    return torch.cat(got)


def inside(masks: np.ndarray, side: int) -> np.ndarray:
    """(N, side, side) bool: positions of a side×side feature map whose patch of the image is mostly object."""
    n, s, _ = masks.shape
    k = s // side
    return masks[:, : side * k, : side * k].reshape(n, side, k, side, k).mean((2, 4)) >= 0.5


def fit_regression(
    feats: torch.Tensor, positive: np.ndarray, seed: int = 0, l2: float = 1e-3
) -> dict[str, Any]:
    """Logistic regression of 'inside the object' on the C feature values of each position: positives are
    every position inside, negatives as many random positions outside, of the same images. Features are
    standardized (which keeps each weight's sign). Returns the weights, the counts and training accuracy."""
    c = feats.shape[1]
    x = feats.permute(0, 2, 3, 1).reshape(-1, c)  # (N·h·w, C)
    pos = np.flatnonzero(positive.reshape(-1))
    outside = np.flatnonzero(~positive.reshape(-1))
    if len(pos) < 2 or len(outside) < len(pos):
        raise DcganError(
            f"the object covers {len(pos)} of {positive.size} feature positions in these samples: too few to fit "
            "the regression; fit on more seeds (--fit-seeds) or draw more boxes"
        )
    neg = np.random.default_rng(seed).choice(outside, len(pos), replace=False)
    rows = torch.from_numpy(np.concatenate([pos, neg]))
    xs = x[rows]
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    mean, std = xs.mean(0), xs.std(0) + 1e-6
    xs = (xs - mean) / std
    wb = torch.zeros(c + 1, requires_grad=True)
    opt = torch.optim.LBFGS([wb], lr=1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = xs @ wb[:c] + wb[c]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * wb[:c].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    weights = wb[:c].detach()
    accuracy = float((((xs @ weights + wb[c].detach()) > 0).float() == y).float().mean())
    return {
        "weights": weights.numpy(),
        "positives": len(pos),
        "negatives": len(neg),
        "train_accuracy": accuracy,
        "positive_filters": int((weights > 0).sum()),
    }


# ---------------------------------------------------------------- what dropping does


def _samples(g: Generator, z: torch.Tensor, layer: int, channels: Sequence[int]) -> np.ndarray:
    with dropping(g, layer, channels):
        return to_uint8(run_generator(g, z, "running"))


def measure(
    g: Generator,
    net: seg.Segmenter,
    z: torch.Tensor,
    layer: int,
    channels: Sequence[int],
    cls: int,
    score: Score | None,
    before: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Samples of z with `channels` of `layer` dropped, read by the segmenter: the object's pixels, the share
    of samples that have any, every class's mean area, (relative to `before`) the removal rate, and with
    `score` the KID and FID of their segmenter features against the real images'."""
    images = _samples(g, z, layer, channels)
    pred = seg.predict(net, images)
    area = np.stack([(pred == k).mean((1, 2)) for k in range(net.classes)], 1)  # (N, K)
    pixels = (pred == cls).sum((1, 2))
    out: dict[str, Any] = {
        "dropped": len(channels),
        "object_pixels": float(pixels.mean()),
        "share_with_object": float((pixels >= ANY_PIXELS * (pred.shape[1] / 64) ** 2).mean()),
        "area": area.mean(0),
    }
    if score is not None:
        out.update(score(seg.features(net, images)))
    if before is not None:  # relative to the samples as drawn; undefined where they had none of it
        had = before["object_pixels"] > 0
        out["removal"] = 1 - out["object_pixels"] / before["object_pixels"] if had else math.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            out["area_change"] = np.where(before["area"] > 0, out["area"] / before["area"] - 1, np.nan)
    return out


def _curve_points(n_max: int) -> list[int]:
    points = [1]
    while points[-1] * 2 < n_max:
        points.append(points[-1] * 2)
    return sorted({*points, n_max} - {0})


def forget_layer(
    g: Generator,
    net: seg.Segmenter,
    layer: int,
    fit_z: torch.Tensor,
    fit_masks: np.ndarray,
    eval_z: torch.Tensor,
    cls: int,
    score: Score,
    base: dict[str, Any],
    draws: int = 10,
    seed: int = 0,
    log: Callable[[str], None] = silent,
) -> dict[str, Any]:
    """Fit the regression on one layer, drop its positive filters, and measure against the controls and
    against `base`, the samples as drawn."""
    width = g.hidden_layers()[layer - 1][1]
    feats = layer_features(g, fit_z, layer)
    side = feats.shape[2]  # the map's side for this z (larger than hidden_layers' for a spatial z)
    fit = fit_regression(feats, inside(fit_masks, side), seed)
    w = fit["weights"]
    order = np.argsort(-w)  # most positive first
    positive = order[: fit["positive_filters"]].tolist()
    if not positive:
        raise DcganError(
            f"no filter of layer {layer} has a positive weight: nothing there fires more inside the object; "
            "fit on more samples (--fit-seeds) or try another --layer"
        )
    negative = [int(c) for c in order[::-1][: len(positive)] if w[c] < 0]  # as many as there are, at most
    log(f"layer {layer} ({width}×{side}×{side}): {len(positive)} of {width} filters have positive weight")
    result = {
        "layer": layer,
        "width": width,
        "side": side,
        "regression": {k: v for k, v in fit.items() if k != "weights"},
        "weights": [round(float(v), 5) for v in w],
        "positive_channels": sorted(positive),
        "none": base,
        "positive": measure(g, net, eval_z, layer, positive, cls, score, base),
        "negative": measure(g, net, eval_z, layer, negative, cls, score, base),
    }
    rng = np.random.default_rng(seed)
    randoms = [
        measure(
            g,
            net,
            eval_z,
            layer,
            rng.choice(width, len(positive), replace=False).tolist(),
            cls,
            score,
            base,
        )
        for _ in range(draws)
    ]
    result["random"] = {
        "draws": draws,
        **{
            f"{k}_{stat}": float(fn([r[k] for r in randoms]))
            for k in ("removal", "share_with_object", "kid", "fid")
            for stat, fn in (("mean", np.mean), ("sd", np.std))
        },
        "area_change_mean": np.mean([r["area_change"] for r in randoms], 0),
    }
    result["curve"] = [
        {
            "dropped": n,
            "removal": measure(g, net, eval_z, layer, order[:n].tolist(), cls, None, base)["removal"],
        }
        for n in _curve_points(len(positive))
    ]
    return result


def figure(
    g: Generator, z: torch.Tensor, layer: int, positive: Sequence[int], random: Sequence[int]
) -> np.ndarray:
    """Paper Fig. 6: the same samples drawn as they are (top row), with the object's filters dropped
    (middle) and with as many random filters dropped (bottom)."""
    rows = [_samples(g, z, layer, []), _samples(g, z, layer, positive), _samples(g, z, layer, random)]
    n = len(z)
    captions = ["as drawn"] * n + [f"-{len(positive)} object"] * n + [f"-{len(random)} random"] * n
    return labelled_grid(np.concatenate(rows), captions, ncols=n)


def _named(result: Any, classes: list[str]) -> Any:
    """Per-class arrays (area, area_change) as {class: value}, recursively; the rest as JSON values."""
    if isinstance(result, dict):
        return {k: _named(v, classes) for k, v in result.items()}
    if isinstance(result, list):
        return [_named(v, classes) for v in result]
    if isinstance(result, np.ndarray) and result.shape == (len(classes),):
        return {c: _named(v, classes) for c, v in zip(classes, result)}
    if isinstance(result, (np.floating, float)):
        return None if math.isnan(result) else round(float(result), 6)  # undefined: null, not NaN
    if isinstance(result, np.integer):
        return int(result)
    return result


def check(
    g: Generator,
    classes: list[str],
    obj: str,
    layers: Sequence[int],
    draws: int,
    fit: Sequence[int],
    ev: Sequence[int],
) -> None:
    """Refuse what the experiment cannot do before anything is trained or drawn."""
    if len(fit) > MAX_FIT or len(ev) > MAX_EVAL:
        raise DcganError(
            f"--fit-seeds and --eval-seeds name at most {MAX_FIT:,} and {MAX_EVAL:,} samples (kept in memory); "
            f"got {len(fit):,} and {len(ev):,}"
        )
    both = set(fit) & set(ev)
    if both:
        raise DcganError(
            f"--fit-seeds and --eval-seeds share seed {min(both)}: measure on samples the regression did not see"
        )
    n_eval = len(ev)
    if obj not in classes:
        raise DcganError(f"--object must be one of the dataset's classes ({', '.join(classes)}), got {obj!r}")
    n_hidden = len(g.hidden_layers())
    bad = [x for x in layers if not 1 <= x <= n_hidden]
    if bad:
        raise DcganError(
            f"--layer must be 1…{n_hidden} (G's hidden layers, 1 is the one nearest the output), got {bad[0]}"
        )
    if draws < 1 or n_eval < 2:
        raise DcganError(f"--draws must be at least 1 and --eval-seeds name 2 or more, got {draws}, {n_eval}")


def forget(
    g: Generator,
    net: seg.Segmenter,
    classes: list[str],
    score: Score,
    *,
    obj: str = "window",
    layers: Sequence[int] = (2,),
    fit_seeds: Sequence[int] = range(150),
    eval_seeds: Sequence[int] = range(10_000, 11_000),
    boxes: dict[int, list[tuple[float, float, float, float]]] | None = None,
    draws: int = 10,
    seed: int = 0,
    log: Callable[[str], None] = silent,
) -> tuple[dict[str, Any], dict[int, np.ndarray], dict[int, dict[str, Any]]]:
    """The experiment on each of `layers`: (summary, {layer: figure}, {layer: its drops file's content}). The object's pixels on the fit samples come from `boxes` when given, else from the segmenter;
    `score` rates samples' segmenter features against real images' (api.forget: the KID)."""
    check(g, classes, obj, layers, draws, fit_seeds, eval_seeds)
    cls = classes.index(obj)
    size = g.cfg.image_size
    fit_z, eval_z = z_for_seeds(g.cfg, fit_seeds), z_for_seeds(g.cfg, eval_seeds)
    if boxes is not None:
        check_boxes(boxes, fit_seeds)
        fit_masks = box_masks(boxes, list(fit_seeds), size)
        source = f"{sum(len(boxes.get(s, [])) for s in fit_seeds)} boxes drawn on {len(fit_seeds)} samples"
    else:
        fit_masks = seg.predict(net, to_uint8(run_generator(g, fit_z, "running"))) == cls
        source = f"the segmenter's {obj} pixels on {len(fit_seeds)} samples"
    log(f"fitting on {source}; measuring on {len(eval_seeds):,} other samples")
    base = measure(g, net, eval_z, layers[0], [], cls, score)  # nothing dropped: the same for every layer
    results = [
        forget_layer(g, net, x, fit_z, fit_masks, eval_z, cls, score, base, draws, seed, log) for x in layers
    ]
    # the figures: the evaluation samples with the most of the object, as drawn and without it
    pick = eval_z[:200]
    pixels = (seg.predict(net, _samples(g, pick, layers[0], [])) == cls).sum((1, 2))
    chosen = pick[np.argsort(-pixels, kind="stable")[:10]]
    rng = np.random.default_rng(seed)
    figures, drops = {}, {}
    for r in results:
        random = rng.choice(r["width"], len(r["positive_channels"]), replace=False).tolist()
        figures[r["layer"]] = figure(g, chosen, r["layer"], r["positive_channels"], random)
        drops[r["layer"]] = {
            "object": obj,
            "layer": r["layer"],
            "width": r["width"],
            "channels": r["positive_channels"],
        }
    summary = {
        "object": obj,
        "fit": {"seeds": len(fit_seeds), "pixels_from": "boxes" if boxes is not None else "segmenter"},
        "eval_seeds": len(eval_seeds),
        "layers": _named(results, classes),
    }
    return summary, figures, drops
