"""Local share arithmetic on uint64 arrays: the primitives every 3PC protocol step uses.

Each function here is exact: ring results are mod 2^64, boolean results bitwise on
packed 64-bit words. The public names (:func:`ring_matmul`, :func:`rss_mul_local`,
:func:`rss_and_local`, :func:`bitslice`, :func:`unbitslice`) run the C++ kernels of
``cipherfuse._core`` (cpp/mpc/: a scalar reference plus AVX2, AVX-512 and NEON paths
chosen at run time, multi-threaded, GIL released); the ``*_reference`` functions are
the numpy definitions they are tested against bit for bit (tests/mpc/).

Every public function takes two keywords: ``isa`` (``"auto"``: the fastest this CPU
runs; or ``"scalar"``, ``"avx2"``, ``"avx512"``, ``"neon"``; an unknown or unavailable
one raises ``ValueError``) and ``threads`` (``0``: one per hardware thread). Results do
not depend on either.

Conventions: operands are ``numpy.uint64`` (anything else raises ``TypeError``;
non-contiguous arrays are copied first); shapes of the operands of an element-wise
function must be equal (else ``ValueError``); results are new arrays, operands are
never modified.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import cipherfuse._core as _core

U64Array = npt.NDArray[np.uint64]

WORD_BITS = 64


def _u64(a: npt.ArrayLike, name: str) -> U64Array:
    arr = np.asarray(a)
    if arr.dtype != np.uint64:
        raise TypeError(f"{name} must be a uint64 array, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _same_shape(*arrays: U64Array) -> None:
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"operands must have one shape, got {sorted(shapes)}")


def ring_matmul_reference(a: npt.ArrayLike, b: npt.ArrayLike) -> U64Array:
    """``a @ b mod 2^64`` for uint64 matrices ``(m, k) @ (k, n)`` (numpy reference)."""
    a64, b64 = _u64(a, "a"), _u64(b, "b")
    if a64.ndim != 2 or b64.ndim != 2 or a64.shape[1] != b64.shape[0]:
        raise ValueError(f"need (m, k) @ (k, n), got {a64.shape} @ {b64.shape}")
    with np.errstate(over="ignore"):
        product: U64Array = np.matmul(a64, b64)
    return product


def rss_mul_local_reference(
    x0: npt.ArrayLike,
    x1: npt.ArrayLike,
    y0: npt.ArrayLike,
    y1: npt.ArrayLike,
    mask: npt.ArrayLike,
) -> U64Array:
    """One party's local step of replicated multiplication, element-wise, mod 2^64.

    With the party's shares ``(x_i, x_{i+1}) = (x0, x1)`` and ``(y0, y1)``, returns
    ``x0*y0 + x0*y1 + x1*y0 + mask``: the three parties' results are an additive
    (3-out-of-3) sharing of ``x*y`` when the masks are a sharing of zero (numpy reference).
    """
    a, b, c, d, m = (
        _u64(v, n) for v, n in ((x0, "x0"), (x1, "x1"), (y0, "y0"), (y1, "y1"), (mask, "mask"))
    )
    _same_shape(a, b, c, d, m)
    with np.errstate(over="ignore"):
        z: U64Array = a * (c + d) + b * c + m
    return z


def rss_and_local_reference(
    x0: npt.ArrayLike,
    x1: npt.ArrayLike,
    y0: npt.ArrayLike,
    y1: npt.ArrayLike,
    mask: npt.ArrayLike,
) -> U64Array:
    """The boolean counterpart of :func:`rss_mul_local_reference` on bit-packed words.

    Returns ``(x0 & y0) ^ (x0 & y1) ^ (x1 & y0) ^ mask``: 64 AND gates per word (numpy
    reference).
    """
    a, b, c, d, m = (
        _u64(v, n) for v, n in ((x0, "x0"), (x1, "x1"), (y0, "y0"), (y1, "y1"), (mask, "mask"))
    )
    _same_shape(a, b, c, d, m)
    z: U64Array = (a & (c ^ d)) ^ (b & c) ^ m
    return z


def bitslice_reference(x: npt.ArrayLike, bits: int = WORD_BITS) -> U64Array:
    """Transpose ``n`` ring elements into ``bits`` bit planes of ``ceil(n / 64)`` words.

    ``planes[b, w]`` has bit ``j`` equal to bit ``b`` of ``x[64 * w + j]`` (elements past
    ``n`` are zero). Only the low ``bits`` bits of each element are kept (numpy reference).
    """
    flat = _u64(x, "x").reshape(-1)
    if not 1 <= bits <= WORD_BITS:
        raise ValueError(f"bits must be in 1..64, got {bits}")
    words = -(-flat.size // WORD_BITS)
    padded = np.zeros(words * WORD_BITS, dtype=np.uint64)
    padded[: flat.size] = flat
    lanes = padded.reshape(words, WORD_BITS)
    shifts = np.arange(WORD_BITS, dtype=np.uint64)
    planes = np.empty((bits, words), dtype=np.uint64)
    for b in range(bits):
        bit = (lanes >> np.uint64(b)) & np.uint64(1)
        planes[b] = np.bitwise_or.reduce(bit << shifts, axis=1)
    return planes


def unbitslice_reference(planes: npt.ArrayLike, n: int) -> U64Array:
    """Inverse of :func:`bitslice_reference`: ``n`` elements from ``(bits, words)`` planes."""
    p = _u64(planes, "planes")
    if p.ndim != 2 or not 1 <= p.shape[0] <= WORD_BITS:
        raise ValueError(f"planes must have shape (bits <= 64, words), got {p.shape}")
    words = p.shape[1]
    if not 0 <= n <= words * WORD_BITS:
        raise ValueError(f"n must be in 0..{words * WORD_BITS}, got {n}")
    shifts = np.arange(WORD_BITS, dtype=np.uint64)
    out = np.zeros((words, WORD_BITS), dtype=np.uint64)
    for b in range(p.shape[0]):
        bit = (p[b][:, None] >> shifts[None, :]) & np.uint64(1)
        out |= bit << np.uint64(b)
    return out.reshape(-1)[:n].copy()


def _checked_operands(
    names: tuple[str, ...], values: tuple[npt.ArrayLike, ...]
) -> tuple[U64Array, ...]:
    arrays = tuple(_u64(v, n) for v, n in zip(values, names, strict=True))
    _same_shape(*arrays)
    return arrays


def ring_matmul(
    a: npt.ArrayLike, b: npt.ArrayLike, *, isa: str = "auto", threads: int = 0
) -> U64Array:
    """``a @ b mod 2^64`` for uint64 matrices ``(m, k) @ (k, n)``: the C++ ring GEMM.

    Same contract and result as :func:`ring_matmul_reference`; cache-blocked and split
    over ``threads`` row blocks.
    """
    a64, b64 = _u64(a, "a"), _u64(b, "b")
    if a64.ndim != 2 or b64.ndim != 2 or a64.shape[1] != b64.shape[0]:
        raise ValueError(f"need (m, k) @ (k, n), got {a64.shape} @ {b64.shape}")
    return _core.ring_gemm(a=a64, b=b64, isa=isa, threads=threads)


def rss_mul_local(
    x0: npt.ArrayLike,
    x1: npt.ArrayLike,
    y0: npt.ArrayLike,
    y1: npt.ArrayLike,
    mask: npt.ArrayLike,
    *,
    isa: str = "auto",
    threads: int = 0,
) -> U64Array:
    """One party's local step of replicated multiplication, element-wise, mod 2^64.

    With the party's shares ``(x_i, x_{i+1}) = (x0, x1)`` and ``(y0, y1)``, returns
    ``x0*y0 + x0*y1 + x1*y0 + mask`` in one fused pass (C++); the three parties' results
    are an additive sharing of ``x*y`` when the masks are a sharing of zero. Same
    contract and result as :func:`rss_mul_local_reference`.
    """
    a, b, c, d, m = _checked_operands(("x0", "x1", "y0", "y1", "mask"), (x0, x1, y0, y1, mask))
    return _core.rss_mul_local(x0=a, x1=b, y0=c, y1=d, mask=m, isa=isa, threads=threads)


def rss_and_local(
    x0: npt.ArrayLike,
    x1: npt.ArrayLike,
    y0: npt.ArrayLike,
    y1: npt.ArrayLike,
    mask: npt.ArrayLike,
    *,
    isa: str = "auto",
    threads: int = 0,
) -> U64Array:
    """``(x0 & y0) ^ (x0 & y1) ^ (x1 & y0) ^ mask`` on bit-packed words, in one pass (C++).

    The boolean counterpart of :func:`rss_mul_local`: 64 AND gates per word. Same
    contract and result as :func:`rss_and_local_reference`.
    """
    a, b, c, d, m = _checked_operands(("x0", "x1", "y0", "y1", "mask"), (x0, x1, y0, y1, mask))
    return _core.rss_and_local(x0=a, x1=b, y0=c, y1=d, mask=m, isa=isa, threads=threads)


def rss_and_rows(
    x0: U64Array,
    x1: U64Array,
    y0: U64Array,
    y1: U64Array,
    mask: U64Array,
    out: U64Array,
    *,
    isa: str = "auto",
    threads: int = 0,
) -> None:
    """:func:`rss_and_local` of 2-D ``(rows, words)`` operands into ``out``, in place.

    The operands may be strided over rows (e.g. every other bit plane, ``planes[1::2]``)
    as long as each row is contiguous; nothing is gathered. Same words as
    :func:`rss_and_local_reference` of the operands.
    """
    operands = (x0, x1, y0, y1, mask, out)
    for v, name in zip(operands, ("x0", "x1", "y0", "y1", "mask", "out"), strict=True):
        if not isinstance(v, np.ndarray) or v.dtype != np.uint64:
            raise TypeError(f"{name} must be a uint64 array")
    _same_shape(*operands)
    _core.rss_and_rows(x0=x0, x1=x1, y0=y0, y1=y1, mask=mask, out=out, isa=isa, threads=threads)


def bitslice(
    x: npt.ArrayLike, bits: int = WORD_BITS, *, isa: str = "auto", threads: int = 0
) -> U64Array:
    """Transpose ``n`` ring elements into ``bits`` bit planes of ``ceil(n / 64)`` words.

    ``planes[b, w]`` has bit ``j`` equal to bit ``b`` of ``x[64 * w + j]`` (elements past
    ``n`` are zero); only the low ``bits`` bits of each element are kept. C++: 64 x 64
    bit-matrix transposes, several groups per SIMD vector. Same contract and result as
    :func:`bitslice_reference`.
    """
    flat = _u64(x, "x").reshape(-1)
    if not 1 <= bits <= WORD_BITS:
        raise ValueError(f"bits must be in 1..64, got {bits}")
    return _core.bitslice(x=flat, bits=bits, isa=isa, threads=threads)


def unbitslice(planes: npt.ArrayLike, n: int, *, isa: str = "auto", threads: int = 0) -> U64Array:
    """Inverse of :func:`bitslice`: ``n`` elements from ``(bits, ceil(n / 64))`` planes.

    Bits ``>= bits`` of every element are zero. Same contract and result as
    :func:`unbitslice_reference`.
    """
    p = _u64(planes, "planes")
    if p.ndim != 2 or not 1 <= p.shape[0] <= WORD_BITS:
        raise ValueError(f"planes must have shape (bits <= 64, words), got {p.shape}")
    words = p.shape[1]
    if not 0 <= n <= words * WORD_BITS:
        raise ValueError(f"n must be in 0..{words * WORD_BITS}, got {n}")
    return _core.unbitslice(planes=p, n=n, isa=isa, threads=threads)
