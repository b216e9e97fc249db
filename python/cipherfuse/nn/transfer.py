"""Host arrays onto the device without compiling anything.

``jnp.asarray(numpy_array)`` runs a small jitted program per shape and dtype (JAX's
``stage``), so a run that moves arrays of many shapes (parameter trees, batches, fusion
features) compiles (or loads from the persistent cache) one executable for each, and
each such transfer waits for the computations queued before it. :func:`to_device` gives
the same array (same values, dtype canonicalized the same way, not weakly typed)
through ``jax.device_put``, which compiles nothing.
"""

from __future__ import annotations

import jax
import numpy as np
import numpy.typing as npt


def to_device(array: npt.ArrayLike) -> jax.Array:
    """``jnp.asarray(array)`` for a host array, placed by ``jax.device_put``.

    The array is copied first: on the CPU the device array may share the host buffer,
    and the caller's array (often a view of a larger one) stays free to change.
    """
    placed: jax.Array = jax.device_put(np.array(array, copy=True))
    return placed
