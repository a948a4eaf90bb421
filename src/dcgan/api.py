"""The whole pipeline as Python functions — what `import dcgan` exposes and what every CLI command calls.

Arguments are the same everywhere: a generator is a run folder, a checkpoint folder, a .safetensors or a
loaded `Generator`; a dataset is a prepared folder or a `PreparedDataset`; seeds are "0-63", "3,17,42", an
int or any iterable of ints; latents are seeds, a .npy of (k, z_dim) or a tensor. Pictures come back as
uint8 arrays (N, H, W, C) or (H, W, C), ready for `save_grid` / `save_png`. A user's mistake raises
`DcganError` (a ValueError) whose message says what to do.

    >>> import dcgan
    >>> train = dcgan.prepare("fashion.npz", "data/fm", size=32, fit="pad")
    >>> dcgan.train(train, "runs/fm", preset="fmnist32", kimg=50)
    >>> dcgan.save_grid(dcgan.sample("runs/fm", "0-63"), "grid.png")
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcgan import artifacts, sampling
from dcgan.config import TrainConfig, train_config
from dcgan.data import catalog
from dcgan.data import prepare as data_prepare
from dcgan.data.dataset import PreparedDataset
from dcgan.data.dedup import Duplicates, HashConfig, check_radius, find_duplicates
from dcgan.data.download import prepare_fashion_mnist
from dcgan.data.transforms import parse_color
from dcgan.device import resolve
from dcgan.errors import DcganError
from dcgan.fileio import write_json
from dcgan.images import to_uint8
from dcgan.metrics import evaluate as metrics_evaluate
from dcgan.metrics.extractors import Extractor, load_extractor, save_extractor
from dcgan.metrics.extractors import train_extractor as fit_extractor
from dcgan.metrics.fid import fid, kid
from dcgan.metrics.interface import FeatureExtractor
from dcgan.metrics.periodic import PeriodicEval
from dcgan.models import Discriminator, Generator
from dcgan.probes import attributes, protocol
from dcgan.probes import forget as probes_forget
from dcgan.probes import memorization as probes_memorization
from dcgan.probes import saliency as probes_saliency
from dcgan.probes import segmenter as probes_segmenter
from dcgan.report import audit as report_audit
from dcgan.report import latent, page
from dcgan.training import loop

PathLike = str | os.PathLike
GeneratorLike = Generator | PathLike
DatasetLike = PreparedDataset | PathLike
Seeds = str | int | Iterable[int]
Latents = Seeds | torch.Tensor | np.ndarray


# ---------------------------------------------------------------- arguments: a path or an object


def _device(device: str | torch.device) -> torch.device:
    """A torch.device from "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:1", "mps" or itself."""
    if isinstance(device, torch.device):
        return device
    try:
        return resolve(device, "fp32").device
    except RuntimeError:  # torch.device's own parse error
        raise DcganError(
            f"expected a device such as auto, cpu, cuda, cuda:1 or mps, got {device!r}"
        ) from None


def dataset(data: DatasetLike) -> PreparedDataset:
    """A prepared dataset from its folder (or the object itself).

    >>> ds = dcgan.dataset("data/fashion-mnist/train"); len(ds), ds.image_size, ds.channels
    """
    return data if isinstance(data, PreparedDataset) else PreparedDataset(data)


def load_generator(g: GeneratorLike, device: str | torch.device = "auto") -> Generator:
    """G in eval mode (its ModelConfig in `.cfg`) from a run folder, checkpoint folder or .safetensors;
    a Generator is returned as it is. device "auto": CUDA, else MPS, else CPU.

    >>> g = dcgan.load_generator("runs/fmnist32"); g.cfg.z_dim
    """
    if isinstance(g, Generator):
        return g
    return artifacts.load_generator(g, _device(device))


def load_discriminator(d: PathLike, device: str | torch.device = "auto") -> Discriminator:
    """D in eval mode from a run folder (its latest checkpoint), a checkpoint folder or a D.safetensors.

    >>> d = dcgan.load_discriminator("runs/fmnist32"); [f.shape for f in d.features(x)]
    """
    return artifacts.load_discriminator(d, _device(device))


def load_examples_generator(path: PathLike, device: str | torch.device = "auto") -> Generator:
    """G from a pytorch/examples `netG_epoch_N.pth` (sizes read off the weights).

    >>> g = dcgan.load_examples_generator("netG_epoch_24.pth")
    """
    return artifacts.load_examples_generator(path, _device(device))


def seeds(s: Seeds) -> list[int]:
    """Seeds as a list: "0-63", "3,17,42", 7 or any iterable of non-negative ints.

    >>> dcgan.seeds("0-3,9")
    [0, 1, 2, 3, 9]
    """
    if isinstance(s, str):
        return sampling.parse_seeds(s)
    out = [s] if isinstance(s, (int, np.integer)) else list(s)
    if not out or not all(isinstance(v, (int, np.integer)) and 0 <= v <= sampling.MAX_SEED for v in out):
        raise DcganError(f"expected seeds as integers from 0 to 2^63 − 1 (or '0-63', '3,17,42'), got {s!r}")
    return [int(v) for v in out]


def latents(g: Generator, z: Latents) -> torch.Tensor:
    """(k, z_dim) latents of G's prior from seeds, a .npy path of latents or an array/tensor of them."""
    if isinstance(z, (str, os.PathLike)) and str(z).endswith(".npy"):
        return sampling.z_from_spec(g.cfg, str(z))
    if isinstance(z, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(z, dtype=torch.float32)
        t = t.reshape(1, -1) if t.ndim == 1 else t
        if t.ndim != 2 or t.shape[1] != g.cfg.z_dim:
            raise DcganError(
                f"latents of shape {tuple(t.shape)}; this generator's z has {g.cfg.z_dim} values"
            )
        return t
    return sampling.z_for_seeds(g.cfg, seeds(z))


def extractor(
    ex: FeatureExtractor | str, device: str | torch.device = "auto", **inception: Any
) -> FeatureExtractor:
    """A feature extractor for the metrics: a shipped name ("fmnist"), a .safetensors from
    `train_extractor`, "inception" (with inception_weights=PATH), or a loaded one as it is."""
    if not isinstance(ex, (str, os.PathLike)):
        return ex
    return load_extractor(ex, _device(device), **inception)


def train_extractor(
    data: DatasetLike,
    test: DatasetLike,
    name: str,
    out: PathLike,
    *,
    device: str | torch.device = "auto",
    log: Callable[[str], None] = print,
    **recipe: Any,
) -> Extractor:
    """Train a domain feature extractor (a small classifier) on a labelled dataset, save it to `out` and
    return it loaded; metrics in its space are labelled NAME-HASH. Recipe: epochs, batch, lr, flip, seed.

    >>> ex = dcgan.train_extractor("data/fm/train", "data/fm/test", "fmnist", "fmnist.safetensors")
    """
    dev = _device(device)
    net, _ = fit_extractor(dataset(data), dataset(test), name, device=dev, log=log, **recipe)
    return Extractor(net, net.cfg, save_extractor(net, out))


# ---------------------------------------------------------------- data


def prepare(
    source: PathLike,
    out: PathLike,
    *,
    size: int,
    background: str | tuple[int, int, int] = (0, 0, 0),
    dedup_radius: int | None = None,
    progress: bool = False,
    **options: Any,
) -> PreparedDataset:
    """Turn images (folder, zip, LSUN LMDB, CIFAR, SVHN, IDX, .npy/.npz) into a dataset folder and open
    it. Options as `dcgan prepare`: channels, fit ("crop" | "pad" | "stretch"), filter, max_images, split,
    class_folders, strict, force, workers. With `dedup_radius` (0 = the paper's exact collisions), OUT is
    the dataset without duplicates, as `dedup` writes it.

    >>> ds = dcgan.prepare("~/photos", "data/photos64", size=64, fit="crop")
    """
    color = parse_color(background) if isinstance(background, str) else background
    if dedup_radius is None:
        data_prepare.prepare(source, out, size=size, background=color, progress=progress, **options)
        return PreparedDataset(out)
    # prepared whole into a hidden sibling first, then de-duplicated into OUT; OUT is checked before any work
    data_prepare.check_out(Path(out), Path(source), bool(options.get("force")))
    whole = Path(out).parent / f".{Path(out).name}.whole"
    if whole.exists():
        shutil.rmtree(whole)  # left by a run that was killed: only this function writes there
    try:
        data_prepare.prepare(source, whole, size=size, background=color, progress=progress, **options)
        force = bool(options.get("force"))
        return dedup(whole, out, radius=dedup_radius, force=force, progress=progress, origin=source)[0]
    finally:
        shutil.rmtree(whole, ignore_errors=True)


def fashion_mnist(out: PathLike, *, progress: bool = False, **options: Any) -> dict[str, PreparedDataset]:
    """Fashion-MNIST 32² as OUT/train and OUT/test (from Debian's dataset-fashion-mnist when installed).

    >>> fm = dcgan.fashion_mnist("data/fashion-mnist"); len(fm["train"])
    60000
    """
    prepare_fashion_mnist(out, progress=progress, **options)
    return {split: PreparedDataset(Path(out) / split) for split in ("train", "test")}


def get_dataset(
    name: str, out: PathLike, *, progress: bool = False, **options: Any
) -> dict[Path, PreparedDataset]:
    """One of the datasets that install offline (fashion-mnist, emoji, sprites, faces), got and prepared
    under OUT; {dataset folder: dataset}. An OUT already prepared is opened as it is. Options as `dcgan
    data`: source, size, fit, background, base_url, num, seed, label, force, workers.

    >>> faces = dcgan.get_dataset("faces", "data/faces2k", num=2000)[Path("data/faces2k")]
    >>> faces.array("attributes").shape
    (2000, 15)
    """
    manifests = catalog.get_dataset(name, out, progress=progress, **options)
    return {folder: PreparedDataset(folder) for folder in manifests}


def dedup(
    data: DatasetLike,
    out: PathLike,
    *,
    radius: int = 0,
    audit: int = 300,
    allow_collapsed: bool = False,
    force: bool = False,
    progress: bool = False,
    origin: PathLike | None = None,
    **hash_options: Any,
) -> tuple[PreparedDataset, Duplicates]:
    """The paper's de-duplication (§4.1.1): hash every image with a de-noising autoencoder's binarized code,
    group codes within `radius` bits, keep each group's first image. Writes OUT (the dataset without the
    duplicates, with dedup.json and the audit sheet dedup-audit.html/.png of `audit` random pairs) and
    returns it with what was found. Hash options as `HashConfig`: bits, side, epochs, batch, lr, noise,
    dropout, threshold ("zero" | "median"), train_images, seed. `origin` names the source when `data` is
    a temporary copy of it (as in `prepare(..., dedup_radius=…)`).

    >>> clean, found = dcgan.dedup("data/emoji", "data/emoji-dedup", radius=2)
    >>> found.health["active_bits"], len(found.removed)
    """
    ds = dataset(data)
    cfg = HashConfig(**hash_options)
    check_radius(radius, cfg.bits)
    if audit < 0:
        raise DcganError(f"--audit must be 0 or more pairs, got {audit}")
    data_prepare.check_out(Path(out), ds.path, force)  # before minutes of work, not after
    dups = find_duplicates(ds.images, cfg, radius, allow_collapsed, progress)
    summary = dups.summary()
    share = len(dups.removed) / len(ds)
    where = str(origin if origin is not None else ds.path)
    about: dict[str, Any] = {
        "dedup": {k: summary[k] for k in ("method", "radius", "pairs", "groups", "removed")}
    }
    if origin is not None:  # indices in dedup.json are of the images as prepared from the source
        about["derived_from"] = {
            "source": str(Path(origin).resolve()),
            "images": len(ds),
            "kept": len(ds) - len(dups.removed),
        }

    def write_more(folder: Path) -> None:
        write_json(folder / "dedup.json", summary)
        report_audit.write_audit(
            ds.images,
            report_audit.audit_pairs(dups, audit, cfg.seed),
            folder,
            where,
            f"{len(dups.removed):,} of {len(ds):,} images removed ({share:.1%}) in {len(dups.groups):,} groups, "
            f"codes within {radius} bits; hash: {dups.health['active_bits']} of {cfg.bits} bits vary.",
        )

    data_prepare.write_subset(ds, dups.keep(len(ds)), Path(out), about, write_more, force)
    return PreparedDataset(out), dups


# ---------------------------------------------------------------- training


def train(
    data: DatasetLike,
    out: PathLike,
    cfg: TrainConfig | None = None,
    *,
    preset: str = "paper64",
    max_minutes: float | None = None,
    report: bool = True,
    progress: bool = False,
    log: Callable[[str], None] = print,
    **overrides: Any,
) -> dict[str, Any]:
    """Train (or resume: the same call again continues) a DCGAN; returns where everything is and how it
    ended (`status`: finished | time-limit | interrupted). Either a full TrainConfig, or a preset with
    overrides of its fields (epochs or kimg, batch, lr, seed, precision, device, eval_every, …).
    With `report`, OUT/report.html is refreshed at every checkpoint.

    >>> dcgan.train("data/fashion-mnist/train", "runs/fm", preset="fmnist32", epochs=10, eval_every=500)
    """
    if cfg is not None and (overrides or preset != "paper64"):
        raise DcganError(
            "give either cfg or preset/overrides, not both (dataclasses.replace(cfg, …) edits one)"
        )
    cfg = cfg or train_config(preset, **overrides)
    path = data.path if isinstance(data, PreparedDataset) else data
    make = functools.partial(PeriodicEval, cfg) if cfg.eval_every else None

    def refresh(run: Path) -> None:  # the checkpoint is saved already: a report that fails costs nothing
        try:
            page.write_report(run)
        except Exception as e:  # whatever it is, training goes on; `dcgan report RUN` shows it in full
            log(f"report not refreshed ({type(e).__name__}: {e}); training goes on")

    return loop.train(
        cfg,
        path,
        out,
        make_evaluator=make,
        after_save=refresh if report else None,
        max_minutes=max_minutes,
        progress=progress,
        log=log,
    )


def write_report(run: PathLike, out: PathLike | None = None) -> Path:
    """Write the run's self-contained HTML report (default RUN/report.html); returns its path.

    >>> dcgan.write_report("runs/fm")   # then open runs/fm/report.html
    """
    return page.write_report(run, out)


# ---------------------------------------------------------------- sampling and the latent space (§6)


def sample(
    g: GeneratorLike,
    which: Seeds = "0-63",
    *,
    bn: str = "running",
    batch: int = 256,
    spatial: int = 1,
    drop: PathLike | None = None,
) -> np.ndarray:
    """Images (N, H, W, C) uint8 of G for seeds; image k of seed s is the same at any batch size with
    bn="running". spatial=K feeds a K×K field of z per seed (larger images from a convolutional G). `drop`,
    a drops.json of `dcgan forget`, draws them with those feature maps of G removed.

    >>> dcgan.save_grid(dcgan.sample("runs/fmnist32", "0-63"), "grid.png")
    """
    g = load_generator(g)
    dropped = sampling.read_drops(str(drop), g) if drop is not None else None
    return to_uint8(sampling.generate(g, seeds(which), bn=bn, batch=batch, spatial=spatial, drop=dropped))


def interpolate(
    g: GeneratorLike, points: Latents, *, steps: int = 8, mode: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """A walk through the points (the paper walks through 9): (grid with one row per segment, the frames
    of a looping GIF). mode "auto": linear for uniform z, spherical for Gaussian z.

    >>> grid, frames = dcgan.interpolate("runs/fmnist32", "3,17,42", steps=8)
    >>> dcgan.save_png(grid, "walk.png"); dcgan.save_gif(frames, "walk.gif")
    """
    g = load_generator(g)
    return latent.interpolation(g, latents(g, points), steps, mode)


def sheet(g: GeneratorLike, which: Seeds = "0-99", *, cols: int = 10) -> np.ndarray:
    """A contact sheet (H, W, 3) uint8: every seed's image captioned with its seed, to pick exemplars."""
    return latent.sheet(load_generator(g), seeds(which), cols)


def arithmetic(
    g: GeneratorLike, a: Latents, b: Latents, c: Latents, *, noise: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, torch.Tensor]:
    """The paper's vector arithmetic Y = mean(A) − mean(B) + mean(C): (figure, the 9 latents with Y at
    index 4 and Y + U(−noise, noise) around it).

    >>> fig, z = dcgan.arithmetic("runs/faces", a="12,40,77", b="5,9,31", c="2,8,63")
    """
    g = load_generator(g)
    return latent.arithmetic(g, latents(g, a), latents(g, b), latents(g, c), noise, seed)


def vector(g: GeneratorLike, start: Latents, end: Latents) -> torch.Tensor:
    """An attribute or turn vector (z_dim,): mean(z of `end`) − mean(z of `start`).

    >>> turn = dcgan.vector("runs/fmnist32", start="3,14,15", end="9,26,53")
    """
    g = load_generator(g)
    return sampling.direction(latents(g, start), latents(g, end))


def walk(
    g: GeneratorLike,
    v: torch.Tensor | np.ndarray | PathLike,
    which: Latents = "0-5",
    *,
    steps: int = 7,
    scale: float = 2.0,
) -> np.ndarray:
    """A grid with one row per starting point: z + t·v for t from −scale to +scale.

    >>> dcgan.save_png(dcgan.walk("runs/fmnist32", turn, "0-5"), "turn.png")
    """
    g = load_generator(g)
    z = latents(g, which)
    v = (
        sampling.load_vector(str(v))
        if isinstance(v, (str, os.PathLike))
        else torch.as_tensor(v, dtype=torch.float32)
    )
    return latent.along_vector(g, sampling.along(z, v, steps, scale))


# ---------------------------------------------------------------- probes (§5) and metrics


def memorization(
    g: GeneratorLike,
    data: DatasetLike,
    heldout: DatasetLike | None = None,
    *,
    num: int = 10_000,
    k: int = 5,
    panels: int = 8,
    discriminator: PathLike | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Nearest training images of samples of seeds 0…num−1 (and the original code's nnd against held-out
    images): (summary, a panel image whose rows are a sample and its k nearest training images). Distances
    are on pixels, or on the features of the D at `discriminator` (a run or checkpoint folder) when given."""
    g = load_generator(g)
    train_set = dataset(data)
    held = dataset(heldout) if heldout is not None else None
    device = next(g.parameters()).device
    d = load_discriminator(discriminator, device) if discriminator is not None else None
    return probes_memorization.memorization(g, train_set, held, num, k, panels, device, d)


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
    log: Callable[[str], None] = lambda _: None,
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
    log: Callable[[str], None] = lambda _: None,
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
    device: str = "auto",
    log: Callable[[str], None] = print,
    **options: Any,
) -> dict[str, Any]:
    """D's features + L2-SVM against a supervised control and raw pixels (paper §5); writes
    OUT/probe.json, OUT/table.md and the cached features. Options as `dcgan probe`: budgets (labels per
    class, None = all), Cs, draws, val_size, seed, control, trials, max_epochs, pixels, untrained.

    >>> r = dcgan.probe("runs/fmnist32", "data/fm/train", "data/fm/test", "runs/fmnist32/probe", budgets=[100])
    """
    protocol.check_options(**{k: v for k, v in options.items() if k in protocol.CHECKED})
    dev = _device(device).type
    return protocol.probe(str(run), dataset(data), dataset(test), str(out), device=dev, log=log, **options)


def evaluate(
    g: GeneratorLike,
    data: DatasetLike,
    ex: FeatureExtractor | str = "fmnist",
    *,
    num: int = 10_000,
    metrics: Sequence[str] | str = metrics_evaluate.METRICS,
    seed: int = 0,
    bn: str = "running",
    cache: bool = True,
    out: PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """FID, KID, precision/recall and a classifier score of G against real images, in a named feature
    space (every number is labelled with the extractor's NAME-HASH); with `out`, also written as JSON.

    >>> r = dcgan.evaluate("runs/fmnist32", "data/fm/train", "fmnist", num=10_000); r["metrics"]
    """
    run = None if isinstance(g, Generator) else str(g)
    g = load_generator(g)
    chosen = metrics_evaluate.parse_metrics(metrics) if isinstance(metrics, str) else list(metrics)
    fx = extractor(ex, next(g.parameters()).device)
    result = {
        "run": run,
        **metrics_evaluate.evaluate(g, dataset(data), fx, num, chosen, seed, bn, cache, log),
    }
    if out is not None:
        write_json(out, result)
    return result
