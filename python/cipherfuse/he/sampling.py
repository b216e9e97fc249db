"""Deterministic, cryptographically strong sampling from a 32-byte seed.

Every random object (masks ``A``, secrets ``T``, errors ``E``, encryption
randomness) is drawn from a SHAKE-256 stream keyed by a seed and a purpose
label, so it can be regenerated from the seed (the "pseudo-random parts from a
seed" layout) and tests are reproducible. Seeds default to ``os.urandom``.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import numpy.typing as npt

from cipherfuse.he.backend import CppKernels
from cipherfuse.he.errors import ParameterError
from cipherfuse.he.params import HEParams

SEED_BYTES = 32
_CHUNK_WORDS = 1 << 20
#: The C++ ChaCha20 keystream (all threads); not switched by ``use_kernels``: the
#: samples are the same whichever kernels do the arithmetic.
_KEYSTREAM = CppKernels()

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]


def fresh_seed() -> bytes:
    """A new 32-byte seed from the operating system's CSPRNG."""
    return os.urandom(SEED_BYTES)


class Sampler:
    """A labelled SHAKE-256 stream: ``Sampler(seed).child("A").uniform_u64((k, n))``."""

    def __init__(self, seed: bytes | None = None, label: str = "cipherfuse") -> None:
        if seed is None:
            seed = fresh_seed()
        if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
            raise ParameterError(f"seed must be {SEED_BYTES} bytes, got {seed!r:.40}")
        self.seed = bytes(seed)
        self.label = label
        self._counter = 0

    def child(self, label: str) -> Sampler:
        """An independent stream for a sub-purpose (deterministic in seed and labels)."""
        return Sampler(self.seed, f"{self.label}/{label}")

    def _words(self, count: int) -> U64Array:
        """`count` uniform 64-bit words; successive calls continue the stream.

        A ChaCha20 key is derived per call with SHAKE-256 from the seed, the
        label and a call counter; the words are the ChaCha20 keystream (C++).
        """
        self._counter += 1
        xof = hashlib.shake_256()
        xof.update(b"cipherfuse-sampler-v1\x00")
        xof.update(self.seed)
        xof.update(self.label.encode())
        xof.update(self._counter.to_bytes(8, "little"))
        material = xof.digest(44)
        blocks = -(-count // 8)
        stream = _KEYSTREAM.chacha20(material[:32], material[32:], 0, blocks)
        return stream.view("<u8")[:count].astype(np.uint64, copy=False)

    def uniform_u64(self, shape: tuple[int, ...]) -> U64Array:
        """Uniform over Z_(2^64)."""
        n = int(np.prod(shape, dtype=np.int64))
        return self._words(n).reshape(shape)

    def uniform_range(self, shape: tuple[int, ...], high: int) -> I64Array:
        """Uniform over {0, ..., high} (exact, by rejection)."""
        if not 0 <= high < (1 << 31):
            raise ParameterError(f"high must be in [0, 2^31), got {high}")
        n = int(np.prod(shape, dtype=np.int64))
        span = high + 1
        bits = max(1, span.bit_length())
        mask = np.uint64((1 << bits) - 1)
        out = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            need = n - filled
            words = self._words(min(max(2 * need, 64), _CHUNK_WORDS))
            cand = (words & mask).astype(np.int64)
            cand = cand[cand < span][:need]
            out[filled : filled + cand.size] = cand
            filled += cand.size
        return out.reshape(shape)

    def ternary(self, shape: tuple[int, ...]) -> I64Array:
        """Uniform over {-1, 0, 1}."""
        return self.uniform_range(shape, 2) - 1

    def cbd(self, shape: tuple[int, ...], eta: int) -> I64Array:
        """Centred binomial: popcount(a) - popcount(b) for two eta-bit words (|x| <= eta)."""
        if not 1 <= eta <= 32:
            raise ParameterError(f"eta must be in [1, 32], got {eta}")
        n = int(np.prod(shape, dtype=np.int64))
        words = self._words(n)
        mask = np.uint64((1 << eta) - 1)
        a = np.bitwise_count(words & mask).astype(np.int64)
        b = np.bitwise_count((words >> np.uint64(32)) & mask).astype(np.int64)
        out: I64Array = (a - b).reshape(shape)
        return out

    # ------------------------------------------------------- by parameter set
    def secret(self, params: HEParams, shape: tuple[int, ...]) -> I64Array:
        """Entries of the secret T (and of the encryption randomness r)."""
        if params.secret_dist == "ternary":
            return self.ternary(shape)
        return self.uniform_range(shape, params.secret_bound)

    def error(self, params: HEParams, shape: tuple[int, ...]) -> I64Array:
        """Entries of E and of fresh encryption noise."""
        if params.error_dist == "cbd":
            return self.cbd(shape, params.error_bound)
        return self.uniform_range(shape, params.error_bound)

    def mask(self, params: HEParams, shape: tuple[int, ...]) -> U64Array:
        """Entries of the public mask A (uint64, i.e. values mod 2^64)."""
        if params.mask_dist == "uniform":
            return self.uniform_u64(shape)
        return self.uniform_range(shape, params.mask_bound).astype(np.uint64)
