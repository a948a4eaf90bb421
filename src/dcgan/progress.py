"""Progress bars: shown on a terminal, silent in logs and pipes; `silent`, the log function that says nothing."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from tqdm import tqdm


def progress_bar(enabled: bool = True, **kw: Any) -> tqdm:
    """A tqdm bar on stderr when it is a terminal (disable=None) and `enabled`. Pseudo-terminals that report
    a 0×0 size make tqdm hide the bar as "outside the screen", so the size falls back to 100×24."""
    cols, rows = shutil.get_terminal_size((100, 24))
    return tqdm(
        file=sys.stderr,
        disable=None if enabled else True,
        ncols=cols if cols > 0 else 100,
        nrows=rows if rows > 0 else 24,
        **kw,
    )


def silent(_message: str) -> None:
    """A `log` that says nothing: what quiet callers and non-main ranks pass."""
