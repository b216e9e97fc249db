"""Fixtures for the encrypted-layer tests: small models and paper/secure keys."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.nn.config import ConvSpec, FlattenSpec, ModelConfig, PoolSpec
from cipherfuse.nn.model import TrainedModel, param_shapes


def seed(n: int) -> bytes:
    """A deterministic 32-byte seed."""
    return bytes([n % 256]) * 32


def small_config(
    activation: str = "relu", pool: str = "avg", filters: int = 4, padding: str = "SAME"
) -> ModelConfig:
    """A Table-VI-shaped CNN small enough for fast tests (10x10 inputs)."""
    return ModelConfig(
        name="small",
        input_shape=(10, 10, 1),
        layers=(
            ConvSpec(filters, (3, 3), padding=padding, activation=activation),  # type: ignore[arg-type]
            PoolSpec(pool, (2, 2)),  # type: ignore[arg-type]
            ConvSpec(3, (3, 3)),
            FlattenSpec(),
        ),
    )


def random_params(config: ModelConfig, key: int) -> Any:
    """Seeded LeCun-normal parameters built in numpy (eager Flax init is slow on busy CPUs)."""
    rng = np.random.default_rng(key)

    def fill(node: Any) -> Any:
        if hasattr(node, "items"):
            return {str(k): fill(v) for k, v in node.items()}
        shape = tuple(int(d) for d in node.shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        scale = fan_in**-0.5 if len(shape) > 1 else 0.05
        return jnp.asarray(np.clip(rng.normal(0, 1, shape), -2, 2).astype(np.float32) * scale)

    return fill(param_shapes(config))


def small_model(key: int = 0, **kwargs: str) -> TrainedModel:
    cfg = small_config(**kwargs)  # type: ignore[arg-type]
    return TrainedModel(cfg, random_params(cfg, key), tuple(range(10)))


@pytest.fixture(scope="session")
def paper_keys() -> dict[int, tuple[he.SecretKey, he.KeySwitchKey]]:
    """Paper secret keys and their public M for plaintext lengths 1 and 4."""
    out = {}
    for m in (1, 4):
        sk = he.keygen(he.PAPER, m=m, seed=seed(m))
        out[m] = (sk, he.identity_switch_key(sk, seed=seed(10 + m)))
    return out


@pytest.fixture(scope="session")
def secure_keys() -> dict[int, tuple[he.SecretKey, he.PublicKey]]:
    """Secure secret keys and public keys for plaintext lengths 1 and 4."""
    out = {}
    for m in (1, 4):
        sk = he.keygen(he.SECURE, m=m, seed=seed(20 + m))
        out[m] = (sk, he.public_keygen(sk, seed=seed(30 + m)))
    return out
