"""The fused C++ limb block (``_core.limb_block``, cpp/he/limb_kernel.hpp).

Every ISA is compared with an int64 numpy reference written from the definition
(im2col + matmul), with the XLA block of :mod:`cipherfuse.he.nn.limbs`, and
``LimbPlan.run`` under the C++ kernels with the same plan under the numpy
reference kernels (which run the XLA function).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cipherfuse import _core
from cipherfuse.fusion.features import descale
from cipherfuse.geometry import im2col, same_pads
from cipherfuse.he import use_kernels
from cipherfuse.he.errors import ParameterError
from cipherfuse.he.nn.limbs import _jitted, limb_plan
from cipherfuse.nn.config import ConvSpec
from cipherfuse.nn.quantize import quantize_inputs

from ..conftest import CPP_ISAS
from .test_limbs import _enc

I64 = np.int64


def _pads(padding: str, h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int]) -> Any:
    if padding == "VALID":
        return (0, 0, 0, 0)
    return (*same_pads(h, kernel[0], stride[0]), *same_pads(w, kernel[1], stride[1]))


def _pool(v: np.ndarray, window: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    oh = (v.shape[1] - window[0]) // stride[0] + 1
    ow = (v.shape[2] - window[1]) // stride[1] + 1
    out = np.zeros((v.shape[0], oh, ow, v.shape[3]), I64)
    for i in range(window[0]):
        for j in range(window[1]):
            out += v[
                :,
                i : i + stride[0] * (oh - 1) + 1 : stride[0],
                j : j + stride[1] * (ow - 1) + 1 : stride[1],
            ]
    return out


def _reference(
    x: np.ndarray,
    kern: np.ndarray,
    offsets: np.ndarray,
    bias: np.ndarray,
    stride: tuple[int, int],
    padding: str,
    window: tuple[int, int],
    pool_stride: tuple[int, int],
) -> tuple[np.ndarray, int, int, int, int]:
    """(features, l1, tail min, tail max, pooled tail max) in int64 numpy."""
    if x.shape[0] == 0:  # (im2col needs an image: the shape from one, no values)
        one = _reference(
            np.zeros((1, *x.shape[1:]), I64),
            kern,
            offsets,
            bias,
            stride,
            padding,
            window,
            pool_stride,
        )
        return one[0][:0], 0, 0, 0, 0
    kh, kw = kern.shape[1:3]
    patches = im2col(x, (kh, kw), stride, padding).astype(I64)
    sums = patches.sum(axis=-1)
    l1 = int(np.abs(patches).sum(axis=-1).max(initial=0))
    values = [
        patches @ kern[j].reshape(-1, kern.shape[-1]) + offsets[j] * sums[..., None] + bias[j]
        for j in range(3)
    ]
    high, low, tail = values
    keep = (high > 0) | ((high == 0) & (low > 0))
    features = _pool(np.where(keep, high, 0), window, pool_stride)
    pooled_tail = _pool(np.maximum(tail, 0), window, pool_stride)
    return features, l1, int(tail.min()), int(tail.max()), int(pooled_tail.max())


def _case(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    padding = str(rng.choice(["SAME", "VALID"]))
    h, w = int(rng.integers(kh, 16)), int(rng.integers(kw, 16))
    c, f = int(rng.integers(1, 4)), int(rng.integers(1, 40))
    n = int(rng.choice([0, 1, 2, 5]))
    x = rng.integers(0, 1000, (n, h, w, c)) * (rng.random((n, h, w, c)) < 0.5)
    if seed % 4 == 3:
        x = x * rng.choice([-1, 1], x.shape)  # signed inputs: no zero-patch skipping
    if seed % 5 == 0:
        x[:, : h // 2] = 0  # all-zero patches (skipped)
    top, bottom, left, right = _pads(padding, h, w, (kh, kw), stride)
    oh = (h + top + bottom - kh) // stride[0] + 1
    ow = (w + left + right - kw) // stride[1] + 1
    window = (int(rng.integers(1, min(oh, 3) + 1)), int(rng.integers(1, min(ow, 3) + 1)))
    pool_stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    kbound = int(rng.choice([1, 30, 300]))
    kern = rng.integers(-kbound, kbound + 1, (3, kh, kw, c, f))
    if seed % 3 == 0:
        kern[0] = 0  # H = 0 wherever o s + b is: the sign falls to L
    offsets = np.asarray([int(rng.integers(-3, 4)), -kbound // 2, int(rng.integers(-3, 4))], I64)
    bias = rng.integers(-40, 41, (3, f))
    return {
        "x": x.astype(I64),
        "kern": kern.astype(I64),
        "offsets": offsets,
        "bias": bias.astype(I64),
        "stride": stride,
        "padding": padding,
        "pads": (top, bottom, left, right),
        "window": window,
        "pool_stride": pool_stride,
    }


def _call(case: dict[str, Any], isa: str, threads: int, **output: Any) -> Any:
    """``_core.limb_block`` on ``case``; ``output``: ``out=`` and/or ``scale=``."""
    return _core.limb_block(
        case["x"],
        case["kern"],
        case["offsets"],
        case["bias"],
        stride_h=case["stride"][0],
        stride_w=case["stride"][1],
        pad_top=case["pads"][0],
        pad_bottom=case["pads"][1],
        pad_left=case["pads"][2],
        pad_right=case["pads"][3],
        pool_h=case["window"][0],
        pool_w=case["window"][1],
        pool_sh=case["pool_stride"][0],
        pool_sw=case["pool_stride"][1],
        isa=isa,
        threads=threads,
        **output,
    )


@pytest.mark.parametrize("seed", range(24))
def test_limb_block_equals_the_int64_reference_on_every_isa(seed: int) -> None:
    case = _case(seed)
    want = _reference(
        case["x"],
        case["kern"],
        case["offsets"],
        case["bias"],
        case["stride"],
        case["padding"],
        case["window"],
        case["pool_stride"],
    )
    for isa in CPP_ISAS:
        for threads in (1, 3):
            features, l1, tail_min, tail_max, pooled_tail_max = _call(case, isa, threads)
            assert features is not None, (isa, threads)
            assert features.dtype == I64
            np.testing.assert_array_equal(features, want[0])
            assert (l1, tail_min, tail_max, pooled_tail_max) == want[1:], (isa, threads)
            # Without the tail family: the same features (int64 and float32) and l1,
            # the tail statistics 0 (not measured).
            bare, bare_l1, *tails = _call(case, isa, threads, tails=False)
            np.testing.assert_array_equal(bare, want[0])
            assert (bare_l1, tails) == (l1, [0, 0, 0]), (isa, threads)
            if int(np.abs(want[0]).max(initial=0)) < 1 << 24:
                quotients = _call(case, isa, threads, scale=7)[0]
                bare_quotients = _call(case, isa, threads, scale=7, tails=False)[0]
                np.testing.assert_array_equal(bare_quotients, quotients)
                np.testing.assert_array_equal(quotients, want[0].astype(np.float32) / np.float32(7))


@pytest.mark.parametrize("seed", [1, 2, 5, 7])
def test_limb_block_equals_the_xla_block(seed: int) -> None:
    case = _case(seed)
    x = case["x"]
    if x.shape[0] == 0:
        x = case["x"] = np.ones((2, *x.shape[1:]), I64)
    kh, kw = case["kern"].shape[1:3]
    spec = ConvSpec(case["kern"].shape[-1], (kh, kw), case["stride"], case["padding"])  # type: ignore[arg-type]
    fn = _jitted(spec, case["window"], case["pool_stride"])
    sums = im2col(x, (kh, kw), case["stride"], case["padding"]).sum(axis=-1)
    xla = fn(
        x.astype(np.float32),
        sums[..., None].astype(np.float32),
        *(case["kern"][j].astype(np.float32) for j in range(3)),
        case["offsets"].astype(np.float32),
        case["bias"].astype(np.float32),
    )
    features, _, tail_min, tail_max, pooled_tail_max = _call(case, "auto", 0)
    np.testing.assert_array_equal(features, np.asarray(xla[0]).astype(I64))
    assert (tail_min, tail_max, pooled_tail_max) == tuple(int(v) for v in xla[1:])


def test_limb_block_declines_when_float32_would_be_inexact() -> None:
    case = _case(1)
    case["x"] = np.full((2, 6, 6, 1), 1000, I64)
    case["kern"] = np.full((3, 3, 3, 1, 4), 20, I64)
    case.update(
        bias=np.zeros((3, 4), I64),
        offsets=np.zeros(3, I64),
        stride=(1, 1),
        pads=(1, 1, 1, 1),
        window=(2, 2),
        pool_stride=(2, 2),
    )
    for isa in CPP_ISAS:
        features, l1, *_ = _call(case, isa, 2)
        assert features is not None and l1 == 9000  # 9000 * 20 < 2^24
    case["x"][1, 2, 2, 0] = 1 << 20  # l1 * max|k| >= 2^24
    for isa in CPP_ISAS:
        features, l1, *_ = _call(case, isa, 2)
        assert features is None and l1 == (1 << 20) + 8000
    case["x"][1, 2, 2, 0] = -(1 << 40)  # |x| >= 2^31
    features, l1, *_ = _call(case, "auto", 2)
    assert features is None and l1 == 2**63 - 1


def _good() -> dict[str, Any]:
    return {
        "x": np.zeros((2, 6, 6, 1), I64),
        "kern": np.zeros((3, 3, 3, 1, 4), I64),
        "offsets": np.zeros(3, I64),
        "bias": np.zeros((3, 4), I64),
    }


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        ({"x": np.zeros((2, 6, 6, 1), np.int32)}, {}, "x must be int64"),
        ({"x": np.zeros((2, 6, 6), I64)}, {}, "x must be 4-D"),
        ({"x": np.zeros((2, 6, 12, 1), I64)[:, :, ::2]}, {}, "C-contiguous"),
        ({"kern": np.zeros((2, 3, 3, 1, 4), I64)}, {}, "kern must be"),
        ({"kern": np.zeros((3, 3, 3, 2, 4), I64)}, {}, "kern must be"),
        ({"bias": np.zeros((3, 5), I64)}, {}, "bias"),
        ({"offsets": np.zeros(2, I64)}, {}, "offsets"),
        ({"kern": np.full((3, 3, 3, 1, 4), 1 << 24, I64)}, {}, "2\\^24"),
        ({"bias": np.full((3, 4), -(1 << 24), I64)}, {}, "2\\^24"),
        ({"offsets": np.asarray([0, 1 << 30, 0], I64)}, {}, "2\\^24"),
        ({}, {"stride_h": 0}, "strides"),
        ({}, {"pad_top": 3}, "padding"),
        ({}, {"pool_h": 5}, "pool window larger"),
        ({}, {"pool_sw": 0}, "positive"),
        ({}, {"isa": "sse9"}, "unknown isa"),
        ({"x": np.zeros((2, 2, 2, 1), I64)}, {}, "smaller than the kernel"),
    ],
)
def test_bad_arguments_raise_kernel_argument_error(
    change: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    args = {**_good(), **change}
    with pytest.raises(_core.KernelArgumentError, match=message):
        _core.limb_block(
            args["x"], args["kern"], args["offsets"], args["bias"], **{"pool_h": 2, **kwargs}
        )


def test_plan_run_is_identical_under_every_kernel(paper_keys) -> None:  # type: ignore[no-untyped-def]
    """LimbPlan.run: the C++ kernel (each ISA) and the XLA block give the same features."""
    _model, enc = _enc(paper_keys, 8)
    block = enc.block
    assert isinstance(block.weight, ConvSpec)
    plan = limb_plan(enc.weights, block.weight, block.pool)
    assert plan is not None
    x = np.random.default_rng(8).random((7, 10, 10, 1)).astype(np.float32)
    x[:, :4] = 0.0  # all-zero patches
    x_int = quantize_inputs(x, 1000)
    with use_kernels("reference"):
        want = plan.run(x_int)
    assert want is not None
    for name in ("cpp", *(f"cpp-{isa}" for isa in CPP_ISAS)):
        with use_kernels(name):
            got = plan.run(x_int)
            assert got is not None, name
            np.testing.assert_array_equal(got, want)
            assert plan.run(x_int[:0]) is not None
            assert plan.run(x_int[:1]) is not None
            np.testing.assert_array_equal(plan.run(x_int[:1]), want[:1])


def test_limb_block_writes_into_a_given_out_array() -> None:
    case = _case(2)
    want = _call(case, "auto", 0)[0]
    assert want is not None
    whole = np.full((want.shape[0] + 3, *want.shape[1:]), -7, I64)
    part = whole[1 : 1 + want.shape[0]]  # a C-contiguous slice, as a caller gathering blocks
    got = _call(case, "auto", 0, out=part)[0]
    assert got is not None and np.shares_memory(got, whole)
    np.testing.assert_array_equal(part, want)
    assert (whole[0] == -7).all() and (whole[1 + want.shape[0] :] == -7).all()
    bad_outs = [
        np.zeros((want.shape[0] + 1, *want.shape[1:]), I64),  # wrong shape
        np.zeros(want.shape, np.int32),  # wrong dtype
        np.zeros((*want.shape[:-1], 2 * want.shape[-1]), I64)[..., ::2],  # not contiguous
    ]
    readonly = np.zeros(want.shape, I64)
    readonly.flags.writeable = False
    for out in [*bad_outs, readonly]:
        with pytest.raises(_core.KernelArgumentError, match="out"):
            _call(case, "auto", 0, out=out)


def _plan_and_images(paper_keys: Any) -> tuple[Any, np.ndarray, int]:
    """A Table-VI-like model's limb plan, 4 quantized 10x10 images, the block's output scale."""
    _model, enc = _enc(paper_keys, 9)
    block = enc.block
    assert isinstance(block.weight, ConvSpec)
    plan = limb_plan(enc.weights, block.weight, block.pool)
    assert plan is not None
    x_int = quantize_inputs(np.random.default_rng(9).random((4, 10, 10, 1)), 1000)
    return plan, x_int, block.output_scale


def test_plan_run_into_out_under_both_kernels(paper_keys) -> None:  # type: ignore[no-untyped-def]
    plan, x_int, _scale = _plan_and_images(paper_keys)
    want = plan.run(x_int)
    assert want is not None
    for name in ("reference", "cpp"):
        with use_kernels(name):
            out = np.zeros_like(want)
            assert plan.run(x_int, out=out) is out
            np.testing.assert_array_equal(out, want)
    with use_kernels("reference"), pytest.raises(ParameterError, match="out must be"):
        plan.run(x_int, out=np.zeros((1, *want.shape[1:]), I64))


@pytest.mark.parametrize("seed", range(0, 24, 3))
def test_float32_output_is_descale_of_the_int64_output(seed: int) -> None:
    """scale > 0: features / scale rounded once, bit-identical to descale, or a decline."""
    case = _case(seed)
    words = _call(case, "scalar", 1)[0]
    assert words is not None
    representable = int(np.abs(words).max(initial=0)) < 1 << 24
    for scale in (1, 3, 1000, 128_000):
        want = descale(words, scale)
        for isa in CPP_ISAS:
            for threads in (1, 3):
                got, *stats = _call(case, isa, threads, scale=scale)
                assert tuple(stats) == tuple(_call(case, isa, threads)[1:])
                if not representable:
                    assert got is None, (isa, threads, scale)
                    continue
                assert got is not None and got.dtype == np.float32
                np.testing.assert_array_equal(got, want)


def test_float32_output_declines_when_a_feature_is_not_a_float32_number() -> None:
    case = _case(2)
    case["x"] = case["x"] * 0  # all-zero images: every feature is the pooled bias term
    case["bias"] = case["bias"].copy()
    case["bias"][0] = (1 << 24) - 1  # H > 0 everywhere: pooled sums reach 2^24 and beyond
    words = _call(case, "scalar", 1)[0]
    assert words is not None and int(np.abs(words).max()) >= 1 << 24
    for isa in CPP_ISAS:
        assert _call(case, isa, 1, scale=7)[0] is None


def test_float32_output_arguments() -> None:
    case = _case(2)
    want = _call(case, "auto", 0, scale=1000)[0]
    assert want is not None
    whole = np.full((want.shape[0] + 2, *want.shape[1:]), -7.0, np.float32)
    got = _call(case, "auto", 0, scale=1000, out=whole[1:-1])[0]
    assert got is not None and np.shares_memory(got, whole)
    np.testing.assert_array_equal(whole[1:-1], want)
    assert (whole[0] == -7.0).all() and (whole[-1] == -7.0).all()
    with pytest.raises(_core.KernelArgumentError, match="out"):
        _call(case, "auto", 0, scale=1000, out=np.zeros(want.shape, I64))  # int64 for float
    with pytest.raises(_core.KernelArgumentError, match="out"):  # int64 into float32
        _call(case, "auto", 0, out=np.zeros(want.shape, np.float32))
    for scale in (-1, 1 << 24):
        with pytest.raises(_core.KernelArgumentError, match="scale"):
            _call(case, "auto", 0, scale=scale)


def test_plan_run_descaled_under_both_kernels(paper_keys) -> None:  # type: ignore[no-untyped-def]
    plan, x_int, output_scale = _plan_and_images(paper_keys)
    words = plan.run(x_int)
    assert words is not None
    want = descale(words, output_scale)
    for name in ("reference", "cpp", *(f"cpp-{isa}" for isa in CPP_ISAS)):
        with use_kernels(name):
            got = plan.run(x_int, scale=output_scale)
            assert got is not None, name
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ParameterError, match="scale"):
        plan.run(x_int, scale=1 << 24)
