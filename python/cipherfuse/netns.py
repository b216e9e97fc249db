"""Linux network namespaces that a process makes and removes itself.

Shared by the testbed's hosts (:mod:`cipherfuse.roles.hosts`) and the network emulator
(:mod:`cipherfuse.analysis.netem`): why namespaces cannot be made here, running ``ip`` /
``tc`` with the caller's typed error, and a set of created namespaces that is removed as a
whole (their veths, and bridges inside them, go with them).

A process killed before it removes its namespaces (``SIGKILL``, a crash) cannot clean up,
so each namespace a :class:`NamespaceSet` makes has an owner record under
:data:`LEASE_DIR` (the owner's pid and the kernel's start time of that process). Before a
set makes its first namespace it deletes every recorded namespace whose owner is gone
(:func:`sweep_stale_namespaces`); namespaces without a record, or whose owner still runs,
are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Self

#: Seconds one ``ip`` / ``tc`` call may take.
COMMAND_TIMEOUT_S = 30
#: Owner records of the namespaces made by :class:`NamespaceSet` (one small JSON file per
#: namespace; on the tmpfs ``/run``, which, like the namespaces, does not survive a reboot).
LEASE_DIR = Path("/run/cipherfuse/netns")
#: The largest owner record read back (a record is about 40 bytes).
MAX_LEASE_BYTES = 256


def namespaces_unavailable_reason(tools: Sequence[str] = ("ip",)) -> str | None:
    """Why this process cannot make network namespaces with ``tools`` (``None``: it can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"the '{tool}' command (iproute2) is not installed"
    return None


def run_command(
    args: Sequence[str], error: type[Exception], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``args``; with ``check``, a non-zero exit raises ``error`` naming the command."""
    proc = subprocess.run(
        list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if check and proc.returncode != 0:
        raise error(f"'{' '.join(args)}' failed: {proc.stderr.strip() or proc.returncode}")
    return proc


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of process ``pid`` (clock ticks since boot), None if no such
    process; with the pid it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (the command) is in parentheses and may hold spaces; field 22 is the start.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19])


def _lease_path(name: str) -> Path:
    return LEASE_DIR / f"{name}.json"


def _write_lease(name: str) -> None:
    """Record this process as the owner of namespace ``name`` (temp file + rename)."""
    LEASE_DIR.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    record = json.dumps({"pid": pid, "start": process_start_time(pid)}).encode()
    tmp = LEASE_DIR / f".{name}.{pid}.tmp"
    tmp.write_bytes(record)
    os.replace(tmp, _lease_path(name))


def _owner_alive(lease: Path) -> bool:
    """Whether the owner recorded in ``lease`` still runs; an unreadable or malformed
    record counts as alive (its namespace is left alone)."""
    try:
        with lease.open("rb") as f:
            raw = f.read(MAX_LEASE_BYTES + 1)
        record = json.loads(raw) if len(raw) <= MAX_LEASE_BYTES else None
    except (OSError, ValueError):
        return True
    if not isinstance(record, dict):
        return True
    pid, start = record.get("pid"), record.get("start")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    if not isinstance(start, int) or isinstance(start, bool):
        return True
    return process_start_time(pid) == start


def sweep_stale_namespaces(error: type[Exception]) -> list[str]:
    """Delete the namespaces whose recorded owner is gone; return their names.

    Only namespaces with an owner record (made through :class:`NamespaceSet`) are
    considered, and only those whose owner process (pid and start time) no longer runs are
    deleted, with their records. Several processes may sweep at once: a namespace another
    sweeper deleted first is skipped.
    """
    if not LEASE_DIR.is_dir():
        return []
    # ``ip netns list`` prints "name" or "name (id: N)" lines: the names are among the words.
    existing = set(run_command(["ip", "netns", "list"], error).stdout.split())
    swept = []
    for lease in sorted(LEASE_DIR.glob("*.json")):
        if _owner_alive(lease):
            continue
        name = lease.name[: -len(".json")]
        if name in existing:
            proc = run_command(["ip", "netns", "del", name], error, check=False)
            if proc.returncode == 0:
                swept.append(name)
        lease.unlink(missing_ok=True)
    return swept


class NamespaceSet:
    """The namespaces one owner created, in creation order, removed together.

    Each namespace has an owner record (see the module doc); the first :meth:`add` of a set
    first sweeps the namespaces of killed owners.
    """

    def __init__(self, error: type[Exception]) -> None:
        self._error = error
        self._names: list[str] = []
        self._swept = False

    @property
    def names(self) -> list[str]:
        """Namespaces created and not removed yet."""
        return list(self._names)

    def add(self, name: str) -> None:
        """Create namespace ``name`` with its loopback up."""
        if not self._swept:
            sweep_stale_namespaces(self._error)
            self._swept = True
        try:
            _write_lease(name)
        except OSError as exc:
            raise self._error(f"cannot record the owner of namespace {name}: {exc}") from exc
        proc = run_command(["ip", "netns", "add", name], self._error, check=False)
        if proc.returncode != 0:
            _lease_path(name).unlink(missing_ok=True)
            raise self._error(
                f"'ip netns add {name}' failed: {proc.stderr.strip() or proc.returncode}"
            )
        self._names.append(name)
        run_command(["ip", "-n", name, "link", "set", "lo", "up"], self._error)

    def remove_all(self) -> list[str]:
        """Delete every namespace created, newest first; return what could not be deleted."""
        problems = []
        while self._names:
            name = self._names.pop()
            proc = run_command(["ip", "netns", "del", name], self._error, check=False)
            if proc.returncode != 0:
                problems.append(f"{name}: {proc.stderr.strip()}")
            _lease_path(name).unlink(missing_ok=True)
        return problems


class BuiltOrRemoved(ABC):
    """Base of the context managers that build namespaces and links: entering runs
    :meth:`_build` and, when it fails part-way, :meth:`close` removes what it made before
    the error propagates; leaving calls :meth:`close`."""

    @abstractmethod
    def _build(self) -> None:
        """Make what the context manager stands for."""

    @abstractmethod
    def close(self) -> None:
        """Remove everything :meth:`_build` made; safe after a partial build."""

    def __enter__(self) -> Self:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
