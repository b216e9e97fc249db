"""The secure forward pass and count: one party's side of the evaluation plan.

:func:`secure_hits` runs :func:`cipherfuse.mpc.plan.evaluation_plan` on public images
with secret parameters: the first linear layer (public images x secret weights) is
local, later linear layers are one resharing round each, ReLU / max pooling / argmax
are sign tests (:mod:`cipherfuse.mpc.boolean`), sum pooling and flatten are local.
Costs are charged to one phase per plan step (``"3:relu"``, ...), see
:class:`cipherfuse.mpc.party.CostMeter`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cipherfuse.mpc.arith import (
    public_conv,
    public_dense,
    secret_conv,
    secret_dense,
    taylor_sigmoid,
)
from cipherfuse.mpc.boolean import DEFAULT_SIGN_BIT, argmax_hits, maximum, relu
from cipherfuse.mpc.errors import EncodingError
from cipherfuse.mpc.party import Party
from cipherfuse.mpc.plan import (
    STEP_SOURCE,
    Relu,
    TaylorSigmoid,
    evaluation_plan,
    pool_windows,
    tournament,
)
from cipherfuse.mpc.shares import RSS
from cipherfuse.mpc.sharing import parameter_shapes
from cipherfuse.nn.quantize import (
    IntArray,
    QuantizedConv,
    QuantizedDense,
    QuantizedFlatten,
    QuantizedModel,
    QuantizedPool,
    integer_forward,
)

U64Array = npt.NDArray[np.uint64]


def _concat(parts: list[RSS]) -> RSS:
    return RSS(
        np.concatenate([p.first.reshape(-1) for p in parts]),
        np.concatenate([p.second.reshape(-1) for p in parts]),
    )


def _split(x: RSS, count: int, shape: tuple[int, ...]) -> list[RSS]:
    size = int(np.prod(shape))
    return [
        RSS(
            x.first[t * size : (t + 1) * size].reshape(shape),
            x.second[t * size : (t + 1) * size].reshape(shape),
        )
        for t in range(count)
    ]


def _secure_max_pool(party: Party, x: RSS, layer: QuantizedPool, bit: int) -> RSS:
    firsts = pool_windows(x.first, layer)
    seconds = pool_windows(x.second, layer)
    members = [RSS(f, s) for f, s in zip(firsts, seconds, strict=True)]
    shape = members[0].shape

    def level(lefts: list[RSS], rights: list[RSS]) -> list[RSS]:
        best = maximum(party, _concat(lefts), _concat(rights), bit)
        return _split(best, len(lefts), shape)

    return tournament(members, level)


def _sum_pool(x: RSS | IntArray, layer: QuantizedPool) -> RSS | IntArray:
    if isinstance(x, RSS):
        with np.errstate(over="ignore"):
            first = np.sum(pool_windows(x.first, layer), axis=0, dtype=np.uint64)
            second = np.sum(pool_windows(x.second, layer), axis=0, dtype=np.uint64)
        return RSS(np.ascontiguousarray(first), np.ascontiguousarray(second))
    pooled: IntArray = np.sum(pool_windows(x, layer), axis=0, dtype=np.int64)
    return pooled


def secure_logits(
    party: Party,
    skeleton: QuantizedModel,
    params: dict[str, RSS],
    images: IntArray,
    *,
    sign_bit: int = DEFAULT_SIGN_BIT,
) -> RSS:
    """Shares of the integer logits of ``images`` (exactly those of ``integer_forward``)."""
    names = [name for name, _ in parameter_shapes(skeleton)]
    linear_index = 0
    x: RSS | IntArray = np.ascontiguousarray(images, dtype=np.int64)
    if x.shape[1:] != skeleton.input_shape:
        raise EncodingError(
            f"images of shape {x.shape[1:]}, the model takes {skeleton.input_shape}"
        )
    for t, step in enumerate(evaluation_plan(skeleton)):
        kind = type(step).__name__.removeprefix("Quantized").lower()
        if isinstance(step, QuantizedPool):
            kind = f"{step.pool}pool"
        with party.phase(f"{t}:{kind}"):
            if isinstance(step, QuantizedConv | QuantizedDense):
                w = params[names[2 * linear_index]]
                b = params[names[2 * linear_index + 1]]
                linear_index += 1
                if isinstance(step, QuantizedConv):
                    x = (
                        secret_conv(party, x, w, b, step)
                        if isinstance(x, RSS)
                        else public_conv(x, w, b, step)
                    )
                else:
                    x = (
                        secret_dense(party, x, w, b)
                        if isinstance(x, RSS)
                        else public_dense(x, w, b)
                    )
            elif isinstance(step, QuantizedPool):
                if step.pool == "sum":
                    x = _sum_pool(x, step)
                elif isinstance(x, RSS):
                    x = _secure_max_pool(party, x, step, sign_bit)
                else:
                    x = _public_step(step, x)
            elif isinstance(step, QuantizedFlatten):
                x = x.reshape(x.shape[0], -1)
            elif isinstance(step, Relu):
                x = relu(party, x, sign_bit) if isinstance(x, RSS) else np.maximum(x, 0)
            elif isinstance(step, TaylorSigmoid):
                if not isinstance(x, RSS):
                    raise EncodingError("an activation before the first linear layer")
                x = taylor_sigmoid(party, x, step.scale)
    if not isinstance(x, RSS):
        raise EncodingError("the model has no secret layer")
    return x


def _public_step(step: QuantizedPool, x: IntArray) -> IntArray:
    model = QuantizedModel(x.shape[1:], 1, 1, (step,), 1, 1, STEP_SOURCE)
    return integer_forward(model, x)


def secure_hits(
    party: Party,
    skeleton: QuantizedModel,
    params: dict[str, RSS],
    images: IntArray,
    labels: npt.ArrayLike,
    *,
    sign_bit: int = DEFAULT_SIGN_BIT,
) -> RSS:
    """Shares of ``[prediction == label]`` per image (nothing opened)."""
    logits = secure_logits(party, skeleton, params, images, sign_bit=sign_bit)
    with party.phase("argmax"):
        return argmax_hits(party, logits, labels, sign_bit)
