"""Local ring arithmetic of linear layers: convolution and dense products mod 2^64.

Both operands are uint64 ring words (a public int64 image is its two's-complement
word). Two C++ kernels compute them, chosen by ``kernel`` (same results, tested):

* ``"gemm"`` (the default): ``cipherfuse._core.ring_conv2d``, the ring GEMM's
  micro-kernels (AVX-512 ``vpmullq``, AVX2 / NEON 32-bit partial products) on
  patches packed per block of output pixels, and :func:`cipherfuse.mpc.kernels.ring_matmul`
  for dense layers;
* ``"direct"`` (the earlier path, kept for comparison): the HE module's direct
  convolution ``cipherfuse._core.conv2d_direct``, exact float64 limbs for small
  inputs but the scalar reference for full-width shares (a dense layer is a 1x1
  convolution).

A 1-D convolution is one of height 1. :func:`ring_conv_reference` is the numpy
reference (:func:`cipherfuse.geometry.im2col` + :func:`cipherfuse.mpc.kernels.ring_matmul`)
both are tested against bit for bit. The padding and output sizes are
:mod:`cipherfuse.geometry`'s (SAME as in Flax/XLA).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from cipherfuse import _core
from cipherfuse.geometry import conv2d_geometry, im2col
from cipherfuse.mpc import kernels
from cipherfuse.nn.quantize import QuantizedConv

U64Array = npt.NDArray[np.uint64]

#: The linear-layer kernels (module docstring).
LinearKernel = Literal["gemm", "direct"]
LINEAR_KERNELS: tuple[LinearKernel, ...] = ("gemm", "direct")


def _check_kernel(kernel: str) -> None:
    if kernel not in LINEAR_KERNELS:
        raise ValueError(f"kernel must be one of {LINEAR_KERNELS}, got {kernel!r}")


def ring_conv(
    x: U64Array, weight: U64Array, layer: QuantizedConv, *, kernel: LinearKernel = "gemm"
) -> U64Array:
    """``conv(x, weight) mod 2^64`` with ``layer``'s geometry; ``x`` ``(n, *spatial, c)``."""
    _check_kernel(kernel)
    nd = weight.ndim - 2
    if nd == 1:
        x2 = x[:, None, :, :]
        w2 = weight[None, :, :, :]
        stride = (1, layer.stride[0])
    else:
        x2, w2, stride = x, weight, (layer.stride[0], layer.stride[1])
    geometry = conv2d_geometry(x2.shape[1:3], w2.shape[:2], stride, layer.padding)
    (pad_top, pad_left), (out_h, out_w) = geometry
    if kernel == "gemm":
        y = _core.ring_conv2d(
            np.ascontiguousarray(x2).view(np.uint64),
            np.ascontiguousarray(w2).view(np.uint64),
            out_h=out_h,
            out_w=out_w,
            stride_h=stride[0],
            stride_w=stride[1],
            pad_top=pad_top,
            pad_left=pad_left,
            threads=1,  # the three parties already run in parallel
        )
        return y[:, 0] if nd == 1 else y
    y = _core.conv2d_direct(
        np.ascontiguousarray(x2).view(np.int64),
        np.ascontiguousarray(w2),
        stride_h=stride[0],
        stride_w=stride[1],
        pad_top=pad_top,
        pad_left=pad_left,
        out_h=out_h,
        out_w=out_w,
        threads=1,  # the three parties already run in parallel
    )
    return y[:, 0] if nd == 1 else y


def ring_dense(x: U64Array, weight: U64Array, *, kernel: LinearKernel = "gemm") -> U64Array:
    """``x @ weight mod 2^64`` for ``x`` ``(n, k)``, ``weight`` ``(k, f)``."""
    _check_kernel(kernel)
    if kernel == "gemm":
        return kernels.ring_matmul(
            np.ascontiguousarray(x).view(np.uint64), np.ascontiguousarray(weight), threads=1
        )
    n, k = x.shape
    y = _core.conv2d_direct(
        np.ascontiguousarray(x).view(np.int64).reshape(n, 1, 1, k),
        np.ascontiguousarray(weight).reshape(1, 1, k, weight.shape[1]),
        out_h=1,
        out_w=1,
        threads=1,
    )
    out: U64Array = y.reshape(n, weight.shape[1])
    return out


def ring_conv_reference(x: U64Array, weight: U64Array, layer: QuantizedConv) -> U64Array:
    """The numpy reference of :func:`ring_conv`: im2col and ``kernels.ring_matmul``."""
    kernel = weight.shape[:-2]
    patches = im2col(x, kernel, layer.stride, layer.padding)  # (n, *out, K)
    out_shape = patches.shape[:-1]
    flat = patches.reshape(-1, patches.shape[-1])
    y = kernels.ring_matmul(flat, np.ascontiguousarray(weight).reshape(-1, weight.shape[-1]))
    out: U64Array = y.reshape(*out_shape, -1)
    return out
