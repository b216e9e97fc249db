"""The paper's Case IV network: a model of a star of 50 Mbps links, and an emulation of it.

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
transfer of a model of this size at this rate; the emulation measures them).

**Emulation** (:class:`StarEmulation`, root only). Network namespaces for the
switch (a Linux bridge) and every node, one veth pair per node, and on *both*
ends of every veth a ``tc`` qdisc: ``netem rate 50mbit delay 5ms`` where the
kernel has ``sch_netem``; otherwise ``tbf rate 50mbit`` (rate only; the
result then says ``delay_emulated=False`` and should be compared with the
model at ``delay_s=0``). The phases are run as real TCP transfers of the given
byte counts between processes in those namespaces (:mod:`cipherfuse.analysis.netpeer`).
Everything created has a unique name and is removed again on exit, on error
and on interrupt.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

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


# --------------------------------------------------------------------------- emulation

Qdisc = Literal["netem", "tbf"]


def emulation_unavailable_reason() -> str | None:
    """Why the namespace emulation cannot run here (``None`` when it can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"the '{tool}' command (iproute2) is not installed"
    return None


def kernel_has_netem() -> bool:
    """Whether ``tc`` can create a netem qdisc here (probed in a throw-away namespace)."""
    if emulation_unavailable_reason() is not None:
        return False
    ns = "cf" + secrets.token_hex(3) + "-probe"
    if _run(["ip", "netns", "add", ns], check=False).returncode != 0:
        return False
    try:
        probe = ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem"]
        return _run([*probe, "delay", "1ms"], check=False).returncode == 0
    finally:
        _run(["ip", "netns", "del", ns], check=False)


def _run(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise NetworkError(f"'{' '.join(args)}' failed: {proc.stderr.strip() or proc.returncode}")
    return proc


def _rate_arg(rate_bps: float) -> str:
    return f"{round(rate_bps)}bit"


@dataclass
class EmulationResult:
    """Measured seconds per phase over the emulated links and how they were emulated."""

    phase_seconds: list[float]
    qdisc: Qdisc
    delay_emulated: bool

    @property
    def total_seconds(self) -> float:
        """Sum over phases."""
        return sum(self.phase_seconds)


@dataclass
class StarEmulation:
    """Namespaces + bridge + veth + tc links for ``nodes`` (use as a context manager).

    ``qdisc``: ``"netem"`` (rate and delay), ``"tbf"`` (rate only) or ``None``
    to take netem when the kernel has it, else tbf.
    """

    nodes: Sequence[str]
    network: StarNetwork = field(default_factory=StarNetwork)
    qdisc: Qdisc | None = None
    tag: str = field(default_factory=lambda: "cf" + secrets.token_hex(3))
    _namespaces: list[str] = field(default_factory=list, init=False)
    _addresses: dict[str, str] = field(default_factory=dict, init=False)
    _chosen: Qdisc | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if len(self.nodes) < 2 or len(set(self.nodes)) != len(self.nodes):
            raise NetworkError("an emulated star needs at least two distinct node names")
        if len(self.nodes) > 200:
            raise NetworkError("at most 200 nodes per emulated star")

    @property
    def created_namespaces(self) -> list[str]:
        """Namespaces this emulation created and has not removed yet."""
        return list(self._namespaces)

    def namespace(self, node: str) -> str:
        """The namespace of ``node``."""
        return f"{self.tag}-n{list(self.nodes).index(node)}"

    def address(self, node: str) -> str:
        """The IPv4 address of ``node`` on the emulated star."""
        return self._addresses[node]

    @property
    def chosen_qdisc(self) -> Qdisc:
        """The qdisc in use (after ``__enter__``)."""
        if self._chosen is None:
            raise NetworkError("the emulation is not set up")
        return self._chosen

    def __enter__(self) -> StarEmulation:
        reason = emulation_unavailable_reason()
        if reason is not None:
            raise NetworkError(f"cannot emulate the network: {reason}")
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        _run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _qdisc_args(self, kind: Qdisc) -> list[str]:
        rate = _rate_arg(self.network.rate_bps)
        if kind == "netem":
            delay = f"{self.network.delay_s * 1e6:.0f}us"
            return ["netem", "rate", rate, "delay", delay, "limit", "100000"]
        return ["tbf", "rate", rate, "burst", "16kb", "limit", "8mb"]

    def _add_qdisc(self, ns: str, dev: str) -> None:
        assert self._chosen is not None
        _run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                *self._qdisc_args(self._chosen),
            ]
        )

    def _build(self) -> None:
        switch = f"{self.tag}-sw"
        self._add_ns(switch)
        bridge = f"{self.tag}br"
        _run(["ip", "-n", switch, "link", "add", bridge, "type", "bridge"])
        _run(["ip", "-n", switch, "link", "set", bridge, "up"])
        for i, node in enumerate(self.nodes):
            ns = self.namespace(node)
            self._add_ns(ns)
            node_dev, sw_dev = f"{self.tag}n{i}", f"{self.tag}s{i}"
            _run(
                [
                    "ip",
                    "-n",
                    switch,
                    "link",
                    "add",
                    sw_dev,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    node_dev,
                    "netns",
                    ns,
                ]
            )
            _run(["ip", "-n", switch, "link", "set", sw_dev, "master", bridge])
            _run(["ip", "-n", switch, "link", "set", sw_dev, "up"])
            addr = f"10.77.{i // 250}.{i % 250 + 1}"
            _run(["ip", "-n", ns, "addr", "add", f"{addr}/16", "dev", node_dev])
            _run(["ip", "-n", ns, "link", "set", node_dev, "up"])
            self._addresses[node] = addr
            if self._chosen is None:
                self._chosen = self._pick_qdisc(ns, node_dev)
            self._add_qdisc(ns, node_dev)
            self._add_qdisc(switch, sw_dev)

    def _pick_qdisc(self, ns: str, dev: str) -> Qdisc:
        if self.qdisc is not None:
            return self.qdisc
        probe = _run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                *self._qdisc_args("netem"),
            ],
            check=False,
        )
        if probe.returncode == 0:
            _run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"])
            return "netem"
        return "tbf"

    def close(self) -> None:
        """Remove every namespace created (their veths and bridge go with them)."""
        problems = []
        while self._namespaces:
            ns = self._namespaces.pop()
            proc = _run(["ip", "netns", "del", ns], check=False)
            if proc.returncode != 0:
                problems.append(f"{ns}: {proc.stderr.strip()}")
        if problems:
            raise NetworkError("could not remove network namespaces: " + "; ".join(problems))

    def run_phases(
        self, hub: str, phases: Sequence[Phase], *, timeout_s: float = 300.0
    ) -> EmulationResult:
        """Run ``phases`` as TCP transfers; every transfer must have ``hub`` as one end and
        each phase must go one way (all to the hub, or all from it)."""
        plan = _plan(hub, phases)
        peers = [n for n in self.nodes if n != hub]
        python = sys.executable
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        port = 47000 + secrets.randbelow(1000)
        procs: list[subprocess.Popen[str]] = []
        try:
            hub_proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.namespace(hub),
                    python,
                    "-m",
                    "cipherfuse.analysis.netpeer",
                    "hub",
                    "--port",
                    str(port),
                    "--peers",
                    ",".join(peers),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            procs.append(hub_proc)
            for node in peers:
                procs.append(
                    subprocess.Popen(
                        [
                            "ip",
                            "netns",
                            "exec",
                            self.namespace(node),
                            python,
                            "-m",
                            "cipherfuse.analysis.netpeer",
                            "node",
                            "--name",
                            node,
                            "--hub",
                            self.address(hub),
                            "--port",
                            str(port),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                )
            try:
                out, err = hub_proc.communicate(json.dumps(plan), timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise NetworkError(f"emulated transfers did not finish in {timeout_s} s") from exc
            if hub_proc.returncode != 0:
                raise NetworkError(f"emulation hub failed: {err.strip()[-2000:]}")
            deadline = time.monotonic() + 30
            for p in procs[1:]:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
                if p.returncode != 0:
                    _, perr = p.communicate()
                    raise NetworkError(f"emulation node failed: {perr.strip()[-2000:]}")
            try:
                measured = json.loads(out)
                seconds = [float(s) for s in measured["phase_seconds"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise NetworkError(f"emulation hub printed no result: {out[-500:]!r}") from exc
            if len(seconds) != len(plan):
                raise NetworkError("emulation hub reported the wrong number of phases")
            return EmulationResult(
                phase_seconds=seconds,
                qdisc=self.chosen_qdisc,
                delay_emulated=self.chosen_qdisc == "netem",
            )
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=10)
                for pipe in (p.stdin, p.stdout, p.stderr):  # no descriptor outlives the run
                    if pipe is not None:
                        with contextlib.suppress(OSError):
                            pipe.close()


def _plan(hub: str, phases: Sequence[Phase]) -> list[dict[str, object]]:
    """Phases as the hub's JSON plan: ``{"op": "down"|"up", "sizes": {node: nbytes}}``."""
    plan: list[dict[str, object]] = []
    for i, phase in enumerate(phases):
        if not phase:
            raise NetworkError(f"phase {i} is empty")
        down = all(t.src == hub for t in phase)
        up = all(t.dst == hub for t in phase)
        if not (down or up):
            raise NetworkError(
                f"phase {i}: every transfer must go from the hub {hub!r} or to it, all one way"
            )
        sizes: dict[str, int] = {}
        for t in phase:
            other = t.dst if down else t.src
            if other in sizes:
                raise NetworkError(f"phase {i}: two transfers with node {other!r}")
            sizes[other] = t.nbytes
        plan.append({"op": "down" if down else "up", "sizes": sizes})
    return plan


def emulate(
    hub: str,
    nodes: Sequence[str],
    phases: Sequence[Phase],
    network: StarNetwork | None = None,
    *,
    qdisc: Qdisc | None = None,
    timeout_s: float = 300.0,
) -> EmulationResult:
    """Build the emulated star, run ``phases`` over it, and remove everything again."""
    with StarEmulation(nodes, network or StarNetwork(), qdisc) as star:
        return star.run_phases(hub, phases, timeout_s=timeout_s)
