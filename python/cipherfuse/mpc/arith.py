"""Arithmetic protocols on replicated shares: products, linear layers, truncation.

* public x secret linear (:func:`public_conv`, :func:`public_dense`): local, nothing sent;
* secret x secret (:func:`mul`, :func:`secret_conv`, :func:`secret_dense`): each party
  computes ``z_i = x_i y_i + x_i y_{i+1} + x_{i+1} y_i + alpha_i`` (a 3-out-of-3 sharing
  of the product, ``alpha`` a fresh zero-sharing) and :meth:`Party.reshare` makes it
  replicated: one round, one word per output element sent by each party;
* :func:`truncate`: division by ``2^d`` (ABY3's share truncation, Mohassel-Rindal 2018,
  Sec. 5.1.1; SecureML's two-party rule on the pair ``(x_0, x_1 + x_2)``). One round,
  party 1 sends one word per element to party 2. For ``|x| < 2^ell_x`` the result is
  ``floor(x / 2^d)`` or ``floor(x / 2^d) + 1`` except with probability at most
  ``2^(ell_x + 1 - 64)``, when it is wrong by about ``2^(64 - d)`` (tested).

The classifier evaluation itself needs no truncation (see :mod:`cipherfuse.mpc.encoding`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cipherfuse.mpc import kernels
from cipherfuse.mpc.linear import LinearKernel, ring_conv, ring_dense
from cipherfuse.mpc.party import Party
from cipherfuse.mpc.shares import RSS, add_public
from cipherfuse.nn.quantize import IntArray, QuantizedConv

U64Array = npt.NDArray[np.uint64]


def _add(a: U64Array, b: U64Array) -> U64Array:
    with np.errstate(over="ignore"):
        s: U64Array = a + b
    return s


def mul(party: Party, x: RSS, y: RSS) -> RSS:
    """Element-wise ``x * y``: one round, one word per element."""
    mask = party.rand.zero_share(int(np.prod(x.shape))).reshape(x.shape)
    z = kernels.rss_mul_local(x.first, x.second, y.first, y.second, mask)
    return party.reshare(z)


def _with_bias(y: RSS, bias: RSS | None) -> RSS:
    if bias is None:
        return y
    with np.errstate(over="ignore"):
        return RSS(y.first + bias.first, y.second + bias.second)


def _add_bias_in_place(y: U64Array, bias: U64Array | None) -> U64Array:
    if bias is not None:
        with np.errstate(over="ignore"):
            np.add(y, bias, out=y)
    return y


def public_conv(
    x: IntArray,
    weight: RSS,
    bias: RSS | None,
    layer: QuantizedConv,
    *,
    kernel: LinearKernel = "gemm",
) -> RSS:
    """``conv(x, W) + b`` for public int64 ``x`` and shared ``W``, ``b``: local."""
    words = np.ascontiguousarray(x).view(np.uint64)
    if kernel == "direct":  # the earlier path: both shares in one convolution, then split
        both = np.concatenate([weight.first, weight.second], axis=-1)
        y = ring_conv(words, both, layer, kernel=kernel)
        f = weight.shape[-1]
        return _with_bias(
            RSS(np.ascontiguousarray(y[..., :f]), np.ascontiguousarray(y[..., f:])), bias
        )
    return RSS(
        _add_bias_in_place(
            ring_conv(words, weight.first, layer), None if bias is None else bias.first
        ),
        _add_bias_in_place(
            ring_conv(words, weight.second, layer), None if bias is None else bias.second
        ),
    )


def public_dense(
    x: IntArray, weight: RSS, bias: RSS | None, *, kernel: LinearKernel = "gemm"
) -> RSS:
    """``x @ W + b`` for public int64 ``x`` and shared ``W``, ``b``: local."""
    both = np.concatenate([weight.first, weight.second], axis=-1)
    y = ring_dense(np.ascontiguousarray(x).view(np.uint64), both, kernel=kernel)
    f = weight.shape[-1]
    return _with_bias(RSS(np.ascontiguousarray(y[:, :f]), np.ascontiguousarray(y[:, f:])), bias)


def secret_conv(
    party: Party,
    x: RSS,
    weight: RSS,
    bias: RSS | None,
    layer: QuantizedConv,
    *,
    kernel: LinearKernel = "gemm",
) -> RSS:
    """``conv(x, W) + b`` for shared ``x`` and ``W``: one round, output-sized traffic.

    ``x_i * (W_i + W_{i+1}) + x_{i+1} * W_i`` is one convolution of the inputs stacked
    along channels with the kernels stacked along input channels.
    """
    xs = np.concatenate([x.first, x.second], axis=-1)
    ws = np.concatenate([_add(weight.first, weight.second), weight.first], axis=-2)
    z = ring_conv(xs, ws, layer, kernel=kernel)
    with np.errstate(over="ignore"):
        np.add(z, party.rand.zero_share(z.size).reshape(z.shape), out=z)
    return _with_bias(party.reshare(z), bias)


def secret_dense(
    party: Party, x: RSS, weight: RSS, bias: RSS | None, *, kernel: LinearKernel = "gemm"
) -> RSS:
    """``x @ W + b`` for shared ``x`` and ``W``: one round, output-sized traffic."""
    xs = np.concatenate([x.first, x.second], axis=-1)
    ws = np.concatenate([_add(weight.first, weight.second), weight.first], axis=0)
    z = ring_dense(xs, ws, kernel=kernel)
    with np.errstate(over="ignore"):
        np.add(z, party.rand.zero_share(z.size).reshape(z.shape), out=z)
    return _with_bias(party.reshare(z), bias)


def taylor_sigmoid(party: Party, x: RSS, scale: int) -> RSS:
    """``24 s^3 + 12 s^2 x - x^3`` (the quantized degree-3 sigmoid): two rounds."""
    square = mul(party, x, x)
    cube = mul(party, square, x)
    y = x.scale(12 * scale**2) - cube
    return add_public(party.index, y, np.uint64((24 * scale**3) % 2**64))


def truncate(party: Party, x: RSS, bits: int) -> RSS:
    """``x / 2^bits`` by share truncation (error stated in the module docstring).

    New shares ``y_0 = x_0 >> d`` (parties 0, 2), ``y_1 = r`` (parties 0, 1, from
    their common key), ``y_2 = -((-(x_1 + x_2)) >> d) - r`` (computed by party 1, sent
    to party 2). Party 2 sees ``y_2`` masked by ``r``: uniform.
    """
    if not 0 < bits < 64:
        raise ValueError(f"bits must be in 1..63, got {bits}")
    d = np.uint64(bits)
    n = int(np.prod(x.shape))
    i = party.index
    with np.errstate(over="ignore"):
        if i == 0:
            r = party.rand.with_next(n).reshape(x.shape)
            y0 = x.first >> d
            party.round()
            return RSS(y0, r)
        if i == 1:
            r = party.rand.with_prev(n).reshape(x.shape)
            b = x.first + x.second
            tb = np.uint64(0) - ((np.uint64(0) - b) >> d)
            y2 = tb - r
            party.send_words(2, y2.reshape(-1))
            party.round()
            return RSS(r, y2)
        party.rand.pair(0)  # keep the counter in step with parties 0 and 1
        y2 = party.recv_words(1, n).reshape(x.shape)
        party.round()
        return RSS(y2, x.second >> d)
