"""Sign tests on shares against plaintext: MSB, bit-to-arithmetic, ReLU, max, argmax."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cipherfuse.mpc import boolean, kernels
from cipherfuse.mpc.plan import plaintext_argmax
from cipherfuse.mpc.shares import reconstruct_bool, share
from tests.mpc.protocol_util import opened, run3

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _unpack(words: np.ndarray, n: int) -> np.ndarray:
    return kernels.unbitslice(words.reshape(1, -1), n).astype(np.int64)


@FAST
@given(
    n=st.integers(1, 200),
    bit=st.integers(1, 63),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(boolean.SIGN_METHODS),
)
def test_sign_bit_is_the_sign_within_the_stated_range(n, bit, seed, method):
    rng = np.random.default_rng(seed)
    lo, hi = -(2**bit), 2**bit  # -2^bit <= x < 2^bit
    x = rng.integers(lo, hi, size=n, dtype=np.int64)
    x[: min(n, 4)] = [lo, hi - 1, 0, -1][: min(n, 4)]
    xs = share(x, rng)
    out = run3(lambda p: boolean.sign_bit(p, xs[p.index], bit, method=method))
    np.testing.assert_array_equal(_unpack(reconstruct_bool(out), n), (x < 0).astype(np.int64))


def test_sign_bit_uses_the_stated_rounds():
    rng = np.random.default_rng(0)
    xs = share(rng.integers(-(2**40), 2**40, size=70), rng)
    for method in boolean.SIGN_METHODS:
        for bit in (1, 2, 3, 33, 40, 63):

            def rounds(p, b=bit, m=method):
                boolean.sign_bit(p, xs[p.index], b, method=m)
                return p.cost.rounds

            assert run3(rounds) == [boolean.sign_test_rounds(bit, method)] * 3
    # textbook values of the two formulas
    assert [boolean.sign_test_rounds(b) for b in (1, 2, 3, 33, 63)] == [2, 3, 4, 8, 8]
    assert [boolean.sign_test_rounds(b, "carry_save") for b in (1, 2, 3, 33, 63)] == [
        1,
        2,
        3,
        7,
        8,
    ]


def test_two_addend_sign_test_sends_less_than_carry_save():
    """The leader's input round replaces the carry-save AND round (k + 1 planes sent by
    one party instead of k by each), and the leader rotates."""
    rng = np.random.default_rng(1)
    xs = share(rng.integers(-(2**62), 2**62, size=64 * 40), rng)

    def sent(method):
        def run(p):
            for _ in range(3):  # three tests: every party leads once
                boolean.sign_bit(p, xs[p.index], 63, method=method)
            return p.cost.bytes_sent

        return run3(run)

    two, csa = sent("two_addends"), sent("carry_save")
    assert len(set(two)) == 1  # balanced
    assert max(two) < 0.9 * min(csa)


def test_sign_bit_rejects_an_unknown_method():
    xs = share(np.arange(5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="method must be one of"):
        run3(lambda p: boolean.sign_bit(p, xs[p.index], 8, method="ripple"))


@FAST
@given(n=st.integers(1, 150), seed=st.integers(0, 2**32 - 1))
def test_bit_to_arith(n, seed):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=n).astype(np.uint64)
    packed = kernels.bitslice(bits, 1)[0]
    r1, r2 = (rng.integers(0, 2**64, size=packed.shape, dtype=np.uint64) for _ in range(2))
    parts = (packed ^ r1 ^ r2, r1, r2)
    from cipherfuse.mpc.shares import BoolRSS

    bs = [BoolRSS(parts[i], parts[(i + 1) % 3]) for i in range(3)]
    out = run3(lambda p: boolean.bit_to_arith(p, bs[p.index], n))
    np.testing.assert_array_equal(opened(out), bits.astype(np.int64))


@FAST
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 30)),
    magnitude=st.integers(1, 62),
    seed=st.integers(0, 2**32 - 1),
)
def test_relu_and_maximum(shape, magnitude, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-(2**magnitude), 2**magnitude, size=shape)
    b = rng.integers(-(2**magnitude), 2**magnitude, size=shape)
    b.reshape(-1)[0] = a.reshape(-1)[0]  # a tie
    as_, _bs = share(a, rng), share(b, rng)
    relu = run3(lambda p: boolean.relu(p, as_[p.index]))
    np.testing.assert_array_equal(opened(relu), np.maximum(a, 0))
    flat_a, flat_b = share(a.reshape(-1), rng), share(b.reshape(-1), rng)
    mx = run3(lambda p: boolean.maximum(p, flat_a[p.index], flat_b[p.index]))
    np.testing.assert_array_equal(opened(mx), np.maximum(a, b).reshape(-1))


def test_relu_with_a_smaller_sign_bit_is_exact_inside_its_range():
    rng = np.random.default_rng(2)
    x = rng.integers(-(2**20), 2**20, size=300)
    xs = share(x, rng)
    out = run3(lambda p: boolean.relu(p, xs[p.index], 20))
    np.testing.assert_array_equal(opened(out), np.maximum(x, 0))


@FAST
@given(
    n=st.integers(1, 12),
    classes=st.integers(2, 11),
    spread=st.sampled_from([2, 5, 2**30]),
    seed=st.integers(0, 2**32 - 1),
)
def test_argmax_hits_match_numpy_argmax_with_ties(n, classes, spread, seed):
    rng = np.random.default_rng(seed)
    logits = rng.integers(-spread, spread, size=(n, classes))  # small spread: many ties
    labels = rng.integers(0, classes, size=n)
    ls = share(logits, rng)
    hits = opened(run3(lambda p: boolean.argmax_hits(p, ls[p.index], labels)))
    want = np.argmax(logits, axis=1) == labels
    np.testing.assert_array_equal(hits, want.astype(np.int64))
    np.testing.assert_array_equal(plaintext_argmax(logits), np.argmax(logits, axis=1))


@FAST
@given(
    n=st.integers(1, 130),
    reps=st.integers(1, 3),
    calls=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_select_mul_with_rotating_leaders(n, reps, calls, seed):
    from cipherfuse.mpc.shares import BoolRSS

    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=n).astype(np.uint64)
    packed = kernels.bitslice(bits, 1)[0]
    r1, r2 = (rng.integers(0, 2**64, size=packed.shape, dtype=np.uint64) for _ in range(2))
    parts = (packed ^ r1 ^ r2, r1, r2)
    cs = [BoolRSS(parts[i], parts[(i + 1) % 3]) for i in range(3)]
    d = rng.integers(-(2**62), 2**62, size=reps * n)
    ds = share(d, rng)

    def run(p):
        return [boolean.select_mul(p, cs[p.index], n, ds[p.index]) for _ in range(calls)]

    out = run3(run)
    want = np.tile(bits.astype(np.int64), reps) * d
    for t in range(calls):  # each call has another leader
        np.testing.assert_array_equal(opened([o[t] for o in out]), want)


def test_is_negative_gives_ring_shares_of_the_sign():
    rng = np.random.default_rng(8)
    x = rng.integers(-(2**62), 2**62, size=(3, 7))
    xs = share(x, rng)
    out = run3(lambda p: boolean.is_negative(p, xs[p.index]))
    np.testing.assert_array_equal(opened(out), (x < 0).astype(np.int64))
