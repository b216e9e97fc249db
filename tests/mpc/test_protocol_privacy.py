"""Privacy, tested: one member's view is simulatable from the opened count alone.

The simulator runs the member's own code, with its own bundle, against simulated peers
that answer every receive with fresh uniform words of the (public) scheduled length,
except the final opening, which they answer with ``count - x_i - x_{i+1}``. The real
view (received frames) and the simulated one must (a) have the same public schedule,
(b) open the same count, and (c) be indistinguishable by two-sample tests; and the
real views of two very different models must be indistinguishable from each other,
with every received word uniform (byte histogram, per-bit frequencies).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from cipherfuse.mpc.runtime import run_member
from cipherfuse.mpc.sharing import MemberBundle, share_model
from cipherfuse.mpc.transport import in_memory_network
from tests.mpc.protocol_util import (
    RecordingTransport,
    member_outcomes,
    random_classifier,
    random_images,
    tiny_config,
)

P_MIN = 1e-3


class SimulatedPeers:
    """Party ``party``'s transport in the simulation: peers that know only the count."""

    def __init__(
        self, party: int, schedule: list[tuple[int, int]], count: int, bundle: MemberBundle
    ) -> None:
        self._party = party
        self._schedule = list(schedule)
        self._count = count
        self._bundle = bundle
        self._rng = np.random.default_rng(1234 + party)
        self._sent: list[tuple[int, bytes]] = []
        self.received: list[tuple[int, bytes]] = []
        self._recvs = 0

    @property
    def party(self) -> int:
        return self._party

    @property
    def bytes_sent(self) -> int:
        return sum(len(d) for _, d in self._sent)

    def send(self, to: int, data: bytes | bytearray | memoryview) -> None:
        self._sent.append((to, bytes(data)))

    def recv(self, frm: int) -> bytes:
        sender, length = self._schedule[self._recvs]
        assert sender == frm, "the member's receive order is public and fixed"
        self._recvs += 1
        remaining = len(self._schedule) - self._recvs
        if self._recvs in (2, 3):  # the commitment triples: the member's own public ones
            frame = b"\x01" + b"".join(self._bundle.commitments)
        elif remaining < 2:  # the outcome: both peers accept
            frame = b"\x01"
        elif remaining < 4:  # the opening: both peers send x_{i+2} = count - x_i - x_{i+1}
            first = int.from_bytes(self._sent[-2][1], "little")
            second = int.from_bytes(self._sent[-1][1], "little")
            frame = ((self._count - first - second) % 2**64).to_bytes(8, "little")
        else:
            frame = self._rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()
        self.received.append((frm, frame))
        return frame

    def close(self) -> None:
        pass


def _real_views(qm, x, labels, seed: bytes):
    shared = share_model(qm, seed=seed)
    ts = [RecordingTransport(t) for t in in_memory_network(30.0)]
    out = member_outcomes(shared.bundles, ts, x, labels, seed=seed)
    assert all(not isinstance(o, Exception) for o in out), out
    return shared, out, [t.received for t in ts]


def _protocol_words(view: list[tuple[int, bytes]]) -> np.ndarray:
    """Every word received during the evaluation (not the commitments, opening, outcome)."""
    body = b"".join(frame for _, frame in view[3:-4])
    return np.frombuffer(body, dtype="<u8")


def _uniform(words: np.ndarray) -> None:
    data = words.view(np.uint8)
    hist = np.bincount(data, minlength=256)
    assert stats.chisquare(hist).pvalue > P_MIN
    ones = np.stack([(words >> np.uint64(b)) & np.uint64(1) for b in range(64)]).mean(axis=1)
    z = (ones - 0.5) / np.sqrt(0.25 / words.size)
    assert np.max(np.abs(z)) < 4.5  # no bit position (e.g. packing padding) is biased


@pytest.fixture(scope="module")
def setup():
    config = tiny_config(features=(3, 2), hidden=5)
    x = random_images(config, 6, seed=9)
    labels = np.arange(6) % 10
    a = random_classifier(config, key=5)
    b = dataclasses.replace(  # a very different model: huge constant weights
        a,
        layers=tuple(
            dataclasses.replace(layer, weight=np.full_like(layer.weight, 1000))
            if hasattr(layer, "weight")
            else layer
            for layer in a.layers
        ),
    )
    return config, x, labels, a, b


@pytest.mark.parametrize("member", [0, 1, 2])
def test_a_member_view_is_simulated_from_the_count_alone(setup, member):
    _, x, labels, a, _ = setup
    shared, out, views = _real_views(a, x, labels, b"view-a")
    real = views[member]
    schedule = [(frm, len(frame)) for frm, frame in real]
    count = out[member].count

    sim = SimulatedPeers(member, schedule, count, shared.bundles[member])
    result = run_member(shared.bundles[member], sim, x, labels, seed=b"sim")
    assert result.count == count
    assert [(f, len(d)) for f, d in sim.received] == schedule
    real_words, sim_words = _protocol_words(real), _protocol_words(sim.received)
    _uniform(real_words)
    _uniform(sim_words)
    assert stats.ks_2samp(real_words >> np.uint64(11), sim_words >> np.uint64(11)).pvalue > P_MIN


@pytest.mark.parametrize("member", [0, 2])
def test_views_of_two_very_different_models_cannot_be_told_apart(setup, member):
    _, x, labels, a, b = setup
    _, _, views_a = _real_views(a, x, labels, b"view-a")
    _, _, views_b = _real_views(b, x, labels, b"view-b")
    wa, wb = _protocol_words(views_a[member]), _protocol_words(views_b[member])
    assert [len(f) for _, f in views_a[member]] == [len(f) for _, f in views_b[member]]
    assert stats.ks_2samp(wa >> np.uint64(11), wb >> np.uint64(11)).pvalue > P_MIN
    ha = np.bincount(wa.view(np.uint8), minlength=256)
    hb = np.bincount(wb.view(np.uint8), minlength=256)
    assert stats.chi2_contingency(np.stack([ha, hb])).pvalue > P_MIN


def test_the_tests_can_see_a_leak(setup):
    # The same statistics flag a view that carries unmasked values (the check can fail).
    _, x, labels, a, _ = setup
    _, _, views = _real_views(a, x, labels, b"view-a")
    words = _protocol_words(views[0]).copy()
    words[: words.size // 4] = np.uint64(12345)  # a quarter of the words in the clear
    with pytest.raises(AssertionError):
        _uniform(words)
