"""Arithmetic protocols against plaintext references: products, linear layers, truncation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cipherfuse.mpc import arith
from cipherfuse.mpc.linear import LINEAR_KERNELS, ring_conv, ring_conv_reference, ring_dense
from cipherfuse.mpc.party import Party
from cipherfuse.mpc.shares import share
from cipherfuse.nn.quantize import QuantizedConv
from tests.mpc.protocol_util import opened, run3

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _words(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64)


def _conv_layer(kernel: tuple[int, ...], stride: tuple[int, ...], padding: str) -> QuantizedConv:
    return QuantizedConv(
        weight=np.zeros((*kernel, 1, 1), np.int64),
        bias=np.zeros(1, np.int64),
        weight_scale=1,
        input_scale=1,
        output_scale=1,
        stride=stride,
        padding=padding,  # type: ignore[arg-type]
        activation="none",
    )


@FAST
@given(
    n=st.integers(1, 3),
    size=st.integers(3, 7),
    k=st.integers(1, 3),
    s=st.integers(1, 2),
    cin=st.integers(1, 3),
    cout=st.integers(1, 3),
    padding=st.sampled_from(["SAME", "VALID"]),
    seed=st.integers(0, 2**32 - 1),
    kernel=st.sampled_from(LINEAR_KERNELS),
)
def test_ring_conv_matches_numpy_reference(n, size, k, s, cin, cout, padding, seed, kernel):
    rng = np.random.default_rng(seed)
    x = _words(rng, (n, size, size, cin))
    x.reshape(-1)[0] = np.uint64(2**63)  # int64 minimum is a valid share word
    w = _words(rng, (k, k, cin, cout))
    layer = _conv_layer((k, k), (s, s), padding)
    want = ring_conv_reference(x, w, layer)
    np.testing.assert_array_equal(ring_conv(x, w, layer, kernel=kernel), want)
    layer1 = _conv_layer((k,), (s,), padding)
    x1, w1 = x[:, 0], w[0]
    want1 = ring_conv_reference(x1, w1, layer1)
    np.testing.assert_array_equal(ring_conv(x1, w1, layer1, kernel=kernel), want1)


def test_ring_conv_kernels_agree_on_the_case1_second_layer_geometry():
    """Full-width shares, 5x5 SAME, 64 stacked input channels, 16 outputs (Case I layer 2)."""
    rng = np.random.default_rng(11)
    x = _words(rng, (3, 14, 14, 64))
    w = _words(rng, (5, 5, 64, 16))
    layer = _conv_layer((5, 5), (1, 1), "SAME")
    want = ring_conv_reference(x, w, layer)
    for kernel in LINEAR_KERNELS:
        np.testing.assert_array_equal(ring_conv(x, w, layer, kernel=kernel), want)
    with pytest.raises(ValueError, match="kernel must be one of"):
        ring_conv(x, w, layer, kernel="fft")  # type: ignore[arg-type]


@pytest.mark.parametrize("kernel", LINEAR_KERNELS)
def test_ring_dense_is_matmul_mod_2_64(kernel):
    rng = np.random.default_rng(3)
    x, w = _words(rng, (5, 7)), _words(rng, (7, 4))
    want = np.zeros((5, 4), dtype=object)
    for i in range(5):
        for j in range(4):
            want[i, j] = sum(int(x[i, t]) * int(w[t, j]) for t in range(7)) % 2**64
    np.testing.assert_array_equal(ring_dense(x, w, kernel=kernel), want.astype(np.uint64))


@FAST
@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 6)), seed=st.integers(0, 2**32 - 1))
def test_mul_equals_product_mod_2_64(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**62), 2**62, size=shape)
    y = rng.integers(-(2**62), 2**62, size=shape)
    xs, ys = share(x, rng), share(y, rng)
    out = run3(lambda p: arith.mul(p, xs[p.index], ys[p.index]))
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(opened(out), x * y)


@FAST
@given(
    n=st.integers(1, 4), k=st.integers(1, 6), f=st.integers(1, 4), seed=st.integers(0, 2**32 - 1)
)
def test_secret_and_public_dense(n, k, f, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-1000, 1000, size=(n, k))
    w = rng.integers(-(2**20), 2**20, size=(k, f))
    b = rng.integers(-(2**30), 2**30, size=f)
    xs, ws, bs = share(x, rng), share(w, rng), share(b, rng)
    secret = run3(lambda p: arith.secret_dense(p, xs[p.index], ws[p.index], bs[p.index]))
    public = [arith.public_dense(x, ws[i], bs[i]) for i in range(3)]
    np.testing.assert_array_equal(opened(secret), x @ w + b)
    np.testing.assert_array_equal(opened(public), x @ w + b)


@FAST
@given(
    size=st.integers(3, 6),
    cin=st.integers(1, 3),
    cout=st.integers(1, 3),
    padding=st.sampled_from(["SAME", "VALID"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_secret_and_public_conv(size, cin, cout, padding, seed):
    from cipherfuse.nn.config import DenseSpec, ModelConfig
    from cipherfuse.nn.quantize import QuantizedModel, integer_forward

    rng = np.random.default_rng(seed)
    x = rng.integers(-1000, 1000, size=(2, size, size, cin))
    w = rng.integers(-(2**20), 2**20, size=(3, 3, cin, cout))
    b = rng.integers(-(2**30), 2**30, size=cout)
    layer = QuantizedConv(w, b, 1, 1, 1, (1, 1), padding, "none")  # type: ignore[arg-type]
    src = ModelConfig("t", (1,), (DenseSpec(1),))
    want = integer_forward(QuantizedModel(x.shape[1:], 1, 1, (layer,), 1, 1, src), x)
    xs, ws, bs = share(x, rng), share(w, rng), share(b, rng)
    secret = run3(lambda p: arith.secret_conv(p, xs[p.index], ws[p.index], bs[p.index], layer))
    public = [arith.public_conv(x, ws[i], bs[i], layer) for i in range(3)]
    np.testing.assert_array_equal(opened(secret), want)
    np.testing.assert_array_equal(opened(public), want)


def test_public_linear_sends_nothing():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 100, size=(2, 5, 5, 1))
    w, b = share(rng.integers(-50, 50, size=(3, 3, 1, 2)), rng), share(np.zeros(2, np.int64), rng)
    layer = _conv_layer((3, 3), (1, 1), "SAME")

    def run(p: Party):
        before = p.transport.bytes_sent
        arith.public_conv(x, w[p.index], b[p.index], layer)
        return p.transport.bytes_sent - before

    assert run3(run) == [0, 0, 0]


def test_taylor_sigmoid():
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**12), 2**12, size=(3, 4))
    xs = share(x, rng)
    out = run3(lambda p: arith.taylor_sigmoid(p, xs[p.index], 7))
    np.testing.assert_array_equal(opened(out), 24 * 7**3 + 12 * 7**2 * x - x**3)


@FAST
@given(bits=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_truncation_is_floor_or_floor_plus_one(bits, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**45), 2**45, size=200)
    xs = share(x, rng)
    out = opened(run3(lambda p: arith.truncate(p, xs[p.index], bits)))
    floor = x >> bits
    assert np.all((out == floor) | (out == floor + 1))


def test_truncation_error_probability_is_within_the_stated_bound():
    # |x| < 2^ell_x with ell_x = 60: a large error has probability <= 2^(60 + 1 - 64) = 1/8.
    rng = np.random.default_rng(11)
    n, bits = 20_000, 8
    x = rng.integers(-(2**60), 2**60, size=n)
    xs = share(x, rng)
    out = opened(run3(lambda p: arith.truncate(p, xs[p.index], bits)))
    floor = x >> bits
    small = (out == floor) | (out == floor + 1)
    rate = 1 - small.mean()
    assert 0 < rate <= 1 / 8 + 4 * np.sqrt(1 / 8 / n)  # the bound, with sampling slack
    big = out[~small] - floor[~small]
    assert np.all(np.abs(np.abs(big) - 2 ** (64 - bits)) <= 1)  # the stated size of the error
