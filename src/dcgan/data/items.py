"""What every reader hands to `prepare`: a Source (count, label names, an iterator of items) whose items
are (raw image, label or None, origin) with the raw image as decoded pixels, encoded bytes, a path, or an
Unreadable carrying the reason it could not be read.

sources.py (folders, zips, LMDB, and the dispatcher) and arrays.py (IDX, CIFAR, SVHN, NumPy) both build them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Unreadable:
    """Stands in for an item whose bytes could not be read; prepare records `reason` as the skip reason."""

    reason: str


Raw = np.ndarray | bytes | str | Unreadable
Item = tuple[Raw, int | None, str]


@dataclass
class Source:
    """An opened source: how many items it holds (at most), their labels' names, and the items themselves."""

    reader: str
    path: Path
    count: int
    items: Callable[[], Iterator[Item]]
    label_names: list[str] | None = None
    encoded: bool = False  # items need decoding: worth a process pool
    grey: bool = False  # the source is single-channel: prepare defaults to 1 channel
    split: str | None = None
    ignored: int = 0  # files that are not images (by extension), left out
    # more per-image arrays beside labels.npy (attributes.npy, …): given the ids of the images kept, in order,
    # the arrays by name; `about` is what the manifest says of them (column names, value names)
    extras: Callable[[list[str]], dict[str, np.ndarray]] | None = None
    about: dict[str, Any] = field(default_factory=dict)
