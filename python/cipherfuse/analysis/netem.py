"""An emulation of the paper's Case IV star network (root only, Linux namespaces).

:class:`StarEmulation` builds the star of :class:`~cipherfuse.analysis.network.StarNetwork`
for real: network namespaces for the switch (a Linux bridge) and every node, one veth pair
per node, and on *both* ends of every veth a ``tc`` qdisc: ``netem rate 50mbit delay 5ms``
where the kernel has ``sch_netem``; otherwise ``tbf rate 50mbit`` (rate only; the result
then says ``delay_emulated=False`` and should be compared with the model at
``delay_s=0``). The phases are run as real TCP transfers of the given byte counts between
processes in those namespaces (:mod:`cipherfuse.analysis.netpeer`). Everything created
has a unique name and is removed again on exit, on error and on interrupt.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from cipherfuse import netns
from cipherfuse.analysis.network import NetworkError, Phase, StarNetwork

Qdisc = Literal["netem", "tbf"]


def emulation_unavailable_reason() -> str | None:
    """Why the namespace emulation cannot run here (``None`` when it can)."""
    return netns.namespaces_unavailable_reason(("ip", "tc"))


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
    return netns.run_command(args, NetworkError, check=check)


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
class StarEmulation(netns.BuiltOrRemoved):
    """Namespaces + bridge + veth + tc links for ``nodes`` (use as a context manager).

    ``qdisc``: ``"netem"`` (rate and delay), ``"tbf"`` (rate only) or ``None``
    to take netem when the kernel has it, else tbf.
    """

    nodes: Sequence[str]
    network: StarNetwork = field(default_factory=StarNetwork)
    qdisc: Qdisc | None = None
    tag: str = field(default_factory=lambda: "cf" + secrets.token_hex(3))
    _namespaces: netns.NamespaceSet = field(
        default_factory=lambda: netns.NamespaceSet(NetworkError), init=False
    )
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
        return self._namespaces.names

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
        reason = emulation_unavailable_reason()
        if reason is not None:
            raise NetworkError(f"cannot emulate the network: {reason}")
        switch = f"{self.tag}-sw"
        self._namespaces.add(switch)
        bridge = f"{self.tag}br"
        _run(["ip", "-n", switch, "link", "add", bridge, "type", "bridge"])
        _run(["ip", "-n", switch, "link", "set", bridge, "up"])
        for i, node in enumerate(self.nodes):
            ns = self.namespace(node)
            self._namespaces.add(ns)
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
        problems = self._namespaces.remove_all()
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
