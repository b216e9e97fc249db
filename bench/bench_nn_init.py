"""Cold model initialization: one jitted Flax ``init`` per architecture vs bucketed draws.

``pytest bench/bench_nn_init.py``. Each round starts from empty in-process JAX
caches with the persistent compilation cache off (so every compilation is
counted, as in a first ``cipherfuse demo``) and initializes the three Case I
contributors' architectures (the demo's), from the same key:

* baseline: Flax's ``init`` jitted as a whole, one XLA program per architecture;
* candidate: :func:`cipherfuse.nn.model.init_params` (each kernel's key from a
  small integer-only jit, its LeCun-normal values from a truncated-normal draw
  compiled once per length bucket and shared by the architectures).

Both must give the same parameters bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cipherfuse.nn import initializers, model
from cipherfuse.roles.learning import case1_config

if TYPE_CHECKING:
    from bench.conftest import Benchmark

CONFIGS = tuple(case1_config(c) for c in (1, 2, 3))
KEY = jax.random.key(11)


@pytest.fixture(autouse=True)
def _no_persistent_cache() -> Iterator[None]:
    # the flag is a dynamic attribute of jax.config, unknown to mypy: read it by name
    previous = jax.config.values["jax_enable_compilation_cache"]
    jax.config.update("jax_enable_compilation_cache", False)  # type: ignore[no-untyped-call]
    yield
    jax.config.update("jax_enable_compilation_cache", previous)  # type: ignore[no-untyped-call]


def _cold() -> None:
    """Forget every compiled function (JAX's and cipherfuse's caches)."""
    jax.clear_caches()  # type: ignore[no-untyped-call]  # jax leaves it unannotated
    for cached in (
        model._init_fn,
        model._kernel_keys_fn,
        model._shapes,
        initializers._truncated_normal_fn,
    ):
        cached.cache_clear()


def _whole_jit(config: Any) -> Any:
    dummy = jnp.zeros((1, *config.input_shape), jnp.float32)
    return jax.jit(lambda key: model.ConfigCNN(config).init(key, dummy)["params"])(KEY)


def _run(init: Callable[[Any], Any]) -> list[Any]:
    return [
        jax.block_until_ready(init(config))  # type: ignore[no-untyped-call]  # unannotated in jax
        for config in CONFIGS
    ]


def _leaves(trees: list[Any]) -> list[np.ndarray]:
    return [np.asarray(leaf) for tree in trees for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.fixture(scope="module")
def expected() -> list[np.ndarray]:
    return _leaves(
        [model.ConfigCNN(c).init(KEY, jnp.zeros((1, 28, 28, 1)))["params"] for c in CONFIGS]
    )


@pytest.mark.benchmark(group="init-cold-3-architectures")
def test_init_whole_jit_baseline(benchmark: Benchmark, expected: list[np.ndarray]) -> None:
    benchmark.extra_info["role"] = "baseline"
    got = benchmark.pedantic(_run, args=(_whole_jit,), setup=_cold, rounds=2, iterations=1)
    for a, b in zip(expected, _leaves(got), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.benchmark(group="init-cold-3-architectures")
def test_init_bucketed_candidate(benchmark: Benchmark, expected: list[np.ndarray]) -> None:
    benchmark.extra_info["role"] = "candidate"
    init = lambda config: model.init_params(config, KEY)  # noqa: E731
    got = benchmark.pedantic(_run, args=(init,), setup=_cold, rounds=2, iterations=1)
    for a, b in zip(expected, _leaves(got), strict=True):
        np.testing.assert_array_equal(a, b)
