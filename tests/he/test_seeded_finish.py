"""The fused decrypt finish (round by w, ReLU, 2-D sum pool) of the seeded conv.

Oracles: plain Python integers (independent of numpy's wrapping rules), the
numpy composition ``SeededDecryptor._round -> max(., 0) -> sum pool`` and the
plaintext convolution of the unencrypted weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

import cipherfuse._core as _core
from cipherfuse import he
from cipherfuse.he import seeded
from cipherfuse.nn.config import table6_config
from cipherfuse.nn.model import TrainedModel, init_params
from cipherfuse.nn.quantize import (
    QuantizedConv,
    QuantizedPool,
    integer_forward,
    quantize_inputs,
    quantize_model,
)

from .conftest import CPP_ISAS

MOD = 1 << 64
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
# Words at the edges of the int64 / uint64 ranges, where a wrong shift or sign shows.
EXTREME_WORDS = [0, 1, 2, 2**62, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]


def _numpy_finish(
    a: U64, b: U64, tau: int, relu: bool, window: tuple[int, int], stride: tuple[int, int]
) -> I64:
    """The numpy path of the prefix: ``_round`` in uint64, then ReLU, then the sum pool."""
    phase = a + b + np.uint64(1 << (63 - tau))
    y = phase.view(np.int64) >> np.int64(64 - tau)
    if relu:
        y = np.maximum(y, 0)
    view = sliding_window_view(y, window, axis=(1, 2))[:, :: stride[0], :: stride[1]]
    out: I64 = view.sum(axis=(-2, -1))
    return out


def _python_finish(
    a: U64, b: U64, tau: int, relu: bool, window: tuple[int, int], stride: tuple[int, int]
) -> list[int]:
    """Plain Python integers: exact rounding, then the pool sum reduced to int64."""
    n, h, w, f = a.shape
    oh, ow = (h - window[0]) // stride[0] + 1, (w - window[1]) // stride[1] + 1
    out = []
    for img in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for k in range(f):
                    total = 0
                    for py in range(window[0]):
                        for px in range(window[1]):
                            idx = (img, oy * stride[0] + py, ox * stride[1] + px, k)
                            phase = (int(a[idx]) + int(b[idx]) + (1 << (63 - tau))) % MOD
                            signed = phase - MOD if phase >= 1 << 63 else phase
                            y = signed >> (64 - tau)  # floor division by 2^(64 - tau)
                            total += max(y, 0) if relu else y
                    total %= MOD
                    out.append(total - MOD if total >= 1 << 63 else total)
    return out


@st.composite
def finish_cases(draw: Any, max_side: int = 7, max_images: int = 3) -> dict[str, Any]:
    n = draw(st.integers(0, max_images))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    f = draw(st.integers(1, 11))
    window = (draw(st.integers(1, h)), draw(st.integers(1, w)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    words = st.one_of(st.sampled_from(EXTREME_WORDS), st.integers(0, MOD - 1))
    size = n * h * w * f
    a = np.array(draw(st.lists(words, min_size=size, max_size=size)), np.uint64)
    b = np.array(draw(st.lists(words, min_size=size, max_size=size)), np.uint64)
    return {
        "a": a.reshape(n, h, w, f),
        "b": b.reshape(n, h, w, f),
        "tau": draw(st.integers(2, 62)),
        "relu": draw(st.booleans()),
        "window": window,
        "stride": stride,
        "threads": draw(st.integers(1, 3)),
    }


# ------------------------------------------------------------------ decrypt_finish
def _finish(case: dict[str, Any]) -> I64:
    (ph, pw), (sh, sw) = case["window"], case["stride"]
    act = "relu" if case["relu"] else "none"
    return _core.decrypt_finish(
        case["a"],
        case["b"],
        case["tau"],
        activation=act,
        pool_h=ph,
        pool_w=pw,
        pool_sh=sh,
        pool_sw=sw,
        threads=case["threads"],
    )


@settings(max_examples=60, deadline=None)
@given(finish_cases(max_side=5, max_images=2))
def test_finish_matches_python_integers(case: dict[str, Any]) -> None:
    a, b, tau, relu = case["a"], case["b"], case["tau"], case["relu"]
    got = _finish(case)
    expect = _python_finish(a, b, tau, relu, case["window"], case["stride"])
    assert got.dtype == np.int64
    assert got.ravel().tolist() == expect


@settings(max_examples=80, deadline=None)
@given(finish_cases())
def test_finish_matches_numpy_composition(case: dict[str, Any]) -> None:
    a, b, tau, relu = case["a"], case["b"], case["tau"], case["relu"]
    got = _finish(case)
    np.testing.assert_array_equal(
        got, _numpy_finish(a, b, tau, relu, case["window"], case["stride"])
    )


def test_finish_without_pooling_is_the_decryptor_round() -> None:
    rng = np.random.default_rng(11)
    a = rng.integers(0, MOD, (4, 6, 5, 7), dtype=np.uint64)
    b = rng.integers(0, MOD, (4, 6, 5, 7), dtype=np.uint64)
    got = _core.decrypt_finish(a, b, 40, activation="none")
    # SeededDecryptor._round works in place on its a-term: hand it a copy.
    sk = he.keygen(he.SECURE, 7, seed=bytes([41]) * 32)
    sm = seeded.seeded_encrypt_matrix(sk, np.ones((3, 3, 1, 7), np.int64), plaintext_bits=40)
    expect = seeded.SeededDecryptor(sk, sm)._round(b, a.copy())
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_finish_table6_shape_every_thread_count(threads: int) -> None:
    rng = np.random.default_rng(threads)
    a = rng.integers(0, MOD, (9, 28, 28, 32), dtype=np.uint64)
    b = rng.integers(0, MOD, (9, 28, 28, 32), dtype=np.uint64)
    got = _core.decrypt_finish(
        a, b, 37, activation="relu", pool_h=2, pool_w=2, pool_sh=2, pool_sw=2, threads=threads
    )
    assert got.shape == (9, 14, 14, 32)
    np.testing.assert_array_equal(got, _numpy_finish(a, b, 37, True, (2, 2), (2, 2)))


def test_finish_sum_wraps_like_numpy() -> None:
    # tau = 62: every y is near +-2^61, so a 6x6 window sum leaves int64 and wraps.
    a = np.full((1, 6, 6, 2), 2**63 - 2**62, np.uint64)  # y = 2^61 - ish, positive
    b = np.zeros_like(a)
    got = _core.decrypt_finish(
        a, b, 62, activation="none", pool_h=6, pool_w=6, pool_sh=1, pool_sw=1
    )
    expect = _numpy_finish(a, b, 62, False, (6, 6), (1, 1))
    assert int(expect[0, 0, 0, 0]) != 36 * (int(a[0, 0, 0, 0]) >> 2)  # it did wrap
    np.testing.assert_array_equal(got, expect)


# ------------------------------------------------------------------ bad arguments
def _ab(shape: tuple[int, ...] = (2, 4, 4, 3)) -> tuple[U64, U64]:
    return np.zeros(shape, np.uint64), np.zeros(shape, np.uint64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a": np.zeros((2, 4, 4, 3), np.int64)}, "a must be uint64"),
        ({"b": np.zeros((2, 4, 4, 3), np.float64)}, "b must be uint64"),
        ({"b": np.zeros((2, 4, 4, 2), np.uint64)}, "same shape"),
        ({"a": np.zeros((2, 4, 12), np.uint64)}, "must be 4-D"),
        ({"a": np.zeros((2, 4, 4, 6), np.uint64)[..., ::2]}, "C-contiguous"),
        ({"tau": 1}, r"tau \(plaintext bits\) must be in \[2, 62\]"),
        ({"tau": 63}, r"must be in \[2, 62\]"),
        ({"activation": "sigmoid"}, "activation must be 'relu' or 'none'"),
        ({"pool_h": 5}, "larger than the 4x4 feature map"),
        ({"pool_w": 0}, "must be positive"),
        ({"pool_sh": 0}, "must be positive"),
        ({"pool_sw": -1}, "must be positive"),
    ],
)
def test_finish_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    a, b = _ab()
    args: dict[str, Any] = {"a": a, "b": b, "tau": 30, "activation": "relu"}
    args.update(kwargs)
    with pytest.raises(_core.KernelArgumentError, match=message):
        _core.decrypt_finish(**args)


def test_finish_of_zero_images_is_empty() -> None:
    a, b = _ab((0, 4, 4, 3))
    assert _core.decrypt_finish(
        a, b, 30, activation="relu", pool_h=2, pool_w=2, pool_sh=2, pool_sw=2
    ).shape == (0, 2, 2, 3)


# ------------------------------------------------------------------ fused with the conv
def _random_conv(
    rng: np.random.Generator, n: int, h: int, w: int, c: int, kh: int, kw: int, f: int
) -> tuple[I64, U64, U64]:
    x = rng.integers(-(2**31) + 1, 2**31, (n, h, w, c), dtype=np.int64)
    kern = rng.integers(0, MOD, (kh, kw, c, f), dtype=np.uint64)
    bias = rng.integers(0, MOD, f, dtype=np.uint64)
    return x, kern, bias


@pytest.mark.parametrize("isa", CPP_ISAS)
@pytest.mark.parametrize(
    ("n", "h", "w", "c", "kh", "kw", "f", "stride", "padding", "window", "pool_stride"),
    [
        (5, 28, 28, 1, 5, 5, 32, (1, 1), "SAME", (2, 2), (2, 2)),  # Table VI first block
        (7, 9, 7, 3, 3, 2, 20, (2, 1), "SAME", (2, 3), (1, 2)),  # overlapping windows
        (3, 8, 8, 2, 3, 3, 5, (1, 1), "VALID", (1, 1), (1, 1)),  # no pooling, odd filters
        (200, 3, 3, 1, 2, 2, 3, (1, 1), "VALID", (2, 2), (1, 1)),  # many images per block
        (4, 11, 13, 2, 3, 3, 64, (2, 2), "SAME", (3, 3), (3, 3)),  # remainder rows dropped
    ],
)
@pytest.mark.parametrize("relu", [True, False])
def test_fused_equals_conv_then_finish(
    isa: str,
    n: int,
    h: int,
    w: int,
    c: int,
    kh: int,
    kw: int,
    f: int,
    stride: tuple[int, int],
    padding: seeded.Padding,
    window: tuple[int, int],
    pool_stride: tuple[int, int],
    relu: bool,
) -> None:
    rng = np.random.default_rng(n * h + f)
    x, kern, bias = _random_conv(rng, n, h, w, c, kh, kw, f)
    g = seeded.conv_geometry(h, w, kh, kw, stride, padding)
    b = rng.integers(0, MOD, (n, g.out_h, g.out_w, f), dtype=np.uint64)
    conv_args = {
        "stride_h": stride[0],
        "stride_w": stride[1],
        "pad_top": g.pad_top,
        "pad_left": g.pad_left,
    }
    a = _core.seeded_conv(
        x, kern, bias, **conv_args, out_h=g.out_h, out_w=g.out_w, isa="scalar", threads=1
    )
    act = "relu" if relu else "none"
    expect = _numpy_finish(a, b, 29, relu, window, pool_stride)
    for threads in (1, 2, 3):
        got = _core.seeded_conv_finish(
            x,
            kern,
            bias,
            b,
            29,
            **conv_args,
            activation=act,
            pool_h=window[0],
            pool_w=window[1],
            pool_sh=pool_stride[0],
            pool_sw=pool_stride[1],
            isa=isa,
            threads=threads,
        )
        np.testing.assert_array_equal(got, expect)


def test_fused_without_bias() -> None:
    rng = np.random.default_rng(5)
    x, kern, _ = _random_conv(rng, 3, 6, 6, 2, 3, 3, 4)
    b = rng.integers(0, MOD, (3, 4, 4, 4), dtype=np.uint64)
    a = _core.seeded_conv(x, kern, None, out_h=4, out_w=4, isa="scalar", threads=1)
    got = _core.seeded_conv_finish(
        x, kern, None, b, 50, activation="relu", pool_h=2, pool_w=2, pool_sh=2, pool_sw=2
    )
    np.testing.assert_array_equal(got, _numpy_finish(a, b, 50, True, (2, 2), (2, 2)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.zeros((2, 6, 6, 1), np.int32)}, "x must be int64"),
        ({"kern": np.zeros((3, 3, 1, 4), np.int64)}, "kern must be uint64"),
        ({"kern": np.zeros((3, 3, 2, 4), np.uint64)}, "C the channels of x"),
        ({"kern": np.zeros((3, 3, 1, 5), np.uint64)}, "last axis of b"),
        ({"bias": np.zeros(5, np.uint64)}, "one word per filter"),
        ({"bias": np.zeros(4, np.int64)}, "bias must be uint64"),
        ({"b": np.zeros((3, 4, 4, 4), np.uint64)}, "same number of images"),
        ({"b": np.zeros((2, 9, 9, 4), np.uint64)}, "output size too large"),
        ({"x": np.full((2, 6, 6, 1), 2**31, np.int64)}, r"\|x\| < 2\^31"),
        ({"tau": 0}, r"\[2, 62\]"),
        ({"pool_h": 7}, "larger than the 4x4"),
        ({"isa": "sse9"}, "isa"),
    ],
)
def test_fused_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "x": np.zeros((2, 6, 6, 1), np.int64),
        "kern": np.zeros((3, 3, 1, 4), np.uint64),
        "bias": np.zeros(4, np.uint64),
        "b": np.zeros((2, 4, 4, 4), np.uint64),
        "tau": 30,
        "activation": "relu",
    }
    args.update(kwargs)
    with pytest.raises(_core.KernelArgumentError, match=message):
        _core.seeded_conv_finish(**args)


# ------------------------------------------------------------------ SeededDecryptor
@pytest.fixture(scope="module")
def encrypted_conv() -> dict[str, Any]:
    rng = np.random.default_rng(2026)
    w = rng.integers(-127, 128, (3, 3, 2, 6))
    bias = rng.integers(-(10**4), 10**4, 6)
    x = rng.integers(-500, 501, (4, 10, 9, 2))
    sk = he.keygen(he.SECURE, 6, seed=bytes([77]) * 32)
    tau = seeded.plaintext_bits_for(he.SECURE, 18 * 500, 127, 10**4)
    sm = seeded.seeded_encrypt_matrix(sk, w, bias=bias, plaintext_bits=tau)
    return {"x": x, "w": w, "bias": bias, "sm": sm, "dec": seeded.SeededDecryptor(sk, sm)}


@pytest.mark.parametrize("activation", ["relu", "none"])
@pytest.mark.parametrize(("stride", "padding"), [((1, 1), "SAME"), ((2, 1), "VALID")])
def test_decrypt_conv_pooled_equals_plaintext_block(
    encrypted_conv: dict[str, Any],
    activation: str,
    stride: tuple[int, int],
    padding: seeded.Padding,
) -> None:
    x, sm, dec = encrypted_conv["x"], encrypted_conv["sm"], encrypted_conv["dec"]
    b_parts = seeded.evaluate_conv(sm, x, stride=stride, padding=padding)
    got = dec.decrypt_conv_pooled(
        x,
        b_parts,
        stride=stride,
        padding=padding,
        activation=activation,
        pool_window=(2, 2),
        pool_stride=(2, 2),
    )
    # Independent reference: the plaintext convolution of the unencrypted weights.
    patches, _ = seeded.im2col(x, 3, 3, stride, padding)
    y = patches @ encrypted_conv["w"].reshape(-1, 6) + encrypted_conv["bias"]
    if activation == "relu":
        y = np.maximum(y, 0)
    pooled = sliding_window_view(y, (2, 2), axis=(1, 2))[:, ::2, ::2].sum(axis=(-2, -1))
    np.testing.assert_array_equal(got, pooled)


def test_decrypt_conv_pooled_rejects_bad_arguments(encrypted_conv: dict[str, Any]) -> None:
    x, sm, dec = encrypted_conv["x"], encrypted_conv["sm"], encrypted_conv["dec"]
    b_parts = seeded.evaluate_conv(sm, x)
    with pytest.raises(he.ParameterError, match="b-parts have shape"):
        dec.decrypt_conv_pooled(x[:2], b_parts)
    with pytest.raises(he.ParameterError, match="activation must be"):
        dec.decrypt_conv_pooled(x, b_parts, activation="sigmoid")
    with pytest.raises(he.ParameterError, match="larger than the 10x9"):
        dec.decrypt_conv_pooled(x, b_parts, pool_window=(11, 2))
    with pytest.raises(he.ParameterError, match="stride must be"):
        dec.decrypt_conv_pooled(x, b_parts, pool_stride=(0, 1))
    with pytest.raises(he.ParameterError, match="b-parts must be uint64"):
        dec.decrypt_conv_pooled(x, b_parts.view(np.int64))
    with pytest.raises((he.NoiseBudgetExceeded, he.PlaintextOverflow)):
        dec.decrypt_conv_pooled(x * 10**6, b_parts)


# ------------------------------------------------------------------ the prefix
@pytest.fixture(scope="module")
def table6_quantized() -> Any:
    config = table6_config()
    model = TrainedModel(config, init_params(config, jax.random.key(9)), tuple(range(10)))
    return quantize_model(model, weight_scale=2**7, input_scale=1000)


def _prefix_matches_integer_forward(qm: Any, key_byte: int) -> None:
    first = qm.layers[0]
    sk = he.keygen(he.SECURE, int(first.weight.shape[-1]), seed=bytes([key_byte]) * 32)
    prefix = seeded.seeded_first_layer_prefix(qm, sk)
    x = np.random.default_rng(key_byte).random((5, 28, 28, 1), dtype=np.float32)
    ints, scale = prefix(x)
    assert scale == qm.output_scale
    np.testing.assert_array_equal(ints, integer_forward(qm, quantize_inputs(x, qm.input_scale)))


def test_prefix_fuses_the_sum_pool_and_matches_integer_forward(table6_quantized: Any) -> None:
    assert seeded._fusable_sum_pool(table6_quantized) is table6_quantized.layers[1]
    _prefix_matches_integer_forward(table6_quantized, 91)


def test_prefix_fused_then_more_integer_layers() -> None:
    # conv -> pool (fused) -> conv -> pool -> flatten in integer_forward after it.
    config = table6_config()
    model = TrainedModel(config, init_params(config, jax.random.key(10)), tuple(range(10)))
    qm = quantize_model(model, weight_scale=2**6, input_scale=100, n_layers=5)
    assert len(qm.layers) == 5
    assert seeded._fusable_sum_pool(qm) is qm.layers[1]
    _prefix_matches_integer_forward(qm, 94)


def test_prefix_fused_without_activation(table6_quantized: Any) -> None:
    first = table6_quantized.layers[0]
    assert isinstance(first, QuantizedConv)
    qm = dataclasses.replace(
        table6_quantized,
        layers=(dataclasses.replace(first, activation="none"), *table6_quantized.layers[1:]),
    )
    assert seeded._fusable_sum_pool(qm) is not None
    _prefix_matches_integer_forward(qm, 92)


def test_prefix_falls_back_to_numpy_for_max_pool(table6_quantized: Any) -> None:
    pool = table6_quantized.layers[1]
    assert isinstance(pool, QuantizedPool)
    qm = dataclasses.replace(
        table6_quantized,
        layers=(
            table6_quantized.layers[0],
            dataclasses.replace(pool, pool="max"),
            *table6_quantized.layers[2:],
        ),
    )
    assert seeded._fusable_sum_pool(qm) is None
    _prefix_matches_integer_forward(qm, 93)


def test_fused_of_zero_images_is_empty() -> None:
    x = np.array([], np.int64).reshape(0, 6, 6, 1)
    b = np.array([], np.uint64).reshape(0, 6, 6, 4)
    kern = np.zeros((3, 3, 1, 4), np.uint64)
    got = _core.seeded_conv_finish(
        x,
        kern,
        None,
        b,
        30,
        pad_top=1,
        pad_left=1,
        activation="relu",
        pool_h=2,
        pool_w=2,
        pool_sh=2,
        pool_sw=2,
    )
    assert got.shape == (0, 3, 3, 4)
