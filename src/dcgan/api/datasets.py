"""Datasets in: prepare, the offline catalog, Fashion-MNIST, de-duplication."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from dcgan.api.common import (
    DatasetLike,
    PathLike,
    dataset,
)
from dcgan.data import catalog
from dcgan.data import folder as data_folder
from dcgan.data import prepare as data_prepare
from dcgan.data.dataset import PreparedDataset
from dcgan.data.dedup import Duplicates, HashConfig, check_radius, find_duplicates
from dcgan.data.download import prepare_fashion_mnist
from dcgan.data.transforms import parse_color
from dcgan.errors import DcganError
from dcgan.fileio import write_json
from dcgan.report import audit as report_audit


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
    # and held (with the sibling) until OUT is written
    with data_folder.writing(Path(out)):
        data_folder.check_out(Path(out), Path(source), bool(options.get("force")))
        whole = data_folder.whole_copy(Path(out))
        role = f"the whole dataset that --dedup cleans into {str(out)!r}"
        data_folder.remove_leftover(whole, Path(source), role)  # a killed run's (a dataset), nothing else
        try:
            data_prepare.prepare(source, whole, size=size, background=color, progress=progress, **options)
            force = bool(options.get("force"))
            return dedup(whole, out, radius=dedup_radius, force=force, progress=progress, origin=source)[0]
        finally:
            if whole.exists():
                with contextlib.suppress(OSError):  # what is left is cleared by the next run
                    data_folder.remove_build(whole)


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
    with data_folder.writing(Path(out)):
        data_folder.check_out(Path(out), ds.path, force)  # before minutes of work, not after
        dups = find_duplicates(ds.images, cfg, radius, allow_collapsed, progress)
        return _write_dedup(ds, dups, cfg, Path(out), radius, audit, force, origin)


def _write_dedup(
    ds: PreparedDataset,
    dups: Duplicates,
    cfg: HashConfig,
    out: Path,
    radius: int,
    audit: int,
    force: bool,
    origin: PathLike | None,
) -> tuple[PreparedDataset, Duplicates]:
    """The dataset without the duplicates `dups` found, with dedup.json and the audit sheet inside."""
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

    data_prepare.write_subset(ds, dups.keep(len(ds)), out, about, write_more, force)
    return PreparedDataset(out), dups
