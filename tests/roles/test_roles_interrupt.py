"""Ctrl-C: the demo and the testbed stop with status 130, no traceback, nothing left behind.

Real ``cipherfuse`` processes receive a real SIGINT while they work. The timeouts below
only keep a broken build from hanging CI; the measured stop time is checked against the
watchdog's deadline with a wide margin for a loaded machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cipherfuse.roles.state import StateFile
from cipherfuse.shutdown import GRACE_SECONDS

HANG_GUARD = 300


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class _Reader:
    """Collects a process's output in a thread; ``wait_for`` blocks until a phrase shows."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.proc = proc
        assert proc.stdout is not None
        stream = proc.stdout

        def drain() -> None:
            with stream:  # closed at the end of the output: no pipe outlives the process
                self.lines.extend(stream)

        self.thread = threading.Thread(target=drain, daemon=True)
        self.thread.start()

    def wait_for(self, phrase: str) -> None:
        deadline = time.monotonic() + HANG_GUARD
        while not any(phrase in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.1)

    def text(self) -> str:
        self.thread.join(timeout=HANG_GUARD)
        return "".join(self.lines)


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cipherfuse", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _interrupt(proc: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=HANG_GUARD)
    return time.monotonic() - started


@pytest.mark.parametrize("phrase", ["training on", "shared the whole model"])
def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path, phrase: str) -> None:
    workdir = tmp_path / "work"
    proc = _start(["demo", "--quick", "--workdir", str(workdir)], tmp_path)
    out = _Reader(proc)
    out.wait_for(phrase)
    time.sleep(0.5)
    children = _children(proc.pid)
    seconds = _interrupt(proc)
    text = out.text()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "Exception ignored" not in text, text
    assert text.rstrip().endswith("interrupted"), text
    assert seconds < GRACE_SECONDS + 10, seconds  # the watchdog's deadline, loaded machine
    assert not [p for p in children if _alive(p)]
    # every state file is whole (checksummed JSON): a restart would read it
    states = list((workdir / "state").glob("*.json"))
    assert states
    for path in states:
        role = path.name.split("-", 1)[0]
        StateFile(path, role, path.stem.split("-", 1)[1])
    assert not (tmp_path / "cipherfuse-demo-report.json").exists()  # no half result


@pytest.mark.slow
def test_ctrl_c_stops_the_testbed_and_its_processes(tmp_path: Path) -> None:
    from cipherfuse.chain import NodeError, find_anvil

    try:
        anvil = find_anvil(Path(__file__).resolve().parents[2])
    except NodeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide anvil: {exc}")
        pytest.skip(str(exc))
    os.environ.setdefault("CIPHERFUSE_ANVIL", str(anvil))
    proc = _start(["testbed", "--max-epochs", "1", "--workdir", str(tmp_path / "tb")], tmp_path)
    out = _Reader(proc)
    out.wait_for("started contributor (account 4)")
    time.sleep(2.0)
    children = _children(proc.pid)
    assert len(children) >= 8  # anvil and 7 role processes
    _interrupt(proc)
    text = out.text()
    assert proc.returncode == 130, text
    assert "Traceback" not in text, text
    deadline = time.monotonic() + 30
    while [p for p in children if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in children if _alive(p)]
    # As root the roles ran in network namespaces of their own: those are gone too.
    tags = re.findall(r"7 network namespaces (cf[0-9a-f]+)-\* on", text)
    if tags:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert tags[0] + "-" not in names, names
        link = subprocess.run(["ip", "link", "show", tags[0] + "h"], capture_output=True)
        assert link.returncode != 0
