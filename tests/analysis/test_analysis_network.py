"""The Case IV network: model arithmetic against hand-computed values, the transfer
protocol on loopback, and the namespace emulation against the model (root only)."""

from __future__ import annotations

import subprocess
import threading

import pytest

from cipherfuse.analysis import netpeer
from cipherfuse.analysis.network import (
    NetworkError,
    StarEmulation,
    StarNetwork,
    Transfer,
    emulate,
    emulation_unavailable_reason,
    fedavg_round,
    kernel_has_netem,
    one_shot_fusion,
    payload_bytes,
)

needs_emulation = pytest.mark.skipif(
    emulation_unavailable_reason() is not None,
    reason=f"namespace emulation unavailable: {emulation_unavailable_reason()}",
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


# ----------------------------------------------------------------------------- protocol


def _loopback_hub_and_nodes(plan: list[dict[str, object]], peers: list[str]) -> list[float]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    errors: list[BaseException] = []

    def node(name: str) -> None:
        try:
            netpeer.run_node(name, "127.0.0.1", port)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=node, args=(p,)) for p in peers]
    for t in threads:
        t.start()
    try:
        seconds = netpeer.run_hub(port, peers, plan)
    finally:
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    return seconds


def test_protocol_moves_the_bytes_on_loopback() -> None:
    plan: list[dict[str, object]] = [
        {"op": "down", "sizes": {"a": 3_000_000, "b": 1}},
        {"op": "up", "sizes": {"a": 0, "b": 2_500_000}},
    ]
    seconds = _loopback_hub_and_nodes(plan, ["a", "b"])
    assert len(seconds) == 2
    assert all(0 <= s < 30 for s in seconds)


def test_protocol_rejects_a_malformed_plan() -> None:
    with pytest.raises(netpeer.ProtocolError):
        _loopback_hub_and_nodes([{"op": "sideways", "sizes": {"a": 1}}], ["a"])
    with pytest.raises(netpeer.ProtocolError):
        _loopback_hub_and_nodes([{"op": "down", "sizes": {"zz": 1}}], ["a"])


def test_phases_must_involve_the_hub_one_way() -> None:
    from cipherfuse.analysis.network import _plan

    with pytest.raises(NetworkError, match="all one way"):
        _plan("hub", [[Transfer("hub", "a", 1), Transfer("b", "hub", 1)]])
    with pytest.raises(NetworkError, match="two transfers"):
        _plan("hub", [[Transfer("a", "hub", 1), Transfer("a", "hub", 2)]])
    with pytest.raises(NetworkError, match="empty"):
        _plan("hub", [[]])
    assert _plan("hub", [[Transfer("hub", "a", 5)], [Transfer("b", "hub", 7)]]) == [
        {"op": "down", "sizes": {"a": 5}},
        {"op": "up", "sizes": {"b": 7}},
    ]


# ----------------------------------------------------------------------------- emulation


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@needs_emulation
def test_emulated_round_matches_the_model() -> None:
    net = StarNetwork()
    nodes = ["hub", "n1", "n2", "n3", "n4"]
    phases = fedavg_round("hub", nodes[1:], 400_000)
    star = StarEmulation(nodes, net)
    with star:
        created = star.created_namespaces
        assert len(created) == 6  # switch + 5 nodes
        assert all(ns in _namespaces() for ns in created)
        result = star.run_phases("hub", phases)
    listed = _namespaces()
    assert not any(ns in listed for ns in created), "namespaces left behind"
    model = net if result.delay_emulated else StarNetwork(delay_s=0.0)
    assert result.qdisc in ("netem", "tbf")
    for measured, phase in zip(result.phase_seconds, phases, strict=True):
        expected = model.phase_seconds(phase)  # 0.27 s (+0.01 s with netem)
        assert measured == pytest.approx(expected, rel=0.15)


@needs_emulation
@pytest.mark.skipif(not kernel_has_netem(), reason="this kernel has no sch_netem")
def test_netem_delay_is_emulated() -> None:
    net = StarNetwork()
    phases = [[Transfer("a", "hub", 200_000)]]
    result = emulate("hub", ["hub", "a"], phases, net, qdisc="netem")
    assert result.delay_emulated
    # 200,000 B + headers over 50 Mbps = 33.5 ms, plus 2 x 5 ms of propagation
    assert result.phase_seconds[0] == pytest.approx(net.phase_seconds(phases[0]), rel=0.2)


@needs_emulation
def test_everything_is_removed_when_a_run_fails() -> None:
    star = StarEmulation(["hub", "a"], StarNetwork())
    created: list[str] = []

    def run() -> None:
        with star:
            created.extend(star.created_namespaces)
            # 50 MB at 50 Mbps takes 8 s: a 0.5 s limit must fail
            star.run_phases("hub", [[Transfer("a", "hub", 50_000_000)]], timeout_s=0.5)

    with pytest.raises(NetworkError, match="did not finish"):
        run()
    listed = _namespaces()
    assert created and not any(ns in listed for ns in created)
    assert star.created_namespaces == []
