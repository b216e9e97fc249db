"""to_device: jnp.asarray's array, without compiling, independent of the host buffer."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cipherfuse.nn.transfer import to_device


@pytest.mark.parametrize(
    "host",
    [
        np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
        np.arange(-5, 6, dtype=np.int64),
        np.linspace(0, 1, 9),  # float64
        np.array([True, False, True]),
    ],
)
def test_to_device_is_jnp_asarray(host: np.ndarray) -> None:
    placed, reference = to_device(host), jnp.asarray(host)
    assert placed.dtype == reference.dtype and placed.shape == reference.shape
    assert placed.weak_type == reference.weak_type
    np.testing.assert_array_equal(np.asarray(placed), np.asarray(reference))


def test_to_device_compiles_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    host = np.ones((3, 5, 7, 11), np.float32)  # a shape no other test moves
    with jax.log_compiles():
        to_device(host)
        compiled = [r.getMessage() for r in caplog.records if "XLA compilation" in r.getMessage()]
        assert compiled == []
        jnp.asarray(host)
        assert any("XLA compilation" in r.getMessage() for r in caplog.records)


def test_the_device_array_does_not_follow_the_host_array() -> None:
    host = np.zeros((4, 4), np.float32)
    placed = to_device(host[1:3])  # a view
    host[:] = 1.0
    np.testing.assert_array_equal(np.asarray(placed), np.zeros((2, 4), np.float32))
