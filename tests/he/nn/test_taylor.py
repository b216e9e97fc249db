"""Degree-3 Taylor sigmoid with ciphertext x ciphertext products and key switching."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.he.nn import CipherTensor, decrypt_tensor, taylor_sigmoid

from .conftest import seed

# The paper's distributions (k = 1, small non-negative T, A, E) with a 16-bit plaintext space.
T16 = he.PAPER.with_(name="paper-t16", plaintext_bits=16)


def _tensor(sk: he.SecretKey, x: np.ndarray, vb: int) -> CipherTensor:
    ct = he.encrypt_symmetric(sk, x.reshape(-1, 1), seed=seed(40), value_bound=vb)
    return CipherTensor(ct.params, ct.key_id, 1, False, ct.data, ct.noise_bound, vb)


@pytest.mark.parametrize("kernels", ["reference", "cpp"])
def test_taylor_sigmoid_is_exact_with_a_small_plaintext_space(kernels: str) -> None:
    sk = he.keygen(T16, m=1, seed=seed(41))
    key = he.inner_product_key(sk, sk, seed=seed(42))
    x = np.arange(-31, 32, dtype=np.int64)
    with he.use_kernels(kernels):
        out = taylor_sigmoid(_tensor(sk, x, 31), key, scale=1)
    np.testing.assert_array_equal(decrypt_tensor(sk, out), 24 + 12 * x - x**3)
    # 24 s^3 + 12 s^2 X - X^3 at scale 48 s^3 is 1/2 + x/4 - x^3/48 (not x^3/348).
    xs = x / 1.0
    np.testing.assert_allclose((24 + 12 * x - x**3) / 48, 0.5 + xs / 4 - xs**3 / 48)


def test_taylor_sigmoid_bounds_are_checked_first() -> None:
    sk = he.keygen(T16, m=1, seed=seed(43))
    key = he.inner_product_key(sk, sk, seed=seed(44))
    with pytest.raises(he.PlaintextOverflow, match="X\\^3"):
        taylor_sigmoid(_tensor(sk, np.array([40]), 40), key, scale=1)
    paper_sk = he.keygen(he.PAPER, m=1, seed=seed(45))
    paper_key = he.inner_product_key(paper_sk, paper_sk, seed=seed(46))
    with pytest.raises(he.NoiseBudgetExceeded, match="sig1: X\\^2"):
        taylor_sigmoid(_tensor(paper_sk, np.array([3]), 3), paper_key, scale=1, layer="sig1")
    with pytest.raises(he.HEError, match="inner_product_key"):
        taylor_sigmoid(_tensor(sk, np.array([3]), 3), paper_key, scale=1)
