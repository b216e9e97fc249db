"""The limb evaluation of the paper-parameter first block (cipherfuse.he.nn.limbs).

Every result is compared with the 64-bit reference path, ``scale_down`` of
``evaluate_first_block`` (C++ GEMM on whole words), and with
``integer_forward`` of the quantized plaintext model.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cipherfuse.fusion.features import quantized_features
from cipherfuse.geometry import im2col, patch_sums
from cipherfuse.he.errors import NoiseBudgetExceeded
from cipherfuse.he.nn import cipherspace_features, encrypt_model, evaluate_first_block, scale_down
from cipherfuse.he.nn.limbs import limb_plan, split_leading
from cipherfuse.nn.config import ConvSpec
from cipherfuse.nn.quantize import quantize_inputs, quantize_model

from .conftest import small_model


@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50), st.integers(1, 62))
@settings(max_examples=200, deadline=None)
def test_split_leading_recombines_with_centred_low_limb(values: list[int], shift: int) -> None:
    words = np.asarray(values, np.int64).view(np.uint64)
    high, low = split_leading(words, shift)
    half = 1 << (shift - 1)
    assert all(-half <= int(v) < half for v in low)
    for v, h, lo in zip(values, high, low, strict=True):
        assert int(h) * (1 << shift) + int(lo) == v


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("stride", [(1, 1), (2, 1), (2, 3)])
@pytest.mark.parametrize("kernel", [(3, 3), (5, 2)])
def test_patch_sums_equal_im2col_sums(padding: str, stride: tuple[int, int], kernel) -> None:
    x = np.random.default_rng(3).integers(-50, 1000, (3, 11, 9, 2))
    got = patch_sums(x, kernel, stride, padding)
    want = im2col(x, kernel, stride, padding).sum(axis=-1)
    np.testing.assert_array_equal(got, want)


def _enc(paper_keys, key: int = 1, p: int = 2**7, **kwargs: str):
    model = small_model(key, **kwargs)
    _, M = paper_keys[1]
    return model, encrypt_model(model, M, weight_scale=p, input_scale=1000)


def _reference(enc, x_int: np.ndarray) -> np.ndarray:
    ct, _ = evaluate_first_block(enc, x_int)
    return scale_down(ct)


@pytest.mark.parametrize("key", [1, 2, 3])
@pytest.mark.parametrize("pool", ["avg", "sum"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_limb_block_equals_the_64_bit_path(paper_keys, key: int, pool: str, padding: str) -> None:
    model, enc = _enc(paper_keys, key, pool=pool, padding=padding)
    block = enc.block
    assert isinstance(block.weight, ConvSpec)
    plan = limb_plan(enc.weights, block.weight, block.pool)
    assert plan is not None
    rng = np.random.default_rng(key)
    x = rng.random((9, 10, 10, 1)).astype(np.float32)
    x[0] = 0.0  # all-zero patches: H = 0 everywhere, the sign test falls to L
    x[1] = 1.0  # the largest patch l1
    x_int = quantize_inputs(x, 1000)
    got = plan.run(x_int)
    assert got is not None, "the paper parameters must take the limb path"
    np.testing.assert_array_equal(got, _reference(enc, x_int))
    # ... and equal the quantized plaintext model through the public extractor.
    q = quantize_model(model, weight_scale=2**7, input_scale=1000, n_layers=2)
    np.testing.assert_array_equal(cipherspace_features(enc)(x), quantized_features(model, q)(x))


def test_a_zero_leading_limb_uses_the_low_limb_sign(paper_keys) -> None:
    """Weights that quantize to 0 leave H = 0: ReLU then depends on L's sign alone."""
    _model, enc = _enc(paper_keys, 4, p=2)  # p = 2: most weights round to 0
    block = enc.block
    assert isinstance(block.weight, ConvSpec)
    plan = limb_plan(enc.weights, block.weight, block.pool)
    assert plan is not None
    x_int = quantize_inputs(np.random.default_rng(4).random((6, 10, 10, 1)), 1000)
    got = plan.run(x_int)
    assert got is not None
    np.testing.assert_array_equal(got, _reference(enc, x_int))


def test_bounds_that_do_not_hold_fall_back_to_the_64_bit_path(paper_keys) -> None:
    _model, enc = _enc(paper_keys, 5)
    block = enc.block
    assert isinstance(block.weight, ConvSpec)
    plan = limb_plan(enc.weights, block.weight, block.pool)
    assert plan is not None
    assert plan.exact_for(9 * 1000) and not plan.exact_for(1 << 24)
    # Inputs so large that float32 limbs are not exact: the limb path declines ...
    big = np.full((2, 10, 10, 1), 200_000, np.int64)
    assert plan.run(big) is None
    # ... and the public extractor gives what the 64-bit path gives (or its error).
    fx = cipherspace_features(enc)
    try:
        want = _reference(enc, big)
    except NoiseBudgetExceeded:
        with pytest.raises(NoiseBudgetExceeded):
            fx(big.astype(np.float32) / 1000)
    else:
        ints, _ = fx.prefix(big.astype(np.float32) / 1000)
        np.testing.assert_array_equal(ints, want)
    # Negative inputs make tails negative: ReLU is not guaranteed, so no limb result.
    neg = -quantize_inputs(np.random.default_rng(5).random((2, 10, 10, 1)), 1000)
    assert plan.run(neg) is None
    with pytest.raises(NoiseBudgetExceeded, match="not guaranteed exact"):
        fx(-np.random.default_rng(5).random((2, 10, 10, 1)).astype(np.float32))


def test_layers_the_limb_path_does_not_cover_have_no_plan(paper_keys) -> None:
    _, enc = _enc(paper_keys, 6)
    block = enc.block
    assert isinstance(block.weight, ConvSpec)
    assert limb_plan(enc.weights, replace(block.weight, activation="none"), block.pool) is None
    _, sig = _enc(paper_keys, 6, activation="taylor_sigmoid")
    assert limb_plan(sig.weights, sig.block.weight, sig.block.pool) is None  # type: ignore[arg-type]


def test_a_wrong_limb_result_is_caught_by_the_first_block_cross_check(
    paper_keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the float32 convolution were inexact on some machine, the extractor must notice."""
    from cipherfuse.he.nn import limbs

    model, enc = _enc(paper_keys, 7)
    real = limbs.LimbPlan.run

    def off_by_one(self, x_int, out=None, scale=0):  # type: ignore[no-untyped-def]
        result = real(self, x_int, out=out, scale=scale)
        if result is not None:
            result += 1  # in place: also wrong when the kernel wrote into the caller's array
        return result

    monkeypatch.setattr(limbs.LimbPlan, "run", off_by_one)
    x = np.random.default_rng(7).random((5, 10, 10, 1)).astype(np.float32)
    fx = cipherspace_features(enc)
    with pytest.warns(RuntimeWarning, match="disagrees"):
        got = fx(x)
    q = quantize_model(model, weight_scale=2**7, input_scale=1000, n_layers=2)
    np.testing.assert_array_equal(got, quantized_features(model, q)(x))


def _measured_tails(plan, x_int: np.ndarray) -> tuple[int, int, int, int]:
    """(l1, tail_min, tail_max, pooled_tail_max) measured by the C++ kernel (tails on)."""
    from cipherfuse.he.backend import CppKernels

    assert plan.spec.padding == "VALID"
    _, l1, tmin, tmax, ptmax = CppKernels().limb_block(
        x_int,
        plan.int_kernels,
        plan.int_offsets,
        plan.int_bias,
        stride=plan.stride,
        pads=(0, 0, 0, 0),
        pool_window=plan.window,
        pool_stride=plan.pool_stride,
    )
    return l1, tmin, tmax, ptmax


@pytest.mark.parametrize("key", [1, 2, 3])
@pytest.mark.parametrize("pool", ["avg", "sum"])
def test_a_priori_tail_bounds_contain_the_measured_tails(paper_keys, key: int, pool: str) -> None:
    """The bounds that let the kernel skip the tail family hold on every image tried."""
    _model, enc = _enc(paper_keys, key, pool=pool, padding="VALID")
    block = enc.block
    assert isinstance(block.weight, ConvSpec)
    plan = limb_plan(enc.weights, block.weight, block.pool)
    assert plan is not None
    rng = np.random.default_rng(10 + key)
    for x in (rng.random((5, 10, 10, 1)), np.ones((2, 10, 10, 1)), rng.random((3, 10, 10, 1)) ** 8):
        x_int = quantize_inputs(x.astype(np.float32), 1000)
        l1, tmin, tmax, ptmax = _measured_tails(plan, x_int)
        bounds = plan.tail_bounds(l1)
        assert bounds is not None  # paper ciphertexts: tail components c_1 >= 0, biases >= 0
        low, high, pooled_high = bounds
        assert low <= tmin and tmax <= high and ptmax <= pooled_high
        assert plan.tails_bounded(l1)  # the paper parameters' tails pass with room to spare
        got = plan.run(x_int)  # the C++ path without the tail family
        assert got is not None
        np.testing.assert_array_equal(got, _reference(enc, x_int))
    # A negative tail component leaves T unbounded below: no a-priori bound, tails measured.
    kernels = plan.int_kernels.copy()
    kernels[2, 0, 0, 0, 0] = -plan.int_offsets[2] - 1
    assert replace(plan, int_kernels=kernels).tail_bounds(100) is None
    assert not replace(plan, int_kernels=kernels).tails_bounded(100)
    # A noise budget the bounds exceed: the tails must be measured.
    assert not plan.tails_bounded(1 << 40)


def test_pipelined_extractor_overlaps_on_fewer_threads_with_the_same_features(
    paper_keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks after the first run ``overlapped_prefix``: C++ kernels on half the cores."""
    from cipherfuse.fusion.features import PIPELINE_BLOCK, PrefixFeatures
    from cipherfuse.he.backend import CppKernels
    from cipherfuse.he.nn import model as he_model

    model, enc = _enc(paper_keys, 7, padding="SAME")
    fx = cipherspace_features(enc)
    assert isinstance(fx, PrefixFeatures) and fx.overlapped_prefix is not None
    x = np.random.default_rng(7).random((2 * PIPELINE_BLOCK + 5, 10, 10, 1)).astype(np.float32)
    q = quantize_model(model, weight_scale=2**7, input_scale=1000, n_layers=2)
    want = quantized_features(model, q)(x)
    fx(x[:8])  # the once-per-model cross-check against the 64-bit path, outside the record
    calls: list[tuple[int, int]] = []
    limb_block = CppKernels.limb_block

    def recording(self: CppKernels, x_int: np.ndarray, *args: object, **kwargs: object) -> object:
        calls.append((x_int.shape[0], self.threads))
        return limb_block(self, x_int, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(CppKernels, "limb_block", recording)
    np.testing.assert_array_equal(fx(x), want)
    half = he_model._overlapped_threads()
    assert calls == [(PIPELINE_BLOCK, 0), (PIPELINE_BLOCK, half), (5, half)]
    np.testing.assert_array_equal(replace(fx, overlapped_prefix=None)(x), want)
    buf = he_model._aligned_empty((3, 5, 7), np.float32)
    assert buf.ctypes.data % 64 == 0 and buf.shape == (3, 5, 7) and buf.dtype == np.float32
