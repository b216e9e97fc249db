"""Attacks that show which parameter sets and encryption modes are insecure.

* :func:`recover_secret` — with k = 1 and small ``A``/``E`` (the ``paper``
  set) the public matrix ``M = [G - T A + E; A]`` gives, row by row, the small
  integer system ``G - M_top = T A - E``, solved by least squares. On the
  ``secure`` set ``A`` is uniform modulo 2^64, the same computation returns
  garbage, and decryption with it fails (tested).
* :func:`dictionary_attack` — the paper's encryption ``c = M (w x)*`` is
  deterministic, so anyone holding ``M`` recovers low-entropy plaintexts
  (e.g. quantized weights) by encrypting candidates; randomized
  :func:`cipherfuse.he.encrypt` defeats it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import ParameterError
from cipherfuse.he.keys import KeySwitchKey, gadget_powers
from cipherfuse.he.scheme import encrypt_paper

I64Array = npt.NDArray[np.int64]


def recover_secret(public_matrix: KeySwitchKey) -> I64Array:
    """Least-squares estimate of ``T`` from the identity switching key (the paper's ``M``).

    Returns the rounded estimate (m x k); it equals the true secret exactly
    for the ``paper`` parameters.
    """
    if public_matrix.source != "identity":
        raise ParameterError("recover_secret needs the identity switching key (paper's M)")
    m = public_matrix.m_out
    k = public_matrix.params.lwe_dim
    M = public_matrix.M
    top, a = M[:m], M[m:]
    g = np.zeros_like(top)
    powers = gadget_powers(public_matrix.base_bits)
    l = powers.size
    for i in range(m):
        g[i, i * l : (i + 1) * l] = powers
    d = (g - top).view(np.int64).astype(np.float64)  # = T A - E when everything is small
    a_f = a.view(np.int64).astype(np.float64)
    design = np.concatenate([a_f.T, np.ones((a_f.shape[1], 1))], axis=1)  # intercept: mean(E)
    try:  # normal equations: one (k+1)^2 solve serves every row
        sol = np.linalg.solve(design.T @ design, design.T @ d.T)
    except np.linalg.LinAlgError:
        sol, *_ = np.linalg.lstsq(design, d.T, rcond=None)
    t_hat = sol[:k].T
    t_hat = np.nan_to_num(t_hat, nan=0.0, posinf=0.0, neginf=0.0)
    out: I64Array = np.clip(np.rint(t_hat), -(2**62), 2**62).astype(np.int64)
    return out


def dictionary_attack(
    public_matrix: KeySwitchKey, ciphertext: Ciphertext, candidates: Iterable[int]
) -> list[int | None]:
    """Recovers each scalar plaintext of a batch of m = 1 ciphertexts by re-encryption.

    Returns, per ciphertext, the candidate whose deterministic encryption
    matches it, or ``None``.
    """
    if public_matrix.m_out != 1 or ciphertext.m != 1:
        raise ParameterError("dictionary_attack works on m = 1 (element-wise) ciphertexts")
    cands = np.array(list(candidates), dtype=np.int64).reshape(-1, 1)
    table = encrypt_paper(public_matrix, cands).data.reshape(len(cands), -1)
    lookup = {row.tobytes(): int(v) for row, v in zip(table, cands[:, 0], strict=True)}
    rows = ciphertext.data.reshape(-1, ciphertext.n)
    return [lookup.get(row.tobytes()) for row in rows]
