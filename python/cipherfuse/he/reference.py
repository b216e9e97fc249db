"""Pure-numpy reference implementation of the kernels (and so of the scheme).

Slow on purpose and simple: every C++ kernel is tested bit-for-bit against
these functions; running the scheme under ``use_kernels("reference")`` gives
the whole integer-vector HE scheme in numpy alone.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cipherfuse.geometry import im2col_t, patch_sums

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

_MASK32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)


def digit_count(base_bits: int) -> int:
    """ceil(64 / base_bits)."""
    if not 1 <= base_bits <= 16:
        raise ValueError(f"base_bits must be in [1, 16], got {base_bits}")
    return -(-64 // base_bits)


def decompose(c: U64Array, base_bits: int) -> U64Array:
    """Digits of each word, most significant first: out[i*l + j]."""
    l = digit_count(base_bits)
    shifts = np.array([base_bits * (l - 1 - j) for j in range(l)], dtype=np.uint64)
    mask = np.uint64((1 << base_bits) - 1)
    c = np.asarray(c, dtype=np.uint64).reshape(-1, 1)
    return ((c >> shifts) & mask).reshape(-1)


def gemm(w: U64Array, s: I64Array) -> U64Array:
    """w @ s mod 2^64 (numpy's integer matmul wraps on uint64)."""
    out: U64Array = np.matmul(np.asarray(w, dtype=np.uint64), np.asarray(s).astype(np.uint64))
    return out


def mul_wide(a: U64Array, b: U64Array) -> tuple[U64Array, U64Array]:
    """Full 128-bit unsigned products of uint64 arrays: (high, low) words."""
    a_lo, a_hi = a & _MASK32, a >> _U32
    b_lo, b_hi = b & _MASK32, b >> _U32
    ll = a_lo * b_lo
    lh = a_lo * b_hi
    hl = a_hi * b_lo
    hh = a_hi * b_hi
    mid = (ll >> _U32) + (lh & _MASK32) + (hl & _MASK32)
    low = (ll & _MASK32) | ((mid & _MASK32) << _U32)
    high = hh + (lh >> _U32) + (hl >> _U32) + (mid >> _U32)
    return high, low


def tensor_round(a: U64Array, b: U64Array, shift: int) -> U64Array:
    """out[j*n1 + i] = floor((a_i * b_j + 2^(shift-1)) / 2^shift) mod 2^64, signed operands."""
    if not 1 <= shift <= 63:
        raise ValueError(f"shift must be in [1, 63], got {shift}")
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    au = np.broadcast_to(a[None, :], (b.size, a.size))  # row j, column i
    bu = np.broadcast_to(b[:, None], (b.size, a.size))
    high, low = mul_wide(au, bu)
    # Signed product from the unsigned one: subtract b (resp. a) from the high
    # word where a (resp. b) is negative (two's complement).
    high = high - np.where(au >> np.uint64(63), bu, np.uint64(0))
    high = high - np.where(bu >> np.uint64(63), au, np.uint64(0))
    half = np.uint64(1 << (shift - 1))
    new_low = low + half
    carry = (new_low < low).astype(np.uint64)
    high = high + carry
    s = np.uint64(shift)
    out = (new_low >> s) | (high << np.uint64(64 - shift))
    return out.reshape(-1)


class ReferenceKernels:
    """The :class:`cipherfuse.he.backend.Kernels` protocol in numpy."""

    name = "reference"

    def decompose(self, c: U64Array, base_bits: int) -> U64Array:
        return decompose(c, base_bits)

    def gemm_wide_small(self, w: U64Array, s: I64Array) -> U64Array:
        return gemm(w, s)

    def gemm_small_wide(self, s: I64Array, w: U64Array) -> U64Array:
        out: U64Array = np.matmul(np.asarray(s).astype(np.uint64), np.asarray(w, dtype=np.uint64))
        return out

    def keyswitch(
        self, m: U64Array, c: U64Array, base_bits: int, skip_low_digits: int = 0
    ) -> U64Array:
        l = digit_count(base_bits)
        if not 0 <= skip_low_digits <= l:
            raise ValueError("skip_low_digits must be in [0, digits]")
        zero_bits = min(64, skip_low_digits * base_bits)
        low = np.uint64((1 << zero_bits) - 1) if zero_bits < 64 else np.uint64(2**64 - 1)
        if np.any(np.asarray(c, dtype=np.uint64) & low):
            raise ValueError("skip_low_digits is set but a word has non-zero low digits")
        out: U64Array = np.matmul(np.asarray(m, dtype=np.uint64), decompose(c, base_bits))
        return out

    def tensor_round(self, a: U64Array, b: U64Array, shift: int) -> U64Array:
        return tensor_round(a, b, shift)

    def conv2d(
        self,
        x: I64Array,
        kern: U64Array,
        bias: U64Array,
        stride: tuple[int, int],
        padding: str,
    ) -> U64Array:
        """im2col (patches K-major, plus a row of ones for the bias) and one uint64 matmul."""
        kh, kw, _, cols = kern.shape
        rows_t, lead = im2col_t(x, (kh, kw), stride, padding, ones_row=True)
        words = np.concatenate([np.asarray(kern, np.uint64).reshape(-1, cols), bias[None, :]])
        out_t = gemm(np.ascontiguousarray(words.T), np.asarray(rows_t, np.int64))
        out: U64Array = out_t.T.reshape(*lead, cols)
        return out

    def conv2d_patch_l1_max(
        self, x: I64Array, kernel_hw: tuple[int, int], stride: tuple[int, int], padding: str
    ) -> int:
        """An integral image of ``|x|`` summed over channels (no pass over the patches)."""
        return int(patch_sums(np.abs(x), kernel_hw, stride, padding).max(initial=0))
