"""The three members in three network namespaces joined by veth pairs (Linux, root only).

The test makes its own namespaces and links (one /30 subnet per pair of members) and
removes them afterwards; each member is a separate process inside its namespace, so the
channels cross real (virtual) network interfaces rather than loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cipherfuse.mpc.channel import StaticKey

PAIRS = ((0, 1), (0, 2), (1, 2))
PORT = 7300

MEMBER_SCRIPT = r"""
import json, sys
import numpy as np
from cipherfuse.mpc.channel import ChannelConfig, MemberEndpoint, connect_committee
cfg = json.loads(sys.argv[1])
me = cfg["party"]
members = [MemberEndpoint(h, p, bytes.fromhex(k)) for h, p, k in cfg["members"]]
with connect_committee(me, bytes.fromhex(cfg["key"]), members, b"netns",
                       ChannelConfig(timeout=30, connect_timeout=30)) as t:
    data = np.full(1 << 18, me + 1, dtype=np.uint64)
    for q in range(3):
        if q != me:
            t.send(q, memoryview(data))
    got = {str(q): int(np.frombuffer(t.recv(q), np.uint64).sum()) for q in range(3) if q != me}
print(json.dumps({"party": me, "got": got, "bytes_sent": t.bytes_sent}))
"""


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs Linux, root and iproute2 to make network namespaces")
    tag = f"cfm{os.getpid() % 100000}"
    names = [f"{tag}n{i}" for i in range(3)]
    made: list[str] = []
    try:
        for name in names:
            result = _ip("netns", "add", name)
            if result.returncode != 0:
                pytest.skip(f"ip netns add failed here: {result.stderr.strip()}")
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        for a, b in PAIRS:
            left, right = f"{tag}a{a}{b}", f"{tag}b{a}{b}"
            steps = [
                (
                    "link",
                    "add",
                    left,
                    "netns",
                    names[a],
                    "type",
                    "veth",
                    "peer",
                    "name",
                    right,
                    "netns",
                    names[b],
                ),
                ("-n", names[a], "addr", "add", f"10.203.{10 * a + b}.1/30", "dev", left),
                ("-n", names[b], "addr", "add", f"10.203.{10 * a + b}.2/30", "dev", right),
                ("-n", names[a], "link", "set", left, "up"),
                ("-n", names[b], "link", "set", right, "up"),
            ]
            for step in steps:
                result = _ip(*step)
                if result.returncode != 0:
                    pytest.skip(f"cannot build veth links here: {' '.join(step)}: {result.stderr}")
        yield names
    finally:
        for name in made:
            _ip("netns", "del", name)


def _address(of: int, seen_by: int) -> str:
    a, b = min(of, seen_by), max(of, seen_by)
    return f"10.203.{10 * a + b}.{1 if of == a else 2}"


def test_members_in_three_namespaces_exchange_frames(namespaces: list[str]) -> None:
    keys = [StaticKey.generate() for _ in range(3)]
    processes = []
    for me in range(3):
        members = [
            ["0.0.0.0" if q == me else _address(q, me), PORT, keys[q].public.hex()]
            for q in range(3)
        ]
        config = {"party": me, "key": keys[me].private.hex(), "members": members}
        processes.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    namespaces[me],
                    sys.executable,
                    "-c",
                    MEMBER_SCRIPT,
                    json.dumps(config),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )
        )
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    words = 1 << 18
    for me, report in enumerate(outputs):
        assert report["party"] == me
        assert report["got"] == {str(q): (q + 1) * words for q in range(3) if q != me}
        assert report["bytes_sent"] == 2 * 8 * words
