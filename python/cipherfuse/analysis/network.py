"""The paper's Case IV network: a model of a star of 50 Mbps links.

Paper (Sec. VI-E): "the emulated network has a star topology, where all nodes
are connected to a switch. The bandwidth of the network is set to 50 Mbps and
propagation delay is 5 ms."

**Model** (:class:`StarNetwork`). Every node has one full-duplex link to the
switch (``rate_bps`` each way, ``delay_s`` propagation). A transfer from ``a``
to ``b`` crosses ``a``'s uplink and ``b``'s downlink. The communication is a
sequence of *phases*; in a phase all transfers run at once and the phase ends
when the last byte arrives::

    phase time = max over link directions (wire bytes through it) * 8 / rate_bps
                 + 2 * delay_s          (two hops: node -> switch -> node)

Wire bytes count the TCP/IPv4/Ethernet headers a link actually carries: the
payload is cut into segments of ``mss`` bytes and each segment carries
``header_bytes`` more (defaults: MTU 1500 with TCP timestamps, so 1448 payload
bytes per 1514-byte frame). TCP slow start, ACK traffic and the one-frame
store-and-forward at the switch are not modelled (each is well under 1 % of a
transfer of a model of this size at this rate; the emulation,
:mod:`cipherfuse.analysis.netem`, measures them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cipherfuse.errors import CipherfuseError
from cipherfuse.validation import strict_int

#: The paper's Case IV links: 50 Mbps, 5 ms propagation delay.
PAPER_RATE_BPS = 50e6
PAPER_DELAY_S = 0.005


class NetworkError(CipherfuseError, RuntimeError):
    """A bad network description, or the emulation could not be set up or run."""


@dataclass(frozen=True)
class Transfer:
    """``nbytes`` of payload from node ``src`` to node ``dst``."""

    src: str
    dst: str
    nbytes: int

    def __post_init__(self) -> None:
        if not self.src or not self.dst or self.src == self.dst:
            raise NetworkError(
                f"a transfer needs two different nodes, got {self.src!r}->{self.dst!r}"
            )
        strict_int(self.nbytes, "transfer size", minimum=0, error=NetworkError)


Phase = Sequence[Transfer]


@dataclass(frozen=True)
class StarNetwork:
    """A star of identical full-duplex links (the paper's: 50 Mbps, 5 ms).

    Attributes:
        rate_bps: link rate in bits per second, each direction.
        delay_s: one-way propagation delay of one link (node <-> switch).
        mss: TCP payload bytes per segment (MTU 1500 - 20 IP - 32 TCP with timestamps).
        header_bytes: bytes each segment adds on the link (14 Ethernet + 20 IP + 32 TCP).
            ``0`` (with any ``mss``) counts payload only.
    """

    rate_bps: float = PAPER_RATE_BPS
    delay_s: float = PAPER_DELAY_S
    mss: int = 1448
    header_bytes: int = 66

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_bps) and self.rate_bps > 0):
            raise NetworkError(f"rate_bps must be a positive number, got {self.rate_bps}")
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
            raise NetworkError(f"delay_s must be >= 0 seconds, got {self.delay_s}")
        if self.mss < 1 or self.header_bytes < 0:
            raise NetworkError(
                f"need mss >= 1 and header_bytes >= 0, got {self.mss}, {self.header_bytes}"
            )

    def wire_bytes(self, payload: int) -> int:
        """Bytes a link carries for ``payload`` bytes of TCP payload."""
        if payload < 0:
            raise NetworkError(f"payload must be >= 0, got {payload}")
        return payload + math.ceil(payload / self.mss) * self.header_bytes

    def link_loads(self, phase: Phase) -> dict[tuple[str, str], int]:
        """Wire bytes per link direction: ``(node, "up")`` and ``(node, "down")``."""
        loads: dict[tuple[str, str], int] = {}
        for t in phase:
            w = self.wire_bytes(t.nbytes)
            loads[(t.src, "up")] = loads.get((t.src, "up"), 0) + w
            loads[(t.dst, "down")] = loads.get((t.dst, "down"), 0) + w
        return loads

    def phase_seconds(self, phase: Phase) -> float:
        """Time from the start of a phase until its last byte arrives (0 for an empty phase)."""
        if not phase:
            return 0.0
        busiest = max(self.link_loads(phase).values())
        return busiest * 8.0 / self.rate_bps + 2.0 * self.delay_s

    def schedule_seconds(self, phases: Sequence[Phase]) -> float:
        """Total time of phases run one after the other."""
        return sum(self.phase_seconds(p) for p in phases)


def payload_bytes(phases: Sequence[Phase]) -> int:
    """Total payload bytes of a schedule (what the experiments report as "bytes moved")."""
    return sum(t.nbytes for p in phases for t in p)


def fedavg_round(server: str, clients: Sequence[str], model_bytes: int) -> list[list[Transfer]]:
    """One FedAvg round: the server sends the global model to every client, then each
    client sends its update back."""
    if not clients:
        raise NetworkError("a FedAvg round needs at least one client")
    down = [Transfer(server, c, model_bytes) for c in clients]
    up = [Transfer(c, server, model_bytes) for c in clients]
    return [down, up]


def one_shot_fusion(
    verifier: str,
    contributors: Sequence[str],
    model_bytes: Sequence[int],
) -> list[list[Transfer]]:
    """This paradigm's one exchange: every contributor's model to the verifier, once.

    The MetaModel then exists at the verifier, as FedAvg's global model exists at its
    server after a round (Case IV counts both sides to that point)."""
    if not contributors or len(contributors) != len(model_bytes):
        raise NetworkError("need one model size per contributor, and at least one contributor")
    return [[Transfer(c, verifier, int(b)) for c, b in zip(contributors, model_bytes, strict=True)]]
