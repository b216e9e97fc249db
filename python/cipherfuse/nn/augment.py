"""Data augmentation for the contributors' image models: small random translations.

A contributor owns only 1,000 training images; shifting each image by a few
pixels per epoch (zero fill, no wrap-around) is the classic cheap way to make a
CNN generalize better from them without any extra data.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cipherfuse.nn.errors import ModelConfigError


def shift_images(
    images: npt.NDArray[np.float32], shifts: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """Translate image ``i`` by ``shifts[i] = (rows, cols)`` pixels, filling with zeros.

    Args:
        images: ``(n, height, width, channels)``.
        shifts: ``(n, 2)`` integer offsets; positive moves down / right.

    Raises:
        ModelConfigError: bad shapes, or an offset as large as the image.
    """
    x = np.asarray(images, np.float32)
    s = np.asarray(shifts, np.int64)
    if x.ndim != 4 or s.shape != (x.shape[0], 2):
        raise ModelConfigError(
            f"need images (n, h, w, c) and shifts (n, 2), got {x.shape} and {s.shape}"
        )
    h, w = x.shape[1], x.shape[2]
    if s.size and (np.abs(s[:, 0]).max() >= h or np.abs(s[:, 1]).max() >= w):
        raise ModelConfigError(f"shifts must be smaller than the image size {h}x{w}")
    out = np.zeros_like(x)
    for dr, dc in {(int(a), int(b)) for a, b in s}:
        sel = np.flatnonzero((s[:, 0] == dr) & (s[:, 1] == dc))
        src_r = slice(max(0, -dr), h - max(0, dr))
        dst_r = slice(max(0, dr), h - max(0, -dr))
        src_c = slice(max(0, -dc), w - max(0, dc))
        dst_c = slice(max(0, dc), w - max(0, -dc))
        out[sel, dst_r, dst_c] = x[sel, src_r, src_c]
    return out


def random_shifts(rng: np.random.Generator, n: int, max_shift: int) -> npt.NDArray[np.int64]:
    """``(n, 2)`` offsets drawn uniformly from ``-max_shift..max_shift``."""
    if max_shift < 0:
        raise ModelConfigError(f"max_shift must be >= 0, got {max_shift}")
    return rng.integers(-max_shift, max_shift + 1, size=(n, 2), dtype=np.int64)
