"""descale: the float32 shortcut is bit-identical to the float64 route it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse.fusion.features import descale


def _float64_route(ints: np.ndarray, scale: int) -> np.ndarray:
    return (ints.astype(np.float64) / scale).astype(np.float32)


@pytest.mark.parametrize("scale", [1, 3, 7, 128, 1000, 128_000, 4_096_000, (1 << 24) - 1])
def test_float32_route_equals_float64_route(scale: int) -> None:
    rng = np.random.default_rng(scale)
    edge = np.array([0, 1, -1, (1 << 24) - 1, -((1 << 24) - 1), scale, -scale], np.int64)
    ints = np.concatenate([rng.integers(-(1 << 24) + 1, 1 << 24, 200_000), edge])
    got = descale(ints, scale)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _float64_route(ints, scale))


def test_large_values_take_the_float64_route() -> None:
    # 2^24 + 1 is not a float32 number: converting first would round it.
    ints = np.array([(1 << 24) + 1, (1 << 40) + 3, -((1 << 30) + 7)], np.int64)
    got = descale(ints, 3)
    np.testing.assert_array_equal(got, _float64_route(ints, 3))
    assert got[0] == np.float32(((1 << 24) + 1) / 3)


def test_empty_and_shaped_inputs() -> None:
    assert descale(np.zeros((0, 4), np.int64), 5).shape == (0, 4)
    ints = np.arange(-12, 12, dtype=np.int64).reshape(2, 3, 4)
    np.testing.assert_array_equal(descale(ints, 5), _float64_route(ints, 5))
