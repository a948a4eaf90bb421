"""What the networks learned: memorization, the face arithmetic scored, D as a feature extractor (§5),
guided backprop on D and forgetting an object in G (§6), and the page to draw boxes for it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dcgan import sampling
from dcgan.api.common import (
    DatasetLike,
    GeneratorLike,
    PathLike,
    Seeds,
    _device,
    dataset,
    load_discriminator,
    load_generator,
    seeds,
)
from dcgan.data.dataset import PreparedDataset
from dcgan.errors import DcganError
from dcgan.fileio import write_json
from dcgan.images import save_png, to_uint8
from dcgan.metrics.fid import fid, kid
from dcgan.models import Discriminator, Generator
from dcgan.probes import attributes, protocol
from dcgan.probes import forget as probes_forget
from dcgan.probes import memorization as probes_memorization
from dcgan.probes import saliency as probes_saliency
from dcgan.probes import segmenter as probes_segmenter
from dcgan.progress import silent


def memorization(
    g: GeneratorLike,
    data: DatasetLike,
    heldout: DatasetLike | None = None,
    *,
    num: int = 10_000,
    k: int = 5,
    panels: int = 8,
    discriminator: Discriminator | PathLike | None = None,
    out: PathLike | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Nearest training images of samples of seeds 0…num−1 (and the original code's nnd against held-out
    images): (summary, a panel image whose rows are a sample and its k nearest training images). Distances
    are on pixels, or on the features of `discriminator` (a D, or the run or checkpoint folder it is in)
    when given; the work runs on G's device. With `out`, OUT/nearest.png and OUT/memorization.json are
    written too, as `dcgan memorization` does.

    >>> summary, panel = dcgan.memorization("runs/fmnist32", "data/fm/train", "data/fm/test", num=2000)
    >>> summary["nnd"]
    """
    g = load_generator(g)
    train_set = dataset(data)
    held = dataset(heldout) if heldout is not None else None
    device = next(g.parameters()).device
    d = discriminator
    if d is not None and not isinstance(d, Discriminator):
        d = load_discriminator(d, device)
    summary, figure = probes_memorization.memorization(g, train_set, held, num, k, panels, device, d)
    if out is not None:
        os.makedirs(out, exist_ok=True)
        save_png(figure, os.path.join(out, "nearest.png"))
        write_json(os.path.join(out, "memorization.json"), summary)
    return summary, figure


def arithmetic_score(
    g: GeneratorLike,
    data: DatasetLike,
    recipes: Sequence[str] = ("smile", "glasses"),
    *,
    trials: int = 200,
    pool: int = 4_000,
    classifier_images: int = 20_000,
    epochs: int = 3,
    seed: int = 0,
    confident: float = attributes.CONFIDENT,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The paper's face arithmetic (§6.3.2) scored: how often A − B + C (3 exemplars each, chosen among G's
    samples by a classifier of the dataset's yes/no attributes) has the attributes it should, beside one
    exemplar each, the same arithmetic on pixels, and the prior. Returns (one summary per recipe, {recipe:
    figure}); a recipe is a name of `attributes.RECIPES` or 'a=yes,b=no - … + …'.

    >>> results, figures = dcgan.arithmetic_score("runs/faces64", "data/faces")
    >>> results[0]["latent3"], results[0]["prior"]
    """
    g, ds = load_generator(g, "cpu"), dataset(data)
    parsed = [attributes.parse_recipe(r) for r in recipes]
    names = tuple(sorted({n for r in parsed for n in r.names}))
    if len(names) > 6:
        raise DcganError(f"the recipes use {len(names)} attributes; score at most 6 at once")
    clf = attributes.train_attribute_classifier(ds, names, g.cfg, classifier_images, epochs=epochs, seed=seed)
    results, figures = [], {}
    for text, r in zip(recipes, parsed):
        summary, figures[text] = attributes.score_arithmetic(g, clf, r, pool, trials, seed, confident)
        results.append(summary)
    return results, figures


def saliency(
    run: PathLike,
    data: DatasetLike,
    *,
    layer: int | None = None,
    num: int = 10_000,
    top: int = 8,
    features: int = 6,
    rule: str = "relu",
    seed: int = 0,
    device: str = "auto",
    log: Callable[[str], None] = silent,
) -> tuple[dict[str, Any], np.ndarray]:
    """Paper Fig. 5: guided backprop from single units of D's conv layer `layer` (default the last) for
    each unit's top images among the first `num` of `data`, beside a random D of the same architecture and
    init: (summary, figure). On a dataset with masks.npy (`dcgan data rooms`) the summary says where the
    saliency falls, per class, for both Ds.

    >>> summary, fig = dcgan.saliency("runs/rooms64", "data/rooms"); summary["trained"]["energy_share"]
    """
    d = load_discriminator(run, device)
    return probes_saliency.saliency(
        d, dataset(data), layer=layer, num=num, top=top, features=features, rule=rule, seed=seed, progress=log
    )


def forget(
    g: GeneratorLike,
    data: DatasetLike,
    out: PathLike,
    *,
    obj: str = "window",
    layers: Sequence[int] = (2,),
    fit_seeds: Seeds = "0-149",
    eval_seeds: Seeds = "10000-10999",
    boxes: PathLike | None = None,
    segmenter: PathLike | None = None,
    segmenter_images: int = 20_000,
    draws: int = 10,
    seed: int = 0,
    log: Callable[[str], None] = silent,
) -> dict[str, Any]:
    """Paper §6.3.1: find the feature maps of G's hidden layer that draw `obj` (a logistic regression on
    the fit samples, the object's pixels from `boxes` or a segmenter of the dataset's class maps), drop them,
    and measure on the eval samples against random and most-negative filters. Writes OUT/forget.json and,
    per layer L, OUT/forget-layerL.png (rows: as drawn, object filters dropped, random filters dropped) and
    OUT/drops-layerL.json (for `sample(..., drop=)`), and OUT/segmenter.safetensors (reused on the next call
    for the same dataset).

    >>> r = dcgan.forget("runs/rooms64", "data/rooms", "runs/rooms64/forget"); r["layers"][0]["positive"]
    """
    from dcgan.images import save_png

    g = load_generator(g)
    ds = dataset(data)
    if (ds.image_size, ds.channels) != (g.cfg.image_size, g.cfg.channels):
        raise DcganError(
            f"G draws {g.cfg.image_size}²×{g.cfg.channels} images but {str(ds.path)!r} holds "
            f"{ds.image_size}²×{ds.channels}; use the dataset G was trained on"
        )
    if segmenter_images < 64:
        raise DcganError(f"--segmenter-images must be at least 64 (one batch), got {segmenter_images}")
    fit_list, eval_list = seeds(fit_seeds), seeds(eval_seeds)
    box_map = probes_forget.read_boxes(str(boxes), g.cfg.image_size) if boxes is not None else None
    if box_map is not None:
        probes_forget.check_boxes(box_map, fit_list)
    given = _given_segmenter(segmenter, g) if segmenter is not None else None
    classes = given[1]["classes"] if given else ds.class_names()
    probes_forget.check(g, classes, obj, layers, draws, fit_list, eval_list)  # before a segmenter trains
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    net, info, path = (
        (*given, Path(segmenter)) if given else _dataset_segmenter(ds, out, segmenter_images, seed, log)
    )
    iou = ", ".join(f"{c} {v:.2f}" for c, v in info["heldout_iou"].items() if v is not None)
    log(f"segmenter {path}: held-out IoU {iou}")
    summary, figures, drops = probes_forget.forget(
        g, net, list(info["classes"]), _segmenter_distance(net, ds, seed), obj=obj, layers=layers,
        fit_seeds=fit_list, eval_seeds=eval_list, boxes=box_map, draws=draws, seed=seed, log=log,
    )  # fmt: skip
    summary["segmenter"] = {"path": str(path), "heldout_iou": info["heldout_iou"]}
    write_json(out / "forget.json", summary)
    for layer, fig in figures.items():
        save_png(fig, out / f"forget-layer{layer}.png")
        write_json(out / f"drops-layer{layer}.json", drops[layer])
    return summary


def _given_segmenter(path: PathLike, g: Generator) -> tuple[probes_segmenter.Segmenter, dict[str, Any]]:
    """The segmenter a user named with --segmenter, checked against the images G draws."""
    if not Path(path).is_file():
        raise DcganError(f"--segmenter {str(path)!r} is not a file; leave it out to train one on the dataset")
    net, info = probes_segmenter.load_segmenter(path)
    if (info["image_size"], info["channels"]) != (g.cfg.image_size, g.cfg.channels):
        raise DcganError(
            f"the segmenter {str(path)!r} reads {info['image_size']}²×{info['channels']} images but G draws "
            f"{g.cfg.image_size}²×{g.cfg.channels}; leave out --segmenter to train one on the dataset"
        )
    return net, info


def _dataset_segmenter(
    ds: PreparedDataset, out: Path, images: int, seed: int, log: Callable[[str], None]
) -> tuple[probes_segmenter.Segmenter, dict[str, Any], Path]:
    """OUT/segmenter.safetensors when it was trained on this dataset; else one trained now and saved there."""
    path = out / "segmenter.safetensors"
    if path.is_file():
        net, info = probes_segmenter.load_segmenter(path)
        if info["images_sha256"] == ds.manifest["images_sha256"]:
            return net, info, path
    log(f"training the segmenter on up to {images:,} images of {ds.path}")
    heldout = min(1000, max(1, len(ds) // 10))
    net, info = probes_segmenter.train_segmenter(ds, num=images, heldout=heldout, seed=seed, log=log)
    probes_segmenter.save_segmenter(net, info, path)
    return net, info, path


def _segmenter_distance(
    net: probes_segmenter.Segmenter, ds: PreparedDataset, seed: int
) -> Callable[[np.ndarray], dict[str, float]]:
    """KID and FID of samples' segmenter features against 2,000 of the dataset's. KID's cubic kernel expects
    features of order 1: all are divided by one scale, the real features' RMS (a scale per feature would blow
    up the ones that barely vary on real images)."""
    rng = np.random.default_rng(seed)
    real = probes_segmenter.features(
        net, ds.images[np.sort(rng.choice(len(ds), min(2000, len(ds)), replace=False))]
    )
    scale = float(np.sqrt(np.mean(real**2)))
    real = real / scale

    def score(fake: np.ndarray) -> dict[str, float]:
        fake = fake / scale
        k, k_std = kid(real, fake, subsets=50)
        return {"kid": k, "kid_std": k_std, "fid": fid(real, fake)}

    return score


def annotate(
    g: GeneratorLike,
    which: Seeds = "0-149",
    out: PathLike = "boxes.json",
    page: PathLike | None = None,
    title: str | None = None,
    obj: str = "window",
) -> Path:
    """Write the page to draw boxes on G's samples of `which` by hand (the paper's window boxes, §6.3.1);
    its download is named like `out`, and the boxes already in `out`, if it exists, are shown. Returns the
    page's path: `page`, or `out` with .html.

    >>> dcgan.annotate("runs/rooms64", "0-149", "runs/rooms64/boxes.json")
    """
    from dcgan.report import annotate as report_annotate

    title = f"{obj} — {title or (str(g) if not isinstance(g, Generator) else 'samples')}"
    g = load_generator(g)
    chosen = seeds(which)
    if len(chosen) > probes_forget.MAX_ANNOTATE:
        raise DcganError(
            f"--seeds names {len(chosen):,} samples; a page holds at most {probes_forget.MAX_ANNOTATE:,}"
        )
    out = Path(out)
    existing = (
        probes_forget.read_boxes(str(out), g.cfg.image_size, allow_empty=True) if out.is_file() else None
    )
    path = Path(page) if page is not None else out.with_suffix(".html")
    images = to_uint8(sampling.generate(g, chosen))
    return report_annotate.write_page(images, chosen, path, out.name, title, existing, what=obj)


def probe(
    run: PathLike,
    data: DatasetLike,
    test: DatasetLike,
    out: PathLike,
    *,
    budgets: Sequence[int | None] = (100,),
    Cs: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2),
    draws: int = 10,
    val_size: int = 10_000,
    seed: int = 0,
    control: Sequence[int | None] = (),
    trials: int = 16,
    max_epochs: int = 100,
    pixels: bool = True,
    untrained: bool = False,
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """D's features + L2-SVM against a supervised control and raw pixels (paper §5); writes
    OUT/probe.json, OUT/table.md and the cached features. As `dcgan probe`: `budgets` are labels per
    class (None = all), each drawn `draws` times; the SVM's C is chosen among `Cs` on `val_size` held-out
    training images; the supervised control runs for the budgets in `control` with `trials` recipes of at
    most `max_epochs`; `pixels` adds the raw-pixel baseline, `untrained` the same probe on D before
    training.

    >>> r = dcgan.probe("runs/fmnist32", "data/fm/train", "data/fm/test", "runs/fmnist32/probe", budgets=[100])
    """
    return protocol.probe(
        str(run),
        dataset(data),
        dataset(test),
        str(out),
        budgets=budgets,
        Cs=Cs,
        draws=draws,
        val_size=val_size,
        seed=seed,
        control=control,
        trials=trials,
        max_epochs=max_epochs,
        pixels=pixels,
        untrained=untrained,
        device=_device(device).type,
        log=log,
    )
