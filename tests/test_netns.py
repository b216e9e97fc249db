"""The namespace helpers shared by the testbed's hosts and the network emulator."""

from __future__ import annotations

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
