"""Convolution geometry shared by the plaintext, quantized and encrypted layers.

SAME padding follows Flax/XLA (and TensorFlow): the output has ``ceil(size / stride)``
positions per axis and the odd padding pixel goes below/right; VALID padding has
none. :func:`im2col` and :func:`im2col_t` lay out the patches (kernel taps, then
channels) of a convolution as a matrix for one GEMM; :func:`patch_sums` sums every
patch with an integral image. numpy only: the encryption reference kernels
(:class:`cipherfuse.he.reference.ReferenceKernels`), :mod:`cipherfuse.he.nn`,
:mod:`cipherfuse.he.seeded` and :mod:`cipherfuse.nn.quantize` all use this module,
so none of them pulls in JAX for its geometry.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from cipherfuse.errors import ParameterError

I64Array = npt.NDArray[np.int64]


def same_output_size(size: int, stride: int) -> int:
    """Output positions of one axis with SAME padding: ``ceil(size / stride)``."""
    return -(-size // stride)


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """SAME zero padding ``(before, after)`` of one axis for a kernel of ``k`` taps."""
    out = same_output_size(size, stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class Conv2dGeometry(NamedTuple):
    """Where the windows of a 2-D convolution lie: zero padding above / left, output size."""

    pads: tuple[int, int]
    out: tuple[int, int]


def conv2d_geometry(
    in_hw: tuple[int, ...], kernel_hw: tuple[int, ...], stride: tuple[int, ...], padding: str
) -> Conv2dGeometry:
    """The geometry of a 2-D convolution (SAME padding as in Flax/XLA: the odd pixel below/right).

    Raises:
        ParameterError: padding is not ``"SAME"``/``"VALID"``, a stride or kernel size is not a
            positive integer, or a VALID input is smaller than the kernel.
    """
    if len(in_hw) != 2 or len(kernel_hw) != 2 or len(stride) != 2:
        raise ParameterError(
            f"a 2-D convolution needs (h, w) images, (kh, kw) kernels and (sh, sw) strides; got "
            f"{tuple(in_hw)}, {tuple(kernel_hw)}, {tuple(stride)}"
        )
    if min(stride) < 1 or min(kernel_hw) < 1:
        raise ParameterError(
            f"strides {tuple(stride)} and kernel sizes {tuple(kernel_hw)} must be >= 1"
        )
    pads: list[int] = []
    out: list[int] = []
    for size, k, st in zip(in_hw, kernel_hw, stride, strict=True):
        if padding == "SAME":
            n_out = same_output_size(size, st)
            pads.append(same_pads(size, k, st)[0])
        elif padding == "VALID":
            if size < k:
                raise ParameterError(
                    f"input {tuple(in_hw)} is smaller than the kernel {tuple(kernel_hw)} "
                    "(VALID padding); use padding='SAME' or a larger input"
                )
            n_out = (size - k) // st + 1
            pads.append(0)
        else:
            raise ParameterError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
        out.append(n_out)
    return Conv2dGeometry((pads[0], pads[1]), (out[0], out[1]))


def patch_sums(
    x: I64Array, kernel: tuple[int, int], stride: tuple[int, int], padding: str
) -> I64Array:
    """Per output position, the sum of the input patch over all channels: ``(n, H', W')``.

    An integral image (two cumulative sums), the same geometry as
    :func:`im2col` (SAME padding as in Flax/XLA).
    """
    a = x.sum(axis=-1)
    kh, kw = kernel
    if padding == "SAME":
        ph = same_pads(a.shape[1], kh, stride[0])
        pw = same_pads(a.shape[2], kw, stride[1])
        a = np.pad(a, ((0, 0), ph, pw))
    integral = np.zeros((a.shape[0], a.shape[1] + 1, a.shape[2] + 1), np.int64)
    np.cumsum(np.cumsum(a, axis=1), axis=2, out=integral[:, 1:, 1:])
    oh = (a.shape[1] - kh) // stride[0] + 1
    ow = (a.shape[2] - kw) // stride[1] + 1
    if oh < 1 or ow < 1:
        raise ParameterError(f"input {x.shape} is smaller than the kernel {kernel}")
    r = slice(0, (oh - 1) * stride[0] + 1, stride[0])
    c = slice(0, (ow - 1) * stride[1] + 1, stride[1])
    r2 = slice(kh, kh + (oh - 1) * stride[0] + 1, stride[0])
    c2 = slice(kw, kw + (ow - 1) * stride[1] + 1, stride[1])
    sums: I64Array = (
        integral[:, r2, c2] - integral[:, r, c2] - integral[:, r2, c] + integral[:, r, c]
    )
    return sums


def _pad_same(
    x: npt.NDArray[np.generic], kernel: tuple[int, ...], stride: tuple[int, ...], padding: str
) -> npt.NDArray[np.generic]:
    """``x`` zero-padded on its spatial axes for SAME padding; unchanged for VALID."""
    if padding == "VALID":
        return x
    if padding != "SAME":
        raise ParameterError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    pads = [(0, 0)]
    pads += [
        same_pads(x.shape[1 + i], k, s) for i, (k, s) in enumerate(zip(kernel, stride, strict=True))
    ]
    pads.append((0, 0))
    return np.pad(x, pads)


def im2col(
    x: npt.NDArray[np.generic],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: str,
) -> npt.NDArray[np.generic]:
    """Patches ``(n, *out, prod(kernel) * channels)`` of ``x`` ``(n, *spatial, channels)``.

    The patch order (kernel taps, then channels) matches a weight tensor
    ``(*kernel, cin, F)`` reshaped to ``(K, F)``; SAME padding as in Flax/XLA.
    """
    nd = len(kernel)
    if x.ndim != nd + 2 or len(stride) != nd or min(stride, default=1) < 1:
        raise ParameterError(
            f"input {x.shape} does not fit a {nd}-D kernel {kernel} with stride {stride}"
        )
    x = _pad_same(x, kernel, stride, padding)
    if any(x.shape[1 + i] < k for i, k in enumerate(kernel)):
        raise ParameterError(f"input {x.shape} is smaller than the kernel {kernel}")
    view = sliding_window_view(x, kernel, axis=tuple(range(1, 1 + nd)))
    view = view[(slice(None), *(slice(None, None, s) for s in stride))]
    order = (0, *range(1, 1 + nd), *range(2 + nd, 2 + 2 * nd), 1 + nd)
    patches = view.transpose(order)  # (n, *out, *kernel, cin)
    lead = patches.shape[: 1 + nd]
    # the patch length is explicit: ``-1`` cannot be inferred from an empty batch
    return np.ascontiguousarray(patches).reshape(*lead, int(np.prod(patches.shape[1 + nd :])))


def im2col_t(
    x: npt.NDArray[np.generic],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: str,
    *,
    ones_row: bool = False,
) -> tuple[npt.NDArray[np.generic], tuple[int, ...]]:
    """:func:`im2col` transposed: patches as a ``(K, rows)`` matrix, and the ``(n, *out)`` shape.

    The GEMM reads its small operand K-major, so producing it in that order saves
    a transposed copy of the (large) patch matrix. ``ones_row`` appends a row of
    ones (``(K + 1, rows)``), so that a bias row of the other operand is added by
    the GEMM itself instead of another pass over the output.
    """
    nd = len(kernel)
    x = _pad_same(x, kernel, stride, padding)
    if x.ndim != nd + 2 or len(stride) != nd or min(stride, default=1) < 1:
        raise ParameterError(f"input {x.shape} does not fit kernel {kernel}, stride {stride}")
    if any(x.shape[1 + i] < k for i, k in enumerate(kernel)):
        raise ParameterError(f"input {x.shape} is smaller than the kernel {kernel}")
    view = sliding_window_view(x, kernel, axis=tuple(range(1, 1 + nd)))
    view = view[(slice(None), *(slice(None, None, s) for s in stride))]
    # view: (n, *out, cin, *kernel) -> (*kernel, cin, n, *out)
    order = (*range(2 + nd, 2 + 2 * nd), 1 + nd, 0, *range(1, 1 + nd))
    moved = view.transpose(order)
    lead = tuple(int(d) for d in moved.shape[1 + nd :])
    k_in = int(np.prod(moved.shape[: 1 + nd]))
    count = int(np.prod(lead))
    buf = np.empty((k_in + int(ones_row), count), dtype=x.dtype)
    buf[:k_in].reshape(moved.shape)[...] = moved
    if ones_row:
        buf[k_in] = 1
    return buf, lead
