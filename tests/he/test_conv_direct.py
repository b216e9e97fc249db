"""The direct 2-D convolution kernel (``Kernels.conv2d``, ``_core.conv2d_direct``).

Every ISA and thread count bit for bit against the numpy reference kernels
(im2col + uint64 matmul), and both against an independent shift-and-add
convolution written here; the patch l1 bound against brute force; bad
arguments raise typed errors.
"""

from __future__ import annotations

import numpy as np
import pytest

import cipherfuse._core as _core
from cipherfuse import he
from cipherfuse.he.backend import CppKernels, conv2d_geometry
from cipherfuse.he.reference import ReferenceKernels

from .conftest import CPP_ISAS

MAX_U64 = np.uint64(2**64 - 1)


def _shift_and_add(
    x: np.ndarray, kern: np.ndarray, bias: np.ndarray, stride: tuple[int, int], padding: str
) -> np.ndarray:
    """``bias + sum over taps of x[shifted] * kern[tap]`` mod 2^64: no im2col, no matmul."""
    kh, kw, _, _ = kern.shape
    (pt, pl), (oh, ow) = conv2d_geometry(x.shape[1:3], (kh, kw), stride, padding)
    h, w = x.shape[1:3]
    rows = max(h + pt, (oh - 1) * stride[0] + kh)
    cols = max(w + pl, (ow - 1) * stride[1] + kw)
    padded = np.zeros((x.shape[0], rows, cols, x.shape[3]), np.uint64)
    padded[:, pt : pt + h, pl : pl + w] = x.astype(np.uint64)  # two's complement words
    out = np.broadcast_to(bias, (x.shape[0], oh, ow, bias.size)).copy()
    for ky in range(kh):
        for kx in range(kw):
            window = padded[
                :,
                ky : ky + (oh - 1) * stride[0] + 1 : stride[0],
                kx : kx + (ow - 1) * stride[1] + 1 : stride[1],
            ]
            out += np.einsum("nhwc,cf->nhwf", window, kern[ky, kx], dtype=np.uint64)
    return out


def _case(
    n: int, hw: tuple[int, int], cin: int, k: tuple[int, int], cols: int, xmax: int, words: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([n, *hw, cin, *k, cols, xmax.bit_length()])
    x = rng.integers(-xmax, xmax, (n, *hw, cin), endpoint=True, dtype=np.int64)
    if x.size:
        x.flat[0], x.flat[-1] = xmax, -xmax
    shape = (*k, cin, cols)
    if words == "random":
        kern = rng.integers(0, 2**64, shape, dtype=np.uint64)
    elif words == "zero":
        kern = np.zeros(shape, np.uint64)
    elif words == "max":
        kern = np.full(shape, MAX_U64)
    else:  # alternating 0 / 2^64 - 1
        kern = np.where(np.arange(np.prod(shape)) % 2 == 1, MAX_U64, np.uint64(0))
        kern = kern.reshape(shape).astype(np.uint64)
    bias = rng.integers(0, 2**64, (cols,), dtype=np.uint64)
    return x, kern, bias


PARAMS = ("n", "hw", "cin", "k", "cols", "stride", "padding", "xmax", "words")
CASES = [
    # n, (h, w), cin, (kh, kw), cols, stride, padding, max |x|, kernel words
    (3, (28, 28), 1, (5, 5), 64, (1, 1), "SAME", 1000, "random"),  # Table VI, k = 1
    (2, (28, 28), 1, (5, 5), 64, (1, 1), "SAME", 1000, "max"),
    (2, (9, 9), 1, (5, 5), 64, (1, 1), "SAME", 1000, "zero"),
    (2, (9, 8), 2, (3, 3), 33, (2, 2), "SAME", 1000, "alternating"),
    (2, (9, 7), 3, (3, 2), 20, (2, 1), "VALID", 255, "random"),
    (1, (12, 17), 1, (4, 3), 40, (3, 2), "VALID", 2**20, "random"),  # 3 limbs
    (1, (7, 5), 3, (3, 3), 17, (1, 2), "SAME", 2**31 - 1, "max"),  # scalar path
    (2, (7, 5), 2, (3, 3), 9, (1, 1), "SAME", 2**40 - 1, "random"),  # the |x| limit
    (1, (1, 1), 1, (1, 1), 1, (1, 1), "SAME", 3, "random"),
    (0, (5, 5), 1, (3, 3), 7, (1, 1), "SAME", 9, "random"),  # no images
    (1, (6, 6), 16, (3, 3), 24, (1, 1), "SAME", 255, "random"),  # 144 taps, one k-block
    (1, (6, 5), 16, (3, 3), 20, (1, 1), "SAME", 4096, "random"),  # 2 limbs, k-blocks of 64
]


@pytest.mark.parametrize(PARAMS, CASES)
def test_conv2d_every_isa_and_thread_count_matches_the_references(
    n: int,
    hw: tuple[int, int],
    cin: int,
    k: tuple[int, int],
    cols: int,
    stride: tuple[int, int],
    padding: str,
    xmax: int,
    words: str,
) -> None:
    x, kern, bias = _case(n, hw, cin, k, cols, xmax, words)
    expect = _shift_and_add(x, kern, bias, stride, padding)
    ref = ReferenceKernels().conv2d(x, kern, bias, stride, padding)
    np.testing.assert_array_equal(ref, expect)
    for isa in CPP_ISAS:
        for threads in (1, 2, 3):
            got = CppKernels(isa, threads).conv2d(x, kern, bias, stride, padding)
            assert got.dtype == np.uint64 and got.flags.c_contiguous
            assert got.shape == expect.shape
            np.testing.assert_array_equal(got, expect, err_msg=f"isa {isa}, threads {threads}")


@pytest.mark.parametrize(PARAMS, CASES)
def test_patch_l1_max_matches_brute_force(
    n: int,
    hw: tuple[int, int],
    cin: int,
    k: tuple[int, int],
    cols: int,
    stride: tuple[int, int],
    padding: str,
    xmax: int,
    words: str,
) -> None:
    x, _, _ = _case(n, hw, cin, k, cols, xmax, words)
    ones = np.ones((*k, cin, 1), np.uint64)
    # |x| summed over every patch by the independent convolution with all-one kernels.
    sums = _shift_and_add(np.abs(x), ones, np.zeros(1, np.uint64), stride, padding)
    expect = int(sums.max(initial=0))
    assert ReferenceKernels().conv2d_patch_l1_max(x, k, stride, padding) == expect
    for threads in (1, 2, 3):
        assert CppKernels("auto", threads).conv2d_patch_l1_max(x, k, stride, padding) == expect


def test_encrypted_conv_is_the_same_ciphertext_on_every_kernel() -> None:
    from cipherfuse.he.nn import decrypt_tensor, encrypt_weights, encrypted_conv

    sk = he.keygen(he.PAPER, m=1, seed=bytes([3]) * 32)
    M = he.identity_switch_key(sk, seed=bytes([4]) * 32)
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, (5, 5, 2, 6))
    b = rng.integers(-1000, 1000, (6,))
    x = rng.integers(0, 1001, (3, 11, 9, 2))
    enc = encrypt_weights(w, b, M)
    outs = []
    for name in ("reference", "cpp-scalar", "cpp"):
        with he.use_kernels(name):
            outs.append(encrypted_conv(x, enc, stride=(2, 1), padding="SAME"))
    for ct in outs[1:]:
        np.testing.assert_array_equal(ct.data, outs[0].data)
        assert (ct.noise_bound, ct.value_bound) == (outs[0].noise_bound, outs[0].value_bound)
        assert ct.plain_shape == outs[0].plain_shape == (3, 6, 9, 6)
    # The plaintext convolution, computed independently in Python integers.
    xp = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))).astype(object)
    want = np.zeros((3, 6, 9, 6), dtype=object)
    for oy in range(6):
        for ox in range(9):
            patch = xp[:, 2 * oy : 2 * oy + 5, ox : ox + 5, :]
            want[:, oy, ox, :] = np.einsum("nhwc,hwcf->nf", patch, w.astype(object)) + b
    np.testing.assert_array_equal(decrypt_tensor(sk, outs[0]), want.astype(np.int64))


class _NoConv(CppKernels):
    def conv2d(self, *args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("conv2d ran before the noise check")


def test_noise_budget_is_checked_before_the_kernel_runs() -> None:
    from cipherfuse.he.nn import encrypt_weights, encrypted_conv

    sk = he.keygen(he.PAPER, m=1, seed=bytes([6]) * 32)
    M = he.identity_switch_key(sk, seed=bytes([7]) * 32)
    enc = encrypt_weights(np.ones((3, 3, 1, 2), np.int64), np.zeros(2, np.int64), M)
    huge = np.full((1, 4, 4, 1), 2**39, np.int64)
    with he.use_kernels(_NoConv()), pytest.raises(he.NoiseBudgetExceeded, match=r"first.*Eq\. 34"):
        encrypted_conv(huge, enc, layer="first")


def test_bad_geometry_is_a_parameter_error() -> None:
    from cipherfuse.he.nn import encrypt_weights, encrypted_conv

    sk = he.keygen(he.PAPER, m=1, seed=bytes([8]) * 32)
    M = he.identity_switch_key(sk, seed=bytes([9]) * 32)
    enc = encrypt_weights(np.ones((3, 3, 1, 2), np.int64), np.zeros(2, np.int64), M)
    x = np.ones((1, 4, 4, 1), np.int64)
    with pytest.raises(he.ParameterError, match="padding"):
        encrypted_conv(x, enc, padding="FULL")
    with pytest.raises(he.ParameterError, match="strides"):
        encrypted_conv(x, enc, stride=(0, 1))
    with pytest.raises(he.ParameterError, match="strides"):
        encrypted_conv(x, enc, stride=(1, 1, 1))
    with pytest.raises(he.ParameterError, match="smaller than the kernel"):
        encrypted_conv(x[:, :2], enc, padding="VALID")
    with pytest.raises(he.ParameterError, match="channels"):
        encrypted_conv(np.ones((1, 4, 4, 2), np.int64), enc)


def _direct(**overrides: object) -> np.ndarray:
    args: dict[str, object] = {
        "x": np.ones((1, 4, 4, 1), np.int64),
        "kern": np.ones((3, 3, 1, 2), np.uint64),
        "bias": np.zeros(2, np.uint64),
        "stride_h": 1,
        "stride_w": 1,
        "pad_top": 1,
        "pad_left": 1,
        "out_h": 4,
        "out_w": 4,
    }
    args.update(overrides)
    return _core.conv2d_direct(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"x": np.ones((1, 4, 4, 1), np.float64)}, "x must be int64"),
        ({"x": np.ones((1, 4, 4, 1), np.int32)}, "x must be int64"),
        ({"x": np.ones((4, 4, 1), np.int64)}, "x must be 4-D"),
        ({"x": np.ones((1, 4, 8, 1), np.int64)[:, :, ::2]}, "C-contiguous"),
        ({"kern": np.ones((3, 3, 1, 2), np.int64)}, "kern must be uint64"),
        ({"kern": np.ones((3, 3, 2, 2), np.uint64)}, "input channels"),
        ({"bias": np.zeros(3, np.uint64)}, "one word per output column"),
        ({"bias": np.zeros(2, np.int64)}, "bias must be uint64"),
        ({"stride_h": 0}, "strides"),
        ({"pad_top": 3}, "padding"),
        ({"pad_left": -1}, "padding"),
        ({"out_h": 6}, "output size too large"),
        ({"out_w": 2**40}, "output size too large"),
        ({"out_h": 2**62, "stride_h": 4}, "output size too large"),
        ({"out_h": 2, "stride_h": 2**62}, "output size too large"),
        ({"out_h": 0}, "at least 1x1"),
        ({"kern": np.ones((0, 3, 1, 2), np.uint64)}, "positive kh, kw, f"),
        ({"kern": np.ones((3, 3, 1, 0), np.uint64), "bias": None}, "positive kh, kw, f"),
    ],
)
def test_conv2d_direct_rejects_bad_arguments(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(_core.KernelArgumentError, match=match):
        _direct(**overrides)


def test_conv2d_direct_rejects_unknown_isas_and_patch_bound_domain() -> None:
    with pytest.raises(_core.KernelArgumentError, match="unknown isa"):
        _direct(isa="sse9")
    for isa in ("avx2", "avx512", "neon"):
        if not _core.isa_available(isa):
            with pytest.raises(_core.KernelArgumentError, match="not available"):
                _direct(isa=isa)
    x = np.zeros((1, 4, 4, 1), np.int64)
    x[0, 1, 1, 0] = 2**40
    same = {"stride_h": 1, "stride_w": 1, "pad_top": 1, "pad_left": 1, "out_h": 4, "out_w": 4}
    with pytest.raises(_core.KernelArgumentError, match="2\\^40"):
        _core.conv2d_patch_l1_max(x, 3, 3, **same)
    x[0, 1, 1, 0] = 2**40 - 1
    assert _core.conv2d_patch_l1_max(x, 3, 3, **same) == 2**40 - 1
