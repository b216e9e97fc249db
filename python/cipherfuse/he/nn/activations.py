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
from dataclasses import dataclass, replace

import numpy as np

from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import NoiseBudgetExceeded
from cipherfuse.he.keys import KeySwitchKey
from cipherfuse.he.nn.errors import CipherspaceError
from cipherfuse.he.nn.tensor import CipherTensor, tail_mass, uniform_tail_mass
from cipherfuse.he.products import inner_product, inner_product_noise_bound
from cipherfuse.he.scheme import _check_value, check_noise


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
    quick = uniform_tail_mass(ct)
    if quick is not None and quick + ct.noise_bound < ct.params.half_w:
        out = np.maximum(signed, 0).view(np.uint64)
        noise = max(ct.noise_bound, quick)
        report = ReluReport(int(np.prod(ct.data.shape[:-1])), 0, quick)
        return (
            CipherTensor(ct.params, ct.key_id, ct.m, ct.packed, out, noise, ct.value_bound),
            report,
        )
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


def taylor_sigmoid(
    ct: CipherTensor, key: KeySwitchKey, *, scale: int, layer: str = "taylor_sigmoid"
) -> CipherTensor:
    """The degree-3 Taylor sigmoid on ciphertexts: ``Enc(24 s^3 + 12 s^2 X - X^3)``.

    ``X = s x`` is the plaintext at scale ``s``; the result is at scale ``48 s^3``
    (``1/2 + x/4 - x^3/48``; the paper prints ``x^3/348``, but the cubic Taylor
    coefficient of the sigmoid is ``sigma'''(0)/3! = -1/48``). ``X^2`` and ``X^3``
    are ciphertext x ciphertext products (paper Eq. 44, :func:`cipherfuse.he.inner_product`)
    followed by a key switch back to the input's key, so ``key`` must be
    ``he.inner_product_key(sk, sk)``. Element-wise tensors only (one product per
    ciphertext: a loop over the C++ tensor-and-switch kernel).

    The bounds of both products and of the result are checked *before* computing.
    With ``q = 2^64`` the product noise contains ``t * |S c|_int * e`` terms
    (the wrap-around multiples of q that the exact product carries, see
    :func:`cipherfuse.he.products.inner_product_noise_bound`), so it only fits
    parameter sets with a small plaintext space (tested with the paper's
    distributions at ``plaintext_bits = 16``); with the ``paper`` (t = 2^32) and
    ``secure`` sets it raises :class:`NoiseBudgetExceeded`.

    Raises:
        NoiseBudgetExceeded / PlaintextOverflow: the bounds fail (names the layer).
        CipherspaceError: a packed tensor, or a key not made for this tensor.
    """
    if ct.packed:
        raise CipherspaceError(f"{layer}: the Taylor sigmoid needs an element-wise tensor (m = 1)")
    if key.source != f"inner:{ct.key_id}:I" or key.target_id != ct.key_id:
        raise CipherspaceError(
            f"{layer}: the key must be he.inner_product_key(sk, sk) for this tensor's key "
            f"{ct.key_id} (products must come back under the same key)"
        )
    s = int(scale)
    params = ct.params
    flat = ct.as_ciphertext()
    vb = ct.value_bound if ct.value_bound is not None else params.t // 2 - 1
    row_l1 = 1 + params.lwe_dim * params.secret_max
    one = replace(flat[0], value_bound=vb) if flat.batch else flat
    sq_bound = inner_product_noise_bound(one, one, 1, row_l1) + key.added_noise
    check_noise(params, f"{layer}: X^2 = X * X (Eq. 44, {s=})", sq_bound, _PRODUCT_HINT)
    _check_value(params, f"{layer}: X^2", vb * vb)
    sq = Ciphertext(params, ct.key_id, 1, one.data, sq_bound, vb * vb)
    cube_bound = inner_product_noise_bound(sq, one, 1, row_l1) + key.added_noise
    check_noise(params, f"{layer}: X^3 = X^2 * X (Eq. 44)", cube_bound, _PRODUCT_HINT)
    _check_value(params, f"{layer}: X^3", vb**3)
    out_bound = 12 * s * s * ct.noise_bound + cube_bound
    check_noise(params, f"{layer}: 24 s^3 + 12 s^2 X - X^3", out_bound, _PRODUCT_HINT)
    out_vb = 24 * s**3 + 12 * s * s * vb + vb**3
    _check_value(params, layer, out_vb)
    cubes = np.empty_like(flat.data)
    for i in range(flat.data.shape[0]):
        x_i = replace(flat[i], value_bound=vb)
        x2 = inner_product(x_i, x_i, key)
        cubes[i] = inner_product(x2, x_i, key).data
    w = np.uint64(params.w)
    data = flat.data * np.uint64((12 * s * s) % (1 << 64)) - cubes
    data[:, 0] += np.uint64((24 * s**3) % params.t) * w
    return CipherTensor(params, ct.key_id, 1, False, data.reshape(ct.data.shape), out_bound, out_vb)


_PRODUCT_HINT = (
    "ciphertext products need a small plaintext space with q = 2^64 (e.g. plaintext_bits = 16) "
    "and small inputs; see docs/he-nn.md"
)
