"""Encrypted layers: every layer is one GEMM on the C++ kernels (via :mod:`cipherfuse.he`).

Plaintext inputs x encrypted weights (the paper's case, Eqs. 21 and 29):
``Y = X C`` where ``X`` is the ``(rows, K)`` matrix of inputs (im2col patches
for a convolution) and ``C`` the ``(K, cols)`` matrix of ciphertext words
(:class:`~cipherfuse.he.nn.strategies.EncryptedWeights`); ``S Y = w X W + X E``
so the result encrypts ``X W`` with noise ``|X E| <= |x|_1 e_B`` (Eqs. 25-26,
33-34), which is checked *before* computing.

Encrypted inputs x plaintext weights (the rest of the network on the
ciphertext pair, Fig. 5b): every ciphertext component is multiplied by the
plaintext weights, ``C' = C W`` component-wise; noise grows by the largest
column l1 norm of ``W``.

Sum pooling adds ciphertexts (Eqs. 37-42): noise times the window size.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cipherfuse.geometry import conv2d_geometry, im2col, im2col_t
from cipherfuse.he.backend import get_kernels
from cipherfuse.he.errors import ParameterError
from cipherfuse.he.nn.errors import CipherspaceError
from cipherfuse.he.nn.strategies import EncryptedWeights
from cipherfuse.he.nn.tensor import CipherTensor
from cipherfuse.he.params import HEParams
from cipherfuse.he.scheme import _check_value, check_noise

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

#: Largest GEMM output block materialized at once (bytes); rows are chunked to fit.
MAX_BLOCK_BYTES = 1 << 30


def _int_input(x: npt.ArrayLike, ndim: int | None, what: str) -> I64Array:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"{what} must be integers (quantize with q first), got {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ParameterError(f"{what} must have {ndim} dims, got shape {arr.shape}")
    if arr.size and int(np.abs(arr.astype(np.int64)).max()) >= 1 << 40:
        raise ParameterError(f"{what} entries must satisfy |x| < 2^40")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _noise_for_rows(
    rows_t: I64Array, enc: EncryptedWeights, layer: str, eq: str
) -> tuple[int, int]:
    """Checks the weighted-sum noise bound (``eq``) before computing; returns (noise, value).

    ``rows_t`` holds one input row per *column* (K x rows).
    """
    l1 = int(np.abs(rows_t).sum(axis=0).max(initial=0))
    return _noise_for_bounds(l1, enc, layer, eq, inputs=rows_t.shape[0])


def _noise_for_bounds(
    l1: int, enc: EncryptedWeights, layer: str, eq: str, *, inputs: int | None = None
) -> tuple[int, int]:
    """The weighted-sum noise and value bounds (``eq``) for input rows with l1 norm <= ``l1``.

    Raises:
        NoiseBudgetExceeded, PlaintextOverflow: the bound could reach w/2 (t/2).
    """
    params = enc.params
    bound = l1 * enc.weights.noise_bound + enc.bias.noise_bound
    over = f" over {inputs} inputs" if inputs is not None else ""
    check_noise(
        params,
        f"{layer}: weighted sum{over} with |x|_1 <= {l1} ({eq})",
        bound,
        "lower the input scale q, or use parameters with a larger w (fewer plaintext_bits)",
    )
    assert enc.weights.value_bound is not None and enc.bias.value_bound is not None
    vb = l1 * enc.weights.value_bound + enc.bias.value_bound
    _check_value(params, layer, vb)
    return bound, vb


def plain_times_encrypted(rows: I64Array, enc: EncryptedWeights) -> U64Array:
    """``rows @ C + bias`` mod 2^64 (no checks); see :func:`plain_times_encrypted_t`."""
    return plain_times_encrypted_t(np.ascontiguousarray(np.asarray(rows, np.int64).T), enc)


def plain_times_encrypted_t(rows_t: I64Array, enc: EncryptedWeights) -> U64Array:
    """``rows_t^T @ C + bias`` mod 2^64 (no checks), returned as a ``(rows, cols)`` view.

    Computed as ``C^T rows_t`` with :meth:`Kernels.gemm_wide_small` into a
    component-major ``(cols, rows)`` array, whose transpose is returned without a
    copy: the C++ driver then reads both operands and writes its output
    contiguously, which measured 2.5-4x faster here than ``gemm_small_wide`` on
    these tall, narrow shapes (784 x 25 patches per image, 64 columns), and no
    transposed copy of the output is made. Columns of ``rows_t`` are processed in
    blocks of at most :data:`MAX_BLOCK_BYTES` of output per GEMM call.
    """
    bias = enc.bias_row()
    with_ones = rows_t.shape[0] == enc.fan_in + 1
    if with_ones:  # the last input row is all ones: the bias rides in the GEMM
        cmat_t = np.ascontiguousarray(np.concatenate([enc.matrix(), bias[None, :]]).T)
    else:
        cmat_t = np.ascontiguousarray(enc.matrix().T)
    cols = cmat_t.shape[0]
    n_rows = rows_t.shape[1]
    kern = get_kernels()
    step = max(1, MAX_BLOCK_BYTES // (8 * cols))
    if n_rows <= step:
        out_t = kern.gemm_wide_small(cmat_t, np.ascontiguousarray(rows_t))
    else:
        out_t = np.empty((cols, n_rows), dtype=np.uint64)
        for start in range(0, n_rows, step):
            block = np.ascontiguousarray(rows_t[:, start : start + step])
            out_t[:, start : start + step] = kern.gemm_wide_small(cmat_t, block)
    if not with_ones:
        out_t += bias[:, None]
    return out_t.T


def _wrap(
    enc: EncryptedWeights, lead: tuple[int, ...], data: U64Array, nb: int, vb: int
) -> CipherTensor:
    return CipherTensor(
        enc.params,
        enc.key_id,
        enc.m,
        enc.packed,
        data.reshape(*lead, *enc.out_tail_shape()),
        nb,
        vb,
    )


def encrypted_dense(
    x: npt.ArrayLike, enc: EncryptedWeights, *, layer: str = "dense"
) -> CipherTensor:
    """Plaintext inputs ``(n, K)`` x encrypted weights ``(K, F)`` (+ encrypted bias), Eq. 21.

    Raises:
        NoiseBudgetExceeded: Eq. 25/26 fails for these inputs (checked first).
    """
    xs = _int_input(x, 2, f"{layer} inputs")
    if len(enc.shape) != 2 or xs.shape[1] != enc.fan_in:
        raise ParameterError(
            f"{layer}: inputs (n, {xs.shape[1]}) do not match dense weights {enc.shape}"
        )
    xs_t = np.ascontiguousarray(xs.T)
    nb, vb = _noise_for_rows(xs_t, enc, layer, "Eq. 26")
    return _wrap(enc, (xs.shape[0],), plain_times_encrypted_t(xs_t, enc), nb, vb)


def encrypted_conv(
    x: npt.ArrayLike,
    enc: EncryptedWeights,
    *,
    stride: tuple[int, ...] | None = None,
    padding: str = "SAME",
    layer: str = "conv",
) -> CipherTensor:
    """Encrypted kernels ``(*kernel, cin, F)`` on plaintext images ``(n, *spatial, cin)``.

    Eq. 29: im2col + one GEMM for 1-D, 3-D, ... convolutions; 2-D convolutions
    run on the kernels' direct ``conv2d`` (same result, no patch matrix).

    Raises:
        NoiseBudgetExceeded: Eq. 33/34 fails for these inputs (checked first).
    """
    kernel = enc.shape[:-2]
    nd = len(kernel)
    xs = _int_input(x, nd + 2, f"{layer} inputs")
    if xs.shape[-1] != enc.shape[-2]:
        raise ParameterError(
            f"{layer}: inputs have {xs.shape[-1]} channels, the kernel expects {enc.shape[-2]}"
        )
    st = (1,) * nd if stride is None else tuple(int(s) for s in stride)
    if nd == 2:
        return _encrypted_conv2d(xs, enc, st, padding, layer)
    patches_t, lead = im2col_t(xs, kernel, st, padding, ones_row=True)
    rows_t = patches_t.astype(np.int64, copy=False)
    nb, vb = _noise_for_rows(rows_t[:-1], enc, layer, "Eq. 34")
    return _wrap(enc, lead, plain_times_encrypted_t(rows_t, enc), nb, vb)


def _encrypted_conv2d(
    xs: I64Array, enc: EncryptedWeights, stride: tuple[int, ...], padding: str, layer: str
) -> CipherTensor:
    """The 2-D case of :func:`encrypted_conv` on the kernels' ``conv2d``.

    The C++ kernels run a direct convolution (patches built per block of output
    pixels, output written once in its final ``(n, h', w', cols)`` layout); the
    numpy reference kernels do im2col + one integer matmul. The noise bound
    (Eq. 34) comes first, from the largest patch l1 norm.
    """
    kh, kw, cin = enc.shape[0], enc.shape[1], enc.shape[2]
    conv2d_geometry(xs.shape[1:3], (kh, kw), stride, padding)  # ParameterError before any work
    st = (stride[0], stride[1])
    kernels = get_kernels()
    l1 = kernels.conv2d_patch_l1_max(xs, (kh, kw), st, padding)
    nb, vb = _noise_for_bounds(l1, enc, layer, "Eq. 34", inputs=kh * kw * cin)
    words = np.ascontiguousarray(enc.matrix()).reshape(kh, kw, cin, -1)
    out = kernels.conv2d(xs, words, np.ascontiguousarray(enc.bias_row()), st, padding)
    return _wrap(enc, tuple(int(d) for d in out.shape[:3]), out, nb, vb)


def encrypted_conv2d(
    x: npt.ArrayLike,
    enc: EncryptedWeights,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: str = "SAME",
    layer: str = "conv2d",
) -> CipherTensor:
    """2-D :func:`encrypted_conv` (kernels ``(kh, kw, cin, F)``, images ``(n, h, w, cin)``)."""
    if len(enc.shape) != 4:
        raise ParameterError(f"{layer}: conv2d needs (kh, kw, cin, F) kernels, got {enc.shape}")
    return encrypted_conv(x, enc, stride=stride, padding=padding, layer=layer)


# ------------------------------------------------------------------ encrypted inputs
def _unpacked(ct: CipherTensor, layer: str) -> None:
    if ct.packed:
        raise CipherspaceError(
            f"{layer}: a plaintext layer on a packed (matrix-pair-wise) tensor mixes the packed "
            "plaintext words, which needs a key switch (cipherfuse.he.linear_transform with a key "
            "from the secret-key holder); only element-wise tensors can be multiplied by "
            "plaintext weights without one"
        )


def dense_on_encrypted(
    ct: CipherTensor,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    layer: str = "dense",
) -> CipherTensor:
    """Encrypted inputs (element-wise tensor, plaintext shape ``(n, I)``) x plaintext ``(I, O)``.

    Every ciphertext component is one GEMM ``(n * (1 + k), I) @ (I, O)``; a
    plaintext bias ``b`` is added as the noiseless encryption ``[w b; 0]``.
    """
    _unpacked(ct, layer)
    w = _int_input(weight, 2, f"{layer} weights")
    if len(ct.plain_shape) != 2 or ct.plain_shape[1] != w.shape[0]:
        raise ParameterError(f"{layer}: encrypted inputs {ct.plain_shape} do not match {w.shape}")
    n = ct.n
    batch = ct.plain_shape[0]
    comps = np.ascontiguousarray(ct.data.transpose(0, 2, 1)).reshape(batch * n, w.shape[0])
    nb, vb = _plain_weight_bounds(ct, w, bias, layer)
    out = get_kernels().gemm_wide_small(comps, w).reshape(batch, n, w.shape[1]).transpose(0, 2, 1)
    out = np.ascontiguousarray(out)
    _add_plain_bias(ct.params, out, bias, w.shape[1])
    return CipherTensor(ct.params, ct.key_id, 1, False, out, nb, vb)


def _plain_weight_bounds(
    ct: CipherTensor, w: I64Array, bias: npt.ArrayLike | None, layer: str
) -> tuple[int, int | None]:
    col_l1 = int(np.abs(w.reshape(-1, w.shape[-1])).sum(axis=0).max(initial=0))
    nb = col_l1 * ct.noise_bound
    check_noise(
        ct.params,
        f"{layer}: plaintext weights with column l1 norm {col_l1} on ciphertexts with noise "
        f"<= {ct.noise_bound} (Eq. 26)",
        nb,
        "use smaller weights (lower p) or a parameter set with a larger w",
    )
    bmax = 0 if bias is None else int(np.abs(np.asarray(bias, dtype=np.int64)).max(initial=0))
    vb = None if ct.value_bound is None else col_l1 * ct.value_bound + bmax
    _check_value(ct.params, layer, vb)
    return nb, vb


def _add_plain_bias(params: HEParams, out: U64Array, bias: npt.ArrayLike | None, o: int) -> None:
    if bias is None:
        return
    b = _int_input(bias, 1, "bias")
    if b.shape != (o,):
        raise ParameterError(f"bias must have shape ({o},), got {b.shape}")
    out[..., 0] += b.astype(np.uint64) * np.uint64(params.w)


def conv_on_encrypted(
    ct: CipherTensor,
    kernel_weights: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: tuple[int, ...] | None = None,
    padding: str = "SAME",
    layer: str = "conv",
) -> CipherTensor:
    """Plaintext kernels ``(*kernel, cin, F)`` on an encrypted feature map (element-wise).

    The ``1 + k`` ciphertext components become extra images of the batch:
    im2col on uint64 words (zero padding is the noiseless encryption of 0) and
    one GEMM ``patches @ W``.
    """
    _unpacked(ct, layer)
    w = _int_input(kernel_weights, None, f"{layer} kernels")
    kernel = tuple(int(d) for d in w.shape[:-2])
    nd = len(kernel)
    if len(ct.plain_shape) != nd + 2 or ct.plain_shape[-1] != w.shape[-2]:
        raise ParameterError(
            f"{layer}: encrypted input {ct.plain_shape} does not fit kernels {w.shape}"
        )
    n = ct.n
    st = (1,) * nd if stride is None else tuple(int(s) for s in stride)
    nb, vb = _plain_weight_bounds(ct, w.reshape(-1, w.shape[-1]), bias, layer)
    # (N, *sp, C, n) -> (N * n, *sp, C)
    moved = np.moveaxis(ct.data, -1, 1)
    stacked = np.ascontiguousarray(moved).reshape(-1, *ct.plain_shape[1:])
    patches = im2col(stacked, kernel, st, padding)
    lead = patches.shape[:-1]
    flat = np.ascontiguousarray(patches.reshape(-1, patches.shape[-1]), dtype=np.uint64)
    y = get_kernels().gemm_wide_small(flat, w.reshape(-1, w.shape[-1]))
    y = y.reshape(ct.plain_shape[0], n, *lead[1:], w.shape[-1])
    out = np.ascontiguousarray(np.moveaxis(y, 1, -1))
    _add_plain_bias(ct.params, out, bias, int(w.shape[-1]))
    return CipherTensor(ct.params, ct.key_id, 1, False, out, nb, vb)


def sum_pool(
    ct: CipherTensor,
    window: tuple[int, ...],
    stride: tuple[int, ...] | None = None,
    *,
    layer: str = "pool",
) -> CipherTensor:
    """Sum pooling (VALID) over the spatial axes in cipherspace (Eqs. 35-42).

    Average pooling is this sum with the scale multiplied by the window size
    (:mod:`cipherfuse.nn.quantize`), so no division happens in cipherspace.

    Raises:
        NoiseBudgetExceeded: Eq. 41/42 (window * e_B < w/2) fails (checked first).
    """
    nd = len(window)
    st = window if stride is None else stride
    plain_spatial = len(ct.plain_shape) - 2
    if nd != plain_spatial or len(st) != nd or min(window) < 1 or min(st) < 1:
        raise ParameterError(
            f"{layer}: window {window} / stride {st} do not fit a tensor with plaintext shape "
            f"{ct.plain_shape}"
        )
    size = int(np.prod(window))
    nb = size * ct.noise_bound
    check_noise(
        ct.params,
        f"{layer}: sum of {size} ciphertexts with noise <= {ct.noise_bound} (Eq. 42)",
        nb,
        "use a smaller pooling window or a parameter set with a larger w",
    )
    vb = None if ct.value_bound is None else size * ct.value_bound
    _check_value(ct.params, layer, vb)
    spatial = ct.data.shape[1 : 1 + nd]
    outs = [(d - w) // t + 1 for d, w, t in zip(spatial, window, st, strict=True)]
    if min(outs) < 1:
        raise ParameterError(f"{layer}: window {window} is larger than the map {spatial}")
    # One strided view per window offset, summed pairwise: element-wise adds that
    # follow the data's memory order whatever the tensor layout (measured 2-3x
    # faster here than a reshape-and-reduce on component-major GEMM outputs).
    parts: list[U64Array] = [
        ct.data[
            (
                slice(None),
                *(
                    slice(o, o + t * (n - 1) + 1, t)
                    for o, t, n in zip(offset, st, outs, strict=True)
                ),
            )
        ]
        for offset in np.ndindex(*window)
    ]
    while len(parts) > 1:
        pairs = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    out = parts[0]
    return CipherTensor(ct.params, ct.key_id, ct.m, ct.packed, np.ascontiguousarray(out), nb, vb)
