"""Ciphertext tensors: a grid of IVHE ciphertexts laid out like a feature map.

``data`` has shape ``(*lead, m + k)``: every position of ``lead`` holds one
ciphertext of length ``m + k`` under the secret ``S = [I_m, T]``.

* element-wise strategy (paper Fig. 5): ``m = 1``, every scalar of the
  feature map is its own ciphertext, ``packed = False``; the plaintext has
  shape ``lead``.
* matrix-pair-wise strategy (paper Fig. 6): the filter axis is packed into
  one ciphertext, ``m = filters``, ``packed = True``; the plaintext has shape
  ``(*lead, m)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import KeyMismatchError, ParameterError
from cipherfuse.he.keys import SecretKey
from cipherfuse.he.params import HEParams
from cipherfuse.he.scheme import decrypt

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class CipherTensor:
    """A feature map in cipherspace.

    Attributes:
        params: parameter set.
        key_id: id of the secret key that decrypts every ciphertext.
        m: plaintext words per ciphertext (1 for the element-wise strategy).
        packed: whether the last plaintext axis is packed into the ciphertexts.
        data: uint64 words, shape ``(*lead, m + k)`` (read-only).
        noise_bound: worst-case |S c - w x| of every ciphertext.
        value_bound: bound on |x| (``None``: unknown).
    """

    params: HEParams
    key_id: str
    m: int
    packed: bool
    data: U64Array
    noise_bound: int
    value_bound: int | None

    def __post_init__(self) -> None:
        n = self.m + self.params.lwe_dim
        if self.data.dtype != np.uint64 or self.data.ndim < 2 or self.data.shape[-1] != n:
            raise ParameterError(
                f"cipher tensor data must be uint64 of shape (..., m + k = {n}), got "
                f"{self.data.dtype} {self.data.shape}"
            )
        if not self.packed and self.m != 1:
            raise ParameterError("an unpacked (element-wise) cipher tensor must have m = 1")
        if not 0 <= self.noise_bound < self.params.half_w:
            raise ParameterError(
                f"noise_bound {self.noise_bound} outside [0, w/2 = {self.params.half_w})"
            )
        self.data.setflags(write=False)

    @property
    def n(self) -> int:
        """Ciphertext length m + k."""
        return self.m + self.params.lwe_dim

    @property
    def plain_shape(self) -> tuple[int, ...]:
        """Shape of the plaintext tensor this encrypts."""
        lead = tuple(int(d) for d in self.data.shape[:-1])
        return (*lead, self.m) if self.packed else lead

    def leading(self) -> U64Array:
        """The first m words of every ciphertext (the paper's 'leading terms'), plaintext-shaped."""
        top = self.data[..., : self.m]
        return top if self.packed else top[..., 0]

    def trailing(self) -> U64Array:
        """The last k words of every ciphertext, shape ``(*lead, k)``."""
        return self.data[..., self.m :]

    def as_ciphertext(self) -> Ciphertext:
        """All ciphertexts as one :class:`cipherfuse.he.Ciphertext` batch."""
        return Ciphertext(
            self.params,
            self.key_id,
            self.m,
            np.ascontiguousarray(self.data.reshape(-1, self.n)),
            self.noise_bound,
            self.value_bound,
        )


def decrypt_tensor(sk: SecretKey, ct: CipherTensor) -> I64Array:
    """Decrypt every ciphertext (needs the secret key); plaintext-shaped int64."""
    if sk.key_id != ct.key_id or sk.params != ct.params:
        raise KeyMismatchError(
            f"the tensor is under key {ct.key_id} ({ct.params.name}), not {sk.key_id}"
        )
    flat = decrypt(sk, ct.as_ciphertext())
    return flat.reshape(ct.plain_shape)


def scale_down(ct: CipherTensor) -> I64Array:
    """The verifier's keyless 'scaling-down' (paper Fig. 5b): round(leading / w), centred mod t.

    This is decryption with the trailing key part ``T`` taken as zero. It equals
    the plaintext exactly iff ``|e - T c_tail| < w/2`` for every ciphertext, which
    :func:`leading_is_plaintext` checks from public data. That holds for the
    ``paper`` parameters (small non-negative ``A``, ``T``) and is exactly why they
    hide nothing; for ``secure`` parameters the tail is uniform and the result is
    noise.
    """
    p = ct.params
    shift = np.uint64(64 - p.plaintext_bits)
    x = ((ct.leading() + np.uint64(p.half_w)) >> shift).astype(np.int64)
    x[x >= p.t // 2] -= p.t
    return x


def tail_mass(ct: CipherTensor) -> npt.NDArray[np.float64]:
    """Public bound on ``|T c_tail|`` per ciphertext: secret_max * sum |tail| (float64).

    The tail is read as signed 64-bit words; float64 keeps the magnitude (an
    upper bound up to rounding) without overflowing.
    """
    tail = ct.trailing().view(np.int64).astype(np.float64)
    mass: npt.NDArray[np.float64] = np.abs(tail).sum(axis=-1) * float(ct.params.secret_max)
    return mass


def leading_is_plaintext(ct: CipherTensor) -> npt.NDArray[np.bool_]:
    """Per ciphertext: whether :func:`scale_down` is guaranteed exact (publicly checkable)."""
    ok: npt.NDArray[np.bool_] = tail_mass(ct) + float(ct.noise_bound) < float(ct.params.half_w) * (
        1 - 2.0**-40
    )
    return ok


def uniform_tail_mass(ct: CipherTensor) -> int | None:
    """If every tail word is non-negative and small, the largest ``secret_max * sum(tail)``.

    A fast whole-tensor version of :func:`tail_mass` (two reductions instead of a
    float64 copy): ``None`` when some tail word is negative or the tails are too
    large for the quick bound, in which case callers fall back to the per-ciphertext
    check.
    """
    tail = ct.trailing().view(np.int64)
    if tail.size == 0:
        return 0
    smax = ct.params.secret_max
    k = int(tail.shape[-1])
    if int(tail.min()) < 0:
        return None
    tmax = int(tail.max())
    if tmax * k * smax >= ct.params.half_w:
        return None
    total = tmax if k == 1 else int(tail.sum(axis=-1).max())
    return total * smax


def all_leading_plaintext(ct: CipherTensor) -> bool:
    """Whether :func:`scale_down` is guaranteed exact for every ciphertext of ``ct``."""
    mass = uniform_tail_mass(ct)
    if mass is not None and mass + ct.noise_bound < ct.params.half_w:
        return True
    return bool(leading_is_plaintext(ct).all())
