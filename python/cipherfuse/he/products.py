"""Linear transformation and (weighted) inner products of two ciphertexts.

Both follow Zhou & Wornell: the secret-key holder publishes a key-switching
matrix from the transformed key (``G S``, or ``vec(S^T H S)``) to a fresh key,
and anyone can then evaluate the operation (paper Eqs. 43-47).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from cipherfuse.he.backend import get_kernels
from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import KeyMismatchError, ParameterError
from cipherfuse.he.keys import DEFAULT_MAX_KEY_BYTES, KeySwitchKey, SecretKey, switching_matrix
from cipherfuse.he.scheme import _check_value, _switch_rows, check_noise

I64Array = npt.NDArray[np.int64]


def _small_matrix(name: str, g: npt.ArrayLike, shape: tuple[int | None, int]) -> I64Array:
    arr = np.asarray(g)
    if (
        arr.dtype.kind not in "iu"
        or arr.ndim != 2
        or (shape[0] is not None and arr.shape[0] != shape[0])
        or arr.shape[1] != shape[1]
    ):
        raise ParameterError(
            f"{name} must be an integer matrix of shape {shape}, got {arr.dtype} {arr.shape}"
        )
    out = arr.astype(np.int64)
    if out.size and int(np.abs(out).max()) >= 1 << 31:
        raise ParameterError(f"{name} entries must satisfy |x| < 2^31")
    return out


def _tag(arr: I64Array) -> str:
    return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]


# ------------------------------------------------------------------ linear transform
def linear_transform_key(
    sk: SecretKey,
    g: npt.ArrayLike,
    target: SecretKey,
    *,
    base_bits: int | None = None,
    seed: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_KEY_BYTES,
) -> KeySwitchKey:
    """Key for ``Enc(x) -> Enc(G x)``: switches from ``G S`` (m' x n) to ``target`` (m')."""
    gm = _small_matrix("G", g, (target.m, sk.m))
    source = gm.astype(np.uint64) @ sk.matrix().astype(np.uint64)
    b = sk.params.base_bits if base_bits is None else base_bits
    M, added = switching_matrix(
        sk.params, source, target, base_bits=b, seed=seed, max_bytes=max_bytes
    )
    return KeySwitchKey(
        sk.params,
        f"linear:{sk.key_id}:{_tag(gm)}",
        sk.key_id,
        target.key_id,
        sk.n,
        target.m,
        b,
        M,
        added,
    )


def linear_transform(ct: Ciphertext, g: npt.ArrayLike, key: KeySwitchKey) -> Ciphertext:
    """``Enc(G x)`` under ``key``'s target: ``c`` is a ciphertext of ``G x`` under ``G S``."""
    gm = _small_matrix("G", g, (key.m_out, ct.m))
    if key.source != f"linear:{ct.key_id}:{_tag(gm)}" or key.params != ct.params:
        raise KeyMismatchError("this key was not made for this G and this ciphertext's key")
    l1 = int(np.abs(gm).sum(axis=1).max())
    bound = l1 * ct.noise_bound + key.added_noise
    check_noise(ct.params, "linear_transform", bound, "use a smaller base_bits or smaller G")
    vb = None if ct.value_bound is None else l1 * ct.value_bound
    _check_value(ct.params, "linear_transform", vb)
    data = _switch_rows(key, ct.data.reshape(-1, ct.n))
    return Ciphertext(
        ct.params, key.target_id, key.m_out, data[0] if ct.data.ndim == 1 else data, bound, vb
    )


# ------------------------------------------------------------------ inner products
def inner_product_key(
    sk: SecretKey,
    target: SecretKey,
    h: npt.ArrayLike | None = None,
    *,
    base_bits: int | None = None,
    seed: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_KEY_BYTES,
) -> KeySwitchKey:
    """Key for ``Enc(x), Enc(y) -> Enc(x^T H y)`` (H = I: the paper's Eq. 44).

    Switches from the 1 x n^2 key ``vec(S^T H S)^T`` to ``target`` (a key of
    plaintext length 1). Its size is (1 + k) * n^2 * l words, so it is only
    practical for short ciphertexts (see docs/he.md).
    """
    if target.m != 1:
        raise ParameterError(f"the inner-product target key must have m = 1, got {target.m}")
    hm = np.eye(sk.m, dtype=np.int64) if h is None else _small_matrix("H", h, (sk.m, sk.m))
    tag = "I" if h is None else _tag(hm)
    kmat = _gram(hm, sk.T)
    source = kmat.T.reshape(1, -1)  # vec() stacks columns: entry (i, j) at j*n + i
    b = sk.params.base_bits if base_bits is None else base_bits
    M, added = switching_matrix(
        sk.params, np.ascontiguousarray(source), target, base_bits=b, seed=seed, max_bytes=max_bytes
    )
    return KeySwitchKey(
        sk.params,
        f"inner:{sk.key_id}:{tag}",
        sk.key_id,
        target.key_id,
        sk.n * sk.n,
        1,
        b,
        M,
        added,
    )


def _gram(hm: I64Array, t: I64Array) -> npt.NDArray[np.uint64]:
    """``S^T H S`` for ``S = [I, T]`` by blocks: [[H, H T], [T^T H, T^T H T]] (mod 2^64)."""
    hu, tu = hm.astype(np.uint64), t.astype(np.uint64)
    ht = hu @ tu
    top = np.concatenate([hu, ht], axis=1)
    bottom = np.concatenate([tu.T @ hu, tu.T @ ht], axis=1)
    return np.concatenate([top, bottom], axis=0)


def inner_product_noise_bound(a: Ciphertext, b: Ciphertext, h_l1: int, row_l1: int) -> int:
    """Worst-case noise of ``round(vec(c1 c2^T) / w)`` under ``vec(S^T H S)`` (before switching).

    With ``S c = w x + e + q k`` over the integers (|k| <= (L + 2) // 2 for a
    row l1 norm L of S), dividing the exact product by w leaves
    ``w x^T H y + x^T H e2 + e1^T H y + e1^T H e2 / w + t (k1^T H e2 + e1^T H k2)``
    modulo q, plus the rounding error |vec(S^T H S)|_1 / 2 <= h_l1 L^2 / 2.
    """
    p = a.params
    x1 = a.value_bound if a.value_bound is not None else p.t // 2
    x2 = b.value_bound if b.value_bound is not None else p.t // 2
    e1, e2 = a.noise_bound, b.noise_bound
    kk = (row_l1 + 2) // 2
    per_term = x1 * e2 + e1 * x2 + -(-(e1 * e2) // p.w) + p.t * (kk * e2 + e1 * kk)
    return h_l1 * per_term + -(-(h_l1 * row_l1 * row_l1) // 2) + 1


def inner_product(
    a: Ciphertext, b: Ciphertext, key: KeySwitchKey, h: npt.ArrayLike | None = None
) -> Ciphertext:
    """``Enc(x^T H y)`` from ``Enc(x)`` and ``Enc(y)``: paper Eq. 44, then a key switch.

    Both ciphertexts must be single (1-D) and under the key the ``key`` was made
    for. The noise check uses the declared value bounds (t/2 when unknown).
    """
    a.check_compatible(b)
    if a.data.ndim != 1 or b.data.ndim != 1:
        raise ParameterError("inner_product takes two single ciphertexts (1-D data)")
    if h is None:
        tag, h_l1 = "I", a.m
    else:
        hm = _small_matrix("H", h, (a.m, a.m))
        tag, h_l1 = _tag(hm), int(np.abs(hm).sum())
    if key.source != f"inner:{a.key_id}:{tag}" or key.params != a.params:
        raise KeyMismatchError("this inner-product key was not made for this H and key")
    p = a.params
    row_l1 = 1 + p.lwe_dim * p.secret_max
    bound = inner_product_noise_bound(a, b, h_l1, row_l1) + key.added_noise
    check_noise(
        p,
        "inner_product",
        bound,
        "declare smaller value_bound on the inputs, lower plaintext_bits, or use a "
        "larger base_bits",
    )
    vb = (
        None
        if a.value_bound is None or b.value_bound is None
        else (h_l1 * a.value_bound * b.value_bound)
    )
    _check_value(p, "inner_product", vb)
    shift = 64 - p.plaintext_bits
    tensor = get_kernels().tensor_round(a.data, b.data, shift)
    data = _switch_rows(key, tensor[None, :])[0]
    return Ciphertext(p, key.target_id, 1, data, bound, vb)
