"""Atomic, permission-restricted file writes shared by every area (role state, keystores,
nonce journals, model files, caches, reports, downloads); each caller states the file
mode and how durable the write must be."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str],
    *,
    mode: int = 0o600,
    durable: bool = True,
    sync_folder: bool | None = None,
    parents: bool = True,
) -> Iterator[BinaryIO]:
    """Yield a binary file whose bytes replace ``path`` atomically when the block ends.

    The file is a temporary one in the same folder (``.<name>.*.tmp``), given
    permissions ``mode`` before anything is written. When the block ends normally it
    is flushed, fsynced if ``durable``, and renamed over ``path``; then the folder is
    fsynced if ``sync_folder`` (by default: if ``durable``), which makes the rename
    itself survive a crash. If the block raises, the temporary file is removed and
    ``path`` keeps its old content. ``parents`` creates missing parent folders first;
    without it a missing folder raises :class:`FileNotFoundError`.
    """
    target = Path(path)
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable if sync_folder is None else sync_folder:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o600,
    durable: bool = True,
    sync_folder: bool | None = None,
    parents: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically with permissions ``mode``.

    :func:`atomic_writer` with the whole content at once; by default the file and its
    folder are fsynced, so a crash leaves either the old file or the new one, never a
    torn one, and missing parent folders are created.
    """
    with atomic_writer(
        path, mode=mode, durable=durable, sync_folder=sync_folder, parents=parents
    ) as fh:
        fh.write(data)
