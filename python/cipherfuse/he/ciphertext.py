"""The ciphertext type: data, the key it decrypts under, and its noise bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cipherfuse.he.errors import KeyMismatchError, ParameterError
from cipherfuse.he.params import HEParams

U64Array = npt.NDArray[np.uint64]


@dataclass(frozen=True, eq=False)
class Ciphertext:
    """One ciphertext (``data`` 1-D, length m + k) or a batch (``data`` 2-D, one per row).

    Attributes:
        params: the parameter set.
        key_id: id of the secret key ``[I_m, T]`` that decrypts it.
        m: plaintext length.
        data: uint64 words mod 2^64 (read-only).
        noise_bound: a worst-case bound on |S c - w x| (data-independent: it
            depends only on parameters and the operations applied, never on
            plaintexts or secrets, so it can be published with the ciphertext).
        value_bound: a declared bound on |x| (``None``: unknown, arithmetic
            wraps modulo t). Used for overflow checks and ct x ct noise.
    """

    params: HEParams
    key_id: str
    m: int
    data: U64Array
    noise_bound: int
    value_bound: int | None = None

    def __post_init__(self) -> None:
        if self.data.dtype != np.uint64 or self.data.ndim not in (1, 2):
            raise ParameterError(
                f"ciphertext data must be a 1-D or 2-D uint64 array, got {self.data.dtype} "
                f"{self.data.shape}"
            )
        if self.data.shape[-1] != self.m + self.params.lwe_dim:
            raise ParameterError(
                f"ciphertext length {self.data.shape[-1]} != m + k = {self.m + self.params.lwe_dim}"
            )
        if not 0 <= self.noise_bound < self.params.half_w:
            raise ParameterError(
                f"noise_bound must be in [0, w/2 = {self.params.half_w}), got "
                f"{self.noise_bound}: such a ciphertext cannot be decrypted reliably"
            )
        if self.value_bound is not None and not 0 <= self.value_bound < self.params.t // 2:
            raise ParameterError(
                f"value_bound must be in [0, t/2 = {self.params.t // 2}), got {self.value_bound}"
            )
        self.data.setflags(write=False)

    @property
    def batch(self) -> int | None:
        """Number of ciphertexts in a batch, ``None`` for a single one."""
        return None if self.data.ndim == 1 else int(self.data.shape[0])

    @property
    def n(self) -> int:
        """Ciphertext length m + k."""
        return int(self.data.shape[-1])

    def __len__(self) -> int:
        if self.data.ndim == 1:
            raise TypeError("a single ciphertext has no len(); check .batch")
        return int(self.data.shape[0])

    def __getitem__(self, index: int | slice) -> Ciphertext:
        """Select ciphertexts of a batch (same key and bounds)."""
        if self.data.ndim == 1:
            raise TypeError("a single ciphertext cannot be indexed")
        return Ciphertext(
            self.params,
            self.key_id,
            self.m,
            self.data[index].copy(),
            self.noise_bound,
            self.value_bound,
        )

    def check_compatible(self, other: Ciphertext) -> None:
        """Raises KeyMismatchError unless both decrypt under the same key."""
        if self.params != other.params:
            raise KeyMismatchError(
                f"ciphertexts use different parameter sets ({self.params.name!r} vs "
                f"{other.params.name!r})"
            )
        if self.key_id != other.key_id or self.m != other.m:
            raise KeyMismatchError(
                f"ciphertexts belong to different keys ({self.key_id} m={self.m} vs "
                f"{other.key_id} m={other.m}); key-switch one of them first"
            )
