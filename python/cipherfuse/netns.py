"""Linux network namespaces that a process makes and removes itself.

Shared by the testbed's hosts (:mod:`cipherfuse.roles.hosts`) and the network emulator
(:mod:`cipherfuse.analysis.netem`): why namespaces cannot be made here, running ``ip`` /
``tc`` with the caller's typed error, and a set of created namespaces that is removed as a
whole (their veths, and bridges inside them, go with them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Self

#: Seconds one ``ip`` / ``tc`` call may take.
COMMAND_TIMEOUT_S = 30


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


class NamespaceSet:
    """The namespaces one owner created, in creation order, removed together."""

    def __init__(self, error: type[Exception]) -> None:
        self._error = error
        self._names: list[str] = []

    @property
    def names(self) -> list[str]:
        """Namespaces created and not removed yet."""
        return list(self._names)

    def add(self, name: str) -> None:
        """Create namespace ``name`` with its loopback up."""
        run_command(["ip", "netns", "add", name], self._error)
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
