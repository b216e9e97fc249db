"""The C++ kernels (every ISA) against the numpy reference, and the reference
against plain Python integers (an independent oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cipherfuse._core as _core
from cipherfuse.he import reference

from .conftest import CPP_ISAS

U64 = st.integers(min_value=0, max_value=2**64 - 1)
MOD = 1 << 64


def _u64(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def _signed(v: int) -> int:
    return v - MOD if v >= 1 << 63 else v


# ------------------------------------------------------------------ reference vs Python
@given(st.lists(U64, min_size=0, max_size=20), st.integers(1, 16))
def test_reference_decompose_recomposes(values: list[int], base_bits: int) -> None:
    digits = reference.decompose(_u64(values), base_bits)
    l = reference.digit_count(base_bits)
    assert digits.shape == (len(values) * l,)
    assert int(digits.max(initial=0)) < 1 << base_bits
    for i, v in enumerate(values):
        recomposed = 0
        for d in digits[i * l : (i + 1) * l]:
            recomposed = (recomposed << base_bits) + int(d)
        assert recomposed % MOD == v


@given(
    st.lists(U64, min_size=1, max_size=8), st.lists(U64, min_size=1, max_size=8), st.integers(1, 63)
)
def test_reference_tensor_round_matches_python(a: list[int], b: list[int], shift: int) -> None:
    out = reference.tensor_round(_u64(a), _u64(b), shift)
    for j, bj in enumerate(b):
        for i, ai in enumerate(a):
            exact = (_signed(ai) * _signed(bj) + (1 << (shift - 1))) >> shift
            assert int(out[j * len(a) + i]) == exact % MOD


@given(
    st.integers(1, 6),
    st.integers(0, 6),
    st.integers(1, 6),
    st.integers(0, 2**40),
    st.integers(0, 2**32 - 1),
)
def test_reference_gemm_matches_python(m: int, k: int, n: int, bound: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 2**64, size=(m, k), dtype=np.uint64)
    s = rng.integers(-bound, bound + 1, size=(k, n), dtype=np.int64)
    expected = (w.astype(object) @ s.astype(object)) % MOD
    assert (reference.gemm(w, s).astype(object) == expected).all()


# ------------------------------------------------------------------ C++ vs reference
@pytest.mark.parametrize("isa", CPP_ISAS)
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_gemm_wide_small_bit_exact(isa: str, data: st.DataObject) -> None:
    m = data.draw(st.integers(0, 40), label="m")
    k = data.draw(st.integers(0, 700), label="k")
    n = data.draw(st.integers(0, 30), label="n")
    bound = data.draw(st.sampled_from([0, 1, 255, 1000, 2**16 - 1, 2**24, 2**33, 2**40]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    w = rng.integers(0, 2**64, size=(m, k), dtype=np.uint64)
    extreme = data.draw(st.booleans(), label="extreme")
    if extreme and w.size:
        w[rng.random(w.shape) < 0.3] = np.uint64(2**64 - 1)
    s = rng.integers(-bound, bound + 1, size=(k, n), dtype=np.int64)
    if extreme and s.size:
        s[rng.random(s.shape) < 0.3] = -bound
    expected = reference.gemm(w, s)
    got = _core.gemm_wide_small(
        w, s, isa=isa, threads=data.draw(st.integers(1, 3), label="threads")
    )
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("isa", CPP_ISAS)
@given(st.integers(1, 20), st.integers(1, 300), st.integers(1, 20), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_gemm_small_wide_strided_operands(isa: str, m: int, k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    s_t = rng.integers(-3, 4, size=(k, m), dtype=np.int64)
    w_t = rng.integers(0, 2**64, size=(n, k), dtype=np.uint64)
    s, w = s_t.T, w_t.T  # non-contiguous views
    got = _core.gemm_small_wide(s, w, isa=isa, threads=2)
    expected = np.matmul(s.astype(np.uint64), w)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("isa", CPP_ISAS)
@given(
    st.integers(0, 40),
    st.integers(0, 40),
    st.integers(1, 16),
    st.integers(0, 2**32 - 1),
    st.integers(1, 3),
)
@settings(max_examples=80, deadline=None)
def test_keyswitch_bit_exact(
    isa: str, rows: int, n: int, base_bits: int, seed: int, threads: int
) -> None:
    rng = np.random.default_rng(seed)
    l = reference.digit_count(base_bits)
    M = rng.integers(0, 2**64, size=(rows, n * l), dtype=np.uint64)
    c = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    expected = M @ reference.decompose(c, base_bits)
    np.testing.assert_array_equal(
        _core.keyswitch(M, c, base_bits, isa=isa, threads=threads), expected
    )


@pytest.mark.parametrize("isa", CPP_ISAS)
@given(st.integers(1, 3), st.integers(1, 1300), st.integers(1, 16), st.data())
@settings(max_examples=40, deadline=None)
def test_keyswitch_skipping_zero_low_digits(
    isa: str, rows: int, n: int, base_bits: int, data: st.DataObject
) -> None:
    l = reference.digit_count(base_bits)
    skip = data.draw(st.integers(0, l - 1), label="skip")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    M = rng.integers(0, 2**64, size=(rows, n * l), dtype=np.uint64)
    zero_bits = skip * base_bits
    c = (rng.integers(0, 2**64, size=n, dtype=np.uint64) >> np.uint64(zero_bits)) << np.uint64(
        zero_bits
    )
    expected = M @ reference.decompose(c, base_bits)
    got = _core.keyswitch(M, c, base_bits, isa=isa, threads=2, skip_low_digits=skip)
    np.testing.assert_array_equal(got, expected)
    if skip:
        bad = c.copy()
        bad[-1] |= np.uint64(1)
        with pytest.raises(ValueError, match="low digits"):
            _core.keyswitch(M, bad, base_bits, isa=isa, threads=2, skip_low_digits=skip)


@given(st.lists(U64, min_size=0, max_size=30), st.integers(1, 16))
def test_decompose_bit_exact(values: list[int], base_bits: int) -> None:
    c = _u64(values)
    np.testing.assert_array_equal(_core.decompose(c, base_bits), reference.decompose(c, base_bits))


@given(
    st.lists(U64, min_size=0, max_size=25),
    st.lists(U64, min_size=0, max_size=25),
    st.integers(1, 63),
    st.integers(1, 3),
)
def test_tensor_round_bit_exact(a: list[int], b: list[int], shift: int, threads: int) -> None:
    got = _core.tensor_round(_u64(a), _u64(b), shift, threads=threads)
    if a and b:
        np.testing.assert_array_equal(got, reference.tensor_round(_u64(a), _u64(b), shift))
    else:
        assert got.size == 0


def test_extreme_tensor_values() -> None:
    edge = _u64([0, 1, 2**63 - 1, 2**63, 2**64 - 1])
    for shift in (1, 31, 32, 63):
        np.testing.assert_array_equal(
            _core.tensor_round(edge, edge, shift, threads=1),
            reference.tensor_round(edge, edge, shift),
        )


# ------------------------------------------------------------------ argument errors
def test_kernel_argument_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="base_bits"):
        _core.decompose(np.zeros(3, dtype=np.uint64), 17)
    with pytest.raises(ValueError, match="shape mismatch"):
        _core.gemm_wide_small(np.zeros((2, 3), dtype=np.uint64), np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="columns"):
        _core.keyswitch(np.zeros((2, 5), dtype=np.uint64), np.zeros(3, dtype=np.uint64), 8)
    with pytest.raises(ValueError, match="unknown isa"):
        _core.gemm_wide_small(
            np.zeros((1, 1), dtype=np.uint64), np.zeros((1, 1), dtype=np.int64), isa="sse9"
        )
    with pytest.raises(ValueError, match="shift"):
        _core.tensor_round(np.zeros(2, dtype=np.uint64), np.zeros(2, dtype=np.uint64), 64)
    with pytest.raises(TypeError):
        _core.decompose(np.zeros(3, dtype=np.int64), 8)  # wrong dtype is not converted


def test_unavailable_isa_is_reported() -> None:
    missing = [i for i in ("avx2", "neon") if not _core.isa_available(i)]
    for isa in missing:
        with pytest.raises(ValueError, match="not available"):
            _core.keyswitch(
                np.zeros((1, 8), dtype=np.uint64), np.zeros(1, dtype=np.uint64), 8, isa=isa
            )


@given(st.lists(U64, min_size=0, max_size=200), st.integers(1, 4))
def test_stream_sum_is_the_wrapping_sum(values: list[int], threads: int) -> None:
    assert _core.stream_sum(_u64(values), threads=threads) == sum(values) % MOD
