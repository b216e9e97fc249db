"""The C++ ChaCha20 against the RFC 8439 vector and the `cryptography` package."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

import cipherfuse._core as _core


def test_rfc8439_block_vector() -> None:
    key = bytes(range(32))
    nonce = bytes([0, 0, 0, 9, 0, 0, 0, 0x4A, 0, 0, 0, 0])
    block = bytes(_core.chacha20(key, nonce, 1, 1))
    assert block[:16].hex() == "10f1e7e4d13b5915500fdd1fa32071c4"


@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=12, max_size=12),
    st.integers(0, 2**31),
    st.integers(1, 300),
    st.integers(1, 3),
)
@settings(max_examples=30, deadline=None)
def test_matches_cryptography(
    key: bytes, nonce: bytes, counter: int, blocks: int, threads: int
) -> None:
    ours = bytes(_core.chacha20(key, nonce, counter, blocks, threads=threads))
    cipher = Cipher(algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce), None)
    assert ours == cipher.encryptor().update(bytes(64 * blocks))


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _core.chacha20(b"short", bytes(12), 0, 1)
    with pytest.raises(ValueError, match="wrap"):
        _core.chacha20(bytes(32), bytes(12), 2**32 - 1, 2)
