"""Parser for the IDX file format used by MNIST (optionally gzip-compressed).

An IDX file starts with a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``
followed by ``ndim`` big-endian uint32 dimensions and the row-major data.
Every field is validated; a short, long or corrupt file raises
:class:`~cipherfuse.data.errors.DatasetError` naming the file.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cipherfuse.data.errors import DatasetError

_DTYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Refuse absurd headers instead of allocating gigabytes from a corrupt file.
MAX_ELEMENTS = 1 << 31
#: Largest decompressed file: the most elements times the widest type, plus a header.
MAX_FILE_BYTES = MAX_ELEMENTS * 8 + 4 + 4 * 255


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(wbits=31)  # gzip framing
            out = inflater.decompress(raw, MAX_FILE_BYTES + 1)
            if len(out) > MAX_FILE_BYTES:
                raise DatasetError(f"IDX file {path} inflates to more than {MAX_FILE_BYTES} bytes")
            if not inflater.eof:
                raise EOFError("compressed stream ended before the end-of-stream marker")
            return out
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(
                f"IDX file {path} is not a valid gzip stream ({exc}); "
                "delete it and download it again"
            ) from exc
    return raw


def parse_idx(data: bytes, *, name: str = "<bytes>") -> npt.NDArray[np.generic]:
    """Parse the bytes of an (uncompressed) IDX file into an array.

    Args:
        data: the raw file contents.
        name: the file name used in error messages.

    Raises:
        DatasetError: bad magic, unknown dtype, or a size that disagrees with the header.
    """
    if len(data) < 4:
        raise DatasetError(f"IDX file {name} is truncated: {len(data)} bytes, no header")
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"IDX file {name} has a bad magic number {data[:4].hex()} (expected 0000xxyy)"
        )
    dtype = _DTYPES.get(data[2])
    if dtype is None:
        raise DatasetError(f"IDX file {name} has an unknown element type 0x{data[2]:02x}")
    ndim = data[3]
    if ndim == 0:
        raise DatasetError(f"IDX file {name} declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DatasetError(f"IDX file {name} is truncated inside its header")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    count = math.prod(dims)  # exact: an int64 product of hostile dims would wrap
    # Zero dims do not bound the others: numpy still refuses (0, 2^32, 2^32, 2^32).
    if count > MAX_ELEMENTS or math.prod(max(d, 1) for d in dims) > MAX_ELEMENTS:
        raise DatasetError(f"IDX file {name} declares {count} elements; refusing (corrupt header?)")
    expected = header_len + count * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise DatasetError(
            f"IDX file {name} is {state}: {len(data)} bytes, header implies {expected}; "
            "delete it and download it again"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: Path) -> npt.NDArray[np.generic]:
    """Read and validate an IDX file (``.gz`` or raw) from ``path``."""
    return parse_idx(_read_bytes(path), name=str(path))
