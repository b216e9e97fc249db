"""Correlated randomness from pairwise ChaCha20 keys (no communication after setup).

Party ``i`` shares key ``k_i`` with party ``i + 1`` (so it holds ``k_i`` and
``k_{i-1}``). Every protocol step draws from a counter that all three parties advance
identically, so ``F(k_i, ctr)`` is the same stream at both holders of ``k_i``:

* :meth:`PairwiseRandomness.zero_share` ``alpha_i = F(k_i) - F(k_{i-1})``: the three
  ``alpha_i`` sum to zero mod 2^64 and each looks uniform to the other two parties;
* :meth:`PairwiseRandomness.zero_share_xor` the boolean counterpart (XOR);
* :meth:`PairwiseRandomness.with_next` / :meth:`with_prev`: words known to exactly the
  two holders of ``k_i`` / ``k_{i-1}``.

``F(k, ctr)`` is the ChaCha20 keystream (RFC 8439) of key ``k`` and a 96-bit nonce made
of a domain tag and the counter; keys are 32 random bytes from :func:`secrets.token_bytes`
(or derived from an explicit seed in tests and benchmarks). The keystream comes from
OpenSSL's vectorised ChaCha20 (through ``cryptography``), written straight into the
output array; it is the same stream as ``cipherfuse._core.chacha20`` (tested), about
three times faster per byte. One keystream call per key and protocol step: a boolean
zero-sharing is one keystream XORed into the other in a single pass.
"""

from __future__ import annotations

import hashlib
import secrets
import struct

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from cipherfuse.mpc.errors import ProtocolAbort
from cipherfuse.mpc.transport import PARTIES, Transport

U64Array = npt.NDArray[np.uint64]
KEY_BYTES = 32


def _keystream_xor(key: bytes, nonce: bytes, data: U64Array) -> U64Array:
    """``data ^ keystream(key, nonce)`` word by word (a new array; ``data`` is unchanged)."""
    cipher = Cipher(algorithms.ChaCha20(key, b"\x00\x00\x00\x00" + nonce), mode=None)
    out = np.empty(data.size, dtype="<u8")
    if data.size:
        source = np.ascontiguousarray(data).view(np.uint8)
        cipher.encryptor().update_into(source.data, out.view(np.uint8).data)
    words: U64Array = out.astype(np.uint64, copy=False)
    return words


def prg_words(key: bytes, nonce: bytes, count: int) -> U64Array:
    """``count`` little-endian uint64 words of the ChaCha20 keystream of ``key`` and ``nonce``.

    The stream starts at block counter 0 (RFC 8439 Sec. 2.4 with a 96-bit nonce).
    """
    if len(key) != KEY_BYTES or len(nonce) != 12:
        raise ValueError("ChaCha20 needs a 32-byte key and a 12-byte nonce")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    # np.zeros of a large size maps zero pages lazily: reading it costs no memory traffic
    return _keystream_xor(key, nonce, np.zeros(count, dtype="<u8"))


def _nonce(domain: int, counter: int) -> bytes:
    return struct.pack("<IQ", domain, counter)


_DOMAIN_STEP = 0x4D504331  # "MPC1": per-step protocol randomness


class PairwiseRandomness:
    """Party ``party``'s two pairwise keys and the shared step counter."""

    def __init__(self, party: int, key_with_next: bytes, key_with_prev: bytes) -> None:
        if not 0 <= party < PARTIES:
            raise ValueError(f"party must be 0, 1 or 2, got {party}")
        if len(key_with_next) != KEY_BYTES or len(key_with_prev) != KEY_BYTES:
            raise ValueError("pairwise keys are 32 bytes")
        self.party = party
        self._next = key_with_next
        self._prev = key_with_prev
        self._counter = 0

    def _draw(self, key: bytes, count: int) -> U64Array:
        return prg_words(key, _nonce(_DOMAIN_STEP, self._counter), count)

    def _advance(self) -> int:
        self._counter += 1
        return self._counter

    def pair(self, count: int) -> tuple[U64Array, U64Array]:
        """``(F(k_i), F(k_{i-1}))`` for one fresh counter value."""
        self._advance()
        return self._draw(self._next, count), self._draw(self._prev, count)

    def zero_share(self, count: int) -> U64Array:
        """This party's ``alpha_i``: the three parties' words sum to 0 mod 2^64."""
        mine, prev = self.pair(count)
        with np.errstate(over="ignore"):
            np.subtract(mine, prev, out=mine)
        return mine

    def zero_share_xor(self, count: int) -> U64Array:
        """This party's boolean zero-sharing word: the three XOR to 0."""
        self._advance()
        nonce = _nonce(_DOMAIN_STEP, self._counter)
        return _keystream_xor(self._prev, nonce, prg_words(self._next, nonce, count))

    def with_next(self, count: int) -> U64Array:
        """Words this party and party ``i + 1`` both draw (``F(k_i)``); fresh counter.

        Only that one keystream is generated (the counter advances as for :meth:`pair`).
        """
        self._advance()
        return self._draw(self._next, count)

    def with_prev(self, count: int) -> U64Array:
        """Words this party and party ``i - 1`` both draw (``F(k_{i-1})``); fresh counter.

        Only that one keystream is generated (the counter advances as for :meth:`pair`).
        """
        self._advance()
        return self._draw(self._prev, count)


def derive_key(seed: bytes, label: str) -> bytes:
    """A 32-byte key derived from ``seed`` (SHA-256 with a label): for reproducible runs."""
    return hashlib.sha256(b"cipherfuse.mpc.key\0" + label.encode() + b"\0" + seed).digest()


def setup_randomness(transport: Transport, *, seed: bytes | None = None) -> PairwiseRandomness:
    """Agree on the pairwise keys over ``transport``: party ``i`` sends ``k_i`` to ``i + 1``.

    One message of 32 bytes per party. ``seed`` (tests, benchmarks) makes ``k_i``
    reproducible; without it ``k_i`` comes from :func:`secrets.token_bytes`. The channel
    must be confidential (the networked transport encrypts); an eavesdropper on both
    channels of a pair would otherwise learn that pair's key.
    """
    i = transport.party
    mine = derive_key(seed, f"k{i}") if seed is not None else secrets.token_bytes(KEY_BYTES)
    transport.send((i + 1) % PARTIES, mine)
    prev = transport.recv((i - 1) % PARTIES)
    if len(prev) != KEY_BYTES:
        raise ProtocolAbort(
            f"party {(i - 1) % PARTIES} sent a {len(prev)}-byte key", blamed=(i - 1) % PARTIES
        )
    return PairwiseRandomness(i, mine, prev)


__all__ = [
    "KEY_BYTES",
    "PairwiseRandomness",
    "derive_key",
    "prg_words",
    "setup_randomness",
]
