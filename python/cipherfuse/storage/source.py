"""Uniform, chunk-at-a-time access to the inputs ``put`` and ``compute_cid`` accept."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from cipherfuse.errors import ParameterError


@runtime_checkable
class ReadableBinary(Protocol):
    """Anything with a binary ``read(n)`` (an open file, a socket file, ``io.BytesIO``)."""

    def read(self, n: int = -1, /) -> bytes: ...


#: What the storage API accepts as content: bytes-like data, a path, or a binary file.
Content = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO | ReadableBinary


def iter_chunks(content: Content, chunk_size: int) -> Iterator[memoryview]:
    """Yield ``content`` as consecutive ``chunk_size`` views (the last may be shorter).

    Files are read with ``readinto`` into one reused buffer, so a yielded view is only
    valid until the next one is requested. Bytes-like input is sliced without copying.
    """
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content).cast("B")
        for start in range(0, len(view), chunk_size):
            yield view[start : start + chunk_size]
        return
    if isinstance(content, str | os.PathLike):
        path = Path(content)
        if not path.is_file():
            raise ParameterError(f"content path {str(path)!r} is not an existing regular file")
        with open(path, "rb", buffering=0) as fh:
            yield from _iter_file(fh, chunk_size)
        return
    if isinstance(content, io.TextIOBase):
        raise ParameterError("content file must be opened in binary mode ('rb'), not text mode")
    if isinstance(content, ReadableBinary):
        yield from _iter_file(content, chunk_size)
        return
    raise ParameterError(
        f"content must be bytes, a path or a binary file object, got {type(content).__name__}"
    )


def _iter_file(fh: ReadableBinary, chunk_size: int) -> Iterator[memoryview]:
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    readinto = getattr(fh, "readinto", None)
    while True:
        filled = 0
        while filled < chunk_size:
            if readinto is not None:
                got = readinto(view[filled:])
            else:
                data = fh.read(chunk_size - filled)
                if not isinstance(data, bytes | bytearray):
                    raise ParameterError("content file must return bytes from read()")
                got = len(data)
                view[filled : filled + got] = data
            if not got:
                break
            filled += got
        if filled:
            yield view[:filled]
        if filled < chunk_size:
            return
