"""The paper's two encryption strategies for a layer's weights (Sec. V-B2, Figs. 5-6).

* ``"element-wise"`` (Fig. 5): every weight ``W[..., f]`` and every bias
  ``B[f]`` becomes its own ciphertext of a length-1 plaintext (``m = 1``):
  a ``(K, F)`` weight matrix turns into ``(K, F, 1 + k)`` words, the extra
  components living in a new last ("third") dimension.
* ``"matrix-pair-wise"`` (Fig. 6): every row of the ``(K, F)`` matrix, i.e.
  one kernel tap across all ``F`` filters, becomes one ciphertext of a
  length-``F`` plaintext (``m = F``): ``(K, F + k)`` words, so the filter
  axis grows from ``F`` to ``F + k`` ("r + 1" in the paper with k = 1) and
  the layer's outputs stay aligned with its filters.

Both evaluate as one GEMM ``X (R x K) @ C (K x cols)`` of plaintext inputs and
ciphertext words (:mod:`cipherfuse.he.nn.layers`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import KeyMismatchError, ParameterError
from cipherfuse.he.keys import KeySwitchKey, PublicKey, SecretKey
from cipherfuse.he.params import HEParams
from cipherfuse.he.scheme import decrypt, encrypt, encrypt_paper

EncryptionStrategy = Literal["element-wise", "matrix-pair-wise"]
STRATEGIES: tuple[EncryptionStrategy, ...] = ("element-wise", "matrix-pair-wise")
EncryptionKey = KeySwitchKey | PublicKey

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]


def check_strategy(strategy: object) -> EncryptionStrategy:
    """Validate a strategy name."""
    if strategy == "element-wise":
        return "element-wise"
    if strategy == "matrix-pair-wise":
        return "matrix-pair-wise"
    raise ParameterError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def key_params(key: EncryptionKey) -> HEParams:
    """The parameter set of a public encryption key."""
    return key.params


def key_fingerprint(key: EncryptionKey) -> str:
    """Id of the secret key that decrypts what ``key`` encrypts."""
    if isinstance(key, KeySwitchKey):
        return key.target_id
    return key.key_id


def key_plaintext_length(key: EncryptionKey) -> int:
    """Plaintext length m of the ciphertexts ``key`` produces."""
    return key.m_out if isinstance(key, KeySwitchKey) else key.m


def required_m(strategy: EncryptionStrategy, filters: int) -> int:
    """Plaintext length the key must have for ``strategy`` on a layer with ``filters`` outputs."""
    return 1 if strategy == "element-wise" else filters


@dataclass(frozen=True, eq=False)
class EncryptedWeights:
    """A layer's encrypted integer weights ``W`` (shape ``(*kernel, cin, F)`` or ``(in, F)``)
    and bias ``B`` (shape ``(F,)``).

    ``weights`` is a batch of K*F ciphertexts with m = 1 (element-wise) or K
    ciphertexts with m = F (matrix-pair-wise); ``bias`` a batch of F (m = 1) or
    1 (m = F) ciphertexts.
    """

    strategy: EncryptionStrategy
    shape: tuple[int, ...]
    weights: Ciphertext
    bias: Ciphertext

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if len(self.shape) < 2 or min(self.shape) < 1:
            raise ParameterError(f"weight shape must have >= 2 positive dims, got {self.shape}")
        self.weights.check_compatible(self.bias)
        k_in, f = self.fan_in, self.filters
        want = (k_in * f, 1, f, 1) if self.strategy == "element-wise" else (k_in, f, 1, f)
        got = (self.weights.batch, self.weights.m, self.bias.batch, self.bias.m)
        if got != want:
            raise ParameterError(
                f"{self.strategy} weights of shape {self.shape} need (weight batch, m, bias "
                f"batch, m) = {want}, got {got}"
            )

    @property
    def params(self) -> HEParams:
        """Parameter set."""
        return self.weights.params

    @property
    def key_id(self) -> str:
        """Id of the decrypting secret key."""
        return self.weights.key_id

    @property
    def fan_in(self) -> int:
        """K: inputs per output (kernel taps x input channels)."""
        return int(np.prod(self.shape[:-1]))

    @property
    def filters(self) -> int:
        """F: outputs (filters / units)."""
        return int(self.shape[-1])

    @property
    def m(self) -> int:
        """Plaintext words per ciphertext."""
        return self.weights.m

    @property
    def packed(self) -> bool:
        """Whether the filter axis is packed into the ciphertexts."""
        return self.strategy == "matrix-pair-wise"

    def matrix(self) -> U64Array:
        """The ciphertext words as a ``(K, cols)`` matrix for the GEMM."""
        return self.weights.data.reshape(self.fan_in, -1)

    def bias_row(self) -> U64Array:
        """The bias ciphertext words as one row of ``cols`` words."""
        return self.bias.data.reshape(-1)

    def out_tail_shape(self) -> tuple[int, ...]:
        """Trailing shape of one output position: ``(F, 1 + k)`` or ``(F + k,)``."""
        n = self.m + self.params.lwe_dim
        return (self.filters, n) if not self.packed else (n,)


def _pow2_at_least(v: int) -> int:
    return 1 if v <= 1 else 1 << (v - 1).bit_length()


def _derive(seed: bytes, label: bytes) -> bytes:
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ParameterError(
            f"seed must be 32 bytes (or None for fresh randomness), got {seed!r:.40}"
        )
    return hashlib.sha256(b"cipherfuse.he.nn/" + label + b"/" + seed).digest()


def _encrypt_rows(
    key: EncryptionKey, rows: I64Array, value_bound: int, seed: bytes | None
) -> Ciphertext:
    if isinstance(key, KeySwitchKey):
        ct = encrypt_paper(key, rows)
        return replace(ct, value_bound=value_bound)
    return encrypt(key, rows, seed=seed, value_bound=value_bound)


def encrypt_weights(
    weight: npt.ArrayLike,
    bias: npt.ArrayLike,
    key: EncryptionKey,
    *,
    strategy: EncryptionStrategy = "element-wise",
    seed: bytes | None = None,
) -> EncryptedWeights:
    """Encrypt integer weights and bias with ``strategy``.

    ``key`` is the paper's identity switching key ``M`` (deterministic
    :func:`cipherfuse.he.encrypt_paper`) or a :class:`PublicKey` (randomized
    :func:`cipherfuse.he.encrypt`). Its plaintext length must be 1
    (element-wise) or the number of filters (matrix-pair-wise).

    The declared value bound of the ciphertexts is the next power of two at
    or above max|W| (resp. max|B|): it is public (it rides with the
    ciphertexts) and is what the overflow checks use; it reveals only the
    magnitude's bit length.
    """
    strat = check_strategy(strategy)
    w = np.asarray(weight)
    b = np.asarray(bias)
    if w.dtype.kind not in "iu" or w.ndim < 2 or b.dtype.kind not in "iu":
        raise ParameterError(
            f"weights must be an integer array of >= 2 dims and bias an integer vector, got "
            f"{w.dtype} {w.shape} and {b.dtype} {b.shape}"
        )
    f = int(w.shape[-1])
    if b.shape != (f,):
        raise ParameterError(f"bias must have shape ({f},), got {b.shape}")
    if isinstance(key, KeySwitchKey) and key.source != "identity":
        raise KeyMismatchError(
            "a switching key used for encryption must be the identity key M "
            "(cipherfuse.he.identity_switch_key)"
        )
    m = required_m(strat, f)
    if key_plaintext_length(key) != m:
        raise ParameterError(
            f"the {strat} strategy on a layer with {f} outputs needs a key for plaintexts of "
            f"length {m}, but the key encrypts length {key_plaintext_length(key)}; generate it "
            f"with he.keygen(params, m={m})"
        )
    w64 = w.astype(np.int64)
    b64 = b.astype(np.int64)
    wvb = _pow2_at_least(int(np.abs(w64).max(initial=0)))
    bvb = _pow2_at_least(int(np.abs(b64).max(initial=0)))
    k_in = int(np.prod(w.shape[:-1]))
    rows = w64.reshape(k_in * f, 1) if strat == "element-wise" else w64.reshape(k_in, f)
    brows = b64.reshape(f, 1) if strat == "element-wise" else b64.reshape(1, f)
    seed_w = None if seed is None else _derive(seed, b"weights")
    seed_b = None if seed is None else _derive(seed, b"bias")
    cw = _encrypt_rows(key, rows, wvb, seed_w)
    cb = _encrypt_rows(key, brows, bvb, seed_b)
    return EncryptedWeights(strat, tuple(int(d) for d in w.shape), cw, cb)


def decrypt_weights(sk: SecretKey, enc: EncryptedWeights) -> tuple[I64Array, I64Array]:
    """The integer weights and bias back (needs the secret key)."""
    w = decrypt(sk, enc.weights).reshape(enc.shape)
    b = decrypt(sk, enc.bias).reshape(enc.filters)
    return w, b
