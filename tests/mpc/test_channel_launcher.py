"""The committee as three OS processes over the real channels (:func:`run_committee`)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cipherfuse.mpc.channel import ChannelConfig
from cipherfuse.mpc.launcher import CommitteeRunError, function_name, run_committee
from cipherfuse.mpc.transport import Transport

# -- the functions the children run (module level: the children import them by name) --


def exchange_arrays(transport: Transport, args: dict[str, Any]) -> dict[str, Any]:
    """Each party sends a seeded random array to both peers; returns the received sums."""
    me = transport.party
    mine = np.random.default_rng(args["seed"] + me).integers(
        0, 2**63, size=args["words"], dtype=np.uint64
    )
    for peer in range(3):
        if peer != me:
            transport.send(peer, memoryview(mine))
    received = {}
    for peer in range(3):
        if peer != me:
            got = np.frombuffer(transport.recv(peer), dtype=np.uint64)
            received[str(peer)] = int(got.sum(dtype=np.uint64))
    return {"party": me, "received": received}


def report_party(transport: Transport) -> int:
    return transport.party


def party_two_is_silent(transport: Transport, args: dict[str, Any]) -> int:
    if transport.party == 2:
        time.sleep(args["sleep"])
        return -1
    return len(transport.recv(2))


def fail_on_party_one(transport: Transport) -> None:
    if transport.party == 1:
        raise ValueError("party 1 gives up")
    transport.recv(1)


def hang_with_grandchild(transport: Transport, args: dict[str, Any]) -> None:
    """Start a long-lived grandchild process, record its pid, and hang."""
    child = subprocess.Popen(["sleep", "600"])
    Path(args["dir"], f"grandchild-{transport.party}").write_text(str(child.pid))
    threading.Event().wait()


# -- helpers ----------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    """The process has exited (absent, or a zombie waiting to be reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int) -> bool:
    # SIGKILL is delivered asynchronously to a process the test did not start; this
    # waits for that condition, it is not a timing assertion
    for _ in range(300):
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def _launcher_children() -> list[int]:
    """Live children of this process that run the launcher's child module."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if stat[1] == me and b"cipherfuse.mpc.launcher" in cmdline and stat[0] not in "ZX":
            found.append(int(entry.name))
    return found


# -- tests ------------------------------------------------------------------------------


def test_three_processes_exchange_arrays() -> None:
    words = 200_000
    run = run_committee(exchange_arrays, {"seed": 5, "words": words}, timeout=120)
    sums = [
        int(
            np.random.default_rng(5 + p)
            .integers(0, 2**63, size=words, dtype=np.uint64)
            .sum(dtype=np.uint64)
        )
        for p in range(3)
    ]
    for p, outcome in enumerate(run.parties):
        assert outcome.party == p
        assert outcome.result == {
            "party": p,
            "received": {str(q): sums[q] for q in range(3) if q != p},
        }
        assert outcome.bytes_sent == 2 * 8 * words
        assert outcome.wire_bytes_sent == 2 * (8 * words + 24 + 16)
    assert len(set(run.pids)) == 3
    assert all(_gone(pid) for pid in run.pids)


def test_per_party_arguments_and_names() -> None:
    run = run_committee(f"{__name__}:report_party", timeout=120)
    assert run.results == [0, 1, 2]
    assert function_name(report_party) == f"{__name__}:report_party"
    with pytest.raises(ValueError, match="module-level"):
        function_name(lambda t: None)
    with pytest.raises(TypeError):
        run_committee(report_party, {"not": {1, 2}})  # a set is not JSON: refused up front
    run = run_committee(
        exchange_arrays, party_args=[{"seed": s, "words": 4} for s in (1, 2, 3)], timeout=120
    )
    assert [r["party"] for r in run.results] == [0, 1, 2]


def test_silent_party_is_named_and_every_child_is_killed() -> None:
    cfg = ChannelConfig(timeout=1.0, close_timeout=1.0)
    with pytest.raises(CommitteeRunError) as info:
        run_committee(party_two_is_silent, {"sleep": 600}, config=cfg, timeout=300)
    failures = info.value.failures
    for p in (0, 1):
        assert failures[p].error == "PeerTimeout"
        assert failures[p].peer == 2
    assert failures[2].error == "Timeout"  # killed by the launcher, it never answered
    assert all(_gone(pid) for pid in info.value.pids)


def test_an_exception_in_one_party_is_reported() -> None:
    with pytest.raises(CommitteeRunError, match="party 1: ValueError: party 1 gives up") as info:
        run_committee(fail_on_party_one, config=ChannelConfig(timeout=30.0), timeout=120)
    failures = info.value.failures
    assert failures[1].error == "ValueError"
    # the others see party 1's channel close (not a timeout: no need to wait 30 s)
    assert failures[0].error == "ChannelError"
    assert failures[0].peer == 1


@pytest.mark.slow
def test_timeout_kills_children_and_their_children(tmp_path: Path) -> None:
    # The timeout must outlast the children's start (a fresh interpreter importing the
    # package and this module, then the handshakes): with 8 s, on a loaded 2-core machine
    # the launcher killed them before they had started their grandchildren.
    with pytest.raises(CommitteeRunError, match="the launcher killed it") as info:
        run_committee(hang_with_grandchild, {"dir": str(tmp_path)}, timeout=30)
    assert set(info.value.failures) == {0, 1, 2}
    assert all(_gone(pid) for pid in info.value.pids)
    grandchildren = [int(f.read_text()) for f in tmp_path.glob("grandchild-*")]
    assert grandchildren, "the children never started their grandchildren"
    assert all(_wait_gone(pid) for pid in grandchildren)


def test_keyboard_interrupt_leaves_no_process_behind(tmp_path: Path) -> None:
    def interrupt_when_started() -> None:
        for _ in range(600):  # until the grandchildren exist, i.e. the run is under way
            if len(list(tmp_path.glob("grandchild-*"))) == 3:
                break
            time.sleep(0.05)
        # A real SIGINT, as Ctrl-C sends: unlike _thread.interrupt_main() it also wakes a
        # main thread blocked in a system call (the launcher's waits), so the interrupt
        # cannot be held back until the run's own timeout.
        os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler for the duration, whatever an earlier test in this
    # process left installed (the run must see the KeyboardInterrupt a user's Ctrl-C gives).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Thread(target=interrupt_when_started)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_committee(hang_with_grandchild, {"dir": str(tmp_path)}, timeout=120)
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert _launcher_children() == []
    grandchildren = [int(f.read_text()) for f in tmp_path.glob("grandchild-*")]
    assert len(grandchildren) == 3
    assert all(_wait_gone(pid) for pid in grandchildren)
