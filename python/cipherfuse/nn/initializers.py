"""Flax's LeCun-normal initialization, bit for bit, without one XLA compilation per shape.

Flax draws each kernel as ``truncated_normal(key, -2, 2, shape) * stddev`` with
``stddev = sqrt(1 / fan_in) / 0.8796...`` (``jax.nn.initializers.lecun_normal``).
Jitted as a whole, a model's initialization is one large XLA program whose
compilation takes seconds per architecture (the threefry hash and the inverse
error function of every kernel, each for its own shape); run eagerly, every
operation compiles once per shape.

Here the work is split so that almost nothing depends on the architecture:

* :class:`KernelKeyRecorder` is passed to a module as its kernel initializer
  factory; run under ``jax.jit``, the module's ``init`` then returns the PRNG key
  Flax derives for each kernel (cheap to compile: the kernels' random draws and
  the dummy forward pass are dead code);
* :func:`lecun_normal` draws ``truncated_normal`` for a 1-D length rounded up to a
  power of two (one compiled function per length bucket, shared by every
  architecture) and keeps the first ``prod(shape)`` values.

This is exact because JAX's partitionable threefry (the default,
``jax_threefry_partitionable``) hashes each element's flat index, so element ``i``
of a draw does not depend on the array's length or shape, and the truncated
normal is element-wise after the random bits; the ``stddev`` scaling is the
same float32 multiplication Flax performs. Tests compare the result with Flax's
own ``init`` bit for bit. Where the threefry mode differs, :func:`exact_bucketing`
is false and callers use Flax's initializer instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from cipherfuse.nn.transfer import to_device

#: The smallest draw length: every kernel of up to 2^19 values (all of the paper's
#: models but the widest dense layers) shares one compiled draw (about 15 ms a draw).
MIN_BUCKET = 1 << 19
#: XLA options for functions without floating-point arithmetic (key derivation, zero
#: fills: exact at any optimization level): the lowest backend optimization level
#: compiles them about twice as fast.
INTEGER_ONLY_COMPILE = {"xla_backend_optimization_level": 0}
#: Standard deviation of a standard normal truncated to (-2, 2) (the constant of JAX's
#: ``variance_scaling``).
_TRUNCATED_STD = 0.87962566103423978

Initializer = Callable[..., jax.Array]


def exact_bucketing() -> bool:
    """Whether a draw's elements are independent of its length (partitionable threefry)."""
    return bool(getattr(jax.config, "jax_threefry_partitionable", False))


class KernelKeyRecorder:
    """A kernel-initializer factory that records the PRNG key Flax gives each kernel.

    ``recorder(*path)`` is an initializer returning zeros for the parameter at
    ``path`` in the parameter tree (e.g. ``("layer_0", "kernel")``); after the
    module's ``init`` ran, ``keys["/".join(path)]`` holds the key it was called
    with (a tracer under ``jax.jit``: return ``keys`` from the jitted function).
    """

    def __init__(self) -> None:
        self.keys: dict[str, jax.Array] = {}

    def __call__(self, *path: str) -> Initializer:
        """The initializer of the kernel at ``path``."""

        def record(key: jax.Array, shape: Any, dtype: Any = jnp.float32) -> jax.Array:
            self.keys["/".join(path)] = key
            return jnp.zeros(shape, dtype)

        return record


def bucket(size: int) -> int:
    """The draw length serving ``size`` values: the next power of two, at least MIN_BUCKET."""
    return max(MIN_BUCKET, 1 << max(0, size - 1).bit_length())


@functools.cache
def _truncated_normal_fn(length: int) -> Any:
    """Jitted ``truncated_normal(key, -2, 2, (length,))`` (one compilation per length)."""

    def draw(key: jax.Array) -> jax.Array:
        return jax.random.truncated_normal(key, -2, 2, (length,), jnp.float32)

    return jax.jit(draw)


def lecun_normal(key: jax.Array, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """``jax.nn.initializers.lecun_normal()(key, shape)`` (float32), bit for bit.

    ``shape`` has at least 2 axes (in_axis -2, out_axis -1, receptive field the rest).
    """
    if len(shape) < 2:
        raise ValueError(f"lecun_normal needs a kernel shape with >= 2 axes, got {shape}")
    size = int(np.prod(shape))
    fan_in = int(np.prod(shape[:-1]))
    variance = np.float32(1.0 / fan_in)
    stddev = np.sqrt(variance) / np.float32(_TRUNCATED_STD)
    draw = np.asarray(_truncated_normal_fn(bucket(size))(key))[:size].reshape(shape)
    out: npt.NDArray[np.float32] = draw * np.float32(stddev)
    return out


def zero_params(shapes: Any) -> Any:
    """Zeros (device arrays, no compilation) for a pytree of ``jax.ShapeDtypeStruct``."""
    return jax.tree_util.tree_map(lambda leaf: to_device(np.zeros(leaf.shape, leaf.dtype)), shapes)


def fill_kernels(params: Any, keys: dict[str, jax.Array]) -> Any:
    """``params`` (nested dicts) with the leaf at each ``keys`` path drawn by :func:`lecun_normal`.

    A path is ``"/"``-joined (:class:`KernelKeyRecorder`); the other leaves are kept.
    """

    def replace(node: Any, path: list[str], key: jax.Array) -> Any:
        out = {str(k): v for k, v in node.items()}
        head = path[0]
        if len(path) == 1:
            out[head] = to_device(lecun_normal(key, tuple(out[head].shape)))
        else:
            out[head] = replace(out[head], path[1:], key)
        return out

    for joined, key in keys.items():
        params = replace(params, joined.split("/"), key)
    return params
