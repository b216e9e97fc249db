"""Sampling: deterministic from a seed, in range, with the documented moments."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.he.sampling import Sampler


def test_deterministic_and_label_separated() -> None:
    a = Sampler(bytes(32)).child("A").uniform_u64((4, 5))
    b = Sampler(bytes(32)).child("A").uniform_u64((4, 5))
    c = Sampler(bytes(32)).child("B").uniform_u64((4, 5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_distributions() -> None:
    s = Sampler(bytes(range(32)))
    n = 200_000
    tern = s.ternary((n,))
    counts = np.bincount(tern + 1, minlength=3) / n
    np.testing.assert_allclose(counts, [1 / 3] * 3, atol=0.01)
    cbd = s.cbd((n,), 21)
    assert cbd.min() >= -21 and cbd.max() <= 21
    assert abs(cbd.mean()) < 0.05 and abs(cbd.var() - 10.5) < 0.3  # eta / 2
    uni = s.uniform_range((n,), 6)
    np.testing.assert_allclose(np.bincount(uni) / n, [1 / 7] * 7, atol=0.01)
    words = s.uniform_u64((n,))
    bits = np.unpackbits(words.view(np.uint8)).mean()
    assert abs(bits - 0.5) < 0.001


def test_keygen_is_reproducible_from_seed() -> None:
    a = he.keygen(he.SECURE, 3, seed=bytes(32))
    b = he.keygen(he.SECURE, 3, seed=bytes(32))
    assert a.key_id == b.key_id
    assert he.keygen(he.SECURE, 3).key_id != a.key_id  # fresh OS randomness by default


def test_bad_seed() -> None:
    with pytest.raises(he.ParameterError, match="32 bytes"):
        Sampler(b"short")
