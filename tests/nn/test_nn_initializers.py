"""Bucketed LeCun-normal draws: Flax's and JAX's initializer values bit for bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cipherfuse.fusion.head import FusionHead, _init_fn
from cipherfuse.nn import ConfigCNN, case5_config, table2_config
from cipherfuse.nn.initializers import (
    MIN_BUCKET,
    KernelKeyRecorder,
    bucket,
    exact_bucketing,
    fill_kernels,
    lecun_normal,
)
from cipherfuse.nn.model import init_params

pytestmark = pytest.mark.skipif(
    not exact_bucketing(), reason="bucketed draws need JAX's partitionable threefry"
)


def test_buckets_are_powers_of_two_covering_the_size() -> None:
    assert bucket(1) == bucket(MIN_BUCKET) == MIN_BUCKET
    assert bucket(MIN_BUCKET + 1) == 2 * MIN_BUCKET
    for size in (3, 800, 196_000, 392_000, 1_000_001):
        b = bucket(size)
        assert b >= size and b & (b - 1) == 0 and (b // 2 < size or b == MIN_BUCKET)


@pytest.mark.parametrize(
    "shape",
    [(3, 2), (5, 5, 1, 32), (392, 500), (784, 500), (MIN_BUCKET // 8, 8), (MIN_BUCKET // 8 + 1, 8)],
)
@pytest.mark.parametrize("typed_key", [True, False])
def test_lecun_normal_equals_jax_initializer(shape: tuple[int, ...], typed_key: bool) -> None:
    key = jax.random.key(17) if typed_key else jax.random.PRNGKey(17)
    expected = np.asarray(jax.nn.initializers.lecun_normal()(key, shape, jnp.float32))
    got = lecun_normal(key, shape)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got, expected)


def test_lecun_normal_rejects_vectors() -> None:
    with pytest.raises(ValueError, match=">= 2 axes"):
        lecun_normal(jax.random.key(0), (10,))


def _assert_same_tree(expected: object, got: object) -> None:
    assert jax.tree_util.tree_structure(expected) == jax.tree_util.tree_structure(got)
    for a, b in zip(
        jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(got), strict=True
    ):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("typed_key", [True, False])
def test_init_params_equals_flax_init_for_the_paper_architectures(typed_key: bool) -> None:
    for config in (table2_config(2), case5_config()):
        key = jax.random.key(3) if typed_key else jax.random.PRNGKey(3)
        dummy = jnp.zeros((1, *config.input_shape), jnp.float32)
        _assert_same_tree(ConfigCNN(config).init(key, dummy)["params"], init_params(config, key))


def test_fusion_head_init_equals_flax_init() -> None:
    for dims in ((1176, 10, 10), (392 * 3, 15, 10)):
        key = jax.random.key(8)
        head = FusionHead(*dims)
        flax = head.init(key, jnp.zeros((1, dims[0])), jnp.ones(dims[:2]), jnp.ones(dims[1:]))[
            "params"
        ]
        _assert_same_tree(flax, _init_fn(*dims)(key))


def test_recorder_keys_fill_only_the_recorded_leaves() -> None:
    recorder = KernelKeyRecorder()
    init = recorder("layer", "kernel")
    assert np.array_equal(np.asarray(init(jax.random.key(1), (4, 3))), np.zeros((4, 3)))
    params = {"layer": {"kernel": jnp.zeros((4, 3)), "bias": jnp.ones(3)}}
    filled = fill_kernels(params, recorder.keys)
    np.testing.assert_array_equal(
        np.asarray(filled["layer"]["kernel"]), lecun_normal(jax.random.key(1), (4, 3))
    )
    np.testing.assert_array_equal(np.asarray(filled["layer"]["bias"]), np.ones(3))
    assert np.array_equal(np.asarray(params["layer"]["kernel"]), np.zeros((4, 3)))  # not mutated
