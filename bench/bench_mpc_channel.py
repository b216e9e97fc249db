"""Loopback throughput of the committee channel against a plain unencrypted TCP socket.

One 32 MiB payload from party 0 to party 1 (the size of a large share message), in one
process (two threads, sender and receiver):

* baseline: a plain TCP socket pair on 127.0.0.1, ``sendall`` / ``recv_into`` a
  preallocated buffer (no framing, no crypto, no copies beyond the kernel's);
* candidate: :class:`cipherfuse.mpc.channel.TcpTransport` (ChaCha20-Poly1305 sealing,
  framing, reader/writer threads), channels set up outside the timing.

``test_channel_three_processes`` runs the same transfer with :func:`run_committee` as
three OS processes (sealing and opening then run in different processes, not under one
GIL) and records the MB/s measured inside party 1.

Run: ``pytest bench/bench_mpc_channel.py --benchmark-only``
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from cipherfuse.mpc.channel import (
    ChannelConfig,
    MemberEndpoint,
    StaticKey,
    TcpTransport,
    bind_listener,
    connect_committee,
)
from cipherfuse.mpc.launcher import run_committee
from cipherfuse.mpc.transport import Transport

if TYPE_CHECKING:
    from bench.conftest import Benchmark

PAYLOAD_BYTES = 32 * 2**20
GROUP = "mpc-channel-loopback-32MiB"


def _payload() -> bytes:
    return np.random.default_rng(7).integers(0, 256, PAYLOAD_BYTES, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return _payload()


@pytest.fixture(scope="module")
def committee() -> Iterator[list[TcpTransport]]:
    keys = [StaticKey.generate() for _ in range(3)]
    listeners = [bind_listener() for _ in range(3)]
    members = [
        MemberEndpoint("127.0.0.1", s.getsockname()[1], k.public)
        for s, k in zip(listeners, keys, strict=True)
    ]
    transports: list[Any] = [None] * 3
    config = ChannelConfig(timeout=60.0)

    def up(p: int) -> None:
        transports[p] = connect_committee(
            p, keys[p], members, b"bench", config, listener=listeners[p]
        )

    threads = [threading.Thread(target=up, args=(p,)) for p in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    yield transports
    for t in transports:
        t.close()


def test_plain_socket(benchmark: Benchmark, payload: bytes) -> None:
    listener = bind_listener()
    sender = socket.create_connection(listener.getsockname())
    receiver, _ = listener.accept()
    listener.close()
    buffer = bytearray(PAYLOAD_BYTES)

    def transfer() -> None:
        thread = threading.Thread(target=sender.sendall, args=(payload,))
        thread.start()
        view, got = memoryview(buffer), 0
        while got < PAYLOAD_BYTES:
            got += receiver.recv_into(view[got:])
        thread.join()

    benchmark.group = GROUP
    benchmark.extra_info.update(role="baseline", bytes=PAYLOAD_BYTES)
    benchmark.pedantic(transfer, rounds=5, warmup_rounds=1)
    assert buffer == payload
    sender.close()
    receiver.close()


def test_channel(benchmark: Benchmark, committee: list[TcpTransport], payload: bytes) -> None:
    received: list[bytes] = []

    def transfer() -> None:
        committee[0].send(1, payload)
        received.append(committee[1].recv(0))

    benchmark.group = GROUP
    benchmark.extra_info.update(role="candidate", bytes=PAYLOAD_BYTES)
    benchmark.pedantic(transfer, rounds=5, warmup_rounds=1)
    assert all(r == payload for r in received)


def stream_to_party_one(transport: Transport, args: dict[str, Any]) -> dict[str, Any]:
    """Party 0 sends ``frames`` payloads to party 1; party 1 times their arrival."""
    data = _payload()
    frames = int(args["frames"])
    if transport.party == 0:
        transport.recv(1)  # both ready
        for _ in range(frames):
            transport.send(1, data)
        return {"ok": transport.recv(1) == b"done"}
    if transport.party == 1:
        transport.send(0, b"ready")
        start = time.perf_counter()
        same = all(transport.recv(0) == data for _ in range(frames))
        seconds = time.perf_counter() - start
        transport.send(0, b"done")
        return {"ok": same, "mb_per_s": frames * PAYLOAD_BYTES / seconds / 1e6}
    return {"ok": True}


def test_channel_three_processes(benchmark: Benchmark) -> None:
    runs: list[Any] = []

    def run() -> None:
        runs.append(run_committee(stream_to_party_one, {"frames": 4}, timeout=300))

    benchmark.group = "mpc-channel-3-processes-4x32MiB"
    benchmark.extra_info.update(role="candidate", bytes=4 * PAYLOAD_BYTES)
    benchmark.pedantic(run, rounds=1)
    result = runs[-1].results
    assert all(r["ok"] for r in result)
    benchmark.extra_info["mb_per_s_inside_party_1"] = round(result[1]["mb_per_s"], 1)
    benchmark.extra_info["bytes_sent_party_0"] = runs[-1].parties[0].bytes_sent
