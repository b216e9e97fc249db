"""Deviations: a wrong share at an opening, a malformed message, a member that goes silent."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse.mpc.errors import PeerTimeout, ProtocolAbort
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
    last = _frames_sent_by(setting, 1) - 1  # party 1's last frame: its open frame to party 0

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
    # party 2 received honest copies: with abort means no honest member accepts a wrong count
    assert not isinstance(out[2], Exception) and out[2].count == out[1].count


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
    honest = [o for i, o in enumerate(out) if i != 2]
    timeouts = [o for o in honest if isinstance(o, PeerTimeout)]
    assert timeouts and all(t.peer == 2 for t in timeouts)


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
