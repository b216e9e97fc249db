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


def affine_images(
    images: npt.NDArray[np.float32],
    angles_deg: npt.NDArray[np.float64],
    scales: npt.NDArray[np.float64],
    shifts: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """Rotate, scale and translate each image about its centre (bilinear, zero fill).

    Output pixel ``(r, c)`` of image ``i`` samples the input at
    ``centre + R(-angle_i) ((r, c) - centre - shift_i) / scale_i``, i.e. the image is
    scaled by ``scales[i]``, rotated by ``angles_deg[i]`` (counter-clockwise on
    screen) and then moved by ``shifts[i] = (rows, cols)``. With angle 0, scale 1 and
    integer shifts this is exactly :func:`shift_images`.

    Args:
        images: ``(n, height, width, channels)``.
        angles_deg, scales: ``(n,)``; scales must be positive.
        shifts: ``(n, 2)`` offsets in pixels (fractions allowed).

    Raises:
        ModelConfigError: bad shapes, non-finite values or a scale <= 0.
    """
    x = np.asarray(images, np.float32)
    a = np.asarray(angles_deg, np.float64)
    sc = np.asarray(scales, np.float64)
    sh = np.asarray(shifts, np.float64)
    n = x.shape[0] if x.ndim == 4 else -1
    if x.ndim != 4 or a.shape != (n,) or sc.shape != (n,) or sh.shape != (n, 2):
        raise ModelConfigError(
            "need images (n, h, w, c), angles (n,), scales (n,) and shifts (n, 2); got "
            f"{x.shape}, {a.shape}, {sc.shape} and {sh.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(sc).all() and np.isfinite(sh).all()):
        raise ModelConfigError("angles, scales and shifts must be finite")
    if (sc <= 0).any():
        raise ModelConfigError(f"scales must be > 0, got minimum {sc.min()}")
    _, h, w, ch = x.shape
    f32 = np.float32
    cr, cc = f32((h - 1) / 2.0), f32((w - 1) / 2.0)
    rows = np.repeat(np.arange(h, dtype=f32), w)[None]
    cols = np.tile(np.arange(w, dtype=f32), h)[None]
    theta = np.deg2rad(a).astype(f32)[:, None]
    cos, sin = np.cos(theta), np.sin(theta)
    inv_scale = (1.0 / sc).astype(f32)[:, None]
    dr = rows - cr - sh[:, :1].astype(f32)
    dc = cols - cc - sh[:, 1:].astype(f32)
    # Inverse map: undo the shift, then the rotation, then the scale. Rows point
    # down on screen, so a counter-clockwise turn flips the usual sign of sin.
    src_r = cr + (cos * dr + sin * dc) * inv_scale
    src_c = cc + (-sin * dr + cos * dc) * inv_scale
    r0f, c0f = np.floor(src_r), np.floor(src_c)
    fr, fc = (src_r - r0f)[..., None], (src_c - c0f)[..., None]
    r0, c0 = r0f.astype(np.int64), c0f.astype(np.int64)
    # One zero pixel of padding on every side; clipping any outside index onto it
    # gives the zero fill without masks.
    padded = np.zeros((n, h + 2, w + 2, ch), f32)
    padded[:, 1:-1, 1:-1] = x
    pixels = padded.reshape(-1, ch)
    base = (np.arange(n, dtype=np.int64) * (h + 2) * (w + 2))[:, None]
    ra, rb = np.clip(r0, -1, h) + 1, np.clip(r0 + 1, -1, h) + 1
    ca, cb = np.clip(c0, -1, w) + 1, np.clip(c0 + 1, -1, w) + 1

    def at(r: npt.NDArray[np.int64], c: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return np.asarray(pixels[base + r * (w + 2) + c], np.float32)

    top = at(ra, ca) * (1 - fc) + at(ra, cb) * fc
    bottom = at(rb, ca) * (1 - fc) + at(rb, cb) * fc
    out: npt.NDArray[np.float32] = (top * (1 - fr) + bottom * fr).reshape(n, h, w, ch)
    return out


def random_affine(
    rng: np.random.Generator,
    images: npt.NDArray[np.float32],
    max_shift: int,
    max_rotation: float,
    max_scale: float,
) -> npt.NDArray[np.float32]:
    """Each image rotated by up to ``max_rotation`` degrees, scaled by a factor in
    ``1 ± max_scale`` and shifted by up to ``max_shift`` whole pixels (all uniform)."""
    if max_shift < 0 or max_rotation < 0 or not 0 <= max_scale < 1:
        raise ModelConfigError(
            "need max_shift >= 0, max_rotation >= 0 and 0 <= max_scale < 1, got "
            f"{max_shift}, {max_rotation}, {max_scale}"
        )
    n = np.asarray(images).shape[0]
    shifts = random_shifts(rng, n, max_shift).astype(np.float64)
    angles = np.asarray(rng.uniform(-max_rotation, max_rotation, n), np.float64)
    scales = np.asarray(rng.uniform(1 - max_scale, 1 + max_scale, n), np.float64)
    return affine_images(images, angles, scales, shifts)


#: Upper bounds on the augmentation parameters: pixels, degrees, scale fraction.
MAX_SHIFT_LIMIT = 8
MAX_ROTATION_LIMIT = 45.0
MAX_SCALE_LIMIT = 0.5


def augment_range_problem(max_shift: int, max_rotation: float, max_scale: float) -> str | None:
    """What is wrong with these augmentation bounds, or ``None`` when they are valid."""
    if not 0 <= max_shift <= MAX_SHIFT_LIMIT:
        return f"max_shift must be in 0..{MAX_SHIFT_LIMIT} pixels, got {max_shift}"
    if not 0 <= max_rotation <= MAX_ROTATION_LIMIT:
        return f"max_rotation must be in 0..{MAX_ROTATION_LIMIT:g} degrees, got {max_rotation}"
    if not 0 <= max_scale <= MAX_SCALE_LIMIT:
        return f"max_scale must be in 0..{MAX_SCALE_LIMIT:g}, got {max_scale}"
    return None


def augment_images(
    rng: np.random.Generator,
    images: npt.NDArray[np.float32],
    max_shift: int,
    max_rotation: float = 0.0,
    max_scale: float = 0.0,
) -> npt.NDArray[np.float32]:
    """One random augmentation of every image, drawn from ``rng``.

    Pure whole-pixel shifts (:func:`shift_images`, no interpolation) when there is no
    rotation and no scaling; otherwise :func:`random_affine`.
    """
    if max_rotation or max_scale:
        return random_affine(rng, images, max_shift, max_rotation, max_scale)
    return shift_images(images, random_shifts(rng, np.asarray(images).shape[0], max_shift))
