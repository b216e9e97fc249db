"""The evaluation plan: a quantized classifier as the sequence of steps the parties run.

The plan is :attr:`QuantizedModel.layers` with activations split off into their own
steps and one exact rewrite: a ReLU followed by max pooling is moved after the pooling
(``maxpool(relu(x)) == relu(maxpool(x))`` for integers), so the sign tests of the ReLU
run on the pooled tensor (a quarter of the size for 2x2 pooling). The comparison order
(:func:`tournament`) is part of the plan, so :func:`plaintext_plan_logits` and the secure
evaluation compare the same values; :func:`plaintext_argmax` breaks ties exactly as
``numpy.argmax`` does (the first maximum).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cipherfuse.mpc.errors import EncodingError
from cipherfuse.nn.config import DenseSpec, ModelConfig
from cipherfuse.nn.quantize import (
    IntArray,
    QuantizedConv,
    QuantizedDense,
    QuantizedFlatten,
    QuantizedLayer,
    QuantizedModel,
    QuantizedPool,
    integer_forward,
)


@dataclass(frozen=True)
class Relu:
    """``max(x, 0)`` element-wise (one sign test per element)."""


@dataclass(frozen=True)
class TaylorSigmoid:
    """``24 s^3 + 12 s^2 x - x^3`` (the quantized degree-3 sigmoid; two multiplications)."""

    scale: int


Step = QuantizedConv | QuantizedDense | QuantizedPool | QuantizedFlatten | Relu | TaylorSigmoid
T = TypeVar("T")


def evaluation_plan(model: QuantizedModel) -> tuple[Step, ...]:
    """The steps of ``model``: linear layers without activation, activations as own steps."""
    steps: list[Step] = []
    layers: Sequence[QuantizedLayer] = model.layers
    pending_relu = False
    for i, layer in enumerate(layers):
        if isinstance(layer, QuantizedConv | QuantizedDense):
            if pending_relu:
                steps.append(Relu())
                pending_relu = False
            steps.append(dataclasses.replace(layer, activation="none"))
            if layer.activation == "relu":
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                if isinstance(nxt, QuantizedPool) and nxt.pool == "max":
                    pending_relu = True
                else:
                    steps.append(Relu())
            elif layer.activation == "taylor_sigmoid":
                steps.append(TaylorSigmoid(layer.input_scale * layer.weight_scale))
            elif layer.activation != "none":
                raise EncodingError(f"layer {i}: unknown activation {layer.activation!r}")
        elif isinstance(layer, QuantizedPool):
            steps.append(layer)
            if pending_relu:
                # max pooling commutes with ReLU; a second max pool keeps commuting.
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                if not (isinstance(nxt, QuantizedPool) and nxt.pool == "max"):
                    steps.append(Relu())
                    pending_relu = False
        elif isinstance(layer, QuantizedFlatten):
            if pending_relu:
                steps.append(Relu())
                pending_relu = False
            steps.append(layer)
        else:
            raise EncodingError(f"layer {i} ({type(layer).__name__}) is not supported")
    if pending_relu:
        steps.append(Relu())
    return tuple(steps)


def tournament(candidates: list[T], combine: Callable[[list[T], list[T]], list[T]]) -> T:
    """Reduce ``candidates`` pairwise, level by level: ``(0,1), (2,3), ...``; an odd last waits.

    ``combine(lefts, rights)`` handles one whole level at once (one batch of sign tests)
    and returns the winners in order; the left operand always holds the lower indices.
    """
    if not candidates:
        raise ValueError("tournament of nothing")
    level = list(candidates)
    while len(level) > 1:
        half = len(level) // 2
        winners = combine(level[0 : 2 * half : 2], level[1 : 2 * half : 2])
        level = winners + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def pool_windows(x: IntArray | np.ndarray, layer: QuantizedPool) -> list[np.ndarray]:
    """The window members of pooling ``layer`` on ``x`` ``(n, *spatial, ch)``, one array each.

    Member ``j`` (row-major over the window) has the pooled output's shape.
    """
    axes = tuple(range(1, 1 + len(layer.window)))
    view = sliding_window_view(x, layer.window, axis=axes)
    view = view[(slice(None), *(slice(None, None, s) for s in layer.stride))]
    flat = view.reshape(*view.shape[: -len(layer.window)], -1)
    return [np.ascontiguousarray(flat[..., j]) for j in range(flat.shape[-1])]


def plaintext_plan_logits(
    plan: Sequence[Step],
    images: IntArray,
    *,
    on_compare: Callable[[IntArray], None] | None = None,
) -> IntArray:
    """Run ``plan`` in plain int64, calling ``on_compare`` with every batch of sign-tested values.

    Equals :func:`~cipherfuse.nn.quantize.integer_forward` of the source model (tested).
    """
    record = on_compare if on_compare is not None else (lambda _v: None)
    x = np.asarray(images, dtype=np.int64)
    for step in plan:
        if isinstance(step, Relu):
            record(x)
            x = np.maximum(x, 0)
        elif isinstance(step, TaylorSigmoid):
            s = step.scale
            x = 24 * s**3 + 12 * s**2 * x - x**3
        elif isinstance(step, QuantizedPool) and step.pool == "max":

            def level(lefts: list[IntArray], rights: list[IntArray]) -> list[IntArray]:
                diff = np.stack(lefts) - np.stack(rights)
                record(diff)
                return list(np.maximum(np.stack(lefts), np.stack(rights)))

            x = tournament(pool_windows(x, step), level)
        else:
            model = QuantizedModel(
                input_shape=x.shape[1:],
                input_scale=1,
                weight_scale=1,
                layers=(step,),
                output_scale=1,
                resume_layer=1,
                source=STEP_SOURCE,
            )
            x = integer_forward(model, np.ascontiguousarray(x))
    return x


def plaintext_argmax(
    logits: IntArray, *, on_compare: Callable[[IntArray], None] | None = None
) -> IntArray:
    """``argmax`` over the last axis by the secure tournament (first maximum wins ties)."""
    record = on_compare if on_compare is not None else (lambda _v: None)
    n, classes = logits.shape
    cands = [(logits[:, j], np.full(n, j, dtype=np.int64)) for j in range(classes)]

    def level(
        lefts: list[tuple[IntArray, IntArray]], rights: list[tuple[IntArray, IntArray]]
    ) -> list[tuple[IntArray, IntArray]]:
        out = []
        diffs = [a[0] - b[0] for a, b in zip(lefts, rights, strict=True)]
        record(np.stack(diffs))
        for (va, ia), (vb, ib), d in zip(lefts, rights, diffs, strict=True):
            right_wins = d < 0
            out.append((np.where(right_wins, vb, va), np.where(right_wins, ib, ia)))
        return out

    return tournament(cands, level)[1]


#: ``integer_forward`` never reads ``source``; one-step models carry this placeholder.
STEP_SOURCE = ModelConfig("mpc-step", (1,), (DenseSpec(1),))
