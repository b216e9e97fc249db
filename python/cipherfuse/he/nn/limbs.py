"""The paper-parameter first block as exact small-limb float32 convolutions (XLA).

:func:`cipherfuse.he.nn.model.evaluate_first_block` computes the element-wise
first block (encrypted conv, ReLU on components, sum pooling) on whole 64-bit
ciphertext words with the C++ GEMM. This module computes *the same ciphertext
arithmetic* with a cheaper number representation, and is used by
:func:`cipherfuse.he.nn.cipherspace_features` whenever its exactness
conditions hold (checked from public data; otherwise the generic path runs).

Representation. With ``k = 1`` a ciphertext of one weight is two words
``[c_0; c_1]``. The leading word, read as a signed integer, is split at
``S = log2 w`` into ``c_0 = 2^S h + l`` with ``l`` centred in
``[-2^(S-1), 2^(S-1))``; the trailing word is ``c_1`` itself. The encrypted
convolution then is three integer convolutions with the same patches,

    Y_0 = 2^S H + L,   H = conv(x, h) + b_h,   L = conv(x, l) + b_l,
    Y_1 = conv(x, c_1) + b_1,

run as one float32 convolution. Each limb family is centred first: with
``o`` the midpoint of its range, ``conv(x, l) = conv(x, l - o) + o conv(x, 1)``
(the ones kernel is one more output channel), which halves the magnitudes
the float32 convolution sees (``l`` of the paper parameters lies in about
``[-2^10, 0]``). Every partial sum of the float32 convolution is bounded by
``|x|_1 max|limb - o|`` over a patch; when that is below ``2^24`` float32
represents every partial sum exactly, whatever order XLA adds them in, so
``H``, ``L`` and ``Y_1`` are exact integers (int32 from there on). The plan
checks these bounds before computing, and also that ``Y_0`` does not wrap
modulo ``2^64`` (so the signed word equals ``2^S H + L``).

ReLU on components (paper Sec. V-D) reads each word as signed: with
``|L| < 2^(S-1)``, ``Y_0 > 0`` iff ``H > 0`` or (``H = 0`` and ``L > 0``), so
the rectified word is ``(H, L)`` masked by that predicate, and the tail is
``max(Y_1, 0)``. Sum pooling adds limbs (int32; the plan checks the window
sums fit). The verifier's scaling-down ``round(Y_0 / w)`` of a pooled leading
word ``2^S H_p + L_p`` is ``H_p + round(L_p / 2^S)``, and the plan's bound
``window * max|L| < 2^(S-1)`` makes the second term exactly 0.

The data-dependent conditions of the generic path (the Eq. 34 / 42 noise
bounds for these inputs, non-negative tails, the ReLU and scaling-down
exactness conditions ``|T c_1| + |e| < w/2`` evaluated on the actual tails, or
on a-priori bounds of them where those already pass: :meth:`LimbPlan.tail_bounds`)
are checked on every block; a block that fails any of them is recomputed by
the generic path, which then raises the same error it always does. The
result is bit-identical to ``scale_down(evaluate_first_block(...))``
(tests/he/nn/test_limbs.py).

This is not a shortcut around the encryption: it evaluates both ciphertext
words. It is fast only because the ``paper`` parameters make every word small
(``h`` is the p-scaled weight, ``l`` and ``c_1`` are tiny) -- the very
property that lets anyone read the weights (docs/he-nn.md); ``secure``
ciphertexts have uniform 64-bit words and never take this path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cipherfuse.geometry import patch_sums, same_pads
from cipherfuse.he.backend import CppKernels, get_kernels
from cipherfuse.he.errors import NoiseBudgetExceeded, ParameterError, PlaintextOverflow
from cipherfuse.he.nn.strategies import EncryptedWeights
from cipherfuse.nn.config import ConvSpec, PoolSpec
from cipherfuse.validation import strict_int

I64Array = npt.NDArray[np.int64]

#: float32 represents every integer of magnitude <= 2^24 exactly.
F32_EXACT = 1 << 24


def split_leading(words: npt.NDArray[np.uint64], shift: int) -> tuple[I64Array, I64Array]:
    """Signed words split as ``c = 2^shift h + l`` with ``-2^(shift-1) <= l < 2^(shift-1)``.

    Raises:
        ParameterError: ``shift`` outside 1..62.
    """
    if not 1 <= shift <= 62:
        raise ParameterError(f"shift must be in 1..62, got {shift}")
    signed = words.view(np.int64)
    mask = np.int64((1 << shift) - 1)
    low = signed & mask  # in [0, 2^shift)
    carry = (low >= (1 << (shift - 1))).astype(np.int64)
    high = (signed >> np.int64(shift)) + carry
    return high, low - (carry << np.int64(shift))


@dataclass(frozen=True)
class LimbPlan:
    """The limb kernels of one encrypted conv layer and the bounds that make them exact.

    Built once per model by :func:`limb_plan`; :meth:`run` evaluates a block of
    quantized images, returning the scaled-down pooled features or ``None``
    when a condition fails (the caller then uses the generic path).
    """

    weights: EncryptedWeights
    spec: ConvSpec
    window: tuple[int, int]
    pool_stride: tuple[int, int]
    shift: int
    limb_max: tuple[int, int, int]
    centred_max: tuple[int, int, int]
    offset_max: tuple[int, int, int]
    bias_max: tuple[int, int, int]
    fn: Callable[..., Any]
    kernels: tuple[Any, Any, Any]
    offsets: Any
    bias: Any
    int_kernels: I64Array
    int_offsets: I64Array
    int_bias: I64Array

    @property
    def kernel_size(self) -> tuple[int, int]:
        """The convolution's kernel (height, width)."""
        return int(self.spec.kernel[0]), int(self.spec.kernel[1])

    @property
    def stride(self) -> tuple[int, int]:
        """The convolution's stride."""
        return int(self.spec.strides[0]), int(self.spec.strides[1])

    def exact_for(self, l1: int) -> bool:
        """Whether inputs whose patch l1 norms are <= ``l1`` satisfy every a-priori bound.

        float32 arithmetic is exact on integers below 2^24: each limb convolution
        (``l1 max|limb - o|``), each ``o s + b`` term, the limb sums ``H`` and
        ``Y_1`` (``l1 (max|limb| + 1) + max|b|``) and their window sums. Then
        ``|L| < 2^(S-1)`` even summed over a window, so ReLU's sign test and the
        scaling-down are exact, ``H_p`` stays below ``t/2`` and ``Y_0`` below 2^63.
        """
        size = self.window[0] * self.window[1]
        full = [l1 * (m + 1) + b for m, b in zip(self.limb_max, self.bias_max, strict=True)]
        terms = [l1 * o + b for o, b in zip(self.offset_max, self.bias_max, strict=True)]
        params = self.weights.params
        return (
            l1 * max(*self.centred_max, 1) < F32_EXACT
            and max(terms) < F32_EXACT
            and size * max(full[0], full[2]) < F32_EXACT
            and size * full[1] < 1 << (self.shift - 1)
            and size * full[0] < params.t // 2
            and (full[0] << self.shift) + full[1] < 1 << 63
        )

    def run(
        self, x_int: I64Array, out: npt.NDArray[Any] | None = None, scale: int = 0
    ) -> npt.NDArray[Any] | None:
        """Scaled-down pooled features of ``x_int``, or ``None`` if the generic path must run.

        With the C++ kernels active (:func:`cipherfuse.he.get_kernels`) the block
        is one fused pass of :meth:`CppKernels.limb_block` (``cpp/he/limb_kernel.hpp``);
        otherwise the XLA function. Both give identical results.

        Args:
            out: optional C-contiguous array of the features' shape (int64, or
                float32 with ``scale``) to write them into (saves an allocation and a
                copy for a caller that gathers blocks into one array); the result is
                then ``out`` itself. Its contents are unspecified when ``None`` is
                returned.
            scale: 0 for the int64 features; an integer in [1, 2^24) for float32
                ``features / scale`` rounded once, exactly
                :func:`cipherfuse.fusion.features.descale` of the int64 features (the
                C++ kernel divides as it stores; ``None`` when a feature is not a
                float32 number).
        """
        strict_int(scale, "scale", minimum=0, maximum=F32_EXACT - 1, error=ParameterError)
        kernels = get_kernels()
        if isinstance(kernels, CppKernels):
            return self._run_cpp(x_int, kernels, out, scale)
        features = self._run_xla(x_int)
        if features is None:
            return None
        result: npt.NDArray[Any] = features
        if scale:
            from cipherfuse.fusion.features import descale

            if int(np.abs(features).max(initial=0)) >= F32_EXACT:
                return None  # as the C++ kernel: only float32-exact features
            result = descale(features, scale)
        if out is None:
            return result
        if out.shape != result.shape or out.dtype != result.dtype:
            raise ParameterError(
                f"out must be a {result.dtype} array of shape {result.shape}, "
                f"got {out.dtype} {out.shape}"
            )
        out[...] = result
        return out

    def _run_xla(self, x_int: I64Array) -> I64Array | None:
        geometry = (self.kernel_size, self.stride, self.spec.padding)
        sums = patch_sums(x_int, *geometry)
        nonneg = x_int.size == 0 or int(x_int.min()) >= 0
        l1 = int((sums if nonneg else patch_sums(np.abs(x_int), *geometry)).max(initial=0))
        if not self.exact_for(l1) or not self._noise_ok(l1):
            return None
        features, tail_min, tail_max, pooled_tail_max = self.fn(
            x_int.astype(np.float32),
            sums[..., None].astype(np.float32),
            *self.kernels,
            self.offsets,
            self.bias,
        )
        if not self._tails_ok(l1, int(tail_min), int(tail_max), int(pooled_tail_max)):
            return None
        out: I64Array = np.asarray(features).astype(np.int64)
        return out

    def _run_cpp(
        self, x_int: I64Array, kernels: CppKernels, out: npt.NDArray[Any] | None, scale: int
    ) -> npt.NDArray[Any] | None:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if self.spec.padding == "SAME":
            (top, bottom), (left, right) = (
                same_pads(x_int.shape[1], kh, sh),
                same_pads(x_int.shape[2], kw, sw),
            )
        else:
            top = bottom = left = right = 0
        x_int = np.ascontiguousarray(x_int, dtype=np.int64)
        # When the tails' a-priori bounds already pass every tail condition for the
        # largest l1 these images can have, the kernel skips the tail family (a third
        # of its convolutions): T never enters the features, only these checks.
        bounded = x_int.size > 0 and int(x_int.min()) >= 0
        if bounded:
            l1_cap = kh * kw * x_int.shape[3] * int(x_int.max())
            bounded = self.tails_bounded(l1_cap)
        features, l1, tail_min, tail_max, pooled_tail_max = kernels.limb_block(
            x_int,
            self.int_kernels,
            self.int_offsets,
            self.int_bias,
            stride=(sh, sw),
            pads=(top, bottom, left, right),
            pool_window=self.window,
            pool_stride=self.pool_stride,
            out=out,
            scale=scale,
            tails=not bounded,
        )
        if features is None or not self.exact_for(l1) or not self._noise_ok(l1):
            return None
        if bounded:  # not measured: the bounds for the actual l1 (<= l1_cap) instead
            bounds = self.tail_bounds(l1)
            assert bounds is not None
            tail_min, tail_max, pooled_tail_max = bounds
        if not self._tails_ok(l1, tail_min, tail_max, pooled_tail_max):
            return None
        return features

    def tail_bounds(self, l1: int) -> tuple[int, int, int] | None:
        """A-priori ``(tail_min, tail_max, pooled_tail_max)`` bounds for non-negative inputs.

        ``T = conv(x, c_1) + b_T`` with ``c_1 = kernels[2] + offsets[2]`` (the
        ciphertexts' tail components): for ``x >= 0`` with patch sums ``s <= l1``,
        ``c_1 >= 0`` and ``b_T >= 0`` give ``min b_T <= T <= l1 max c_1 + max b_T``,
        and a pooling window sums at most ``window`` such non-negative values.
        ``None`` when some ``c_1`` or ``b_T`` is negative (no such bound; the tails
        must be measured).
        """
        c1 = self.int_kernels[2] + self.int_offsets[2]
        bias = self.int_bias[2]
        if c1.size == 0 or int(c1.min()) < 0 or int(bias.min(initial=0)) < 0:
            return None
        upper = l1 * int(c1.max()) + int(bias.max(initial=0))
        return int(bias.min(initial=0)), upper, self.window[0] * self.window[1] * upper

    def tails_bounded(self, l1: int) -> bool:
        """Whether :meth:`tail_bounds` for patch l1 norms <= ``l1`` pass every tail condition.

        Then the measured tails of any non-negative images within that ``l1`` pass
        them too (each condition is monotone in the tails and in ``l1``), so they
        need not be measured.
        """
        bounds = self.tail_bounds(l1)
        if bounds is None:
            return False
        try:
            return self._tails_ok(l1, *bounds)
        except (NoiseBudgetExceeded, PlaintextOverflow):
            return False

    def _noise_ok(self, l1: int) -> bool:
        """The Eq. 34 bounds of the conv for patch l1 norms <= ``l1`` fit the plaintext space."""
        from cipherfuse.he.nn.layers import _noise_for_bounds

        try:
            _, vb = _noise_for_bounds(l1, self.weights, "layer_0 (conv)", "Eq. 34")
        except (NoiseBudgetExceeded, PlaintextOverflow):
            return False  # the generic path raises the error it always does
        return self.window[0] * self.window[1] * vb < self.weights.params.t // 2

    def _tails_ok(self, l1: int, tail_min: int, tail_max: int, pooled_tail_max: int) -> bool:
        """The data-dependent ReLU, pooling and scaling-down conditions on the actual tails."""
        from cipherfuse.he.nn.layers import _noise_for_bounds

        params = self.weights.params
        nb, _ = _noise_for_bounds(l1, self.weights, "layer_0 (conv)", "Eq. 34")
        smax = params.secret_max
        relu_mass = tail_max * smax  # the quick ReLU condition of relu_components
        if tail_min < 0 or relu_mass + nb >= params.half_w:
            return False
        pooled_noise = self.window[0] * self.window[1] * max(nb, relu_mass)  # sum_pool's Eq. 42
        if pooled_noise >= params.half_w:
            return False
        return pooled_tail_max * smax + pooled_noise < params.half_w  # scale-down exact


def _jitted(
    spec: ConvSpec, window: tuple[int, int], pool_stride: tuple[int, int]
) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    stride = (int(spec.strides[0]), int(spec.strides[1]))

    def conv(x: Any, kernel: Any) -> Any:
        return jax.lax.conv_general_dilated(
            x,
            kernel,
            stride,
            spec.padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )

    def pool(v: Any) -> Any:
        """VALID sum pooling as a sum of strided slices (fuses with the element-wise ops)."""
        if window == (1, 1) and pool_stride == (1, 1):
            return v
        oh = (v.shape[1] - window[0]) // pool_stride[0] + 1
        ow = (v.shape[2] - window[1]) // pool_stride[1] + 1
        total = None
        for i in range(window[0]):
            for j in range(window[1]):
                part = v[
                    :,
                    i : i + pool_stride[0] * (oh - 1) + 1 : pool_stride[0],
                    j : j + pool_stride[1] * (ow - 1) + 1 : pool_stride[1],
                ]
                total = part if total is None else total + part
        return total

    def block(
        x: Any, sums: Any, k_high: Any, k_low: Any, k_tail: Any, offsets: Any, bias: Any
    ) -> tuple[Any, Any, Any, Any]:
        high = conv(x, k_high) + (offsets[0] * sums + bias[0])
        low_threshold = -(offsets[1] * sums + bias[1])  # L > 0  <=>  conv(x, l - o) > -(o s + b)
        keep = (high > 0) | ((high == 0) & (conv(x, k_low) > low_threshold))
        high = jnp.where(keep, high, 0.0)  # ReLU of the leading word 2^S H + L
        tail = conv(x, k_tail) + (offsets[2] * sums + bias[2])
        pooled_tail = pool(jnp.maximum(tail, 0.0))
        return pool(high), tail.min(), tail.max(), pooled_tail.max()

    return jax.jit(block)


def limb_plan(weights: EncryptedWeights, spec: ConvSpec, pool: PoolSpec | None) -> LimbPlan | None:
    """A :class:`LimbPlan` for this layer, or ``None`` when the limb path does not apply.

    Applies to the element-wise strategy with ``k = 1`` (two-word ciphertexts),
    2-D convolutions with a ReLU, followed by sum/average pooling or nothing,
    and limbs small enough for float32 at all (the ``paper`` parameters).
    """
    import jax.numpy as jnp

    params = weights.params
    if (
        weights.packed
        or weights.m != 1
        or params.lwe_dim != 1
        or len(weights.shape) != 4
        or spec.activation != "relu"
        or (pool is not None and (pool.pool == "max" or len(pool.window) != 2))
    ):
        return None
    shift = 64 - params.plaintext_bits  # log2 w
    if not 26 <= shift <= 62:
        return None
    filters = weights.filters
    mat = weights.matrix().reshape(weights.fan_in, filters, 2)
    brow = weights.bias_row().reshape(filters, 2)
    high, low = split_leading(np.ascontiguousarray(mat[..., 0]), shift)
    bias_high, bias_low = split_leading(np.ascontiguousarray(brow[:, 0]), shift)
    limbs = (high, low, mat[..., 1].view(np.int64))
    biases = (bias_high, bias_low, brow[:, 1].view(np.int64))
    limb_max = tuple(int(np.abs(v).max(initial=0)) for v in limbs)
    bias_max = tuple(int(np.abs(v).max(initial=0)) for v in biases)
    if max(limb_max) >= F32_EXACT or max(bias_max) >= F32_EXACT:
        return None
    mids = [(int(v.min(initial=0)) + int(v.max(initial=0))) // 2 for v in limbs]
    centred = [v - o for v, o in zip(limbs, mids, strict=True)]
    centred_max = tuple(int(np.abs(v).max(initial=0)) for v in centred)
    if max(centred_max) >= F32_EXACT:
        return None  # no input with a nonzero patch could be exact
    shape = (*weights.shape[:-1], filters)
    window = (1, 1) if pool is None else (int(pool.window[0]), int(pool.window[1]))
    pstride = (1, 1) if pool is None else (int(pool.strides[0]), int(pool.strides[1]))
    return LimbPlan(
        weights=weights,
        spec=spec,
        window=window,
        pool_stride=pstride,
        shift=shift,
        limb_max=(limb_max[0], limb_max[1], limb_max[2]),
        centred_max=(centred_max[0], centred_max[1], centred_max[2]),
        offset_max=(abs(mids[0]), abs(mids[1]), abs(mids[2])),
        bias_max=(bias_max[0], bias_max[1], bias_max[2]),
        fn=_jitted(spec, window, pstride),
        kernels=(
            jnp.asarray(centred[0].reshape(shape).astype(np.float32)),
            jnp.asarray(centred[1].reshape(shape).astype(np.float32)),
            jnp.asarray(centred[2].reshape(shape).astype(np.float32)),
        ),
        offsets=jnp.asarray(np.asarray(mids, np.float32)),
        bias=jnp.asarray(np.stack(biases).astype(np.float32)),
        int_kernels=np.ascontiguousarray(np.stack([c.reshape(shape) for c in centred])),
        int_offsets=np.asarray(mids, np.int64),
        int_bias=np.ascontiguousarray(np.stack(biases).astype(np.int64)),
    )
