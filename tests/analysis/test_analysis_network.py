"""The Case IV network model: its arithmetic against hand-computed values, and the bad
descriptions it (and the emulation built on it) refuse."""

from __future__ import annotations

import pytest

from cipherfuse.analysis.netem import StarEmulation
from cipherfuse.analysis.network import (
    NetworkError,
    StarNetwork,
    Transfer,
    fedavg_round,
    one_shot_fusion,
    payload_bytes,
)

# ----------------------------------------------------------------------------- model


def test_wire_bytes_count_headers_per_segment() -> None:
    net = StarNetwork()
    assert net.wire_bytes(0) == 0
    assert net.wire_bytes(1) == 1 + 66
    assert net.wire_bytes(1448) == 1514  # one full frame: 1448 payload + 66 header bytes
    assert net.wire_bytes(1449) == 1449 + 2 * 66
    assert StarNetwork(header_bytes=0).wire_bytes(123_456) == 123_456


def test_fedavg_round_time_by_hand() -> None:
    # 4 clients, 1,000,000-byte models: ceil(1e6 / 1448) = 691 segments,
    # 1e6 + 691 * 66 = 1,045,606 wire bytes per model; the server's link carries 4 of them
    # each way: 4,182,424 B * 8 / 50e6 = 0.66918784 s, plus 2 hops * 5 ms.
    net = StarNetwork()
    phases = fedavg_round("s", ["a", "b", "c", "d"], 1_000_000)
    assert [len(p) for p in phases] == [4, 4]
    assert all(t.src == "s" for t in phases[0])
    assert all(t.dst == "s" for t in phases[1])
    assert net.phase_seconds(phases[0]) == pytest.approx(0.67918784, abs=1e-12)
    assert net.phase_seconds(phases[1]) == pytest.approx(0.67918784, abs=1e-12)
    assert net.schedule_seconds(phases) == pytest.approx(2 * 0.67918784, abs=1e-12)
    assert payload_bytes(phases) == 8_000_000


def test_payload_only_model_by_hand() -> None:
    net = StarNetwork(rate_bps=50e6, delay_s=0.005, header_bytes=0)
    # 1,000,000 B * 8 / 50e6 = 0.16 s + 0.01 s
    assert net.phase_seconds([Transfer("a", "b", 1_000_000)]) == pytest.approx(0.17)
    assert net.phase_seconds([]) == 0.0
    # zero delay, 10 Mbps: 250,000 B -> 0.2 s
    slow = StarNetwork(rate_bps=10e6, delay_s=0.0, header_bytes=0)
    assert slow.phase_seconds([Transfer("a", "b", 250_000)]) == pytest.approx(0.2)


def test_busiest_link_decides_a_phase() -> None:
    net = StarNetwork(header_bytes=0)
    # a->hub 1 MB and b->c 2 MB use different links: the 2 MB link decides.
    phase = [Transfer("a", "hub", 1_000_000), Transfer("b", "c", 2_000_000)]
    loads = net.link_loads(phase)
    assert loads == {
        ("a", "up"): 1_000_000,
        ("hub", "down"): 1_000_000,
        ("b", "up"): 2_000_000,
        ("c", "down"): 2_000_000,
    }
    assert net.phase_seconds(phase) == pytest.approx(2_000_000 * 8 / 50e6 + 0.01)
    # two senders into one receiver share its downlink
    shared = [Transfer("a", "hub", 1_000_000), Transfer("b", "hub", 2_000_000)]
    assert net.phase_seconds(shared) == pytest.approx(3_000_000 * 8 / 50e6 + 0.01)


def test_one_shot_schedule_by_hand() -> None:
    net = StarNetwork(header_bytes=0)
    phases = one_shot_fusion("v", ["a", "b", "c"], [100_000, 200_000, 300_000])
    assert payload_bytes(phases) == 600_000
    assert len(phases) == 1
    # one phase: 600,000 B share v's downlink -> 0.096 s, plus 2 x 5 ms
    assert net.schedule_seconds(phases) == pytest.approx(0.106)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Transfer("a", "a", 1),
        lambda: Transfer("a", "b", -1),
        lambda: Transfer("", "b", 1),
        lambda: StarNetwork(rate_bps=0),
        lambda: StarNetwork(delay_s=-1),
        lambda: StarNetwork(mss=0),
        lambda: fedavg_round("s", [], 10),
        lambda: one_shot_fusion("v", ["a", "b"], [1]),
        lambda: StarEmulation(["only"]),
        lambda: StarEmulation(["a", "a"]),
    ],
)
def test_bad_descriptions_raise(make: object) -> None:
    with pytest.raises(NetworkError):
        make()  # type: ignore[operator]
