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
from numpy.lib.stride_tricks import sliding_window_view

from cipherfuse.mpc.arith import (
    public_conv,
    public_dense,
    secret_conv,
    secret_dense,
    taylor_sigmoid,
)
from cipherfuse.mpc.boolean import DEFAULT_SIGN_BIT, SignMethod, argmax_hits, maximum, relu
from cipherfuse.mpc.errors import EncodingError
from cipherfuse.mpc.linear import LinearKernel
from cipherfuse.mpc.party import Party
from cipherfuse.mpc.plan import (
    STEP_SOURCE,
    Relu,
    TaylorSigmoid,
    evaluation_plan,
    pool_windows,
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


def _stacked_windows(x: U64Array, layer: QuantizedPool) -> U64Array:
    """The window members of ``layer`` on ``x`` stacked on a new leading axis (one copy).

    Member ``j`` (row-major over the window) is ``pool_windows(x, layer)[j]``.
    """
    nd = len(layer.window)
    axes = tuple(range(1, 1 + nd))
    view = sliding_window_view(x, layer.window, axis=axes)
    view = view[(slice(None), *(slice(None, None, s) for s in layer.stride))]
    front = np.moveaxis(view, tuple(range(-nd, 0)), tuple(range(nd)))
    stacked: U64Array = np.ascontiguousarray(front).reshape(-1, *front.shape[nd:])
    return stacked


def _secure_max_pool(
    party: Party, x: RSS, layer: QuantizedPool, bit: int, method: SignMethod
) -> RSS:
    """Max pooling in :func:`~cipherfuse.mpc.plan.tournament`'s comparison order.

    The members live on one leading axis; a level compares the even members with the
    odd ones through strided views (the operands are never gathered): exactly the
    concatenated pairs ``(0, 1), (2, 3), ...`` of the tournament, in the same order.
    """
    first = _stacked_windows(x.first, layer)
    second = _stacked_windows(x.second, layer)
    while first.shape[0] > 1:
        m = first.shape[0]
        h = m // 2
        best = maximum(
            party,
            RSS(first[0 : 2 * h : 2], second[0 : 2 * h : 2]),
            RSS(first[1 : 2 * h : 2], second[1 : 2 * h : 2]),
            bit,
            method=method,
        )
        if m % 2:  # the odd last member waits for the next level
            first = np.concatenate([best.first, first[m - 1 : m]])
            second = np.concatenate([best.second, second[m - 1 : m]])
        else:
            first, second = best.first, best.second
    return RSS(first[0], second[0])


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
    sign_method: SignMethod = "two_addends",
    linear_kernel: LinearKernel = "gemm",
) -> RSS:
    """Shares of the integer logits of ``images`` (exactly those of ``integer_forward``).

    ``sign_method`` (:data:`cipherfuse.mpc.boolean.SIGN_METHODS`) and ``linear_kernel``
    (:data:`cipherfuse.mpc.linear.LINEAR_KERNELS`) choose among implementations with the
    same result; the defaults are the fastest measured, the others the earlier ones.
    """
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
                        secret_conv(party, x, w, b, step, kernel=linear_kernel)
                        if isinstance(x, RSS)
                        else public_conv(x, w, b, step, kernel=linear_kernel)
                    )
                else:
                    x = (
                        secret_dense(party, x, w, b, kernel=linear_kernel)
                        if isinstance(x, RSS)
                        else public_dense(x, w, b, kernel=linear_kernel)
                    )
            elif isinstance(step, QuantizedPool):
                if step.pool == "sum":
                    x = _sum_pool(x, step)
                elif isinstance(x, RSS):
                    x = _secure_max_pool(party, x, step, sign_bit, sign_method)
                else:
                    x = _public_step(step, x)
            elif isinstance(step, QuantizedFlatten):
                x = x.reshape(x.shape[0], -1)
            elif isinstance(step, Relu):
                x = (
                    relu(party, x, sign_bit, method=sign_method)
                    if isinstance(x, RSS)
                    else np.maximum(x, 0)
                )
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
    sign_method: SignMethod = "two_addends",
    linear_kernel: LinearKernel = "gemm",
) -> RSS:
    """Shares of ``[prediction == label]`` per image (nothing opened; options as
    :func:`secure_logits`)."""
    logits = secure_logits(
        party,
        skeleton,
        params,
        images,
        sign_bit=sign_bit,
        sign_method=sign_method,
        linear_kernel=linear_kernel,
    )
    with party.phase("argmax"):
        return argmax_hits(party, logits, labels, sign_bit, method=sign_method)
