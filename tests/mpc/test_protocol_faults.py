"""Deviations: a wrong share at an opening, a malformed message, a member that goes silent."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse.mpc.errors import ChannelError, PeerTimeout, ProtocolAbort
from cipherfuse.mpc.party import Party
from cipherfuse.mpc.shares import share
from cipherfuse.mpc.sharing import share_model
from cipherfuse.mpc.transport import in_memory_network
from tests.mpc.protocol_util import (
    RecordingTransport,
    TamperingTransport,
    member_outcomes,
    random_classifier,
    random_images,
    run3,
    tiny_config,
)


@pytest.fixture(scope="module")
def setting():
    config = tiny_config()
    qm = random_classifier(config, key=2)
    x = random_images(config, 5, seed=1)
    return share_model(qm, seed=b"f"), x, np.arange(5)


def _frames_sent_by(setting, who: int) -> int:
    shared, x, labels = setting
    ts = list(in_memory_network(10.0))
    counter = TamperingTransport(ts[who], lambda to, k, d: d)
    ts[who] = counter
    out = member_outcomes(shared.bundles, ts, x, labels, seed=b"f")
    assert all(not isinstance(o, Exception) for o in out)
    return counter.sent_frames


def test_wrong_share_at_the_opening_is_detected(setting):
    shared, x, labels = setting
    # party 1's frames end: open to 2, open to 0, outcome to 2, outcome to 0
    last = _frames_sent_by(setting, 1) - 3

    def lie(to: int, k: int, data: bytes) -> bytes:
        if k == last:
            assert to == 0
            word = (int.from_bytes(data[:8], "little") + 1) % 2**64
            return word.to_bytes(8, "little") + data[8:]
        return data

    ts = list(in_memory_network(10.0))
    ts[1] = TamperingTransport(ts[1], lie)
    out = member_outcomes(shared.bundles, ts, x, labels, seed=b"f")
    assert isinstance(out[0], ProtocolAbort) and out[0].blamed is None
    # party 2 received honest copies, but party 0's outcome byte makes it abort too:
    # the honest members agree, and none accepts a count
    assert isinstance(out[2], ProtocolAbort)


@pytest.mark.parametrize("target", [0, 2])
def test_wrong_share_in_open_reaches_abort_for_every_target(target):
    rng = np.random.default_rng(0)
    xs = share(rng.integers(-100, 100, size=6), rng)

    def lie(to: int, k: int, data: bytes) -> bytes:
        return bytes([data[0] ^ 1]) + data[1:] if to == target else data

    def wrap(t):
        return TamperingTransport(t, lie) if t.party == 1 else t

    with pytest.raises(ProtocolAbort):
        run3(lambda p: p.open(xs[p.index]), wrap=wrap)


def test_malformed_message_blames_its_sender(setting):
    shared, x, labels = setting

    def short(to: int, k: int, data: bytes) -> bytes:
        return data[:-8] if k == 5 and len(data) >= 8 else data

    ts = list(in_memory_network(10.0))
    ts[1] = TamperingTransport(ts[1], short)
    out = member_outcomes(shared.bundles, ts, x, labels, seed=b"f")
    aborts = [o for o in out if isinstance(o, ProtocolAbort)]
    assert aborts and all(a.blamed == 1 for a in aborts)


def test_a_member_that_stops_sending_times_out(setting):
    shared, x, labels = setting

    def silent_after_setup(to: int, k: int, data: bytes) -> bytes | None:
        return data if k < 3 else None

    ts = list(in_memory_network(1.0))
    ts[2] = TamperingTransport(ts[2], silent_after_setup)
    out = member_outcomes(shared.bundles, ts, x, labels, seed=b"f")
    # member 1 waits on member 2 directly and names it; member 0 may wait on member 1
    # (itself stuck) and time out on it first, or see member 1 close: a timeout cascades,
    # so every honest member stops, and the member named by the other honest one is 2
    assert isinstance(out[1], PeerTimeout) and out[1].peer == 2
    assert isinstance(out[0], ChannelError)


def test_recording_transport_sees_every_frame():
    rng = np.random.default_rng(0)
    xs = share(rng.integers(-5, 5, size=3), rng)
    recs: list[RecordingTransport] = []

    def wrap(t):
        r = RecordingTransport(t)
        recs.append(r)
        return r

    def run(p: Party):
        return p.open(xs[p.index])

    run3(run, wrap=wrap)
    assert all(len(r.received) == 3 for r in recs)  # key + two open copies
