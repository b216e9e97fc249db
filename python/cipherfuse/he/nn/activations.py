"""Activations on ciphertexts, the paper's way.

ReLU (Sec. V-D, after Eq. 26): the rectifier is applied to every ciphertext
*component*, read as a signed 64-bit integer. With ``c = [c_0; c_1]``,
``c_0 + T c_1 = w y + e``: if the tail ``c_1`` is non-negative (unchanged by
the rectifier) and ``|e| + |T c_1| < w/2``, then ``c_0 = w y + (e - T c_1)``
has the sign of ``y`` whenever ``y != 0``, so

* ``y >= 1``: ``c_0 > 0`` is kept and the ciphertext still decrypts to ``y``;
* ``y <= -1``: ``c_0 < 0`` becomes 0 and the ciphertext decrypts to
  ``round(T c_1 / w) = 0``;
* ``y = 0``: either way it decrypts to 0.

So component-wise ReLU is *exact* under that condition, which
:func:`relu_components` checks per ciphertext from public data only
(``|T c_1| <= secret_max * sum|c_1|``). It holds for the ``paper`` parameters
(non-negative ``A`` and inputs make ``c_1`` small and non-negative); with
``secure`` parameters ``c_1`` is uniform modulo 2^64, the condition fails for
essentially every ciphertext, and the result is wrong about half the time for
negative inputs (measured in tests/he/nn and docs/he-nn.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cipherfuse.he.errors import NoiseBudgetExceeded
from cipherfuse.he.nn.tensor import CipherTensor, tail_mass


@dataclass(frozen=True)
class ReluReport:
    """How many ciphertexts the exactness condition covers.

    Attributes:
        total: ciphertexts rectified.
        not_guaranteed: ciphertexts for which the condition fails (their result
            may decrypt to something other than ReLU of the plaintext).
        max_tail_mass: the largest public bound on |T c_1| among the guaranteed ones.
    """

    total: int
    not_guaranteed: int
    max_tail_mass: int

    @property
    def exact(self) -> bool:
        """Whether every ciphertext is guaranteed exact."""
        return self.not_guaranteed == 0


def relu_components(
    ct: CipherTensor, *, layer: str = "relu", strict: bool = True
) -> tuple[CipherTensor, ReluReport]:
    """ReLU on every ciphertext component (see the module docstring for when it is exact).

    Args:
        strict: raise unless every ciphertext is guaranteed exact.

    Raises:
        NoiseBudgetExceeded: ``strict`` and the condition fails for some
            ciphertext; the message names the layer, the count and the numbers.
    """
    signed = ct.data.view(np.int64)
    tail_ok = (signed[..., ct.m :] >= 0).all(axis=-1)
    mass = tail_mass(ct)
    half = ct.params.half_w
    bound_ok = mass + float(ct.noise_bound) < float(half) * (1 - 2.0**-40)
    ok = tail_ok & bound_ok
    total = ok.size
    bad = total - int(ok.sum())
    guaranteed_mass = mass[ok]
    max_mass = math.ceil(float(guaranteed_mass.max(initial=0.0)))
    if bad and strict:
        worst = float(mass.max(initial=0.0)) + ct.noise_bound
        raise NoiseBudgetExceeded(
            f"{layer}: component-wise ReLU is not guaranteed exact for {bad} of {total} "
            f"ciphertexts ({int((~tail_ok).sum())} with a negative tail word; worst "
            f"|e| + |T c_1| bound {worst:.4g})",
            int(min(worst, 2.0**126)),
            half,
            "the paper's ReLU needs small non-negative ciphertext tails (paper parameters); "
            "with secure parameters decrypt first or use a polynomial activation",
        )
    out = np.maximum(signed, 0).view(np.uint64)
    noise = max(ct.noise_bound, max_mass)
    noise = min(noise, ct.params.half_w - 1)
    return (
        CipherTensor(ct.params, ct.key_id, ct.m, ct.packed, out, noise, ct.value_bound),
        ReluReport(total, bad, max_mass),
    )
