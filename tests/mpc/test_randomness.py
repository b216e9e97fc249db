"""The pairwise PRG: RFC 8439 keystream, equal to the C++ ChaCha20, and exact zero-sharings."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse import _core
from cipherfuse.mpc.randomness import PairwiseRandomness, derive_key, prg_words

# RFC 8439 Sec. 2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, block counter 1
RFC_KEY = bytes(range(32))
RFC_NONCE = bytes.fromhex("000000090000004a00000000")
RFC_BLOCK1 = bytes.fromhex(
    "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
    "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
)


def test_rfc8439_block_vector() -> None:
    words = prg_words(RFC_KEY, RFC_NONCE, 16)
    assert words[8:].astype("<u8").tobytes() == RFC_BLOCK1


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 1000, 65_537])
def test_prg_equals_core_chacha20(count: int) -> None:
    key, nonce = derive_key(b"t", "prg"), bytes(range(12))
    blocks = -(-count // 8)
    want = _core.chacha20(key, nonce, 0, blocks, threads=1).view("<u8")[:count]
    got = prg_words(key, nonce, count)
    assert got.dtype == np.uint64 and got.shape == (count,)
    assert np.array_equal(got, want)


def _three(seed: bytes) -> list[PairwiseRandomness]:
    keys = [derive_key(seed, f"k{i}") for i in range(3)]
    return [PairwiseRandomness(i, keys[i], keys[(i - 1) % 3]) for i in range(3)]


def test_zero_shares_sum_to_zero_and_match_the_pair_streams() -> None:
    parties, again = _three(b"z"), _three(b"z")
    n = 10_001
    arith = [p.zero_share(n) for p in parties]
    boolean = [p.zero_share_xor(n) for p in parties]
    with np.errstate(over="ignore"):
        assert not np.any(arith[0] + arith[1] + arith[2])
    assert not np.any(boolean[0] ^ boolean[1] ^ boolean[2])
    assert all(np.count_nonzero(a) > n - 5 for a in arith + boolean)  # not all zero
    for i, p in enumerate(again):  # the definitions: F(k_i) - F(k_{i-1}), F(k_i) ^ F(k_{i-1})
        mine, prev = p.pair(n)
        with np.errstate(over="ignore"):
            assert np.array_equal(arith[i], mine - prev)
        mine, prev = p.pair(n)
        assert np.array_equal(boolean[i], mine ^ prev)
