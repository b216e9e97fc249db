"""Framework-neutral quantized model description and its numpy integer forward.

The encryption interface (paper Sec. V-B, Fig. 5) only handles integers, so the
layers that run in cipherspace are quantized with scaling factors:

* weights: ``W = round(p * w)`` (``p`` e.g. ``2**5`` or ``2**7``);
* inputs: ``X = round(q * x)`` (``q`` e.g. ``1000``);
* biases: ``B = round(s_in * p * b)`` where ``s_in`` is the layer's input scale.

Each layer propagates a scale: a conv/dense layer multiplies it by ``p``;
ReLU and max pooling keep it; sum pooling keeps it and average pooling is
computed as sum pooling with the scale multiplied by the window size (no
division, so integers stay exact); the degree-3 Taylor sigmoid
``1/2 + x/4 - x^3/48`` on ``X = s*x`` is computed as ``24 s^3 + 12 s^2 X - X^3``
with scale ``48 s^3``. The real value of an integer tensor is ``X / scale``.

:class:`QuantizedModel` holds only numpy int64 arrays and Python ints, so the
encrypted-layers code can consume it without JAX; :func:`integer_forward` is
the plain (unencrypted) reference it must reproduce.

Error (documented and tested): for one conv/dense layer with fan-in ``K``,
inputs ``|x| <= x_max`` and real weights ``|w| <= w_max``, the descaled
integer output differs from the float output by at most::

    K * (x_max / (2p) + w_max / (2q) + 1 / (4pq)) + 1 / (2pq)

ReLU is 1-Lipschitz and pooling averages or selects, so the same bound holds
after the first block (conv, ReLU, pooling). See :func:`first_layer_error_bound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from cipherfuse.geometry import im2col
from cipherfuse.nn.config import (
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    ModelConfig,
    PoolSpec,
)
from cipherfuse.nn.errors import QuantizationError
from cipherfuse.nn.model import TrainedModel
from cipherfuse.validation import strict_int

IntArray = npt.NDArray[np.int64]
#: Integer results must stay below this in magnitude (int64 with headroom).
INT_LIMIT = 2**62
#: float64 represents every integer below this exactly, so BLAS can be used.
EXACT_FLOAT_LIMIT = 2**53


@dataclass(frozen=True)
class QuantizedConv:
    """Convolution: ``weight`` int64 ``(*kernel, in_ch, out_ch)`` at scale ``weight_scale``."""

    weight: IntArray
    bias: IntArray
    weight_scale: int
    input_scale: int
    output_scale: int
    stride: tuple[int, ...]
    padding: Literal["SAME", "VALID"]
    activation: Literal["relu", "taylor_sigmoid", "none"]
    kind: Literal["conv"] = "conv"


@dataclass(frozen=True)
class QuantizedDense:
    """Fully connected layer: ``weight`` int64 ``(in, out)`` at scale ``weight_scale``."""

    weight: IntArray
    bias: IntArray
    weight_scale: int
    input_scale: int
    output_scale: int
    activation: Literal["relu", "taylor_sigmoid", "none"]
    kind: Literal["dense"] = "dense"


@dataclass(frozen=True)
class QuantizedPool:
    """Pooling: ``sum`` (average = sum with ``output_scale = input_scale * window``) or ``max``."""

    pool: Literal["sum", "max"]
    window: tuple[int, ...]
    stride: tuple[int, ...]
    input_scale: int
    output_scale: int
    kind: Literal["pool"] = "pool"


@dataclass(frozen=True)
class QuantizedFlatten:
    """Flatten all non-batch axes (scale unchanged)."""

    input_scale: int
    output_scale: int
    kind: Literal["flatten"] = "flatten"


QuantizedLayer = QuantizedConv | QuantizedDense | QuantizedPool | QuantizedFlatten


@dataclass(frozen=True)
class QuantizedModel:
    """The first ``len(layers)`` layers of a model, in integers.

    Attributes:
        input_shape: per-sample input shape (spatial dims + channels).
        input_scale: ``q``; inputs are quantized as ``round(q * x)``.
        weight_scale: ``p``.
        layers: the quantized layers, in order.
        output_scale: scale of the last layer's output (real value = int / scale).
        resume_layer: index in the source config where float execution continues.
        source: the source model's architecture.
    """

    input_shape: tuple[int, ...]
    input_scale: int
    weight_scale: int
    layers: tuple[QuantizedLayer, ...]
    output_scale: int
    resume_layer: int
    source: ModelConfig


def _check_scale(value: int, name: str) -> int:
    scale = strict_int(value, name, minimum=1, numpy=True, error=QuantizationError)
    if scale > 2**31:
        raise QuantizationError(f"{name}={value} is too large (max 2**31): int64 would overflow")
    return scale


def first_block_end(config: ModelConfig) -> int:
    """Index after the first convolution/dense layer and the pooling right after it."""
    for i, spec in enumerate(config.layers):
        if isinstance(spec, ConvSpec | DenseSpec):
            end = i + 1
            if end < len(config.layers) and isinstance(config.layers[end], PoolSpec):
                end += 1
            return end
    raise QuantizationError(f"model {config.name} has no convolution or dense layer to quantize")


def _activation_scale(activation: str, scale: int) -> int:
    return 48 * scale**3 if activation == "taylor_sigmoid" else scale


def quantize_model(
    model: TrainedModel,
    *,
    weight_scale: int,
    input_scale: int,
    n_layers: int | None = None,
) -> QuantizedModel:
    """Quantize the first ``n_layers`` layers (default: the first conv block, as in Case III).

    Raises:
        QuantizationError: a bad scale, a max-pooled model (not computable in
            cipherspace is fine in plaintext, but we refuse nothing here), or an
            ``n_layers`` outside ``1..len(layers)``.
    """
    p = _check_scale(weight_scale, "weight_scale (p)")
    q = _check_scale(input_scale, "input_scale (q)")
    config = model.config
    end = first_block_end(config) if n_layers is None else n_layers
    if not 1 <= end <= len(config.layers):
        raise QuantizationError(f"n_layers must be in 1..{len(config.layers)}, got {n_layers}")
    scale = q
    layers: list[QuantizedLayer] = []
    for i in range(end):
        spec = config.layers[i]
        if isinstance(spec, ConvSpec | DenseSpec):
            p_tree = model.params[f"layer_{i}"]
            w = np.asarray(p_tree["kernel"], np.float64)
            b = np.asarray(p_tree["bias"], np.float64)
            w_int = np.rint(w * p).astype(np.int64)
            b_int = np.rint(b * p * scale).astype(np.int64)
            out_scale = _activation_scale(spec.activation, scale * p)
            if isinstance(spec, ConvSpec):
                layers.append(
                    QuantizedConv(
                        weight=w_int,
                        bias=b_int,
                        weight_scale=p,
                        input_scale=scale,
                        output_scale=out_scale,
                        stride=spec.strides,
                        padding=spec.padding,
                        activation=spec.activation,
                    )
                )
            else:
                layers.append(
                    QuantizedDense(w_int, b_int, p, scale, out_scale, activation=spec.activation)
                )
            scale = out_scale
        elif isinstance(spec, PoolSpec):
            window = int(np.prod(spec.window))
            out_scale = scale * window if spec.pool == "avg" else scale
            pool: Literal["sum", "max"] = "max" if spec.pool == "max" else "sum"
            layers.append(QuantizedPool(pool, spec.window, spec.strides, scale, out_scale))
            scale = out_scale
        elif isinstance(spec, FlattenSpec):
            layers.append(QuantizedFlatten(scale, scale))
        if scale > INT_LIMIT:
            raise QuantizationError(
                f"the propagated scale after layer {i} is {scale} > 2**62: lower p or q, "
                "or quantize fewer layers"
            )
    return QuantizedModel(
        input_shape=config.input_shape,
        input_scale=q,
        weight_scale=p,
        layers=tuple(layers),
        output_scale=scale,
        resume_layer=end,
        source=config,
    )


def quantize_inputs(x: npt.ArrayLike, input_scale: int) -> IntArray:
    """``round(q * x)`` as int64."""
    q = _check_scale(input_scale, "input_scale (q)")
    arr = np.asarray(x, np.float64)
    if not np.all(np.isfinite(arr)):
        raise QuantizationError("inputs contain NaN or infinity")
    if np.max(np.abs(arr), initial=0.0) * q >= INT_LIMIT:
        raise QuantizationError(f"inputs times q={q} overflow int64")
    return np.rint(arr * q).astype(np.int64)


#: Samples per block in :func:`integer_forward`.
FORWARD_CHUNK = 64


def _matmul_exact(a: IntArray, b: IntArray) -> IntArray:
    """Exact ``a @ b`` for int64 matrices: BLAS float64 when provably exact, else int64."""
    bound = float(np.max(np.abs(a), initial=0)) * float(np.abs(b).sum(axis=0).max(initial=0))
    if bound >= INT_LIMIT:
        raise QuantizationError(
            f"integer dot products could reach {bound:.3g} >= 2**62 (int64 overflow): "
            "lower p or q, or quantize fewer layers"
        )
    if bound < EXACT_FLOAT_LIMIT:
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


def _windows(
    x: IntArray, window: tuple[int, ...], stride: tuple[int, ...]
) -> npt.NDArray[np.int64]:
    """Patches ``(n, *out, channels, *window)`` of ``x`` ``(n, *spatial, channels)``."""
    axes = tuple(range(1, 1 + len(window)))
    view = sliding_window_view(x, window, axis=axes)
    index = (slice(None), *(slice(None, None, s) for s in stride))
    return view[index]


def _conv(layer: QuantizedConv, x: IntArray) -> IntArray:
    kernel = layer.weight.shape[:-2]
    patches = im2col(x, kernel, layer.stride, layer.padding)  # (n, *out, K)
    out_shape = patches.shape[:-1]
    flat = cast(IntArray, patches.reshape(-1, patches.shape[-1]))
    w = layer.weight.reshape(-1, layer.weight.shape[-1])
    y = _matmul_exact(flat, w) + layer.bias
    return y.reshape(*out_shape, -1)


def _activate(x: IntArray, activation: str, scale: int) -> IntArray:
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "taylor_sigmoid":
        peak = float(np.max(np.abs(x), initial=0))
        if peak**3 + 24 * float(scale) ** 3 + 12 * float(scale) ** 2 * peak >= INT_LIMIT:
            raise QuantizationError("the integer Taylor sigmoid would overflow int64: lower p or q")
        return 24 * scale**3 + 12 * scale**2 * x - x**3
    return x


def integer_forward(model: QuantizedModel, x_int: IntArray) -> IntArray:
    """Run the quantized layers on integer inputs ``round(q * x)``; exact int64 arithmetic.

    The real-valued result is ``output / model.output_scale``.

    Raises:
        QuantizationError: wrong input shape/dtype, or an intermediate would overflow int64.
    """
    x = np.asarray(x_int)
    if x.dtype != np.int64 or x.shape[1:] != model.input_shape:
        raise QuantizationError(
            f"inputs must be int64 of shape (n, {', '.join(map(str, model.input_shape))}); "
            f"got {x.dtype} {x.shape}. Use quantize_inputs(x, q) first."
        )
    if x.shape[0] > FORWARD_CHUNK:
        # Row blocks keep each block's im2col patches small instead of allocating
        # gigabytes for a large batch: same exact result, 1.3-3.7x faster on 5,000
        # images as measured (bench/bench_models.py, integer-forward-blocks).
        return np.concatenate(
            [
                integer_forward(model, x[i : i + FORWARD_CHUNK])
                for i in range(0, x.shape[0], FORWARD_CHUNK)
            ]
        )
    for layer in model.layers:
        if isinstance(layer, QuantizedConv):
            x = _activate(_conv(layer, x), layer.activation, layer.input_scale * layer.weight_scale)
        elif isinstance(layer, QuantizedDense):
            x = _matmul_exact(x, layer.weight) + layer.bias
            x = _activate(x, layer.activation, layer.input_scale * layer.weight_scale)
        elif isinstance(layer, QuantizedPool):
            patches = _windows(x, layer.window, layer.stride)
            axes = tuple(range(-len(layer.window), 0))
            x = patches.sum(axis=axes) if layer.pool == "sum" else patches.max(axis=axes)
        else:
            x = x.reshape(x.shape[0], -1)
    return np.ascontiguousarray(x, dtype=np.int64)


def first_layer_error_bound(model: QuantizedModel, x_max: float) -> float:
    """The documented bound on ``|descaled integer output - float output|`` of the first block.

    Valid for a first conv/dense layer followed by ReLU/none and average, sum-as-average
    or max pooling (see the module docstring); ``x_max`` bounds the absolute inputs.
    """
    first = model.layers[0]
    if (
        not isinstance(first, QuantizedConv | QuantizedDense)
        or first.activation == "taylor_sigmoid"
    ):
        raise QuantizationError("the bound covers a first conv/dense layer with ReLU or none")
    p, q = model.weight_scale, model.input_scale
    fan_in = int(np.prod(first.weight.shape[:-1]))
    w_max = float(np.max(np.abs(first.weight))) / p + 0.5 / p
    return fan_in * (x_max / (2 * p) + w_max / (2 * q) + 1 / (4 * p * q)) + 1 / (2 * p * q)
