"""Progress bars that stay quiet when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm  # type: ignore[import-untyped]

T = TypeVar("T")


def progress(items: Iterable[T], *, desc: str, total: int, enabled: bool | None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar; ``enabled=None`` means "only when stderr is a TTY"."""
    show = sys.stderr.isatty() if enabled is None else enabled
    yield from tqdm(items, desc=desc, total=total, disable=not show, leave=False)
