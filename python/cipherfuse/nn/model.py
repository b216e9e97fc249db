"""Flax Linen CNN built from a :class:`~cipherfuse.nn.config.ModelConfig`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from cipherfuse.nn.config import (
    Activation,
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    LayerSpec,
    ModelConfig,
    PoolSpec,
)
from cipherfuse.nn.errors import ModelConfigError
from cipherfuse.nn.initializers import (
    INTEGER_ONLY_COMPILE,
    KernelKeyRecorder,
    exact_bucketing,
    fill_kernels,
    zero_params,
)
from cipherfuse.nn.transfer import to_device

Params = Any  # a Flax parameter pytree (nested dict of arrays)


def taylor_sigmoid(x: jax.Array) -> jax.Array:
    """Degree-3 Taylor expansion of the sigmoid at 0: ``1/2 + x/4 - x^3/48``.

    The paper prints the cubic coefficient as 1/348; the Taylor coefficient is
    ``sigma'''(0)/3! = (-1/8)/6 = -1/48``. We use the correct 1/48.
    """
    return 0.5 + x / 4.0 - x**3 / 48.0


def activate(x: jax.Array, activation: Activation) -> jax.Array:
    """Apply a config activation."""
    if activation == "relu":
        return nn.relu(x)
    if activation == "taylor_sigmoid":
        return taylor_sigmoid(x)
    return x


def _layer_name(i: int) -> str:
    return f"layer_{i}"


class ConfigCNN(nn.Module):
    """The CNN described by ``config``; ``head`` is the softmax output layer (logits returned)."""

    config: ModelConfig
    #: Optional kernel-initializer factory ``(layer name, "kernel") -> initializer``
    #: (default: Flax's LeCun normal); used by :func:`init_params` to record keys.
    kernel_init: Callable[..., Any] | None = None

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        start_layer: int = 0,
        stop_layer: int | None = None,
        features_only: bool = False,
    ) -> jax.Array:
        """Run layers ``start_layer .. stop_layer-1`` on ``x``, the output of ``start_layer-1``.

        Returns the logits; with ``features_only`` the feature vector; with
        ``stop_layer`` the output of layer ``stop_layer - 1``.
        """
        layers = self.config.layers
        stop = len(layers) if stop_layer is None else stop_layer
        if not 0 <= start_layer <= stop <= len(layers):
            raise ModelConfigError(
                f"need 0 <= start_layer <= stop_layer <= {len(layers)}, got {start_layer}, {stop}"
            )
        for i in range(start_layer, stop):
            x = _apply_layer(layers[i], x, _layer_name(i), self._kernel_init(_layer_name(i)))
        if features_only or stop_layer is not None:
            return x
        return nn.Dense(self.config.num_classes, name="head", **self._kernel_init("head"))(x)

    def _kernel_init(self, name: str) -> dict[str, Any]:
        """Keyword arguments giving layer ``name`` its kernel initializer, if one is set."""
        return {} if self.kernel_init is None else {"kernel_init": self.kernel_init(name, "kernel")}


def _apply_layer(spec: LayerSpec, x: jax.Array, name: str, init: dict[str, Any]) -> jax.Array:
    if isinstance(spec, ConvSpec):
        y = nn.Conv(
            spec.features,
            spec.kernel,
            strides=spec.strides,
            padding=spec.padding,
            name=name,
            **init,
        )(x)
        return activate(y, spec.activation)
    if isinstance(spec, PoolSpec):
        pooled: jax.Array
        if spec.pool == "max":
            pooled = nn.max_pool(  # type: ignore[no-untyped-call]
                x, spec.window, strides=spec.strides, padding="VALID"
            )
            return pooled
        pooled = nn.avg_pool(  # type: ignore[no-untyped-call]
            x, spec.window, strides=spec.strides, padding="VALID"
        )
        return pooled * float(np.prod(spec.window)) if spec.pool == "sum" else pooled
    if isinstance(spec, FlattenSpec):
        return x.reshape((x.shape[0], -1))
    if isinstance(spec, DenseSpec):
        return activate(nn.Dense(spec.features, name=name, **init)(x), spec.activation)
    raise ModelConfigError(f"unknown layer spec {spec!r}")


def init_params(config: ModelConfig, key: jax.Array) -> Params:
    """Fresh parameters for ``config`` from PRNG ``key``: Flax's ``init`` values bit for bit.

    The kernels' keys come from a small jitted ``init`` per architecture, their
    LeCun-normal values from draws compiled once per length bucket and shared by
    every architecture (:mod:`cipherfuse.nn.initializers`); biases are zeros. Run
    eagerly, Flax's initialization would compile every layer's operations for each
    new shape; jitted as a whole, its compilation takes seconds per architecture.
    """
    if not exact_bucketing():
        whole: Params = _init_fn(config)(key)
        return whole
    params: Params = fill_kernels(zero_params(_shapes(config)), _kernel_keys_fn(config)(key))
    return params


@functools.cache
def _init_fn(config: ModelConfig) -> Any:
    """The jitted ``init`` of one architecture (used where bucketed draws are not exact)."""
    module = ConfigCNN(config)

    def init(key: jax.Array) -> Params:
        dummy = jnp.zeros((1, *config.input_shape), jnp.float32)
        params: Params = module.init(key, dummy)["params"]
        return params

    return jax.jit(init)


@functools.cache
def _kernel_keys_fn(config: ModelConfig) -> Any:
    """Jitted: the key Flax hands each kernel of ``config`` (integer work only).

    The dummy forward pass and the zero parameters are dead code, and the key
    derivation is integer arithmetic, exact at any optimization level: compiled at
    XLA's lowest backend optimization level, which roughly halves its compile time.
    """

    def keys(key: jax.Array) -> dict[str, jax.Array]:
        recorder = KernelKeyRecorder()
        dummy = jnp.zeros((1, *config.input_shape), jnp.float32)
        ConfigCNN(config, kernel_init=recorder).init(key, dummy)
        return recorder.keys

    return jax.jit(keys, compiler_options=INTEGER_ONLY_COMPILE)


@functools.cache
def _shapes(config: ModelConfig) -> Any:
    """:func:`param_shapes`, traced once per architecture."""
    return param_shapes(config)


def param_shapes(config: ModelConfig) -> Any:
    """The parameter pytree's shapes/dtypes, computed without allocating."""
    dummy = jax.ShapeDtypeStruct(  # type: ignore[no-untyped-call]
        (1, *config.input_shape), jnp.float32
    )
    return jax.eval_shape(lambda x: ConfigCNN(config).init(jax.random.key(0), x)["params"], dummy)


#: Rows per fixed-size batch of the forward passes of :class:`TrainedModel` (the last
#: batch is zero-padded, so one executable serves every input size).
EVAL_BATCH = 500


@dataclass(frozen=True)
class TrainedModel:
    """A contributor's private model: architecture, weights and the labels it was trained on."""

    config: ModelConfig
    params: Params
    labels: tuple[int, ...]

    def logits(self, x: npt.ArrayLike, *, batch_size: int = EVAL_BATCH) -> npt.NDArray[np.float32]:
        """Output-layer logits for a batch of inputs."""
        return _batched(self.config, self.params, np.asarray(x, np.float32), batch_size, False, 0)

    def layer_output(
        self,
        x: npt.ArrayLike,
        *,
        stop_layer: int,
        start_layer: int = 0,
        batch_size: int = EVAL_BATCH,
    ) -> npt.NDArray[np.float32]:
        """Output of layer ``stop_layer - 1`` given the output of layer ``start_layer - 1``."""
        return _batched(
            self.config,
            self.params,
            np.asarray(x, np.float32),
            batch_size,
            True,
            start_layer,
            stop_layer,
        )

    def features(
        self, x: npt.ArrayLike, *, start_layer: int = 0, batch_size: int = EVAL_BATCH
    ) -> npt.NDArray[np.float32]:
        """The feature vector f_i (input of the output layer), from layer ``start_layer`` on."""
        return _batched(
            self.config, self.params, np.asarray(x, np.float32), batch_size, True, start_layer
        )

    def features_async(
        self,
        x: npt.ArrayLike,
        *,
        start_layer: int = 0,
        batch_size: int = EVAL_BATCH,
        private_input: bool = False,
    ) -> Callable[[], npt.NDArray[np.float32]]:
        """:meth:`features`, dispatched to XLA without waiting for it.

        Returns at once a function that waits for and returns the features (the same
        values as :meth:`features` with the same ``batch_size``), so the caller can
        compute something else, e.g. the next block's first layers, meanwhile.

        ``private_input``: ``x`` is a buffer nobody writes to again (e.g. one the
        caller just computed), so XLA may read it in place instead of copying it
        (on CPU when it is 64-byte aligned; otherwise it is copied as usual).
        """
        pending = _dispatch(
            self.config,
            self.params,
            np.asarray(x, np.float32),
            batch_size,
            True,
            start_layer,
            private_input=private_input,
        )
        return lambda: _collect(pending)

    def label_output_weights(self) -> npt.NDArray[np.float32]:
        """The output layer's kernel columns of the model's own labels, ``(feature_dim, |l_i|)``.

        Column ``j`` maps the feature vector ``f_i`` to the logit of label
        ``labels[j]`` (bias excluded); Strategy II fusion starts its block ``W_i`` here.
        """
        kernel = np.asarray(self.params["head"]["kernel"], np.float32)
        return np.ascontiguousarray(kernel[:, list(self.labels)])

    def predict(
        self, x: npt.ArrayLike, *, restrict_to_labels: bool = False
    ) -> npt.NDArray[np.int64]:
        """Predicted class per input; optionally only among the labels the model was trained on."""
        logits = self.logits(x)
        if restrict_to_labels:
            mask = np.full(self.config.num_classes, -np.inf, dtype=np.float32)
            mask[list(self.labels)] = 0.0
            logits = logits + mask
        pred: npt.NDArray[np.int64] = np.argmax(logits, axis=1).astype(np.int64)
        return pred


_APPLY_CACHE: dict[tuple[ModelConfig, bool, int, int | None], Any] = {}


def precompile_forward(
    config: ModelConfig, params: Params, rows: int, *, features_only: bool = False
) -> None:
    """Compile the batched forward pass of :meth:`TrainedModel.logits` (or, with
    ``features_only``, :meth:`TrainedModel.features`) for ``rows`` input rows, without
    running it (``params`` gives the shapes; see :func:`cipherfuse.nn.train.precompile_training`).
    """
    if rows < 1:
        raise ModelConfigError(f"rows must be >= 1, got {rows}")
    x = jax.ShapeDtypeStruct(  # type: ignore[no-untyped-call]
        (min(EVAL_BATCH, rows), *config.input_shape), jnp.float32
    )
    _apply_fn(config, features_only, 0, None).lower(params, x).compile()


def _apply_fn(
    config: ModelConfig, features_only: bool, start_layer: int, stop_layer: int | None
) -> Any:
    key = (config, features_only, start_layer, stop_layer)
    if key not in _APPLY_CACHE:
        module = ConfigCNN(config)

        def run(params: Params, x: jax.Array) -> jax.Array:
            out: jax.Array = module.apply(
                {"params": params},
                x,
                start_layer=start_layer,
                stop_layer=stop_layer,
                features_only=features_only,
            )  # type: ignore[assignment]
            return out

        _APPLY_CACHE[key] = jax.jit(run)
    return _APPLY_CACHE[key]


def _batched(
    config: ModelConfig,
    params: Params,
    x: npt.NDArray[np.float32],
    batch_size: int,
    features_only: bool,
    start_layer: int,
    stop_layer: int | None = None,
) -> npt.NDArray[np.float32]:
    """Apply in fixed-size batches (the last one zero-padded) so jit compiles once."""
    return _collect(
        _dispatch(config, params, x, batch_size, features_only, start_layer, stop_layer)
    )


def _dispatch(
    config: ModelConfig,
    params: Params,
    x: npt.NDArray[np.float32],
    batch_size: int,
    features_only: bool,
    start_layer: int,
    stop_layer: int | None = None,
    *,
    private_input: bool = False,
) -> list[tuple[jax.Array, int]]:
    """Start every fixed-size batch on XLA (asynchronous); (output, valid rows) each.

    ``private_input``: ``x`` is never written again, so ``jax.device_put`` may
    alias it (no copy); otherwise :func:`~cipherfuse.nn.transfer.to_device` copies each
    batch (and compiles nothing, unlike ``jnp.asarray``).
    """
    put = jax.device_put if private_input else to_device
    fn = _apply_fn(config, features_only, start_layer, stop_layer)
    n = x.shape[0]
    if n == 0:
        raise ModelConfigError("cannot run a model on an empty batch")
    size = min(batch_size, n)
    pending = []
    for start in range(0, n, size):
        chunk = x[start : start + size]
        pad = size - chunk.shape[0]
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        pending.append((fn(params, put(chunk)), size - pad))
    return pending


def _collect(pending: list[tuple[jax.Array, int]]) -> npt.NDArray[np.float32]:
    """Wait for dispatched batches and concatenate their valid rows."""
    return np.concatenate([np.asarray(out)[:valid] for out, valid in pending]).astype(np.float32)
