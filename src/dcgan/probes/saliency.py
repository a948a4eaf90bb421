"""What D's features respond to (PAPER.md §6.2, Fig. 5): guided backpropagation from single units of a conv
layer to the input, for the images that excite each unit most — for the trained D and, beside it, for a
randomly initialised D of the same architecture — and, on a dataset with per-pixel classes (`dcgan data
rooms`), numbers that say where the saliency falls.

The guided rule (Springenberg et al., 2015) passes a gradient back through an activation only where both the
forward input and the incoming gradient are positive. D's activations are LeakyReLUs; the forward pass stays
leaky either way, and the backward pass follows one of two rules: `relu` (the classic rule: a gradient
passes only where the activation's input is positive, as through a ReLU) or `leaky` (negative inputs pass it
at the leak's slope, their true local derivative); both keep positive gradients only. Guided backprop is known to look nearly the same for
random weights (Adebayo et al., 2018), which is why the random D and the numbers come with every figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dcgan.data.dataset import PreparedDataset, unit_batches
from dcgan.errors import DcganError
from dcgan.images import hstack, labelled_grid
from dcgan.models import Discriminator, build
from dcgan.probes.features import reestimate_bn
from dcgan.progress import silent

RULES = ("relu", "leaky")


class _Guided(torch.autograd.Function):
    """LeakyReLU (slope 0: ReLU) forward; the guided rule backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, slope: float, leaky: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope, ctx.leaky = slope, leaky
        return torch.nn.functional.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        local = torch.where(x > 0, 1.0, ctx.slope if ctx.leaky else 0.0).to(grad.dtype)
        return grad.clamp(min=0) * local, None, None


def _activation_slope(module: nn.Module) -> float | None:
    if isinstance(module, nn.LeakyReLU):
        return float(module.negative_slope)
    if isinstance(module, nn.ReLU):
        return 0.0
    return None


def conv_layers(d: nn.Module) -> int:
    """How many conv layers D's body has (the layers `--layer` numbers 1…L)."""
    return sum(_activation_slope(m) is not None for m in d.main[: _body_end(d)])


def _body_end(d: nn.Module) -> int:
    return int(getattr(d, "n_body", len(d.main)))


def layer_output(d: nn.Module, x: torch.Tensor, layer: int, rule: str | None = None) -> torch.Tensor:
    """The post-activation output (B, C, H, W) of conv layer `layer` (1-based) of D's body; with `rule`,
    its activations backpropagate by that guided rule instead of their own gradient."""
    if rule is not None and rule not in RULES:
        raise DcganError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    seen = 0
    for module in d.main[: _body_end(d)]:
        slope = _activation_slope(module)
        if slope is None:
            x = module(x)
            continue
        x = (
            _Guided.apply(x, slope, rule == "leaky")
            if rule is not None
            else torch.nn.functional.leaky_relu(x, slope)
        )
        seen += 1
        if seen == layer:
            return x
    raise DcganError(f"--layer must be 1…{seen} (D's conv layers), got {layer}")


@dataclass
class TopUnits:
    """For each channel of a layer, the k images that excite it most: the image index, the position of the
    channel's strongest response in it and its value; (C, k) arrays, strongest first."""

    index: np.ndarray
    row: np.ndarray
    col: np.ndarray
    value: np.ndarray


@torch.no_grad()
def top_units(d: nn.Module, images: np.ndarray, layer: int, k: int, batch: int = 256) -> TopUnits:
    """Stream `images` (N, H, W, C) uint8 through D (eval mode) keeping each channel's top-k images by the
    channel's maximum over positions; one image appears at most once per channel."""
    if not 1 <= k <= len(images):
        raise DcganError(f"--top must be 1…{len(images)} (the images streamed), got {k}")
    d.eval()
    best_v = best_i = best_p = None
    start = 0
    for x in unit_batches(images, batch, next(d.parameters()).device):
        out = layer_output(d, x, layer).float()  # (B, C, H, W)
        b, c, _, w = out.shape
        v, pos = out.flatten(2).max(2)  # (B, C)
        idx = torch.arange(start, start + b, device=out.device).expand(c, b)
        cand_v = v.T if best_v is None else torch.cat([best_v, v.T], 1)
        cand_i = idx if best_i is None else torch.cat([best_i, idx], 1)
        cand_p = pos.T if best_p is None else torch.cat([best_p, pos.T], 1)
        keep = cand_v.topk(min(k, cand_v.shape[1]), dim=1).indices
        best_v, best_i, best_p = (t.gather(1, keep) for t in (cand_v, cand_i, cand_p))
        start += b
    assert best_v is not None and best_p is not None and best_i is not None
    p = best_p.cpu().numpy()
    return TopUnits(best_i.cpu().numpy(), p // w, p % w, best_v.cpu().numpy())


def guided_maps(
    d: nn.Module,
    images: np.ndarray,
    layer: int,
    channels: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    rule: str = "relu",
    batch: int = 128,
) -> np.ndarray:
    """Guided backprop of unit (channels[j], rows[j], cols[j]) of `layer` to the pixels of images[j]:
    (M, C, H, W) float32. Units of different images are independent in eval mode, so a batch of them is
    one backward pass."""
    d.eval()
    device = next(d.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        (x,) = unit_batches(images[i : i + batch], batch, device)
        x.requires_grad_(True)
        act = layer_output(d, x, layer, rule)
        n = torch.arange(len(x))
        sel = slice(i, i + len(x))
        unit = act[n, torch.as_tensor(channels[sel]), torch.as_tensor(rows[sel]), torch.as_tensor(cols[sel])]
        (grad,) = torch.autograd.grad(unit.sum(), x)
        out.append(grad.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *images.shape[3:], *images.shape[1:3]), np.float32)


def saliency_image(maps: np.ndarray) -> np.ndarray:
    """(M, C, H, W) gradients → (M, H, W, C) uint8: grey is zero, each map scaled by its own 99.5th
    percentile of |g| so that faint and strong units are both visible."""
    scale = np.percentile(np.abs(maps).reshape(len(maps), -1), 99.5, axis=1).reshape(-1, 1, 1, 1) + 1e-12
    img = (0.5 + 0.5 * (maps / scale).clip(-1, 1)) * 255
    return img.round().astype(np.uint8).transpose(0, 2, 3, 1)


# ---------------------------------------------------------------- where the saliency falls


def energy_by_class(maps: np.ndarray, masks: np.ndarray, n_classes: int) -> np.ndarray:
    """(M, n_classes): the share of each map's energy (sum of squared gradients) on pixels of each class."""
    energy = (maps.astype(np.float64) ** 2).sum(1)  # (M, H, W)
    total = energy.sum((1, 2)) + 1e-30
    return (
        np.stack([np.where(masks == j, energy, 0).sum((1, 2)) for j in range(n_classes)], 1) / total[:, None]
    )


def where_it_falls(
    top: TopUnits, maps: np.ndarray, masks: np.ndarray, objects: np.ndarray, classes: list[str], seed: int = 0
) -> dict[str, Any]:
    """The numbers beside a saliency figure, for every channel of the layer (maps in top's (C, k) order):

    energy_share / area_share   per class: the share of saliency energy on its pixels vs the share of pixels
                                 it covers in the same images (a map blind to content has equal shares);
                                 the mean over channels, and each channel's in per_channel
    lift                        per channel, the largest energy/area ratio over classes; its median
    dominant                    how many channels have each class as their most over-represented one
    purity                      per channel, over the object classes found in under 90% of the images (not
                                walls or beds): the largest share of its top-k images that contain one class;
                                beside the same for random k-sets
    """
    c, k = top.index.shape
    n_classes = len(classes)
    their = masks[top.index.ravel()]  # (C·k, H, W): the class map under each guided map
    per_map = energy_by_class(maps, their, n_classes).reshape(c, k, n_classes)
    area = np.stack([(their == j).mean((1, 2)) for j in range(n_classes)], 1).reshape(c, k, n_classes)
    energy_share, area_share = per_map.mean(1), area.mean(1)  # (C, K)
    ratio = np.where(area_share > 0.005, energy_share / np.maximum(area_share, 1e-12), 0.0)
    dominant = ratio.argmax(1)
    present = objects > 0  # (N, K)
    varying = [j for j in range(n_classes) if 0 < present[:, j].mean() < 0.9]

    def purity(sets: np.ndarray) -> np.ndarray:
        if not varying:
            return np.zeros(len(sets))
        return present[sets][:, :, varying].mean(1).max(1)  # (S,)

    rng = np.random.default_rng(seed)
    chance = purity(np.stack([rng.choice(len(objects), k, replace=False) for _ in range(2000)]))
    pur = purity(top.index)
    return {
        "channels": c,
        "top": k,
        "energy_share": {name: float(energy_share[:, j].mean()) for j, name in enumerate(classes)},
        "area_share": {name: float(area_share[:, j].mean()) for j, name in enumerate(classes)},
        "lift_median": float(np.median(ratio.max(1))),
        "dominant": {
            name: int((dominant == j).sum()) for j, name in enumerate(classes) if (dominant == j).any()
        },
        "purity_mean": float(pur.mean()),
        "purity_chance": float(chance.mean()),
        "purity_classes": [classes[j] for j in varying],
        "per_channel": {
            "dominant": [classes[j] for j in dominant],
            "lift": [round(float(x), 3) for x in ratio.max(1)],
            "purity": [round(float(x), 3) for x in pur],
            "energy_share": {
                name: [round(float(x), 4) for x in energy_share[:, j]] for j, name in enumerate(classes)
            },
            "area_share": {
                name: [round(float(x), 4) for x in area_share[:, j]] for j, name in enumerate(classes)
            },
        },
    }


# ---------------------------------------------------------------- the whole probe


@dataclass
class Saliency:
    """One D's probe: its top units and their guided maps, (C, k) in channel order."""

    name: str
    top: TopUnits
    maps: np.ndarray  # (C·k, C_img, H, W)


def probe_discriminator(
    d: Discriminator, images: np.ndarray, layer: int, k: int, rule: str, name: str
) -> Saliency:
    """Re-estimate BN on `images`, find each channel's top-k and backpropagate every one of them."""
    reestimate_bn(d, images, device=next(d.parameters()).device)
    top = top_units(d, images, layer, k)
    flat = top.index.ravel()
    channels = np.repeat(np.arange(top.index.shape[0]), k)
    maps = guided_maps(d, images[flat], layer, channels, top.row.ravel(), top.col.ravel(), rule)
    return Saliency(name, top, maps)


def figure(probes: list[Saliency], images: np.ndarray, shown: np.ndarray, k_shown: int) -> np.ndarray:
    """Paper Fig. 5: per D a panel whose rows are the channels `shown` and columns their top images' guided
    maps, left to right strongest first; the top image itself opens each row."""
    panels = []
    for p in probes:
        k = p.top.index.shape[1]
        cells, captions = [], []
        for ch in shown:
            first = p.top.index[ch, 0]
            cells.append(images[first])
            captions.append(f"{p.name} #{ch}")
            maps = saliency_image(p.maps[ch * k : ch * k + k_shown])
            cells.extend(maps)
            captions.extend([f"top {j + 1}" for j in range(k_shown)])
        panels.append(labelled_grid(np.stack(cells), captions, ncols=k_shown + 1))
    return hstack(panels)


def saliency(
    d: Discriminator,
    ds: PreparedDataset,
    *,
    layer: int | None = None,
    num: int = 10_000,
    top: int = 8,
    features: int = 6,
    rule: str = "relu",
    seed: int = 0,
    progress: Callable[[str], None] = silent,
) -> tuple[dict[str, Any], np.ndarray]:
    """The probe for a trained D against a random D of the same architecture and init, on the first `num`
    images of `ds`: (summary, figure). The summary has where_it_falls() for both when `ds` has masks.npy."""
    if rule not in RULES:
        raise DcganError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    if d.cfg.channels != ds.channels or d.cfg.image_size != ds.image_size:
        raise DcganError(
            f"D takes {d.cfg.image_size}×{d.cfg.image_size}×{d.cfg.channels} images but the dataset holds "
            f"{ds.image_size}×{ds.image_size}×{ds.channels}; probe it on the data it was trained on"
        )
    layers = conv_layers(d)
    layer = layers if layer is None else layer
    if not 1 <= layer <= layers:
        raise DcganError(f"--layer must be 1…{layers} (D's conv layers), got {layer}")
    if num < 2 or features < 1:
        raise DcganError(f"--num must be at least 2 and --features at least 1, got {num} and {features}")
    n = min(num, len(ds))
    images = ds.images[:n]  # memory-mapped: streamed by batches, the top images read by index
    _, rand_d = build(d.cfg, seed=seed)
    rand_d = rand_d.to(next(d.parameters()).device)
    probes = []
    for net, name in ((d, "trained"), (rand_d, "random")):
        progress(f"{name} D: top {top} of {n:,} images per channel, guided backprop")
        probes.append(probe_discriminator(net, images, layer, top, rule, name))
    channels = probes[0].top.index.shape[0]
    shown = np.arange(min(features, channels))  # the paper shows the first six
    summary: dict[str, Any] = {
        "layer": layer,
        "layers": layers,
        "rule": rule,
        "images": n,
        "top": top,
        "shown_channels": shown.tolist(),
    }
    if "masks" in ds.arrays:
        masks, classes = ds.class_maps()
        masks = masks[:n]
        objects = np.stack([np.bincount(m.ravel(), minlength=len(classes)) > 0 for m in masks])
        for p in probes:
            summary[p.name] = where_it_falls(p.top, p.maps, masks, objects, classes, seed)
    return summary, figure(probes, images, shown, min(top, 8))
