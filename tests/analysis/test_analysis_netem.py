"""The Case IV network emulation: the transfer protocol on loopback, and the namespace
emulation against the model (root only)."""

from __future__ import annotations

import subprocess
import threading

import pytest

from cipherfuse.analysis import netpeer
from cipherfuse.analysis.netem import (
    StarEmulation,
    emulate,
    emulation_unavailable_reason,
    kernel_has_netem,
)
from cipherfuse.analysis.network import NetworkError, StarNetwork, Transfer, fedavg_round

needs_emulation = pytest.mark.skipif(
    emulation_unavailable_reason() is not None,
    reason=f"namespace emulation unavailable: {emulation_unavailable_reason()}",
)


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
    from cipherfuse.analysis.netem import _plan

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
