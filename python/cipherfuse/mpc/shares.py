"""Replicated secret shares over Z_2^64 and Z_2 (bit-packed), and their local operations.

Arithmetic: ``x = x_0 + x_1 + x_2 mod 2^64``; party ``i`` holds :class:`RSS`
``(first, second) = (x_i, x_{i+1})``. Boolean: ``b = b_0 ^ b_1 ^ b_2`` on packed 64-bit
words, party ``i`` holds :class:`BoolRSS` ``(b_i, b_{i+1})``. Linear operations (sums,
public scalings, adding a public constant, reshaping) are local; this module has no
communication. :func:`share` and :func:`reconstruct` are the dealer's and the
reference's view of all three parties at once (tests, model sharing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cipherfuse.mpc.transport import PARTIES

U64Array = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class RSS:
    """One party's replicated shares ``(x_i, x_{i+1})`` of a uint64 tensor."""

    first: U64Array
    second: U64Array

    def __post_init__(self) -> None:
        if self.first.shape != self.second.shape:
            raise ValueError(f"share shapes differ: {self.first.shape} vs {self.second.shape}")
        if self.first.dtype != np.uint64 or self.second.dtype != np.uint64:
            raise TypeError("shares are uint64")

    @property
    def shape(self) -> tuple[int, ...]:
        """The shared tensor's shape."""
        return tuple(self.first.shape)

    def map(self, fn: Callable[[U64Array], U64Array]) -> RSS:
        """Apply the same linear (or re-indexing) map to both shares."""
        return RSS(np.ascontiguousarray(fn(self.first)), np.ascontiguousarray(fn(self.second)))

    def reshape(self, *shape: int) -> RSS:
        """Reshape both shares."""
        return RSS(self.first.reshape(*shape), self.second.reshape(*shape))

    def __add__(self, other: RSS) -> RSS:
        with np.errstate(over="ignore"):
            return RSS(self.first + other.first, self.second + other.second)

    def __sub__(self, other: RSS) -> RSS:
        with np.errstate(over="ignore"):
            return RSS(self.first - other.first, self.second - other.second)

    def __neg__(self) -> RSS:
        with np.errstate(over="ignore"):
            return RSS(-self.first, -self.second)

    def scale(self, factor: npt.ArrayLike) -> RSS:
        """Multiply by a public integer (or broadcastable public uint64 array)."""
        f = np.asarray(factor)
        f64 = f.astype(np.int64).view(np.uint64) if f.dtype != np.uint64 else f
        with np.errstate(over="ignore"):
            return RSS(self.first * f64, self.second * f64)


def add_public(party: int, x: RSS, value: npt.ArrayLike) -> RSS:
    """``x + value`` for a public ``value`` broadcastable to ``x``'s shape.

    The value is added to component ``x_0``, held by parties 0 (first) and 2 (second).
    """
    v = np.asarray(value)
    v64 = v.astype(np.int64).view(np.uint64) if v.dtype != np.uint64 else v
    if np.broadcast_shapes(v64.shape, x.shape) != x.shape:
        raise ValueError(f"a public value of shape {v64.shape} does not fit shares {x.shape}")
    with np.errstate(over="ignore"):
        if party == 0:
            return RSS(np.ascontiguousarray(x.first + v64), x.second)
        if party == 2:
            return RSS(x.first, np.ascontiguousarray(x.second + v64))
    return x


def public_as_shares(party: int, value: npt.ArrayLike) -> RSS:
    """The trivial sharing ``(value, 0, 0)`` of a public uint64/int64 tensor."""
    v = np.asarray(value)
    v64 = np.ascontiguousarray(v.astype(np.int64).view(np.uint64) if v.dtype != np.uint64 else v)
    zero = np.zeros_like(v64)
    return add_public(party, RSS(zero, zero.copy()), v64)


@dataclass(frozen=True)
class BoolRSS:
    """One party's replicated XOR shares ``(b_i, b_{i+1})`` of packed bit words."""

    first: U64Array
    second: U64Array

    def __post_init__(self) -> None:
        if self.first.shape != self.second.shape:
            raise ValueError(f"share shapes differ: {self.first.shape} vs {self.second.shape}")

    def __xor__(self, other: BoolRSS) -> BoolRSS:
        return BoolRSS(self.first ^ other.first, self.second ^ other.second)

    def index(self, key: int | slice) -> BoolRSS:
        """The same sub-array of both shares."""
        return BoolRSS(
            np.ascontiguousarray(self.first[key]),
            np.ascontiguousarray(self.second[key]),
        )


def xor_public(party: int, x: BoolRSS, value: npt.ArrayLike) -> BoolRSS:
    """``x ^ value`` for public words ``value`` (on component ``b_0``)."""
    v = np.asarray(value, dtype=np.uint64)
    if party == 0:
        return BoolRSS(x.first ^ v, x.second)
    if party == 2:
        return BoolRSS(x.first, x.second ^ v)
    return x


def share(values: npt.ArrayLike, rng: np.random.Generator) -> tuple[RSS, RSS, RSS]:
    """Split ``values`` (int64 or uint64) into the three parties' :class:`RSS` (dealer view)."""
    v = np.asarray(values)
    v64 = np.ascontiguousarray(v.astype(np.int64).view(np.uint64) if v.dtype != np.uint64 else v)
    x0 = rng.integers(0, 2**64, size=v64.shape, dtype=np.uint64, endpoint=False)
    x1 = rng.integers(0, 2**64, size=v64.shape, dtype=np.uint64, endpoint=False)
    with np.errstate(over="ignore"):
        x2 = v64 - x0 - x1
    parts = (x0, x1, x2)
    return tuple(  # type: ignore[return-value]
        RSS(parts[i], parts[(i + 1) % PARTIES]) for i in range(PARTIES)
    )


def reconstruct(shares: tuple[RSS, RSS, RSS] | list[RSS]) -> U64Array:
    """``x_0 + x_1 + x_2`` from all three parties' shares (checks the replicas agree)."""
    for i in range(PARTIES):
        if not np.array_equal(shares[i].second, shares[(i + 1) % PARTIES].first):
            raise ValueError(f"parties {i} and {(i + 1) % PARTIES} hold different x_{i + 1}")
    with np.errstate(over="ignore"):
        total: U64Array = shares[0].first + shares[1].first + shares[2].first
    return total


def reconstruct_bool(shares: tuple[BoolRSS, BoolRSS, BoolRSS] | list[BoolRSS]) -> U64Array:
    """``b_0 ^ b_1 ^ b_2`` from all three parties' boolean shares."""
    for i in range(PARTIES):
        if not np.array_equal(shares[i].second, shares[(i + 1) % PARTIES].first):
            raise ValueError(f"parties {i} and {(i + 1) % PARTIES} hold different b_{i + 1}")
    out: U64Array = shares[0].first ^ shares[1].first ^ shares[2].first
    return out
