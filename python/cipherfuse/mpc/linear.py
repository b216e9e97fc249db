"""Local ring arithmetic of linear layers: convolution and dense products mod 2^64.

Both operands are uint64 ring words (a public int64 image is its two's-complement
word). :func:`ring_conv` and :func:`ring_dense` use the C++ direct convolution
``cipherfuse._core.conv2d_direct`` (exact mod 2^64 for every int64 input; a dense
layer is a 1x1 convolution, a 1-D convolution one of height 1); :func:`ring_conv_reference`
is the numpy reference (:func:`cipherfuse.geometry.im2col` +
:func:`cipherfuse.mpc.kernels.ring_matmul`) they are tested against bit for bit. The
padding and output sizes are :mod:`cipherfuse.geometry`'s (SAME as in Flax/XLA).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cipherfuse import _core
from cipherfuse.geometry import conv2d_geometry, im2col
from cipherfuse.mpc import kernels
from cipherfuse.nn.quantize import QuantizedConv

U64Array = npt.NDArray[np.uint64]


def ring_conv(x: U64Array, weight: U64Array, layer: QuantizedConv) -> U64Array:
    """``conv(x, weight) mod 2^64`` with ``layer``'s geometry; ``x`` ``(n, *spatial, c)``."""
    nd = weight.ndim - 2
    if nd == 1:
        x2 = x[:, None, :, :]
        w2 = weight[None, :, :, :]
        stride = (1, layer.stride[0])
    else:
        x2, w2, stride = x, weight, (layer.stride[0], layer.stride[1])
    geometry = conv2d_geometry(x2.shape[1:3], w2.shape[:2], stride, layer.padding)
    (pad_top, pad_left), (out_h, out_w) = geometry
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


def ring_dense(x: U64Array, weight: U64Array) -> U64Array:
    """``x @ weight mod 2^64`` for ``x`` ``(n, k)``, ``weight`` ``(k, f)``."""
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
