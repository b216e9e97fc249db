"""An anvil node never outlives the Python process that started it.

Each test runs the owner in a child interpreter, lets it end without calling
``stop()`` (a normal exit, or SIGTERM to a command run through the CLI's ``main``)
and checks that the anvil process it printed is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chain.conftest import anvil_binary_or_skip

_OWNER = """
import sys, time
from pathlib import Path
import click
from cipherfuse.chain import AnvilNode
from cipherfuse.cli.main import cli, main

binary, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "exit":
    node = AnvilNode(accounts=1, binary=binary).start()
    print(node.pid, flush=True)
else:  # a CLI command run through main(), as the console script runs it
    @cli.command("hold-anvil")
    def hold_anvil() -> None:
        with AnvilNode(accounts=1, binary=binary) as node:
            print(node.pid, flush=True)
            time.sleep(120)

    sys.exit(main(["hold-anvil"]))
"""


def _is_anvil(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) anvil process (never a reused PID)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z" and b"anvil" in cmdline


def _start_owner(mode: str) -> tuple[subprocess.Popen[str], int]:
    binary = anvil_binary_or_skip()
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(binary), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # read only when the owner fails early
        text=True,
    )
    assert owner.stdout is not None
    line = owner.stdout.readline()
    if not line:
        owner.wait(timeout=30)
        assert owner.stderr is not None
        pytest.fail(f"owner did not start anvil: {owner.stderr.read()[-2000:]}")
    return owner, int(line)


def _close(owner: subprocess.Popen[str]) -> None:
    """Reap the owner and close the pipes this test opened to it."""
    owner.wait(timeout=30)
    for pipe in (owner.stdout, owner.stderr):
        if pipe is not None:
            pipe.close()


def _assert_gone(pid: int) -> None:
    deadline = time.monotonic() + 15
    while _is_anvil(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _is_anvil(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"anvil pid {pid} outlived its owner")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_anvil_is_stopped_when_its_owner_exits_without_stop() -> None:
    owner, pid = _start_owner("exit")
    try:
        assert owner.wait(timeout=30) == 0
    finally:
        if owner.poll() is None:
            owner.kill()
        _close(owner)
        _assert_gone(pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sigterm_to_a_cli_command_unwinds_and_stops_its_anvil() -> None:
    owner, pid = _start_owner("cli")
    try:
        assert _is_anvil(pid)
        owner.send_signal(signal.SIGTERM)
        assert owner.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if owner.poll() is None:
            owner.kill()
        _close(owner)
        _assert_gone(pid)


def test_sigterm_as_exit_ignores_repeats_and_restores_the_previous_handler() -> None:
    from cipherfuse.cli.main import sigterm_as_exit

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_exit():
        assert signal.getsignal(signal.SIGTERM) is not before
        with pytest.raises(SystemExit) as exc:
            signal.raise_signal(signal.SIGTERM)
        assert exc.value.code == 143
        # while the clean-up runs, a second SIGTERM is ignored
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
