"""The processes at the ends of the emulated links (run by :mod:`cipherfuse.analysis.netem`).

``python -m cipherfuse.analysis.netpeer hub --port P --peers a,b,c`` listens,
waits for every peer, reads a JSON plan on stdin (a list of
``{"op": "down"|"up", "sizes": {peer: nbytes}}``), runs it and prints
``{"phase_seconds": [...]}``.

``python -m cipherfuse.analysis.netpeer node --name a --hub ADDR --port P``
connects and obeys the hub.

Protocol over one TCP connection per peer (JSON lines, then raw payload;
nothing is unpickled): the peer sends ``{"hello": name}``. For a ``down``
phase the hub sends ``{"op": "recv", "n": n}`` and ``n`` bytes; the peer
answers ``{"done": t}`` with ``t`` its ``time.monotonic()`` when the last
byte arrived. For an ``up`` phase the hub sends ``{"op": "send", "n": n}``;
the peer sends ``{"start": t}`` (its clock when it began) and ``n`` bytes.
``{"op": "bye"}`` ends. All processes run on one machine, so
``CLOCK_MONOTONIC`` is one clock for all namespaces: a ``down`` phase lasts
from the hub's start until the last peer's ``done``; an ``up`` phase from the
first peer's ``start`` until the hub has the last byte. Control messages are
outside the timed spans.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from cipherfuse.validation import strict_int

CHUNK = 1 << 20
MAX_LINE = 4096
IO_TIMEOUT_S = 120.0
_ZEROS = bytes(CHUNK)


class ProtocolError(RuntimeError):
    """The other end broke the protocol."""


def _send_json(sock: socket.socket, obj: dict[str, Any]) -> None:
    sock.sendall(json.dumps(obj).encode() + b"\n")


def _read_json(reader: BinaryIO) -> dict[str, Any]:
    line = reader.readline(MAX_LINE)
    if not line.endswith(b"\n"):
        raise ProtocolError("connection closed or control line too long")
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {line!r}")
    return obj


def _count(value: Any, what: str) -> int:
    return strict_int(value, what, minimum=0, error=ProtocolError)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{what} must be a number, got {value!r}")
    return float(value)


def _send_payload(sock: socket.socket, n: int) -> None:
    view = memoryview(_ZEROS)
    while n > 0:
        k = min(n, CHUNK)
        sock.sendall(view[:k])
        n -= k


def _recv_payload(reader: BinaryIO, n: int) -> None:
    buf = bytearray(min(n, CHUNK) or 1)
    view = memoryview(buf)
    while n > 0:
        k = reader.readinto(view[: min(n, CHUNK)])  # type: ignore[attr-defined]
        if not k:
            raise ProtocolError(f"connection closed with {n} payload bytes missing")
        n -= k


def _parallel(jobs: Sequence[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def run_hub(port: int, peers: Sequence[str], plan: Sequence[dict[str, Any]]) -> list[float]:
    """Accept every peer, run the plan, return seconds per phase."""
    listener = socket.create_server(("0.0.0.0", port), backlog=len(peers))
    listener.settimeout(IO_TIMEOUT_S)
    socks: dict[str, socket.socket] = {}
    readers: dict[str, BinaryIO] = {}
    opened: list[tuple[socket.socket, BinaryIO]] = []
    try:
        while len(socks) < len(peers):
            conn, _ = listener.accept()
            conn.settimeout(IO_TIMEOUT_S)
            reader = conn.makefile("rb")
            opened.append((conn, reader))
            name = _read_json(reader).get("hello")
            if not isinstance(name, str) or name not in peers or name in socks:
                raise ProtocolError(f"unexpected peer {name!r}")
            socks[name], readers[name] = conn, reader
        seconds = []
        for i, step in enumerate(plan):
            op, sizes = step.get("op"), step.get("sizes")
            if op not in ("down", "up") or not isinstance(sizes, dict) or not sizes:
                raise ProtocolError(f"plan step {i} is malformed: {step!r}")
            for peer, n in sizes.items():
                if peer not in socks:
                    raise ProtocolError(f"plan step {i} names unknown peer {peer!r}")
                _count(n, f"plan step {i} size for {peer}")
            seconds.append(_hub_phase(op, sizes, socks, readers))
        for s in socks.values():
            _send_json(s, {"op": "bye"})
        return seconds
    finally:
        for conn, conn_reader in opened:
            conn_reader.close()  # a socket's fd stays open while a makefile() reader is open
            conn.close()
        listener.close()


def _hub_phase(
    op: str,
    sizes: dict[str, int],
    socks: dict[str, socket.socket],
    readers: dict[str, BinaryIO],
) -> float:
    marks: dict[str, float] = {}
    ends: dict[str, float] = {}
    if op == "down":

        def send_to(peer: str) -> Callable[[], None]:
            def job() -> None:
                _send_json(socks[peer], {"op": "recv", "n": sizes[peer]})
                _send_payload(socks[peer], sizes[peer])
                marks[peer] = _number(_read_json(readers[peer]).get("done"), "done")

            return job

        start = time.monotonic()
        _parallel([send_to(p) for p in sizes])
        return max(marks.values()) - start

    for peer in sizes:
        _send_json(socks[peer], {"op": "send", "n": sizes[peer]})

    def receive_from(peer: str) -> Callable[[], None]:
        def job() -> None:
            marks[peer] = _number(_read_json(readers[peer]).get("start"), "start")
            _recv_payload(readers[peer], sizes[peer])
            ends[peer] = time.monotonic()

        return job

    _parallel([receive_from(p) for p in sizes])
    return max(ends.values()) - min(marks.values())


def run_node(name: str, hub: str, port: int, connect_timeout_s: float = 30.0) -> None:
    """Connect to the hub (retrying until it listens) and obey it until ``bye``."""
    deadline = time.monotonic() + connect_timeout_s
    while True:
        try:
            sock = socket.create_connection((hub, port), timeout=IO_TIMEOUT_S)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with sock, sock.makefile("rb") as reader:
        _send_json(sock, {"hello": name})
        while True:
            msg = _read_json(reader)
            op = msg.get("op")
            if op == "bye":
                return
            n = _count(msg.get("n"), "n")
            if op == "recv":
                _recv_payload(reader, n)
                _send_json(sock, {"done": time.monotonic()})
            elif op == "send":
                _send_json(sock, {"start": time.monotonic()})
                _send_payload(sock, n)
            else:
                raise ProtocolError(f"unknown op {op!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="netpeer")
    sub = parser.add_subparsers(dest="role", required=True)
    hub = sub.add_parser("hub")
    hub.add_argument("--port", type=int, required=True)
    hub.add_argument("--peers", required=True)
    node = sub.add_parser("node")
    node.add_argument("--name", required=True)
    node.add_argument("--hub", required=True)
    node.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.role == "hub":
        plan = json.loads(sys.stdin.read())
        if not isinstance(plan, list):
            raise ProtocolError("the plan must be a JSON list")
        seconds = run_hub(args.port, args.peers.split(","), plan)
        print(json.dumps({"phase_seconds": seconds}))
    else:
        run_node(args.name, args.hub, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
