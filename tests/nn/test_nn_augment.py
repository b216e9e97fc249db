"""Augmentation: shifts checked against np.roll, affine warps against scipy.ndimage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndimage

from cipherfuse.nn import ModelConfigError
from cipherfuse.nn.augment import affine_images, random_affine, random_shifts, shift_images


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


def _scipy_affine(image: np.ndarray, angle: float, scale: float, shift: np.ndarray) -> np.ndarray:
    """Reference: scipy's output-to-input map, bilinear, zero padding outside the grid."""
    theta = np.deg2rad(angle)
    m = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]]) / scale
    centre = (np.array(image.shape) - 1) / 2.0
    offset = centre - m @ (centre + shift)
    return ndimage.affine_transform(image, m, offset=offset, order=1, mode="grid-constant")


def test_affine_matches_scipy_on_random_transforms() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((40, 14, 11, 2)).astype(np.float32)
    angles = rng.uniform(-30, 30, 40)
    scales = rng.uniform(0.7, 1.3, 40)
    shifts = rng.uniform(-3, 3, (40, 2))
    got = affine_images(x, angles, scales, shifts)
    assert got.shape == x.shape and got.dtype == np.float32
    for i in range(40):
        for c in range(2):
            expected = _scipy_affine(
                x[i, :, :, c].astype(np.float64), angles[i], scales[i], shifts[i]
            )
            np.testing.assert_allclose(got[i, :, :, c], expected, atol=1e-5)


def test_affine_rotation_direction_and_identity_cases() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((5, 9, 9, 1)).astype(np.float32)
    zeros, ones = np.zeros(5), np.ones(5)
    np.testing.assert_allclose(affine_images(x, zeros, ones, np.zeros((5, 2))), x, atol=1e-6)
    # +90 degrees is a counter-clockwise quarter turn on screen, as np.rot90(k=1)
    turned = affine_images(x, np.full(5, 90.0), ones, np.zeros((5, 2)))
    np.testing.assert_allclose(turned, np.rot90(x, 1, axes=(1, 2)), atol=1e-5)
    # matches scipy.ndimage.rotate (bilinear, same size, zero fill)
    one = affine_images(x[:1], np.array([17.0]), np.ones(1), np.zeros((1, 2)))[0, :, :, 0]
    ref = ndimage.rotate(x[0, :, :, 0], 17.0, reshape=False, order=1, mode="grid-constant")
    np.testing.assert_allclose(one, ref, atol=1e-5)
    # angle 0, scale 1 and whole-pixel offsets are exactly shift_images
    s = random_shifts(rng, 5, 3)
    np.testing.assert_allclose(
        affine_images(x, zeros, ones, s.astype(np.float64)), shift_images(x, s), atol=1e-6
    )


def test_random_affine_is_seeded_and_bounded() -> None:
    r = np.arange(28) - 13.5
    blob = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 3.0**2))  # smooth, centred
    x = np.broadcast_to(blob[None, :, :, None], (200, 28, 28, 1)).astype(np.float32)
    a = random_affine(np.random.default_rng(7), x, 2, 10.0, 0.1)
    b = random_affine(np.random.default_rng(7), x, 2, 10.0, 0.1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random_affine(np.random.default_rng(8), x, 2, 10.0, 0.1))
    # nothing leaves the frame, so the ink scales with the area: scale^2 in 0.81..1.21
    ink = a.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3))
    assert ink.min() > 0.8 and ink.max() < 1.23
    assert ink.max() - ink.min() > 0.2  # the scales do vary


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros(3), np.ones(2), np.zeros((2, 2))), "angles"),
        ((np.zeros(2), np.array([1.0, 0.0]), np.zeros((2, 2))), "scales must be > 0"),
        ((np.array([np.nan, 0.0]), np.ones(2), np.zeros((2, 2))), "finite"),
    ],
)
def test_bad_affine_arguments(args: tuple[np.ndarray, ...], match: str) -> None:
    x = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(ModelConfigError, match=match):
        affine_images(x, *args)


def test_bad_random_affine_arguments() -> None:
    x = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(ModelConfigError, match="max_scale"):
        random_affine(np.random.default_rng(0), x, 0, 0.0, 1.0)
    with pytest.raises(ModelConfigError, match="max_rotation"):
        random_affine(np.random.default_rng(0), x, 0, -1.0, 0.0)
