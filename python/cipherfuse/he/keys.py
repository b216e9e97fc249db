"""Keys of the integer-vector HE scheme and their generation.

Notation (paper Eqs. 1-7): a ciphertext ``c`` of a plaintext ``x`` in Z_t^m under
the secret key ``S = [I_m, T]`` (``T`` is m x k) satisfies ``S c = w x + e``
(mod 2^64). A key-switching matrix ``M = [S* - T'A + E; A]`` turns a
ciphertext under a source key into one under ``[I, T']`` (Eq. 3, Eq. 6).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cipherfuse.he.backend import get_kernels
from cipherfuse.he.errors import ParameterError, ResourceLimitExceeded
from cipherfuse.he.params import HEParams
from cipherfuse.he.sampling import Sampler
from cipherfuse.validation import strict_int

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

DEFAULT_MAX_KEY_BYTES = 4 << 30
"""Key-switching matrices larger than this raise ResourceLimitExceeded (override per call)."""


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:24]


@dataclass(frozen=True, eq=False)
class SecretKey:
    """The secret ``T`` (m x k, small integers); the full key is ``S' = [I_m, T]``."""

    params: HEParams
    T: I64Array
    key_id: str = field(default="")

    def __post_init__(self) -> None:
        t = np.asarray(self.T)
        if t.ndim != 2 or t.shape[1] != self.params.lwe_dim or t.dtype != np.int64:
            raise ParameterError(
                f"T must be an int64 matrix with lwe_dim={self.params.lwe_dim} columns, "
                f"got {t.dtype} {t.shape}"
            )
        t.setflags(write=False)
        kid = _digest(b"sk", self.params.fingerprint().encode(), t.tobytes())
        if self.key_id and self.key_id != kid:
            raise ParameterError("key_id does not match the key material")
        object.__setattr__(self, "key_id", kid)

    @property
    def m(self) -> int:
        """Plaintext length."""
        return int(self.T.shape[0])

    @property
    def n(self) -> int:
        """Ciphertext length m + k."""
        return self.m + self.params.lwe_dim

    def matrix(self) -> I64Array:
        """S' = [I_m, T] as an m x (m + k) int64 matrix."""
        return np.concatenate([np.eye(self.m, dtype=np.int64), self.T], axis=1)

    def row_l1_max(self) -> int:
        """Data-independent bound on the l1 norm of a row of S': 1 + k * max|T|."""
        return 1 + self.params.lwe_dim * self.params.secret_max


@dataclass(frozen=True, eq=False)
class PublicKey:
    """Public encryption key ``P = [B0; A0]`` with ``B0 = -T A0 + E0`` (Lindner–Peikert).

    ``encrypt`` computes ``c = P r + [w x + e1; e2]`` for fresh small ``r``,
    ``e1``, ``e2``: randomized, IND-CPA under LWE for secure parameters.
    """

    params: HEParams
    key_id: str
    m: int
    P: U64Array

    def __post_init__(self) -> None:
        k = self.params.lwe_dim
        if self.P.dtype != np.uint64 or self.P.shape != (self.m + k, k):
            raise ParameterError(
                f"public matrix must be uint64 of shape ({self.m + k}, {k}), got "
                f"{self.P.dtype} {self.P.shape}"
            )
        self.P.setflags(write=False)


@dataclass(frozen=True, eq=False)
class KeySwitchKey:
    """``M = [S* - T'A + E; A]``: switches ciphertexts of ``source`` to the key ``target_id``.

    Attributes:
        source: what the source key is, e.g. ``"identity"`` (paper Eq. 6
            encryption), ``"sk:<id>"`` (key switch), ``"linear:<id>:<G>"``,
            ``"inner:<id>:<H>"``.
        applies_to: key id of the ciphertexts this key accepts ("" for identity).
        n_in: length of the source ciphertext.
        m_out: plaintext length of the result; the result has m_out + k words.
        base_bits: digit base of the decomposition.
        added_noise: worst-case noise the switch adds, e_max * n_in * l * (2^b - 1).
    """

    params: HEParams
    source: str
    applies_to: str
    target_id: str
    n_in: int
    m_out: int
    base_bits: int
    M: U64Array
    added_noise: int

    def __post_init__(self) -> None:
        strict_int(
            self.base_bits, "base_bits", minimum=1, maximum=16, exact=True, error=ParameterError
        )
        for name, value in (("n_in", self.n_in), ("m_out", self.m_out)):
            strict_int(value, name, minimum=1, exact=True, error=ParameterError)
        l = -(-64 // self.base_bits)
        shape = (self.m_out + self.params.lwe_dim, self.n_in * l)
        if self.M.dtype != np.uint64 or self.M.shape != shape:
            raise ParameterError(
                f"key-switching matrix must be uint64 {shape}, got {self.M.dtype} {self.M.shape}"
            )
        self.M.setflags(write=False)

    @property
    def nbytes(self) -> int:
        """Size of M in bytes."""
        return int(self.M.nbytes)


# ------------------------------------------------------------------ generation
def keygen(params: HEParams, m: int, *, seed: bytes | None = None) -> SecretKey:
    """A fresh secret key for plaintexts of length ``m``."""
    strict_int(
        m, "m (plaintext length)", minimum=1, maximum=1 << 20, exact=True, error=ParameterError
    )
    sampler = Sampler(seed).child("secret")
    return SecretKey(params, sampler.secret(params, (m, params.lwe_dim)))


def public_keygen(sk: SecretKey, *, seed: bytes | None = None) -> PublicKey:
    """The public encryption key of ``sk`` (k x k mask, so security rests on dimension k)."""
    params = sk.params
    k = params.lwe_dim
    sampler = Sampler(seed).child("public")
    a0 = sampler.child("A").mask(params, (k, k))
    e0 = sampler.child("E").error(params, (sk.m, k))
    ta = get_kernels().gemm_small_wide(sk.T, a0)
    b0 = e0.astype(np.uint64) - ta
    return PublicKey(params, sk.key_id, sk.m, np.concatenate([b0, a0], axis=0))


def gadget_powers(base_bits: int) -> U64Array:
    """[2^(b(l-1)), ..., 2^b, 1] mod 2^64: the weights that recompose the digits (Eq. 5)."""
    l = -(-64 // base_bits)
    return np.array(
        [(1 << (base_bits * (l - 1 - j))) % (1 << 64) for j in range(l)], dtype=np.uint64
    )


def switching_matrix(
    params: HEParams,
    source_matrix: U64Array,
    target: SecretKey,
    *,
    base_bits: int | None = None,
    seed: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_KEY_BYTES,
) -> tuple[U64Array, int]:
    """``M = [S* - T A + E; A]`` for a source key (m x n, uint64 mod 2^64) and target ``[I, T]``.

    Returns ``(M, added_noise_bound)``. ``S*`` is the source key times the
    gadget (Eq. 5), so that ``S* c* = S c``; then ``[I, T] M = S* + E`` (Eq. 7).
    """
    b = params.base_bits if base_bits is None else base_bits
    strict_int(b, "base_bits", minimum=1, maximum=16, exact=True, error=ParameterError)
    src = np.asarray(source_matrix)
    if src.dtype != np.uint64 or src.ndim != 2:
        raise ParameterError(f"source key must be a 2-D uint64 matrix, got {src.dtype} {src.shape}")
    m, n = src.shape
    if m != target.m:
        raise ParameterError(
            f"source key has {m} rows but the target key encrypts length-{target.m} plaintexts"
        )
    l = -(-64 // b)
    k = params.lwe_dim
    size = (m + k) * n * l * 8
    if size > max_bytes:
        raise ResourceLimitExceeded(
            f"key-switching matrix would take {size / 2**20:.1f} MiB ((m+k)={m + k} rows x "
            f"n*l={n * l} columns), above max_bytes={max_bytes / 2**20:.1f} MiB; use a larger "
            "base_bits (fewer digits) or raise max_bytes"
        )
    sampler = Sampler(seed).child("switch")
    a = sampler.child("A").mask(params, (k, n * l))
    e = sampler.child("E").error(params, (m, n * l))
    s_star = (src[:, :, None] * gadget_powers(b)[None, None, :]).reshape(m, n * l)
    top = s_star + e.astype(np.uint64) - get_kernels().gemm_small_wide(target.T, a)
    added = params.error_max * n * l * ((1 << b) - 1)
    return np.concatenate([top, a], axis=0), added


def identity_switch_key(
    sk: SecretKey,
    *,
    base_bits: int | None = None,
    seed: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_KEY_BYTES,
) -> KeySwitchKey:
    """The paper's public key ``M`` (Eq. 3 with S = I): ``c' = M (w x)*`` encrypts ``x``.

    Encryption with it (:func:`cipherfuse.he.encrypt_paper`) is deterministic,
    hence not IND-CPA: see the dictionary-attack test. Kept for reproduction.
    """
    b = sk.params.base_bits if base_bits is None else base_bits
    ident = np.eye(sk.m, dtype=np.uint64)
    M, added = switching_matrix(sk.params, ident, sk, base_bits=b, seed=seed, max_bytes=max_bytes)
    return KeySwitchKey(sk.params, "identity", "", sk.key_id, sk.m, sk.m, b, M, added)


def switch_key(
    source: SecretKey,
    target: SecretKey,
    *,
    base_bits: int | None = None,
    seed: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_KEY_BYTES,
) -> KeySwitchKey:
    """Switches ciphertexts of ``source`` to ``target`` (same plaintext length)."""
    if source.params != target.params:
        raise ParameterError("source and target keys use different parameter sets")
    b = source.params.base_bits if base_bits is None else base_bits
    src = source.matrix().astype(np.uint64)
    M, added = switching_matrix(
        source.params, src, target, base_bits=b, seed=seed, max_bytes=max_bytes
    )
    return KeySwitchKey(
        source.params,
        f"sk:{source.key_id}",
        source.key_id,
        target.key_id,
        source.n,
        target.m,
        b,
        M,
        added,
    )
