"""Shared helpers for the storage tests."""

from __future__ import annotations

import numpy as np

CHUNK = 262_144


def make_data(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes."""
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
