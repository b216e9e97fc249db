"""How a quantized classifier and public integer images map into the ring Z_2^64.

The three-party computation evaluates exactly the integers of
:func:`cipherfuse.nn.quantize.integer_forward`: a real value ``t`` of a tensor at
propagated scale ``s`` (``q`` for the inputs, ``q * p`` after the first linear layer,
``q * p**2`` after the second, ...; see :mod:`cipherfuse.nn.quantize`) is the integer
``round(s * t)``, and the integer ``v`` is the ring element ``v mod 2^64`` (two's
complement, :func:`to_ring`). No truncation is needed while every intermediate stays
below ``2^62`` in magnitude (``integer_forward`` itself refuses larger ones), so the ring
computation is exact and the opened count equals the plaintext integer count.

:func:`quantize_classifier` quantizes a whole :class:`~cipherfuse.nn.model.TrainedModel`
(every layer of its config and the softmax output layer, whose logits the argmax
reads) and :func:`dequantize_classifier` maps the integers back to such a model;
:func:`plaintext_count` is the reference the secure count must equal;
:func:`required_sign_bits` measures how many low bits the secure comparisons need.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import numpy.typing as npt
from flax import serialization

from cipherfuse.mpc.errors import EncodingError
from cipherfuse.mpc.plan import evaluation_plan, plaintext_argmax, plaintext_plan_logits
from cipherfuse.mpc.sharing import model_layout
from cipherfuse.nn.config import DenseSpec
from cipherfuse.nn.errors import QuantizationError
from cipherfuse.nn.model import TrainedModel, param_shapes
from cipherfuse.nn.quantize import (
    INT_LIMIT,
    IntArray,
    QuantizedConv,
    QuantizedDense,
    QuantizedFlatten,
    QuantizedModel,
    QuantizedPool,
    integer_forward,
    quantize_model,
)

U64Array = npt.NDArray[np.uint64]

#: The sign of a value ``v`` with ``-2^63 <= v < 2^63`` is bit 63 of ``v mod 2^64``.
FULL_SIGN_BIT = 63


def to_ring(values: npt.ArrayLike) -> U64Array:
    """Signed integers (int64) as ring elements: ``v mod 2^64`` (a zero-copy reinterpretation)."""
    arr = np.ascontiguousarray(values)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype != np.int64:
        raise EncodingError(f"ring values must be int64 or uint64, got {arr.dtype}")
    return arr.view(np.uint64)


def from_ring(words: npt.ArrayLike) -> IntArray:
    """Ring elements as signed integers in ``[-2^63, 2^63)`` (two's complement)."""
    arr = np.ascontiguousarray(words)
    if arr.dtype != np.uint64:
        raise EncodingError(f"ring words must be uint64, got {arr.dtype}")
    return arr.view(np.int64)


def quantize_classifier(
    model: TrainedModel, *, weight_scale: int, input_scale: int
) -> QuantizedModel:
    """Quantize every layer of ``model`` and its output layer: the whole classifier.

    The result's :func:`~cipherfuse.nn.quantize.integer_forward` returns the integer
    logits (scale ``model.output_scale``), whose argmax is the prediction. The output
    layer is appended as a :class:`QuantizedDense` with no activation, so the
    returned model's ``source`` config gains a ``DenseSpec(num_classes, "none")``.
    """
    config = model.config
    features = quantize_model(
        model,
        weight_scale=weight_scale,
        input_scale=input_scale,
        n_layers=len(config.layers),
    )
    p, scale = features.weight_scale, features.output_scale
    head = model.params["head"]
    w = np.asarray(head["kernel"], np.float64)
    b = np.asarray(head["bias"], np.float64)
    out_scale = scale * p
    if out_scale > INT_LIMIT:
        raise EncodingError(f"the output layer's scale {out_scale} exceeds 2**62: lower p or q")
    dense = QuantizedDense(
        weight=np.rint(w * p).astype(np.int64),
        bias=np.rint(b * p * scale).astype(np.int64),
        weight_scale=p,
        input_scale=scale,
        output_scale=out_scale,
        activation="none",
    )
    source = dataclasses.replace(
        config, layers=(*config.layers, DenseSpec(config.num_classes, "none"))
    )
    return dataclasses.replace(
        features,
        layers=(*features.layers, dense),
        output_scale=out_scale,
        resume_layer=len(source.layers),
        source=source,
    )


def dequantize_classifier(model: QuantizedModel, labels: tuple[int, ...]) -> TrainedModel:
    """The float32 model whose weights are ``model``'s integers over their scales.

    The inverse of :func:`quantize_classifier` up to float32 rounding: a weight ``w`` at
    scale ``p`` becomes ``w / p`` (exact, and quantized back to ``w``, while ``|w| < 2^24``),
    a bias ``b`` of a layer with input scale ``s`` becomes ``b / (p s)``. ``model`` must be
    a whole classifier (its ``source`` ends in the appended output layer) whose layers are
    exactly what its source config quantizes to (:func:`check_dequantizable`).

    Raises:
        EncodingError: the layers and the source config disagree.
    """
    check_dequantizable(model)
    config = dataclasses.replace(model.source, layers=model.source.layers[:-1])
    tree: dict[str, dict[str, npt.NDArray[np.float32]]] = {}
    head = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        if isinstance(layer, QuantizedConv | QuantizedDense):
            p = float(layer.weight_scale)
            tree["head" if i == head else f"layer_{i}"] = {
                "kernel": (np.asarray(layer.weight, np.float64) / p).astype(np.float32),
                "bias": (np.asarray(layer.bias, np.float64) / (p * layer.input_scale)).astype(
                    np.float32
                ),
            }
    params = serialization.from_state_dict(param_shapes(config), tree)
    params = jax.tree_util.tree_map(jax.numpy.asarray, params)
    return TrainedModel(config=config, params=params, labels=tuple(labels))


def check_dequantizable(model: QuantizedModel) -> None:
    """Check that ``model``'s layers are what its source config quantizes to.

    A layout is untrusted: its ``source`` config (the float architecture) could say one
    thing and its integer layers, which the committee evaluates, another. This quantizes a
    zero-weight model of the source architecture with ``model``'s scales and compares the
    two layouts field by field (shapes, strides, padding, activations, pooling, scales).

    Raises:
        EncodingError: they differ, or the source does not end in the output layer.
    """
    source = model.source
    last = source.layers[-1] if source.layers else None
    if last != DenseSpec(source.num_classes, "none") or len(source.layers) != len(model.layers):
        raise EncodingError("the layout's source config is not the classifier of its layers")
    config = dataclasses.replace(source, layers=source.layers[:-1])
    zeros = jax.tree_util.tree_map(
        lambda leaf: np.zeros(leaf.shape, np.float32), param_shapes(config)
    )
    try:
        again = quantize_classifier(
            TrainedModel(config, zeros, (0,)),
            weight_scale=model.weight_scale,
            input_scale=model.input_scale,
        )
    except (EncodingError, QuantizationError) as exc:
        raise EncodingError(f"the layout's source config does not quantize: {exc}") from exc
    if model_layout(again) != model_layout(model):
        raise EncodingError("the layout's layers are not what its source config quantizes to")


def check_classifier(model: QuantizedModel) -> int:
    """Validate that ``model`` ends in logits the secure argmax can read; returns the class count.

    Raises:
        EncodingError: the last layer is not a dense layer without activation, or a
            layer kind the protocol does not evaluate.
    """
    if not model.layers:
        raise EncodingError("the model has no layers")
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, QuantizedConv | QuantizedDense | QuantizedPool | QuantizedFlatten):
            raise EncodingError(f"layer {i} ({type(layer).__name__}) is not supported")
        if isinstance(layer, QuantizedConv) and len(layer.weight.shape) not in (3, 4):
            raise EncodingError(f"layer {i}: only 1-D and 2-D convolutions are supported")
    last = model.layers[-1]
    if not isinstance(last, QuantizedDense) or last.activation != "none":
        raise EncodingError(
            "the last layer must be the output layer (dense, no activation): "
            "use quantize_classifier"
        )
    return int(last.weight.shape[1])


def predictions(model: QuantizedModel, images: IntArray) -> IntArray:
    """Plaintext predictions: ``argmax`` (first maximum) of the integer logits."""
    check_classifier(model)
    logits = integer_forward(model, images)
    pred: IntArray = np.argmax(logits, axis=1).astype(np.int64)
    return pred


def plaintext_count(model: QuantizedModel, images: IntArray, labels: npt.ArrayLike) -> int:
    """The reference for the secure count: correct predictions of the integer forward."""
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if lab.shape[0] != images.shape[0]:
        raise EncodingError(f"{images.shape[0]} images but {lab.shape[0]} labels")
    return int(np.count_nonzero(predictions(model, images) == lab))


def required_sign_bits(model: QuantizedModel, images: IntArray) -> int:
    """The smallest ``k`` with every compared value ``v`` of this evaluation in ``[-2^k, 2^k)``.

    The secure sign test reads bit ``k`` of ``v mod 2^64``, computed from the ``k + 1``
    low bits of the shares; it is exact for values in that range. ``k = 63`` (the
    default of the protocol) is exact for every int64 value. This measures ``k`` for a
    given model and input set in plaintext (who may run it: the contributor, or anyone
    for a public bound); choosing a smaller ``k`` is a public parameter of the task.
    """
    check_classifier(model)
    peak = 0

    def record(values: IntArray) -> None:
        nonlocal peak
        if values.size:
            peak = max(peak, int(np.max(values)), int(-np.min(values)) - 1)

    logits = plaintext_plan_logits(evaluation_plan(model), images, on_compare=record)
    plaintext_argmax(logits, on_compare=record)
    return max(1, peak.bit_length())
