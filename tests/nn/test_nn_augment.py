"""Shift augmentation: exact translation with zero fill, checked against np.roll."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse.nn import ModelConfigError
from cipherfuse.nn.augment import random_shifts, shift_images


def test_shift_matches_roll_on_images_with_an_empty_border() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros((30, 12, 10, 2), np.float32)
    x[:, 3:9, 3:7] = rng.random((30, 6, 4, 2))  # 3-pixel empty border: no wrap-around
    s = random_shifts(rng, 30, 3)
    got = shift_images(x, s)
    for i in range(30):
        expected = np.roll(x[i], (int(s[i, 0]), int(s[i, 1])), axis=(0, 1))
        np.testing.assert_array_equal(got[i], expected)
    np.testing.assert_array_equal(shift_images(x, np.zeros((30, 2), np.int64)), x)


def test_shift_fills_with_zeros_and_drops_what_leaves_the_image() -> None:
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    got = shift_images(x, np.array([[1, -1]]))[0, :, :, 0]
    np.testing.assert_array_equal(got, [[0, 0, 0], [2, 3, 0], [5, 6, 0]])


def test_random_shifts_cover_the_range_only() -> None:
    s = random_shifts(np.random.default_rng(1), 5000, 2)
    assert s.shape == (5000, 2)
    assert set(np.unique(s)) == {-2, -1, 0, 1, 2}


def test_bad_shift_arguments() -> None:
    x = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(ModelConfigError, match="shifts"):
        shift_images(x, np.zeros((3, 2), np.int64))
    with pytest.raises(ModelConfigError, match="smaller than the image"):
        shift_images(x, np.array([[4, 0], [0, 0]]))
    with pytest.raises(ModelConfigError, match="max_shift"):
        random_shifts(np.random.default_rng(0), 2, -1)
