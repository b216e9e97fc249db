"""Sign tests on shared values: MSB extraction on bit-packed boolean shares, and its uses.

:func:`sign_bit` returns XOR shares of bit ``k`` of ``x = x_0 + x_1 + x_2 mod 2^64``,
which is the sign of ``x`` whenever ``-2^k <= x < 2^k`` (``k = 63``: every int64 value).
It reads only the ``k + 1`` low bits of the shares. Two circuits, same result
(``method``, :data:`SIGN_METHODS`):

* ``"two_addends"`` (the default; ABY3's bit decomposition): a rotating leader ``L``
  holds ``(x_L, x_{L+1})`` and inputs ``y = x_L + x_{L+1}`` as the boolean sharing
  ``(y ^ r, r, 0)`` (``r`` from its key with ``L + 1``; it sends ``y ^ r``, ``k + 1``
  bit planes, to ``L + 2``: one round, only the leader sends); ``x_{L+2}`` is the sharing
  ``(0, 0, x_{L+2})``. Bit ``k`` of ``y + x_{L+2}`` is ``a_k ^ b_k ^ carry_k``; the carry
  is the group generate of bits ``0 .. k-1``: one round for ``g = a & b``, then a reduction
  tree of ``ceil(log2 k)`` rounds of ``(G, P) o (G', P') = (G ^ (P & G'), P & P')``.
  ``~(k + 1) / 3 + 3k`` bits per element and party, ``2 + ceil(log2 k)`` rounds.
* ``"carry_save"`` (the earlier circuit): each party bit-slices its two components; a
  carry-save adder turns the three addends into two, ``s = x_0 ^ x_1 ^ x_2`` and
  ``c = maj(x_0, x_1, x_2) << 1`` (``k`` AND gates per element, one round); then the same
  tree over bits ``1 .. k-1`` (bit 0 of ``c`` is zero). ``~4k`` bits per element,
  ``2 + ceil(log2(k - 1))`` rounds.

Each AND gate costs every party one bit sent; the AND layers of the tree read strided
bit planes in place (:func:`cipherfuse.mpc.kernels.rss_and_rows`), nothing is gathered.
:func:`bit_to_arith` converts a shared bit to a
ring sharing (two rounds: party 0 inputs ``b_0 ^ b_1``, then one product with ``b_2``);
:func:`relu`, :func:`maximum` and :func:`argmax_hits` build on both.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from cipherfuse.mpc import kernels
from cipherfuse.mpc.arith import mul
from cipherfuse.mpc.party import Party
from cipherfuse.mpc.plan import tournament
from cipherfuse.mpc.shares import RSS, BoolRSS, public_as_shares

U64Array = npt.NDArray[np.uint64]

#: Sign bit used when the task states no smaller bound: exact for all int64 values.
DEFAULT_SIGN_BIT = 63


def and_gates(party: Party, x: BoolRSS, y: BoolRSS) -> BoolRSS:
    """``x & y`` word-wise (64 AND gates per word): one round, one word per word sent."""
    mask = party.rand.zero_share_xor(x.first.size).reshape(x.first.shape)
    z = kernels.rss_and_local(x.first, x.second, y.first, y.second, mask)
    return party.reshare_bool(z)


def _addends(party: Party, x: RSS, planes: int) -> tuple[BoolRSS, BoolRSS, BoolRSS, BoolRSS]:
    """This party's shares of ``s = x_0 ^ x_1 ^ x_2`` (planes ``0 .. planes-1``) and of
    ``u = x_0 ^ x_2``, ``v = x_1 ^ x_2``, ``x_2`` (planes ``0 .. planes-2``).

    The components ``x_j`` are boolean sharings ``(x_j, 0, 0)`` rotated to position
    ``j``, so party ``i`` holds ``x_i`` (first) and ``x_{i+1}`` (second) and zeros
    elsewhere; the XORs are written out per party so no zero planes are built.
    """
    mine = kernels.bitslice(x.first.reshape(-1), planes)
    nxt = kernels.bitslice(x.second.reshape(-1), planes)
    s = BoolRSS(mine, nxt)
    lo_mine, lo_nxt = mine[: planes - 1], nxt[: planes - 1]
    zero = np.zeros_like(lo_mine)
    i = party.index
    if i == 0:  # holds (x_0, x_1)
        u, v, a2 = BoolRSS(lo_mine, zero), BoolRSS(zero, lo_nxt), BoolRSS(zero, zero)
    elif i == 1:  # holds (x_1, x_2)
        u, v, a2 = BoolRSS(zero, lo_nxt), BoolRSS(lo_mine, lo_nxt), BoolRSS(zero, lo_nxt)
    else:  # holds (x_2, x_0)
        u, v, a2 = BoolRSS(lo_mine, lo_nxt), BoolRSS(lo_mine, zero), BoolRSS(lo_mine, zero)
    return s, u, v, a2


def _and_pieces(party: Party, pieces: list[tuple[BoolRSS, BoolRSS]]) -> BoolRSS:
    """:func:`and_gates` of the concatenated pieces ``(x, y)`` (2-D, contiguous rows, any
    row stride), without gathering them: the same words, messages and randomness."""
    words = pieces[0][0].first.shape[1]
    rows = sum(x.first.shape[0] for x, _ in pieces)
    mask = party.rand.zero_share_xor(rows * words).reshape(rows, words)
    z = np.empty((rows, words), dtype=np.uint64)
    r = 0
    for x, y in pieces:
        m = x.first.shape[0]
        kernels.rss_and_rows(
            x.first, x.second, y.first, y.second, mask[r : r + m], z[r : r + m], threads=1
        )
        r += m
    return party.reshare_bool(z)


def _carry_out(party: Party, g: BoolRSS, p: BoolRSS) -> BoolRSS:
    """The group generate of planes ``0 .. m-1`` (the carry out of them): a reduction tree.

    ``(G, P) o (G', P') = (G ^ (P & G'), P & P')`` on the pairs of planes ``(2t, 2t + 1)``,
    ``ceil(log2(m))`` rounds; the P of the lowest segment is never needed, so a round
    has ``h + (h - 1)`` AND planes for ``h`` pairs.
    """
    gf, gs, pf, ps = g.first, g.second, p.first, p.second
    while gf.shape[0] > 1:
        m = gf.shape[0]
        h = m // 2
        odd = m % 2
        # one round: (P_hi & G_lo) for every pair, then (P_hi & P_lo) for all but the lowest
        prod = _and_pieces(
            party,
            [
                (
                    BoolRSS(pf[1 : 2 * h : 2], ps[1 : 2 * h : 2]),
                    BoolRSS(gf[0 : 2 * h : 2], gs[0 : 2 * h : 2]),
                ),
                (
                    BoolRSS(pf[3 : 2 * h : 2], ps[3 : 2 * h : 2]),
                    BoolRSS(pf[2 : 2 * h : 2], ps[2 : 2 * h : 2]),
                ),
            ],
        )
        # G_new = G_hi ^ (P_hi & G_lo), the odd plane carried
        new_gf = np.empty((h + odd, gf.shape[1]), dtype=np.uint64)
        new_gs = np.empty_like(new_gf)
        np.bitwise_xor(gf[1 : 2 * h : 2], prod.first[:h], out=new_gf[:h])
        np.bitwise_xor(gs[1 : 2 * h : 2], prod.second[:h], out=new_gs[:h])
        # P_new[1:h] = P_hi & P_lo; row 0 (the lowest segment's P) is never read, so it
        # may hold any words: the product rows h-1 .. 2h-2 serve without a copy
        new_pf, new_ps = prod.first[h - 1 :], prod.second[h - 1 :]
        if odd:
            new_gf[h], new_gs[h] = gf[m - 1], gs[m - 1]
            new_pf = np.concatenate([new_pf, pf[m - 1 : m]])
            new_ps = np.concatenate([new_ps, ps[m - 1 : m]])
        gf, gs, pf, ps = new_gf, new_gs, new_pf, new_ps
    return BoolRSS(gf, gs).index(0)


def _sign_bit_carry_save(party: Party, x: RSS, k: int) -> BoolRSS:
    # carry-save: s = a0 ^ a1 ^ a2, maj = ((a0 ^ a2) & (a1 ^ a2)) ^ a2 (bits 0..k-1 needed)
    s, u, v, a2 = _addends(party, x, k + 1)
    maj = and_gates(party, u, v) ^ a2
    # second addend c = maj << 1: c_j = maj_{j-1}; top bit of the result s_k ^ c_k ^ carry_k
    top = s.index(k) ^ maj.index(k - 1)
    if k == 1:
        return top  # carry into bit 1 is g_0 = s_0 & c_0 = 0
    # bits 1..k-1: g_j = s_j & maj_{j-1}, p_j = s_j ^ maj_{j-1}
    s_mid, c_mid = s.index(slice(1, k)), maj.index(slice(0, k - 1))
    return top ^ _carry_out(party, and_gates(party, s_mid, c_mid), s_mid ^ c_mid)


def _sign_bit_two_addends(party: Party, x: RSS, k: int) -> BoolRSS:
    # A rotating leader L holds (x_L, x_{L+1}) and inputs y = x_L + x_{L+1} as the boolean
    # sharing (y ^ r, r, 0), r known to L and L+1, sending y ^ r to L+2 (which holds
    # components L+2 and L); b = x_{L+2} is the sharing (0, 0, x_{L+2}).
    leader = party.next_leader()
    role = (party.index - leader) % 3  # 0: leader, 1: L+1, 2: L+2
    planes = k + 1
    words = -(-int(np.prod(x.shape)) // 64)
    zero = np.zeros((planes, words), dtype=np.uint64)
    if role == 0:
        with np.errstate(over="ignore"):
            y = kernels.bitslice((x.first + x.second).reshape(-1), planes)
        r = party.rand.with_next(y.size).reshape(y.shape)
        masked = y ^ r
        party.send_words((leader + 2) % 3, masked.reshape(-1))
        party.round()
        a, b = BoolRSS(masked, r), BoolRSS(zero, zero)
    elif role == 1:
        r = party.rand.with_prev(zero.size).reshape(zero.shape)
        party.round()
        a, b = BoolRSS(r, zero), BoolRSS(zero, kernels.bitslice(x.second.reshape(-1), planes))
    else:
        party.rand.pair(0)  # keep the counter in step with L and L+1
        got = party.recv_words(leader, zero.size).reshape(zero.shape)
        party.round()
        a, b = BoolRSS(zero, got), BoolRSS(kernels.bitslice(x.first.reshape(-1), planes), zero)
    # bit k of a + b: a_k ^ b_k ^ carry_k, carry_k the group generate of planes 0..k-1
    top = a.index(k) ^ b.index(k)
    a_low, b_low = a.index(slice(0, k)), b.index(slice(0, k))
    return top ^ _carry_out(party, and_gates(party, a_low, b_low), a_low ^ b_low)


#: The sign-test circuits of :func:`sign_bit` (module docstring).
SignMethod = Literal["two_addends", "carry_save"]
SIGN_METHODS: tuple[SignMethod, ...] = ("two_addends", "carry_save")


def sign_bit(
    party: Party, x: RSS, bit: int = DEFAULT_SIGN_BIT, *, method: SignMethod = "two_addends"
) -> BoolRSS:
    """XOR shares of bit ``bit`` of ``x`` (packed: word ``w`` bit ``j`` is element ``64w+j``).

    Equals the sign (1 for negative) of every element with ``-2^bit <= x < 2^bit``.
    ``method`` picks the circuit (same result, see the module docstring).
    """
    if not 1 <= bit <= 63:
        raise ValueError(f"bit must be in 1..63, got {bit}")
    if method == "two_addends":
        return _sign_bit_two_addends(party, x, bit)
    if method == "carry_save":
        return _sign_bit_carry_save(party, x, bit)
    raise ValueError(f"method must be one of {SIGN_METHODS}, got {method!r}")


def sign_test_rounds(bit: int, method: SignMethod = "two_addends") -> int:
    """Rounds of :func:`sign_bit`: ``2 + ceil(log2(bit))`` for two addends (2 for bit 1),
    ``2 + ceil(log2(bit - 1))`` for the carry-save circuit (1 for bit 1)."""
    if method == "two_addends":
        return 2 + math.ceil(math.log2(bit))
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


def select_mul(party: Party, c: BoolRSS, n: int, d: RSS) -> RSS:
    """Ring shares of ``c * d`` for ``n`` packed shared bits ``c`` and ``d`` of ``k * n`` elements.

    (``d`` is ``k`` stacked tensors of ``n`` elements, each multiplied by the same bits.)
    Two rounds. A leader ``L`` (rotating) holds ``(c_L, c_{L+1})`` and so knows
    ``e = c_L ^ c_{L+1}``; the other two know ``g = c_{L+2}``, and
    ``c = e (1 - 2g) + g``. Then ``g d`` is local to the two others, and
    ``e (1 - 2g) d = (1 - 2g) [e (d_L + d_{L+1})] + (1 - 2g) d_{L+2} e`` needs only
    ``w = e (d_L + d_{L+1})`` and ``e`` from the leader, sent to party ``L + 2`` masked by
    words it shares with ``L + 1`` (``2 k n`` words, leader only); the resulting
    additive sharing is reshared (``k n`` words each). Party ``L + 2`` sees only masked
    words; party ``L + 1`` receives nothing in the first round.
    """
    first = kernels.unbitslice(c.first.reshape(1, -1), n)
    second = kernels.unbitslice(c.second.reshape(1, -1), n)
    size = int(np.prod(d.shape))
    if size % n:
        raise ValueError(f"{size} values do not stack over {n} bits")
    reps = size // n
    leader = party.next_leader()
    role = (party.index - leader) % 3  # 0: leader, 1: L+1, 2: L+2
    d_first, d_second = d.first.reshape(-1), d.second.reshape(-1)
    with np.errstate(over="ignore"):
        if role == 0:
            e = np.tile(first ^ second, reps)
            w = e * (d_first + d_second)
            masks = party.rand.with_next(2 * size)
            party.send_words((leader + 2) % 3, np.concatenate([w - masks[:size], e - masks[size:]]))
            party.round()
            z = np.zeros(size, dtype=np.uint64)
        elif role == 1:
            g = np.tile(second, reps)  # c_{L+2} is this party's second share
            f = np.uint64(1) - np.uint64(2) * g
            masks = party.rand.with_prev(2 * size)
            party.round()
            # holds (d_{L+1}, d_{L+2}): g (d_{L+1} + d_{L+2}) + f r_w + f d_{L+2} r_e
            z = g * (d_first + d_second) + f * masks[:size] + f * d_second * masks[size:]
        else:
            g = np.tile(first, reps)  # c_{L+2} is this party's first share
            f = np.uint64(1) - np.uint64(2) * g
            party.rand.pair(0)
            got = party.recv_words(leader, 2 * size)
            party.round()
            # holds (d_{L+2}, d_L): g d_L + f (w - r_w) + f d_{L+2} (e - r_e)
            z = g * d_second + f * got[:size] + f * d_first * got[size:]
        z = z + party.rand.zero_share(size)
    return party.reshare(z.reshape(d.shape))


def is_negative(
    party: Party, x: RSS, bit: int = DEFAULT_SIGN_BIT, *, method: SignMethod = "two_addends"
) -> RSS:
    """Ring shares of ``[x < 0]`` per element (for ``-2^bit <= x < 2^bit``)."""
    n = int(np.prod(x.shape))
    return bit_to_arith(party, sign_bit(party, x, bit, method=method), n).reshape(*x.shape)


def relu(
    party: Party, x: RSS, bit: int = DEFAULT_SIGN_BIT, *, method: SignMethod = "two_addends"
) -> RSS:
    """``max(x, 0)`` = ``x - [x < 0] * x`` (a sign test and one :func:`select_mul`)."""
    n = int(np.prod(x.shape))
    return x - select_mul(party, sign_bit(party, x, bit, method=method), n, x)


def select_right(
    party: Party,
    lefts: RSS,
    rights: RSS,
    bit: int,
    carry: list[tuple[RSS, RSS]],
    *,
    method: SignMethod = "two_addends",
) -> tuple[RSS, list[RSS]]:
    """Per element, keep ``rights`` where ``rights > lefts`` (else ``lefts``); ties keep left.

    ``lefts``, ``rights`` are flat; ``carry`` pairs (left, right) of flat tensors of the
    same size travel with the choice (one :func:`select_mul` for all of them).
    """
    n = lefts.shape[0]
    right_wins = sign_bit(party, lefts - rights, bit, method=method)
    diffs = [rights - lefts] + [r - lft for lft, r in carry]
    stacked = RSS(
        np.concatenate([d.first for d in diffs]), np.concatenate([d.second for d in diffs])
    )
    prod = select_mul(party, right_wins, n, stacked)
    outs = [lefts] + [lft for lft, _ in carry]
    chosen = [
        base + RSS(prod.first[t * n : (t + 1) * n], prod.second[t * n : (t + 1) * n])
        for t, base in enumerate(outs)
    ]
    return chosen[0], chosen[1:]


def maximum(
    party: Party,
    lefts: RSS,
    rights: RSS,
    bit: int = DEFAULT_SIGN_BIT,
    *,
    method: SignMethod = "two_addends",
) -> RSS:
    """Element-wise ``max(lefts, rights)`` (any one shape; ties keep left).

    Same values and messages as :func:`select_right` without carried tensors, but the
    operands may be strided views (only the difference is materialised).
    """
    diff = lefts - rights
    n = int(np.prod(diff.shape))
    prod = select_mul(party, sign_bit(party, diff, bit, method=method), n, -diff)
    return lefts + prod


def argmax_hits(
    party: Party,
    logits: RSS,
    labels: npt.ArrayLike,
    bit: int = DEFAULT_SIGN_BIT,
    *,
    method: SignMethod = "two_addends",
) -> RSS:
    """Ring shares of ``[argmax(logits[n]) == labels[n]]`` per row (first maximum wins ties).

    A tournament over the classes carries, with each running maximum, the public
    indicator ``[class == label]`` of its class; ``ceil(log2(classes))`` sign-test levels.
    """
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    n, classes = logits.shape
    cands: list[tuple[RSS, RSS]] = []
    for j in range(classes):
        col = RSS(
            np.ascontiguousarray(logits.first[:, j]), np.ascontiguousarray(logits.second[:, j])
        )
        hit = public_as_shares(party.index, (lab == j).astype(np.int64))
        cands.append((col, hit))

    def level(lefts: list[tuple[RSS, RSS]], rights: list[tuple[RSS, RSS]]) -> list[tuple[RSS, RSS]]:
        m = len(lefts)
        lv = RSS(
            np.concatenate([a.first for a, _ in lefts]),
            np.concatenate([a.second for a, _ in lefts]),
        )
        rv = RSS(
            np.concatenate([a.first for a, _ in rights]),
            np.concatenate([a.second for a, _ in rights]),
        )
        lh = RSS(
            np.concatenate([h.first for _, h in lefts]),
            np.concatenate([h.second for _, h in lefts]),
        )
        rh = RSS(
            np.concatenate([h.first for _, h in rights]),
            np.concatenate([h.second for _, h in rights]),
        )
        best, (hit,) = select_right(party, lv, rv, bit, [(lh, rh)], method=method)
        return [
            (
                RSS(best.first[t * n : (t + 1) * n], best.second[t * n : (t + 1) * n]),
                RSS(hit.first[t * n : (t + 1) * n], hit.second[t * n : (t + 1) * n]),
            )
            for t in range(m)
        ]

    return tournament(cands, level)[1]
