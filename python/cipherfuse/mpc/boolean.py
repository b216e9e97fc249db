"""Sign tests on shared values: MSB extraction on bit-packed boolean shares, and its uses.

:func:`sign_bit` returns XOR shares of bit ``k`` of ``x = x_0 + x_1 + x_2 mod 2^64``,
which is the sign of ``x`` whenever ``-2^k <= x < 2^k`` (``k = 63``: every int64 value).
It reads only the ``k + 1`` low bits of the shares:

1. each party bit-slices its two components (64 elements per word, one word array per
   bit plane); the components ``x_0, x_1, x_2`` are boolean sharings known to two parties;
2. a carry-save adder turns three addends into two, ``s = x_0 ^ x_1 ^ x_2`` and
   ``c = maj(x_0, x_1, x_2) << 1``: ``k`` AND gates per element, one round;
3. bit ``k`` of ``s + c`` is ``s_k ^ c_k ^ carry_k``; the carry into bit ``k`` is the
   generate signal of bits ``1 .. k-1`` (bit 0 of ``c`` is zero), computed by a
   parallel-prefix (Kogge-Stone style) tree: one round for ``g = s & c``, then
   ``ceil(log2(k - 1))`` rounds of ``(G, P) o (G', P') = (G ^ (P & G'), P & P')``.

Each AND gate costs every party one bit sent; a sign test costs ``~4k`` bits per element
and ``2 + ceil(log2(k - 1))`` rounds. :func:`bit_to_arith` converts a shared bit to a
ring sharing (two rounds: party 0 inputs ``b_0 ^ b_1``, then one product with ``b_2``);
:func:`relu`, :func:`maximum` and :func:`argmax_hits` build on both.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from cipherfuse.mpc import kernels
from cipherfuse.mpc.arith import mul
from cipherfuse.mpc.party import Party
from cipherfuse.mpc.shares import RSS, BoolRSS, public_as_shares

U64Array = npt.NDArray[np.uint64]

#: Sign bit used when the task states no smaller bound: exact for all int64 values.
DEFAULT_SIGN_BIT = 63


def and_gates(party: Party, x: BoolRSS, y: BoolRSS) -> BoolRSS:
    """``x & y`` word-wise (64 AND gates per word): one round, one word per word sent."""
    mask = party.rand.zero_share_xor(x.first.size).reshape(x.first.shape)
    z = kernels.rss_and_local(x.first, x.second, y.first, y.second, mask)
    return party.reshare_bool(z)


def _addends(party: Party, x: RSS, planes: int) -> tuple[BoolRSS, BoolRSS, BoolRSS]:
    """Boolean sharings of the components ``x_0, x_1, x_2`` (bit planes ``0 .. planes-1``)."""
    mine = kernels.bitslice(x.first.reshape(-1), planes)
    nxt = kernels.bitslice(x.second.reshape(-1), planes)
    zero = np.zeros_like(mine)
    i = party.index
    out: list[BoolRSS] = []
    for j in range(3):
        first = mine if j == i else zero
        second = nxt if j == (i + 1) % 3 else zero
        out.append(BoolRSS(first, second))
    return out[0], out[1], out[2]


def sign_bit(party: Party, x: RSS, bit: int = DEFAULT_SIGN_BIT) -> BoolRSS:
    """XOR shares of bit ``bit`` of ``x`` (packed: word ``w`` bit ``j`` is element ``64w+j``).

    Equals the sign (1 for negative) of every element with ``-2^bit <= x < 2^bit``.
    """
    if not 1 <= bit <= 63:
        raise ValueError(f"bit must be in 1..63, got {bit}")
    k = bit
    a0, a1, a2 = _addends(party, x, k + 1)
    # carry-save: s = a0 ^ a1 ^ a2, maj = ((a0 ^ a2) & (a1 ^ a2)) ^ a2 (bits 0..k-1 needed)
    s = a0 ^ a1 ^ a2
    u, v = a0 ^ a2, a1 ^ a2
    maj = and_gates(party, u.index(slice(0, k)), v.index(slice(0, k))) ^ a2.index(slice(0, k))
    # second addend c = maj << 1: c_j = maj_{j-1}; top bit of the result s_k ^ c_k ^ carry_k
    top = s.index(k) ^ maj.index(k - 1)
    if k == 1:
        return top  # carry into bit 1 is g_0 = s_0 & c_0 = 0
    # bits 1..k-1: g_j = s_j & maj_{j-1}, p_j = s_j ^ maj_{j-1}
    s_mid, c_mid = s.index(slice(1, k)), maj.index(slice(0, k - 1))
    g = and_gates(party, s_mid, c_mid)
    p = s_mid ^ c_mid
    while g.first.shape[0] > 1:
        m = g.first.shape[0]
        h = m // 2
        g_lo, g_hi = g.index(slice(0, 2 * h, 2)), g.index(slice(1, 2 * h, 2))
        p_lo, p_hi = p.index(slice(0, 2 * h, 2)), p.index(slice(1, 2 * h, 2))
        # P of the lowest segment is never needed: h + (h - 1) AND planes in one round
        lhs = BoolRSS(
            np.concatenate([p_hi.first, p_hi.first[1:]]),
            np.concatenate([p_hi.second, p_hi.second[1:]]),
        )
        rhs = BoolRSS(
            np.concatenate([g_lo.first, p_lo.first[1:]]),
            np.concatenate([g_lo.second, p_lo.second[1:]]),
        )
        prod = and_gates(party, lhs, rhs)
        g_new = g_hi ^ prod.index(slice(0, h))
        p_new = BoolRSS(
            np.concatenate([p_lo.first[:1], prod.first[h:]]),
            np.concatenate([p_lo.second[:1], prod.second[h:]]),
        )
        if m % 2:
            g_new = BoolRSS(
                np.concatenate([g_new.first, g.first[-1:]]),
                np.concatenate([g_new.second, g.second[-1:]]),
            )
            p_new = BoolRSS(
                np.concatenate([p_new.first, p.first[-1:]]),
                np.concatenate([p_new.second, p.second[-1:]]),
            )
        g, p = g_new, p_new
    return top ^ g.index(0)


def sign_test_rounds(bit: int) -> int:
    """Rounds of :func:`sign_bit` for ``bit``: ``2 + ceil(log2(bit - 1))`` (1 for bit 1)."""
    if bit == 1:
        return 1
    return 2 + (math.ceil(math.log2(bit - 1)) if bit > 2 else 0)


def bit_to_arith(party: Party, b: BoolRSS, n: int) -> RSS:
    """Ring shares of the ``n`` packed shared bits ``b`` (values 0/1): two rounds.

    ``b = d ^ b_2`` with ``d = b_0 ^ b_1`` known to party 0: party 0 shares ``d`` as
    ``(d - r, r, 0)`` (``r`` from its key with party 1; it sends ``d - r`` to party 2),
    ``b_2`` is the public-to-two sharing ``(0, 0, b_2)``, and ``b = d + b_2 - 2 d b_2``.
    """
    first = kernels.unbitslice(b.first.reshape(1, -1), n)
    second = kernels.unbitslice(b.second.reshape(1, -1), n)
    i = party.index
    zero = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if i == 0:
            r = party.rand.with_next(n)
            d_minus_r = (first ^ second) - r
            party.send_words(2, d_minus_r)
            party.round()
            d = RSS(d_minus_r, r)
            b2 = RSS(zero, zero)
        elif i == 1:
            r = party.rand.with_prev(n)
            party.round()
            d = RSS(r, zero)
            b2 = RSS(zero, second)
        else:
            party.rand.pair(0)
            d = RSS(zero, party.recv_words(0, n))
            party.round()
            b2 = RSS(first, zero)
        prod = mul(party, d, b2)
        return d + b2 - prod.scale(2)


def is_negative(party: Party, x: RSS, bit: int = DEFAULT_SIGN_BIT) -> RSS:
    """Ring shares of ``[x < 0]`` per element (for ``-2^bit <= x < 2^bit``)."""
    n = int(np.prod(x.shape))
    return bit_to_arith(party, sign_bit(party, x, bit), n).reshape(*x.shape)


def relu(party: Party, x: RSS, bit: int = DEFAULT_SIGN_BIT) -> RSS:
    """``max(x, 0)`` = ``x - [x < 0] * x``."""
    return x - mul(party, is_negative(party, x, bit), x)


def select_right(party: Party, lefts: RSS, rights: RSS, bit: int, carry: list[tuple[RSS, RSS]]) -> tuple[RSS, list[RSS]]:
    """Per element, keep ``rights`` where ``rights > lefts`` (else ``lefts``); ties keep left.

    ``carry`` pairs (left, right) of tensors of the same shape travel with the choice
    (one product round for all of them).
    """
    right_wins = is_negative(party, lefts - rights, bit)
    diffs = [rights - lefts] + [r - lft for lft, r in carry]
    k = len(diffs)
    stacked_c = RSS(
        np.concatenate([right_wins.first] * k), np.concatenate([right_wins.second] * k)
    )
    stacked_d = RSS(
        np.concatenate([d.first for d in diffs]), np.concatenate([d.second for d in diffs])
    )
    prod = mul(party, stacked_c, stacked_d)
    size = lefts.first.shape[0]
    outs = [lefts] + [lft for lft, _ in carry]
    chosen = []
    for t, base in enumerate(outs):
        part = RSS(prod.first[t * size : (t + 1) * size], prod.second[t * size : (t + 1) * size])
        chosen.append(base + part)
    return chosen[0], chosen[1:]


def maximum(party: Party, lefts: RSS, rights: RSS, bit: int = DEFAULT_SIGN_BIT) -> RSS:
    """Element-wise ``max(lefts, rights)``."""
    best, _ = select_right(party, lefts, rights, bit, [])
    return best


def argmax_hits(
    party: Party, logits: RSS, labels: npt.ArrayLike, bit: int = DEFAULT_SIGN_BIT
) -> RSS:
    """Ring shares of ``[argmax(logits[n]) == labels[n]]`` per row (first maximum wins ties).

    A tournament over the classes carries, with each running maximum, the public
    indicator ``[class == label]`` of its class; ``ceil(log2(classes))`` sign-test levels.
    """
    from cipherfuse.mpc.plan import tournament  # noqa: PLC0415

    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    n, classes = logits.shape
    cands: list[tuple[RSS, RSS]] = []
    for j in range(classes):
        col = RSS(np.ascontiguousarray(logits.first[:, j]), np.ascontiguousarray(logits.second[:, j]))
        hit = public_as_shares(party.index, (lab == j).astype(np.int64))
        cands.append((col, hit))

    def level(
        lefts: list[tuple[RSS, RSS]], rights: list[tuple[RSS, RSS]]
    ) -> list[tuple[RSS, RSS]]:
        m = len(lefts)
        lv = RSS(np.concatenate([a.first for a, _ in lefts]), np.concatenate([a.second for a, _ in lefts]))
        rv = RSS(np.concatenate([a.first for a, _ in rights]), np.concatenate([a.second for a, _ in rights]))
        lh = RSS(np.concatenate([h.first for _, h in lefts]), np.concatenate([h.second for _, h in lefts]))
        rh = RSS(np.concatenate([h.first for _, h in rights]), np.concatenate([h.second for _, h in rights]))
        best, (hit,) = select_right(party, lv, rv, bit, [(lh, rh)])
        return [
            (
                RSS(best.first[t * n : (t + 1) * n], best.second[t * n : (t + 1) * n]),
                RSS(hit.first[t * n : (t + 1) * n], hit.second[t * n : (t + 1) * n]),
            )
            for t in range(m)
        ]

    return tournament(cands, level)[1]
