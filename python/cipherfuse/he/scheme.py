"""Encryption, decryption and the linear homomorphic operations.

Every operation first computes the worst-case noise bound of its result and
raises :class:`NoiseBudgetExceeded` *before* computing if it could reach w/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cipherfuse.he.backend import get_kernels
from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import (
    KeyMismatchError,
    NoiseBudgetExceeded,
    ParameterError,
    PlaintextOverflow,
)
from cipherfuse.he.keys import KeySwitchKey, PublicKey, SecretKey
from cipherfuse.he.params import HEParams
from cipherfuse.he.sampling import Sampler

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]


# ------------------------------------------------------------------ helpers
def check_noise(params: HEParams, operation: str, bound: int, hint: str = "") -> None:
    """Raises NoiseBudgetExceeded if ``bound`` could reach w/2."""
    if bound >= params.half_w:
        raise NoiseBudgetExceeded(operation, bound, params.half_w, hint)


def _check_value(params: HEParams, operation: str, bound: int | None) -> int | None:
    if bound is not None and bound >= params.t // 2:
        raise PlaintextOverflow(
            f"{operation}: declared plaintext bound {bound} reaches t/2 = {params.t // 2}; "
            "results would wrap modulo t (raise plaintext_bits or scale values down)"
        )
    return bound


def encode(params: HEParams, x: npt.ArrayLike) -> U64Array:
    """w * x mod 2^64 for integer plaintexts in [-t/2, t/2)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"plaintexts must be integers, got dtype {arr.dtype}")
    half = params.t // 2
    if arr.size and (int(arr.min()) < -half or int(arr.max()) >= half):
        raise ParameterError(
            f"plaintext values must lie in [-t/2, t/2) = [{-half}, {half}), got "
            f"[{int(arr.min())}, {int(arr.max())}]; raise plaintext_bits or scale down"
        )
    return arr.astype(np.int64).astype(np.uint64) * np.uint64(params.w)


def _as_plaintext(sk_m: int, x: npt.ArrayLike) -> I64Array:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"plaintexts must be integers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.shape[-1] != sk_m:
        raise ParameterError(
            f"plaintext must have shape ({sk_m},) or (batch, {sk_m}), got {arr.shape}"
        )
    return arr.astype(np.int64)


def _declared(params: HEParams, x: I64Array, value_bound: int | None) -> int | None:
    if value_bound is None:
        return None
    if x.size and int(np.abs(x).max()) > value_bound:
        raise ParameterError(f"value_bound={value_bound} is smaller than max|x|")
    return _check_value(params, "encrypt", value_bound)


def _plaintext_batch(
    params: HEParams, m: int, x: npt.ArrayLike, value_bound: int | None
) -> tuple[I64Array, bool, int | None]:
    """Validated plaintexts as a (batch, m) matrix, whether the input was a single
    vector, and the checked declared value bound."""
    xs = _as_plaintext(m, x)
    vb = _declared(params, xs, value_bound)
    return xs.reshape(-1, m), xs.ndim == 1, vb


# ------------------------------------------------------------------ encryption
def encrypt(
    pk: PublicKey,
    x: npt.ArrayLike,
    *,
    seed: bytes | None = None,
    value_bound: int | None = None,
) -> Ciphertext:
    """Randomized public-key encryption of ``x`` (shape (m,) or (batch, m)).

    ``c = P r + [w x + e1; e2]`` with ``r`` drawn like the secret and
    ``e1, e2`` like the error; ``S' c = w x + E0 r + e1 + T e2``. A batch is
    one GEMM ``R P^T``.
    """
    params = pk.params
    xs2, single, vb = _plaintext_batch(params, pk.m, x, value_bound)
    batch = xs2.shape[0]
    k = params.lwe_dim
    bound = params.fresh_noise_bound()
    check_noise(params, "encrypt", bound)
    sampler = Sampler(seed).child("encrypt")
    r = sampler.child("r").secret(params, (batch, k))
    e = sampler.child("e").error(params, (batch, pk.m + k))
    data = get_kernels().gemm_small_wide(r, pk.P.T)
    data += e.astype(np.uint64)
    data[:, : pk.m] += encode(params, xs2)
    return Ciphertext(params, pk.key_id, pk.m, data[0] if single else data, bound, vb)


def encrypt_symmetric(
    sk: SecretKey,
    x: npt.ArrayLike,
    *,
    seed: bytes | None = None,
    value_bound: int | None = None,
) -> Ciphertext:
    """Secret-key encryption ``c = [w x + e - T a; a]`` with uniform ``a``: noise ``e`` only."""
    params = sk.params
    xs2, single, vb = _plaintext_batch(params, sk.m, x, value_bound)
    batch = xs2.shape[0]
    sampler = Sampler(seed).child("encrypt-sym")
    a = sampler.child("a").mask(params, (batch, params.lwe_dim))
    e = sampler.child("e").error(params, (batch, sk.m))
    top = (
        encode(params, xs2)
        + e.astype(np.uint64)
        - get_kernels().gemm_wide_small(a, np.ascontiguousarray(sk.T.T))
    )
    data = np.concatenate([top, a], axis=1)
    return Ciphertext(params, sk.key_id, sk.m, data[0] if single else data, params.error_max, vb)


def encrypt_paper(ksk: KeySwitchKey, x: npt.ArrayLike) -> Ciphertext:
    """The paper's encryption (Eq. 6): ``c' = M (w x)*`` with the identity switching key.

    Deterministic: equal plaintexts give equal ciphertexts, so anyone holding
    ``M`` can test guesses (a dictionary attack; see tests). Use :func:`encrypt`
    unless you are reproducing the paper.
    """
    if ksk.source != "identity":
        raise KeyMismatchError(
            "encrypt_paper needs the identity switching key (cipherfuse.he.identity_switch_key)"
        )
    params = ksk.params
    xs = _as_plaintext(ksk.m_out, x)
    single = xs.ndim == 1
    xs2 = xs.reshape(-1, ksk.m_out)
    # Only the digits that can hold bits of w*x (the top plaintext_bits bits) are
    # non-zero, so the data-independent bound counts just those.
    bound = params.error_max * ksk.n_in * _top_digit_mass(params.plaintext_bits, ksk.base_bits)
    check_noise(params, "encrypt_paper", bound)
    coded = encode(params, xs2)
    # The low 64 - tau bits of w*x are zero: their digit columns of M are skipped.
    data = _switch_rows(ksk, coded, skip_low_digits=(64 - params.plaintext_bits) // ksk.base_bits)
    return Ciphertext(params, ksk.target_id, ksk.m_out, data[0] if single else data, bound)


def _top_digit_mass(plaintext_bits: int, base_bits: int) -> int:
    """Largest possible digit sum of a word whose low 64 - tau bits are zero."""
    l = -(-64 // base_bits)
    low = 64 - plaintext_bits
    total = 0
    for j in range(l):
        lo = base_bits * (l - 1 - j)
        hi = min(64, lo + base_bits)
        if hi > low:
            start = max(lo, low)
            total += ((1 << (hi - start)) - 1) << (start - lo)
    return total


def _switch_rows(ksk: KeySwitchKey, rows: U64Array, skip_low_digits: int = 0) -> U64Array:
    """Key switch every row of ``rows`` (batch x n_in) with ``ksk.M``."""
    kern = get_kernels()
    if rows.shape[0] == 1:
        return kern.keyswitch(ksk.M, rows[0], ksk.base_bits, skip_low_digits)[None, :]
    digits = kern.decompose(rows.reshape(-1), ksk.base_bits).reshape(rows.shape[0], -1)
    return kern.gemm_small_wide(digits.view(np.int64), ksk.M.T)


# ------------------------------------------------------------------ decryption
def decrypt(sk: SecretKey, ct: Ciphertext) -> I64Array:
    """x = round(S' c / w) mod t, centred in [-t/2, t/2) (paper Eq. 2)."""
    v = _phase(sk, ct)
    params = sk.params
    shift = np.uint64(64 - params.plaintext_bits)
    x = ((v + np.uint64(params.half_w)) >> shift).astype(np.int64)
    x[x >= params.t // 2] -= params.t
    return x


def noise(sk: SecretKey, ct: Ciphertext) -> I64Array:
    """The actual noise S' c - w x (centred), for tests and diagnostics."""
    v = _phase(sk, ct)
    x = decrypt(sk, ct)
    diff = v - x.astype(np.uint64) * np.uint64(sk.params.w)
    return diff.view(np.int64)


def _phase(sk: SecretKey, ct: Ciphertext) -> U64Array:
    if ct.key_id != sk.key_id or ct.params != sk.params:
        raise KeyMismatchError(
            f"ciphertext is under key {ct.key_id} ({ct.params.name}), not {sk.key_id} "
            f"({sk.params.name})"
        )
    data = ct.data.reshape(-1, ct.n)
    top = data[:, : ct.m]
    bottom = np.ascontiguousarray(data[:, ct.m :])
    v = top + get_kernels().gemm_wide_small(bottom, np.ascontiguousarray(sk.T.T))
    return v[0] if ct.data.ndim == 1 else v


# ------------------------------------------------------------------ linear ops
def add(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    """Enc(x) + Enc(y) = Enc(x + y)."""
    a.check_compatible(b)
    bound = a.noise_bound + b.noise_bound
    check_noise(a.params, "add", bound)
    vb = None if a.value_bound is None or b.value_bound is None else (a.value_bound + b.value_bound)
    _check_value(a.params, "add", vb)
    return Ciphertext(a.params, a.key_id, a.m, a.data + b.data, bound, vb)


def sub(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    """Enc(x) - Enc(y) = Enc(x - y)."""
    return add(a, mul_scalar(b, -1))


def mul_scalar(a: Ciphertext, factor: int) -> Ciphertext:
    """Enc(x) * f = Enc(f x) for an integer f."""
    f = int(factor)
    bound = abs(f) * a.noise_bound
    check_noise(a.params, "mul_scalar", bound, "use a smaller factor")
    vb = None if a.value_bound is None else abs(f) * a.value_bound
    _check_value(a.params, "mul_scalar", vb)
    data = a.data * np.uint64(f % (1 << 64))
    return Ciphertext(a.params, a.key_id, a.m, data, bound, vb)


def linear_combination(weights: npt.ArrayLike, cts: Ciphertext) -> Ciphertext:
    """``sum_i g_i Enc(x_i)`` (paper Eq. 21) for every row ``g`` of ``weights``.

    ``cts`` is a batch of N ciphertexts; ``weights`` is (N,) -> one ciphertext,
    or (R, N) -> a batch of R ciphertexts. One GEMM ``G C``.
    """
    if cts.batch is None:
        raise ParameterError("linear_combination needs a batch of ciphertexts")
    g = np.asarray(weights)
    if g.dtype.kind not in "iu" or g.ndim not in (1, 2) or g.shape[-1] != cts.batch:
        raise ParameterError(
            f"weights must be an integer array of shape ({cts.batch},) or (R, {cts.batch}), "
            f"got {g.dtype} {g.shape}"
        )
    g2 = g.reshape(-1, cts.batch).astype(np.int64)
    if g2.size and int(np.abs(g2).max()) >= 1 << 40:
        raise ParameterError("weights must satisfy |g| < 2^40")
    l1 = int(np.abs(g2).sum(axis=1).max()) if g2.size else 0
    bound = l1 * cts.noise_bound
    check_noise(
        cts.params, "linear_combination", bound, "use smaller weights or fewer terms (paper Eq. 26)"
    )
    vb = None if cts.value_bound is None else l1 * cts.value_bound
    _check_value(cts.params, "linear_combination", vb)
    out = get_kernels().gemm_small_wide(g2, cts.data)
    data = out[0] if g.ndim == 1 else out
    return Ciphertext(cts.params, cts.key_id, cts.m, data, bound, vb)


def stack(cts: Sequence[Ciphertext]) -> Ciphertext:
    """A batch from single ciphertexts under one key (noise bound: the largest)."""
    if not cts:
        raise ParameterError("stack needs at least one ciphertext")
    first = cts[0]
    for c in cts[1:]:
        first.check_compatible(c)
    data = (
        np.stack([c.data for c in cts])
        if first.data.ndim == 1
        else np.concatenate([c.data for c in cts])
    )
    vbs = [c.value_bound for c in cts]
    vb = None if any(v is None for v in vbs) else max(v for v in vbs if v is not None)
    return Ciphertext(
        first.params, first.key_id, first.m, data, max(c.noise_bound for c in cts), vb
    )


# ------------------------------------------------------------------ key switching
def keyswitch(ksk: KeySwitchKey, ct: Ciphertext) -> Ciphertext:
    """Switches ``ct`` to ``ksk``'s target key: ``c' = M c*`` (paper Eq. 6)."""
    if not ksk.source.startswith("sk:"):
        raise KeyMismatchError(
            f"this switching key is for {ksk.source!r}; use the operation "
            "that matches it (linear_transform, inner_product, encrypt_paper)"
        )
    if ksk.applies_to != ct.key_id or ksk.params != ct.params:
        raise KeyMismatchError(
            f"switching key applies to key {ksk.applies_to}, the ciphertext is under {ct.key_id}"
        )
    bound = ct.noise_bound + ksk.added_noise
    check_noise(ct.params, "keyswitch", bound, "use a smaller base_bits")
    data = _switch_rows(ksk, ct.data.reshape(-1, ct.n))
    return Ciphertext(
        ct.params,
        ksk.target_id,
        ksk.m_out,
        data[0] if ct.data.ndim == 1 else data,
        bound,
        ct.value_bound,
    )
