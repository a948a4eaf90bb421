"""`dcgan prepare`: reader → pure transform → writer of a dataset folder that training memory-maps.

OUT/images.npy   uint8 (N, S, S, C), written into a memmap so sources larger than RAM are fine
OUT/labels.npy   int64 (N,), when the source has labels
OUT/NAME.npy     more per-image arrays a generated source brings (attributes.npy, …), listed in the manifest
OUT/manifest.json source, reader, counts, every skipped file and why, parameters, sha256 of images.npy
The folder is built as a hidden `.OUT.partial` sibling and renamed into place at the end, so OUT is either
absent, the previous dataset, or complete; `--force` replaces only a folder that is itself a prepared
dataset. How (the lock, the marked build, the swap, recovery after a kill) is folder.py's.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import dcgan
from dcgan.data.folder import FORMAT, build, check_out, swap_into_place, writing
from dcgan.data.items import Item, Source, Unreadable
from dcgan.data.sources import open_source
from dcgan.data.transforms import ImageSpec, process_array, process_encoded
from dcgan.errors import DcganError
from dcgan.fileio import fsync_file, sha256_file, write_json
from dcgan.progress import progress_bar

if TYPE_CHECKING:
    from dcgan.data.dataset import PreparedDataset


def _cores() -> int:
    # imported here, not at the top: dcgan.threads imports torch, and the CLI's parser imports this module
    # (each command re-executes under tcmalloc after parsing, and would import torch twice)
    from dcgan.threads import available_cores

    return available_cores()


def _process(item: Item, spec: ImageSpec) -> tuple[np.ndarray | str, int | None, str]:
    """One source item → ((S, S, C) uint8 or the reason it was skipped, label, id). Runs in workers."""
    raw, label, sid = item
    if isinstance(raw, Unreadable):
        return raw.reason, label, sid
    if isinstance(raw, np.ndarray):
        return process_array(raw, spec), label, sid
    return process_encoded(raw, spec), label, sid


def _results(
    src: Source, spec: ImageSpec, workers: int
) -> Iterator[tuple[np.ndarray | str, int | None, str]]:
    """Processed items in source order; encoded sources are decoded by a pool of `workers` processes."""
    fn = functools.partial(_process, spec=spec)
    if not src.encoded or workers <= 1 or src.count < 64:
        yield from map(fn, src.items())
        return
    with process_pool(workers) as pool:
        yield from pool.imap(fn, src.items(), chunksize=16)


def process_pool(workers: int) -> Any:
    """A pool of worker processes, forked where the OS has it: workers start at once and need no importable
    __main__ (stdin scripts, notebooks). They only run Pillow, NumPy and pure Python, never a lock a parent
    thread could hold."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers)


def prepare(
    source: str | os.PathLike | Source,
    out: str | os.PathLike,
    *,
    size: int,
    channels: int | None = None,
    fit: str = "crop",
    filter: str = "area",
    background: tuple[int, int, int] = (0, 0, 0),
    max_images: int | None = None,
    split: str | None = None,
    class_folders: bool = False,
    label_names: list[str] | None = None,
    strict: bool = False,
    force: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare `source` (a path, or a Source already opened) into the dataset folder `out`; returns the
    manifest. `channels=None` follows the source."""
    out = Path(out)
    if max_images is not None and max_images < 1:
        raise DcganError(f"--max-images must be at least 1, got {max_images}")
    with writing(out):
        check_out(out, source.path if isinstance(source, Source) else Path(source), force)
        src = source if isinstance(source, Source) else open_source(source, split, class_folders)
        spec = ImageSpec(size, channels or (1 if src.grey else 3), fit, filter, tuple(background))  # type: ignore[arg-type]
        n_max = min(src.count, max_images or src.count)
        t0 = time.perf_counter()
        with build(out) as tmp:
            n, labels, ids, skipped, read = _write_images(
                src, spec, tmp / "images.npy", n_max, strict, workers, progress
            )
            arrays = _write_extras(src, tmp, ids)
            manifest = _manifest(
                src, spec, tmp, n, labels, skipped, read, label_names, time.perf_counter() - t0
            )
            manifest.update(arrays=arrays, **src.about)
            write_json(tmp / "manifest.json", manifest)  # written last: a manifest means the folder is whole
            swap_into_place(tmp, out)
        return manifest


def _write_images(
    src: Source, spec: ImageSpec, path: Path, n_max: int, strict: bool, workers: int | None, progress: bool
) -> tuple[int, list[int | None], list[str], list[dict[str, str]], int]:
    """Decode, transform and store up to n_max images; returns (count, labels, ids of the kept images when
    the source has extras to align with them, skipped, read)."""
    s, c = spec.size, spec.channels
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n_max, s, s, c))
    labels: list[int | None] = []
    ids: list[str] = []
    skipped: list[dict[str, str]] = []
    n = read = 0
    bar = progress_bar(progress, total=n_max, unit="img", desc=f"prepare {src.reader}")
    with bar:
        for result, label, sid in _results(src, spec, workers or _cores()):
            read += 1
            if isinstance(result, str):
                if strict:
                    raise DcganError(
                        f"{sid!r} in {str(src.path)!r}: {result} (drop --strict to skip such files)"
                    )
                skipped.append({"id": sid, "reason": result})
                bar.set_postfix(skipped=len(skipped), refresh=False)
                continue
            images[n] = result
            labels.append(label)
            if src.extras is not None:
                ids.append(sid)
            n += 1
            bar.update()
            if n == n_max:
                break
    if n == 0:
        first = f"; first: {skipped[0]['id']!r}: {skipped[0]['reason']}" if skipped else ""
        raise DcganError(f"no image in {str(src.path)!r} could be read ({len(skipped)} failed{first})")
    images.flush()
    del images
    if n < n_max:
        _shrink_npy(path, n)
    fsync_file(path)
    return n, labels, ids, skipped, read


def _write_extras(src: Source, tmp: Path, ids: list[str]) -> list[str]:
    """The source's per-image arrays for the images kept, as NAME.npy; returns their names."""
    if src.extras is None:
        return []
    arrays = src.extras(ids)
    for name, a in arrays.items():
        assert len(a) == len(ids) and name not in ("images", "labels"), name
        np.save(tmp / f"{name}.npy", a)
        fsync_file(tmp / f"{name}.npy")
    return sorted(arrays)


def _shrink_npy(path: Path, n: int) -> None:
    """Cut a .npy's leading dimension to n in place: rewrite the shape in its header, truncate the data."""
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        prefix = f.tell() + (2 if version == (1, 0) else 4)  # magic + version, then the header length field
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }
        shape, fortran, dtype = read_header[version](f)
        data_start = f.tell()
        header = repr(
            {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran, "shape": (n, *shape[1:])}
        )
        room = data_start - prefix - 1  # keep the header's length: pad with spaces, end with a newline
        assert len(header) <= room, "a shorter leading dimension always fits the old header"
        f.seek(prefix)
        f.write(header.ljust(room).encode("latin1") + b"\n")
        f.truncate(data_start + n * int(np.prod(shape[1:])) * dtype.itemsize)


def _manifest(
    src: Source,
    spec: ImageSpec,
    tmp: Path,
    n: int,
    labels: list[int | None],
    skipped: list[dict[str, str]],
    read: int,
    label_names: list[str] | None,
    seconds: float,
) -> dict[str, Any]:
    has_labels = bool(labels) and all(x is not None for x in labels)
    names = label_names or src.label_names
    class_counts = None
    if has_labels:
        lab = np.asarray(labels, np.int64)
        np.save(tmp / "labels.npy", lab)
        fsync_file(tmp / "labels.npy")
        n_classes = max(len(names or []), int(lab.max()) + 1)
        class_counts = np.bincount(lab, minlength=n_classes).tolist()
        if names is None or len(names) < n_classes:
            names = [str(i) for i in range(n_classes)]
    manifest = {
        "format": FORMAT,
        "dcgan_version": dcgan.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": str(src.path.resolve()) if src.path.exists() else str(src.path),  # a generator: its name
        "reader": src.reader,
        "split": src.split,
        "shape": [n, spec.size, spec.size, spec.channels],
        "size": spec.size,
        "channels": spec.channels,
        "fit": spec.fit,
        "filter": spec.filter,
        "background": list(spec.background),
        "counts": {"read": read, "written": n, "skipped": len(skipped), "ignored_non_images": src.ignored},
        "labels": has_labels,
        "label_names": names if has_labels else None,
        "class_counts": class_counts,
        "seconds": round(seconds, 3),
        "images_sha256": sha256_file(tmp / "images.npy"),
        "skipped": skipped,
    }
    return manifest


def write_subset(
    ds: PreparedDataset,
    keep: np.ndarray,
    out: Path,
    about: dict[str, Any],
    write_more: Callable[[Path], None] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The images at sorted indices `keep` of the opened dataset `ds`, with their labels and per-image
    arrays, as a new dataset folder `out` (atomic, as `prepare`). The manifest is the source's, counted
    again, with `derived_from` and `about` added (`about` may replace `derived_from`); `write_more(folder)`
    adds files to the folder before it is complete."""
    with writing(out):
        check_out(out, ds.path, force)
        keep = np.asarray(keep, np.int64)
        with build(out) as tmp:
            shape = (len(keep), *ds.images.shape[1:])
            dst = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=shape)
            for i in range(0, len(keep), 4096):
                dst[i : i + 4096] = ds.images[keep[i : i + 4096]]
            dst.flush()
            del dst
            fsync_file(tmp / "images.npy")
            per_image = {name: ds.array(name) for name in ds.arrays}
            if ds.labels is not None:
                per_image["labels"] = ds.labels
            for name, a in per_image.items():
                np.save(tmp / f"{name}.npy", a[keep])
                fsync_file(tmp / f"{name}.npy")
            manifest = {**ds.manifest, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "shape": list(shape)}
            counts = ds.manifest.get("counts")
            manifest["counts"] = {**(counts if isinstance(counts, dict) else {}), "written": len(keep)}
            if ds.labels is not None:
                classes = max(len(ds.label_names or []), int(ds.labels.max()) + 1)
                manifest["class_counts"] = np.bincount(ds.labels[keep], minlength=classes).tolist()
            manifest["derived_from"] = {
                "path": str(ds.path.resolve()),
                "images_sha256": ds.manifest["images_sha256"],
                "images": len(ds),
                "kept": len(keep),
            }
            manifest.update(about)
            manifest["images_sha256"] = sha256_file(tmp / "images.npy")
            if write_more is not None:
                write_more(tmp)
            write_json(tmp / "manifest.json", manifest)  # last: a manifest means the folder is whole
            swap_into_place(tmp, out)
        return manifest
