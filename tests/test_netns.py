"""The namespace helpers shared by the testbed's hosts and the network emulator."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from cipherfuse import netns


class Refused(RuntimeError):
    pass


def test_a_missing_tool_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    if netns.namespaces_unavailable_reason(()) is not None:
        pytest.skip("not root on Linux")
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "tc" else "/x")
    assert netns.namespaces_unavailable_reason(("ip",)) is None
    assert netns.namespaces_unavailable_reason(("ip", "tc")) == (
        "the 'tc' command (iproute2) is not installed"
    )


def test_a_failing_command_raises_the_callers_error() -> None:
    fail = [sys.executable, "-c", "import sys; sys.stderr.write('nope'); sys.exit(3)"]
    with pytest.raises(Refused, match="failed: nope"):
        netns.run_command(fail, Refused)
    proc = netns.run_command(fail, Refused, check=False)
    assert isinstance(proc, subprocess.CompletedProcess) and proc.returncode == 3


@pytest.mark.skipif(netns.namespaces_unavailable_reason() is not None, reason="needs root")
def test_a_set_removes_what_it_made_and_reports_what_it_could_not() -> None:
    made = netns.NamespaceSet(Refused)
    name = "cft" + secrets.token_hex(3)
    made.add(name)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert name in listed.stdout and made.names == [name]
    subprocess.run(["ip", "netns", "del", name], check=True)  # gone behind the set's back
    made.add(name + "b")  # the set still holds the first one too
    assert made.names == [name, name + "b"]
    problems = made.remove_all()
    assert len(problems) == 1 and problems[0].startswith(f"{name}: ")
    assert made.names == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert name + "b" not in listed.stdout


class _Made(netns.BuiltOrRemoved):
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.made: list[str] = []
        self.closed = 0

    def _build(self) -> None:
        self.made.append("first")
        if self.fail:
            raise Refused("second step failed")
        self.made.append("second")

    def close(self) -> None:
        self.closed += 1
        self.made.clear()


def test_a_failed_build_removes_what_it_made_and_raises() -> None:
    broken = _Made(fail=True)
    with pytest.raises(Refused, match="second step"), broken:
        pytest.fail("the body must not run")
    assert broken.made == [] and broken.closed == 1
    fine = _Made(fail=False)
    with fine as entered:
        assert entered is fine and fine.made == ["first", "second"] and fine.closed == 0
    assert fine.closed == 1 and fine.made == []


def _listed() -> str:
    return subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout


_OWNER = """
import sys, time
from cipherfuse import netns
made = netns.NamespaceSet(RuntimeError)
made.add(sys.argv[1])
print("made", flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(netns.namespaces_unavailable_reason() is not None, reason="needs root")
def test_a_killed_owners_namespace_is_removed_by_the_next_set() -> None:
    stale, fresh = "cft" + secrets.token_hex(3), "cft" + secrets.token_hex(3)
    with subprocess.Popen(
        [sys.executable, "-c", _OWNER, stale], stdout=subprocess.PIPE, text=True
    ) as owner:
        try:
            assert owner.stdout is not None and owner.stdout.readline().strip() == "made"
        finally:
            owner.kill()  # SIGKILL: no clean-up runs in the owner
            owner.wait()
    assert stale in _listed().split()
    assert (netns.LEASE_DIR / f"{stale}.json").exists()
    made = netns.NamespaceSet(Refused)
    try:
        made.add(fresh)
        words = _listed().split()
        assert stale not in words and fresh in words
        assert not (netns.LEASE_DIR / f"{stale}.json").exists()
    finally:
        assert made.remove_all() == []
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)
    assert fresh not in _listed().split()
    assert not (netns.LEASE_DIR / f"{fresh}.json").exists()


@pytest.mark.skipif(netns.namespaces_unavailable_reason() is not None, reason="needs root")
def test_live_owners_and_unrecorded_namespaces_are_left_alone() -> None:
    live, unrecorded, junk, reused, fresh = ("cft" + secrets.token_hex(3) for _ in range(5))
    first = netns.NamespaceSet(Refused)
    first.add(live)  # owned by this (running) process
    for name in (unrecorded, junk, reused):
        subprocess.run(["ip", "netns", "add", name], check=True)
    (netns.LEASE_DIR / f"{junk}.json").write_bytes(b"{not json")
    # This pid with another start time: a pid reused by a new process is not the owner.
    start = netns.process_start_time(os.getpid())
    assert start is not None
    record = json.dumps({"pid": os.getpid(), "start": start - 1})
    (netns.LEASE_DIR / f"{reused}.json").write_text(record)
    second = netns.NamespaceSet(Refused)
    try:
        second.add(fresh)
        words = _listed().split()
        assert {live, unrecorded, junk, fresh} <= set(words)
        assert reused not in words
    finally:
        assert second.remove_all() == [] and first.remove_all() == []
        for name in (unrecorded, junk, reused):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        (netns.LEASE_DIR / f"{junk}.json").unlink(missing_ok=True)
    assert not {live, fresh} & set(_listed().split())


def test_process_start_time_names_a_running_process_only() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    own = netns.process_start_time(os.getpid())
    assert isinstance(own, int) and own > 0
    assert netns.process_start_time(os.getpid()) == own
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) as child:
        try:
            started = netns.process_start_time(child.pid)
            assert isinstance(started, int) and started >= own
        finally:
            child.kill()
            child.wait()
    # Reaped: no such process, or (were the pid reused at once) another start time.
    assert netns.process_start_time(child.pid) != started
