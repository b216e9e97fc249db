"""Hostile IDX headers: dimensions whose product wraps int64, gzip bombs, truncation."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from cipherfuse.data.errors import DatasetError
from cipherfuse.data.idx import parse_idx, read_idx


def test_dimensions_whose_int64_product_wraps_are_refused() -> None:
    """2^32-1 twice, then 2^2: the exact product is 2^66-ish; before, numpy's int64
    product wrapped and the parser raised a bare ValueError (or accepted a wrong count)."""
    dims = (0xFFFFFFFF, 0xFFFFFFFF, 4, 4)
    assert int(np.prod(dims, dtype=np.int64)) != int(np.prod(np.array(dims, dtype=object)))
    data = bytes([0, 0, 0x08, len(dims)]) + struct.pack(">4I", *dims) + b"\x00" * 16
    with pytest.raises(DatasetError, match="declares"):
        parse_idx(data)


def test_wrap_to_a_small_count_is_not_accepted() -> None:
    """2^16 * 2^16 * 2^16 * 2^16 wraps int64 to 0: before, a header-only file parsed as an
    empty array of that absurd shape."""
    dims = (1 << 16, 1 << 16, 1 << 16, 1 << 16)
    assert int(np.prod(dims, dtype=np.int64)) == 0
    data = bytes([0, 0, 0x08, 4]) + struct.pack(">4I", *dims)
    with pytest.raises(DatasetError):
        parse_idx(data)


def test_round_trip_and_truncation() -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + arr.tobytes()
    assert np.array_equal(parse_idx(data), arr)
    for cut in (0, 3, 7, len(data) - 1):
        with pytest.raises(DatasetError):
            parse_idx(data[:cut])


def test_truncated_gzip_is_a_dataset_error(tmp_path: Path) -> None:
    arr = np.arange(24, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 24) + arr.tobytes()
    packed = gzip.compress(raw)
    path = tmp_path / "x.idx.gz"
    path.write_bytes(packed)
    assert np.array_equal(read_idx(path), arr)
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(path)
