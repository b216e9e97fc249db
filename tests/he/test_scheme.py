"""Homomorphic identities, checked under every kernel implementation and both
parameter sets, plus the noise bookkeeping (actual noise never exceeds the
tracked bound; over-budget operations fail before any kernel runs)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cipherfuse import he

from .conftest import CPP_ISAS, seed


@pytest.fixture
def use(kernels: str) -> Iterator[None]:
    with he.use_kernels(kernels):
        yield


def _keys(params: he.HEParams, m: int, s: int = 1) -> tuple[he.SecretKey, he.PublicKey]:
    sk = he.keygen(params, m, seed=seed(s))
    return sk, he.public_keygen(sk, seed=seed(s + 100))


def _assert_noise_within_bound(sk: he.SecretKey, ct: he.Ciphertext) -> None:
    actual = np.abs(he.noise(sk, ct).astype(object))
    assert int(actual.max(initial=0)) <= ct.noise_bound < sk.params.half_w


def _plain(
    params: he.HEParams, shape: tuple[int, ...], rng: np.random.Generator, bound: int = 1000
) -> np.ndarray:
    return rng.integers(-bound, bound, size=shape)


@pytest.mark.usefixtures("use")
def test_roundtrip_public_symmetric_and_paper(params: he.HEParams) -> None:
    rng = np.random.default_rng(1)
    sk, pk = _keys(params, 6)
    x = _plain(params, (6,), rng, params.t // 2)
    x[0], x[1] = -(params.t // 2), params.t // 2 - 1  # both ends of Z_t
    for ct in (
        he.encrypt(pk, x, seed=seed(3)),
        he.encrypt_symmetric(sk, x, seed=seed(4)),
        he.encrypt_paper(he.identity_switch_key(sk, seed=seed(5)), x),
    ):
        np.testing.assert_array_equal(he.decrypt(sk, ct), x)
        _assert_noise_within_bound(sk, ct)


@pytest.fixture(scope="module")
def secure_keys() -> tuple[he.SecretKey, he.PublicKey]:
    return _keys(he.SECURE, 3, 7)


@pytest.mark.parametrize("isa", CPP_ISAS)
@pytest.mark.parametrize("batch", [1, 3, 9, 13, 33, 65])
def test_secure_encryption_is_bit_identical_on_every_isa(
    secure_keys: tuple[he.SecretKey, he.PublicKey], isa: str, batch: int
) -> None:
    """The C++ routes of public-key encryption (the narrow path in row blocks and column
    chunks, and the float64 GEMM beyond its crossover) give the numpy reference's
    ciphertext, word for word: one vector (shape (m,)) and odd batch sizes."""
    sk, pk = secure_keys
    xs = _plain(he.SECURE, (batch, pk.m), np.random.default_rng(batch))
    x = xs[0] if batch == 1 else xs
    with he.use_kernels("reference"):
        expected = he.encrypt(pk, x, seed=seed(batch))
    with he.use_kernels(f"cpp-{isa}"):
        got = he.encrypt(pk, x, seed=seed(batch))
    assert got.data.shape == expected.data.shape == ((sk.n,) if batch == 1 else (batch, sk.n))
    np.testing.assert_array_equal(got.data, expected.data)
    np.testing.assert_array_equal(he.decrypt(sk, got), x)


@pytest.mark.usefixtures("use")
def test_batch_encryption_is_rowwise(params: he.HEParams) -> None:
    rng = np.random.default_rng(2)
    sk, pk = _keys(params, 3)
    xs = _plain(params, (7, 3), rng)
    ct = he.encrypt(pk, xs, seed=seed(9))
    assert ct.batch == 7
    np.testing.assert_array_equal(he.decrypt(sk, ct), xs)
    np.testing.assert_array_equal(he.decrypt(sk, ct[2]), xs[2])


def test_encryption_is_randomized() -> None:
    sk, pk = _keys(he.SECURE, 2)
    a = he.encrypt(pk, [5, 5])
    b = he.encrypt(pk, [5, 5])
    assert not np.array_equal(a.data, b.data)
    np.testing.assert_array_equal(he.decrypt(sk, a), he.decrypt(sk, b))


@pytest.mark.usefixtures("use")
def test_add_sub_scale(params: he.HEParams) -> None:
    rng = np.random.default_rng(3)
    sk, pk = _keys(params, 5)
    x, y = _plain(params, (5,), rng), _plain(params, (5,), rng)
    cx, cy = he.encrypt(pk, x), he.encrypt(pk, y)
    for ct, want in (
        (he.add(cx, cy), x + y),
        (he.sub(cx, cy), x - y),
        (he.mul_scalar(cx, -7), -7 * x),
        (he.mul_scalar(cx, 0), 0 * x),
    ):
        np.testing.assert_array_equal(he.decrypt(sk, ct), want)
        _assert_noise_within_bound(sk, ct)


@pytest.mark.usefixtures("use")
def test_arithmetic_wraps_mod_t_without_declared_bounds() -> None:
    params = he.PAPER
    sk, pk = _keys(params, 1)
    big = params.t // 2 - 1
    ct = he.add(he.encrypt(pk, [big]), he.encrypt(pk, [1]))
    np.testing.assert_array_equal(he.decrypt(sk, ct), [-(params.t // 2)])


@pytest.mark.usefixtures("use")
def test_linear_combination_is_weighted_sum(params: he.HEParams) -> None:
    rng = np.random.default_rng(4)
    sk, pk = _keys(params, 4)
    xs = _plain(params, (9, 4), rng, 50)
    g = rng.integers(-100, 100, size=(3, 9))
    cts = he.encrypt(pk, xs)
    out = he.linear_combination(g, cts)
    np.testing.assert_array_equal(he.decrypt(sk, out), g @ xs)
    _assert_noise_within_bound(sk, out)
    single = he.linear_combination(g[0], cts)
    np.testing.assert_array_equal(he.decrypt(sk, single), g[0] @ xs)


@pytest.mark.slow
@pytest.mark.usefixtures("use")
def test_keyswitch_chain(params: he.HEParams) -> None:
    rng = np.random.default_rng(5)
    keys = [he.keygen(params, 3, seed=seed(20 + i)) for i in range(3)]
    pk = he.public_keygen(keys[0], seed=seed(30))
    x = _plain(params, (2, 3), rng)
    ct = he.encrypt(pk, x)
    for src, dst in itertools.pairwise(keys):
        ct = he.keyswitch(he.switch_key(src, dst, seed=seed(40)), ct)
        np.testing.assert_array_equal(he.decrypt(dst, ct), x)
        _assert_noise_within_bound(dst, ct)
    with pytest.raises(he.KeyMismatchError):
        he.decrypt(keys[0], ct)


@pytest.mark.usefixtures("use")
def test_linear_transform(params: he.HEParams) -> None:
    rng = np.random.default_rng(6)
    sk, pk = _keys(params, 4)
    target = he.keygen(params, 2, seed=seed(50))
    g = rng.integers(-5, 6, size=(2, 4))
    key = he.linear_transform_key(sk, g, target, seed=seed(51))
    x = _plain(params, (4,), rng)
    out = he.linear_transform(he.encrypt(pk, x), g, key)
    np.testing.assert_array_equal(he.decrypt(target, out), g @ x)
    _assert_noise_within_bound(target, out)
    with pytest.raises(he.KeyMismatchError):
        he.linear_transform(he.encrypt(pk, x), g + 1, key)


INNER = he.PAPER.with_(name="paper-inner", plaintext_bits=16, base_bits=8)


@pytest.mark.usefixtures("use")
@pytest.mark.parametrize("weighted", [False, True])
def test_inner_product_of_two_ciphertexts(weighted: bool) -> None:
    rng = np.random.default_rng(7)
    m = 6
    sk, pk = _keys(INNER, m)
    target = he.keygen(INNER, 1, seed=seed(60))
    h = rng.integers(-2, 3, size=(m, m)) if weighted else None
    key = he.inner_product_key(sk, target, h, seed=seed(61))
    x, y = rng.integers(-9, 10, m), rng.integers(-9, 10, m)
    out = he.inner_product(
        he.encrypt(pk, x, value_bound=9), he.encrypt(pk, y, value_bound=9), key, h
    )
    expected = x @ (np.eye(m, dtype=np.int64) if h is None else h) @ y
    np.testing.assert_array_equal(he.decrypt(target, out), [expected])
    _assert_noise_within_bound(target, out)


def test_inner_product_of_paper_encryptions() -> None:
    """Paper Eq. 44 on ciphertexts made with the paper's own M (Eq. 6)."""
    m = 5
    sk = he.keygen(INNER, m, seed=seed(70))
    M = he.identity_switch_key(sk, seed=seed(71))
    target = he.keygen(INNER, 1, seed=seed(72))
    key = he.inner_product_key(sk, target, seed=seed(73))
    x, y = np.array([1, -2, 3, 4, 0]), np.array([3, 3, -1, 2, 9])
    cx = he.encrypt_paper(M, x)
    cy = he.encrypt_paper(M, y)
    cx = he.Ciphertext(INNER, cx.key_id, m, cx.data.copy(), cx.noise_bound, 9)
    cy = he.Ciphertext(INNER, cy.key_id, m, cy.data.copy(), cy.noise_bound, 9)
    np.testing.assert_array_equal(he.decrypt(target, he.inner_product(cx, cy, key)), [x @ y])


@given(
    st.lists(st.integers(-(2**15), 2**15 - 1), min_size=3, max_size=3),
    st.lists(st.integers(-(2**15), 2**15 - 1), min_size=3, max_size=3),
    st.integers(-300, 300),
)
@settings(max_examples=25, deadline=None)
def test_homomorphism_property(x: list[int], y: list[int], f: int) -> None:
    params = he.SECURE
    sk, pk = _SECURE_KEYS
    cx, cy = he.encrypt(pk, x), he.encrypt(pk, y)
    t = params.t
    want = (f * (np.array(x) + np.array(y)) + t // 2) % t - t // 2
    np.testing.assert_array_equal(he.decrypt(sk, he.mul_scalar(he.add(cx, cy), f)), want)


_SECURE_KEYS = _keys(he.SECURE, 3, 90)


# ------------------------------------------------------------------ noise budget
class _CountingKernels(he.CppKernels):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def gemm_small_wide(self, s: np.ndarray, w: np.ndarray) -> np.ndarray:  # type: ignore[override]
        self.calls += 1
        return super().gemm_small_wide(s, w)


def test_noise_budget_is_checked_before_computing() -> None:
    _sk, pk = _keys(he.SECURE, 2)
    ct = he.encrypt(pk, [1, 2])
    counting = _CountingKernels()
    with he.use_kernels(counting):
        with pytest.raises(he.NoiseBudgetExceeded) as info:
            he.linear_combination(np.full((1, 1), 2**30), he.stack([ct]))
        assert counting.calls == 0
    err = info.value
    assert err.operation == "linear_combination"
    assert err.bound >= err.limit == he.SECURE.half_w
    assert "Eq. 26" in str(err)
    with pytest.raises(he.NoiseBudgetExceeded, match="mul_scalar"):
        he.mul_scalar(ct, 2**30)


def test_inner_product_budget_needs_declared_bounds() -> None:
    sk, pk = _keys(he.PAPER, 4)
    target = he.keygen(he.PAPER, 1, seed=seed(2))
    key = he.inner_product_key(sk, target, seed=seed(3))
    ct = he.encrypt(pk, [1, 2, 3, 4])  # no value bound: t/2 assumed
    with pytest.raises(he.NoiseBudgetExceeded, match="value_bound"):
        he.inner_product(ct, ct, key)


def test_declared_value_bounds_detect_overflow() -> None:
    _sk, pk = _keys(he.PAPER, 2)
    ct = he.encrypt(pk, [100, -100], value_bound=100)
    with pytest.raises(he.PlaintextOverflow):
        he.mul_scalar(ct, he.PAPER.t // 100)
    with pytest.raises(he.ParameterError, match="value_bound"):
        he.encrypt(pk, [101, 0], value_bound=100)


# ------------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors() -> None:
    sk, pk = _keys(he.PAPER, 3)
    with pytest.raises(he.ParameterError, match=r"shape \(3,\)"):
        he.encrypt(pk, [1, 2])
    with pytest.raises(he.ParameterError, match=r"\[-t/2, t/2\)"):
        he.encrypt(pk, [he.PAPER.t, 0, 0])
    with pytest.raises(he.ParameterError, match="integers"):
        he.encrypt(pk, [0.5, 0, 0])
    with pytest.raises(he.ParameterError, match="m \\(plaintext length\\)"):
        he.keygen(he.PAPER, 0)
    other_sk, other_pk = _keys(he.PAPER, 3, 7)
    with pytest.raises(he.KeyMismatchError):
        he.add(he.encrypt(pk, [1, 2, 3]), he.encrypt(other_pk, [1, 2, 3]))
    with pytest.raises(he.KeyMismatchError):
        he.decrypt(other_sk, he.encrypt(pk, [1, 2, 3]))
    with pytest.raises(he.ResourceLimitExceeded, match="max_bytes"):
        he.identity_switch_key(sk, max_bytes=1000)
