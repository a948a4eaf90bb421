"""A prepared dataset folder, opened memory-mapped; serves uint8 minibatches that are normalized on the device.

Training never decodes images: a minibatch is a gather of rows of images.npy. The rows are stored N×H×W×C,
so the (B, C, H, W) tensors handed out are channels_last views with no copy beyond the gather.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcgan.data.arrays import load_npy
from dcgan.data.folder import FORMAT
from dcgan.errors import DcganError
from dcgan.fileio import parse_json


class PreparedDataset:
    """The folder written by `dcgan prepare`. `images` is (N, H, W, C) uint8, memory-mapped unless in_memory."""

    def __init__(self, path: str | os.PathLike, in_memory: bool = False) -> None:
        self.path = Path(path)
        manifest_path, images_path = self.path / "manifest.json", self.path / "images.npy"
        if not manifest_path.is_file() or not images_path.is_file():
            if (self.path.parent / f".{self.path.name}.old").is_dir():
                raise DcganError(
                    f"{str(self.path)!r} is half-way through a `dcgan prepare --force` that was interrupted; "
                    "run that prepare command again: it finishes the swap first"
                )
            raise DcganError(
                f"expected a dataset folder made by `dcgan prepare` (with images.npy and manifest.json), "
                f"got {str(self.path)!r}; run `dcgan prepare SOURCE {self.path}` first"
            )
        try:
            self.manifest: dict[str, Any] = parse_json(manifest_path.read_bytes())
        except ValueError as e:  # not JSON, not UTF-8, nested too deeply
            raise DcganError(
                f"{str(manifest_path)!r} is not valid JSON ({e}); prepare the dataset again"
            ) from None
        needed = ("format", "shape", "images_sha256")
        if not isinstance(self.manifest, dict) or not all(k in self.manifest for k in needed):
            raise DcganError(
                f"{str(manifest_path)!r} is not a {FORMAT} manifest (it needs {', '.join(needed)}); "
                "prepare the dataset again"
            )
        if self.manifest.get("format") != FORMAT:
            raise DcganError(f"{str(manifest_path)!r} is not a {FORMAT} manifest; prepare the dataset again")
        self.images = load_npy(images_path, in_memory, then="; prepare the dataset again")
        if self.images.dtype != np.uint8 or list(self.images.shape) != self.manifest["shape"]:
            raise DcganError(
                f"{str(images_path)!r} holds {self.images.dtype} {list(self.images.shape)} but the manifest says "
                f"uint8 {self.manifest['shape']}; the folder was modified — prepare it again"
            )
        self.labels: np.ndarray | None = None
        if self.manifest.get("labels"):
            self.labels = load_npy(
                self.path / "labels.npy", in_memory=True, then="; prepare the dataset again"
            )
            if self.labels.shape != (len(self.images),) or not np.issubdtype(self.labels.dtype, np.integer):
                raise DcganError(
                    f"{str(self.path)!r}: labels.npy does not match images.npy; prepare it again"
                )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    @property
    def label_names(self) -> list[str] | None:
        return self.manifest.get("label_names")

    @property
    def arrays(self) -> list[str]:
        """Names of the per-image arrays beside images.npy and labels.npy (e.g. "attributes")."""
        names = self.manifest.get("arrays")
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def array(self, name: str) -> np.ndarray:
        """The per-image array NAME.npy (one row per image), loaded into memory and checked against images."""
        if name not in self.arrays:
            have = ", ".join(self.arrays) or "none"
            raise DcganError(f"{str(self.path)!r} has no per-image array {name!r} (it has: {have})")
        a = load_npy(self.path / f"{name}.npy", in_memory=True, then="; prepare the dataset again")
        if len(a) != len(self.images):
            raise DcganError(
                f"{str(self.path)!r}: {name}.npy has {len(a):,} rows for {len(self.images):,} images; "
                "prepare it again"
            )
        return a

    def class_names(self) -> list[str]:
        """The names of the classes in masks.npy (manifest["classes"]), checked, without reading the maps."""
        classes = self.manifest.get("classes")
        if "masks" not in self.arrays or classes is None:
            raise DcganError(
                f"{str(self.path)!r} has no class maps (masks.npy and the manifest's classes); "
                "`dcgan data rooms` draws a dataset that has them"
            )
        if not (
            isinstance(classes, list)
            and 2 <= len(classes) <= 256
            and all(isinstance(c, str) for c in classes)
        ):
            raise DcganError(
                f"{str(self.path)!r}: the manifest's classes are not 2–256 names; prepare it again"
            )
        return list(classes)

    def class_maps(self) -> tuple[np.ndarray, list[str]]:
        """masks.npy — (N, S, S) uint8, each pixel's class — and the class names, of a dataset drawn with
        class maps (`dcgan data rooms`); checked against the images and the names."""
        classes = self.class_names()
        masks = self.array("masks")
        if masks.dtype != np.uint8 or masks.shape[1:] != (self.image_size, self.image_size):
            raise DcganError(
                f"{str(self.path)!r}: masks.npy is {masks.dtype} {masks.shape[1:]}, not uint8 "
                f"({self.image_size}, {self.image_size}); prepare it again"
            )
        if masks.size and int(masks.max()) >= len(classes):
            raise DcganError(
                f"{str(self.path)!r}: masks.npy names class {int(masks.max())} of {len(classes)}"
            )
        return masks, classes

    def batch(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images at `indices` as a (B, C, H, W) uint8 tensor in channels_last memory, in the given order."""
        return as_nchw(read_rows(self.images, indices))

    def random_batch(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images drawn uniformly with replacement, (n, C, H, W) uint8."""
        return self.batch(torch.randint(len(self), (n,), generator=generator).numpy())

    def verify(self) -> None:
        """Check images.npy against the sha256 in the manifest (reads the whole file)."""
        from dcgan.fileio import sha256_file

        if sha256_file(self.path / "images.npy") != self.manifest["images_sha256"]:
            raise DcganError(
                f"{str(self.path)!r}: images.npy does not match its manifest's sha256; prepare it again"
            )


def read_rows(x: np.ndarray, indices: np.ndarray | torch.Tensor) -> np.ndarray:
    """x[indices] as an in-memory array, in the given order; a memmap is read front to back."""
    idx = np.asarray(indices, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    rows = x[idx[order]]
    rows[order] = rows.copy()
    return rows


def as_nchw(rows: np.ndarray) -> torch.Tensor:
    """(B, H, W, C) uint8 rows → a (B, C, H, W) tensor view in channels_last memory (copied first if read-only)."""
    return torch.from_numpy(rows if rows.flags.writeable else np.array(rows)).permute(0, 3, 1, 2)


def to_unit_range(
    x: torch.Tensor, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 images [0, 255] → `dtype` in [-1, 1] on `device` (the transfer moves bytes, not floats)."""
    x = x.to(device, non_blocking=True) if device is not None else x
    return x.to(dtype).div_(127.5).sub_(1.0)


def unit_batches(
    images: np.ndarray | torch.Tensor, batch: int, device: torch.device | str | None = None
) -> Iterator[torch.Tensor]:
    """Consecutive batches of uint8 images — (N, H, W, C) array/memmap or (N, C, H, W) tensor — as
    (B, C, H, W) float32 in [−1, 1] on `device`, read one batch at a time."""
    for i in range(0, len(images), batch):
        rows = images[i : i + batch]
        yield to_unit_range(rows if isinstance(rows, torch.Tensor) else as_nchw(rows), device)


@functools.lru_cache(maxsize=2)  # this epoch's and the next: drawing 3M rows costs ~30 ms, not per step
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    perm.flags.writeable = False
    return perm


def batch_indices(n: int, start: int, size: int, seed: int) -> np.ndarray:
    """Rows for the minibatch that begins after `start` images shown: a function of (seed, images seen) only.

    Epoch e visits the rows in the permutation drawn from (seed, e); a minibatch that crosses an epoch
    boundary finishes one permutation and begins the next. Resuming at any image count gives the same data.
    """
    out, pos = [], start
    while len(out) < size:
        epoch, offset = divmod(pos, n)
        perm = _permutation(n, seed, epoch)
        take = perm[offset : offset + size - len(out)]
        out.extend(take.tolist())
        pos += len(take)
    return np.asarray(out, dtype=np.int64)
