"""Run a three-party function as three OS processes over the real committee channels.

:func:`run_committee` starts three child Python processes on one host (loopback by
default), connects them with :func:`~cipherfuse.mpc.channel.connect_committee` and runs
``function(transport)`` (or ``function(transport, args)``) in each, then collects
every party's JSON result and traffic. Only plain data crosses process boundaries:
JSON lines on the children's stdin and stdout, never pickle.

Set-up is race-free: each child draws its own static key (the private key never leaves
the child), binds a listening socket on a free port chosen by the OS and reports
``(port, public key)``; the parent then hands every child the three endpoints and
the function to run. Children run in their own session (process group); on timeout,
error or ``KeyboardInterrupt`` the parent kills each group and waits for it, and a
child whose parent disappears exits as soon as its stdin closes, so no process is
left behind.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from cipherfuse.mpc.channel import (
    ChannelConfig,
    MemberEndpoint,
    StaticKey,
    bind_listener,
    connect_committee,
)
from cipherfuse.mpc.errors import MpcError
from cipherfuse.mpc.transport import PARTIES

__all__ = [
    "CommitteeRun",
    "CommitteeRunError",
    "PartyFailure",
    "PartyResult",
    "function_name",
    "run_committee",
]

#: The largest JSON line a child may send back (its result included).
MAX_LINE_BYTES = 64 * 2**20
_KILL_GRACE_S = 2.0
_CHILD_ORPHANED_EXIT = 70


@dataclass(frozen=True)
class PartyResult:
    """One party's outcome: the function's JSON result and what the party sent."""

    party: int
    result: Any
    bytes_sent: int
    wire_bytes_sent: int
    connect_seconds: float
    run_seconds: float


@dataclass(frozen=True)
class PartyFailure:
    """Why one party did not return: its exception's type name and message.

    ``peer`` is the peer a :class:`~cipherfuse.mpc.errors.ChannelError` (for example a
    :class:`~cipherfuse.mpc.errors.PeerTimeout`) names; ``blamed`` the party a
    :class:`~cipherfuse.mpc.errors.ProtocolAbort` blames.
    """

    party: int
    error: str
    message: str
    peer: int | None = None
    blamed: int | None = None


class CommitteeRunError(MpcError):
    """At least one party failed, or the run timed out; ``failures`` says who and why.

    ``results`` holds the parties that did finish; ``pids`` the children's process ids
    (all of them killed and reaped by the time this is raised).
    """

    def __init__(
        self,
        message: str,
        *,
        failures: Mapping[int, PartyFailure],
        results: Mapping[int, PartyResult],
        pids: Sequence[int] = (),
    ) -> None:
        super().__init__(message)
        self.failures = dict(failures)
        self.results = dict(results)
        self.pids = tuple(pids)


@dataclass(frozen=True)
class CommitteeRun:
    """The three parties' results (by party index), the run's wall time, the children's pids."""

    parties: tuple[PartyResult, ...]
    wall_seconds: float
    pids: tuple[int, ...] = ()

    @property
    def results(self) -> list[Any]:
        """The three functions' return values, by party index."""
        return [p.result for p in self.parties]


def function_name(function: str | Callable[..., Any]) -> str:
    """``"module:qualname"`` of a module-level function, the form the children import."""
    if isinstance(function, str):
        named_module, _, named_qualname = function.partition(":")
        if not named_module or not named_qualname:
            raise ValueError(f"function must be 'module:qualname', got {function!r}")
        return function
    module: object = getattr(function, "__module__", None)
    qualname: object = getattr(function, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ValueError(f"{function!r} is not a module-level function")
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"{function!r} is not a module-level function")
    if module == "__main__":
        raise ValueError("a function of __main__ cannot be imported by the children: name it")
    return f"{module}:{qualname}"


def _resolve(name: str) -> Callable[..., Any]:
    module, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{name} is not callable")
    return target  # type: ignore[no-any-return]


class _Child:
    """One child process and its line-oriented pipes."""

    def __init__(self, party: int, env: Mapping[str, str], stderr: IO[bytes]) -> None:
        self.party = party
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cipherfuse.mpc.launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=dict(env),
            start_new_session=True,
        )
        self.stderr = stderr
        self._buffer = bytearray()
        self.lines: list[Any] = []
        self.eof = False
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)

    def write(self, message: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def read_available(self) -> None:
        assert self.process.stdout is not None
        try:
            chunk = os.read(self.process.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            self.eof = True
            return
        self._buffer += chunk
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self.lines.append(json.loads(line))
        if len(self._buffer) > MAX_LINE_BYTES:
            raise MpcError(f"party {self.party}'s launcher line is over {MAX_LINE_BYTES} bytes")

    def stderr_tail(self, limit: int = 2000) -> str:
        with contextlib.suppress(OSError):
            self.stderr.flush()
            self.stderr.seek(0)
            return self.stderr.read().decode(errors="replace")[-limit:]
        return ""

    def kill(self) -> None:
        """SIGTERM then SIGKILL the child's process group; wait for the child."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(_KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # the group may outlive its leader (grandchildren): kill what is left of it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _wait_lines(
    children: Sequence[_Child],
    count: int,
    deadline: float,
    what: str,
    grace_after_failure: float | None = None,
) -> dict[int, PartyFailure]:
    """Read until every child has sent ``count`` lines; returns failures (exit / timeout).

    Once one child has failed (exited early or reported an error), the others get at
    most ``grace_after_failure`` more seconds, the time their own peer timeouts need.
    """
    failures: dict[int, PartyFailure] = {}
    selector = selectors.DefaultSelector()
    pending = {c.party: c for c in children if len(c.lines) < count}
    for waiting in pending.values():
        assert waiting.process.stdout is not None
        selector.register(waiting.process.stdout, selectors.EVENT_READ, waiting)
    try:
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for party in pending:
                    failures[party] = PartyFailure(
                        party, "Timeout", f"no {what} in time: the launcher killed it"
                    )
                break
            for key, _ in selector.select(min(remaining, 0.5)):
                child: _Child = key.data
                child.read_available()
                if len(child.lines) >= count or child.eof:
                    selector.unregister(key.fileobj)
                    del pending[child.party]
                    failed = len(child.lines) < count or not child.lines[-1].get("ok", True)
                    if failed and grace_after_failure is not None:
                        deadline = min(deadline, time.monotonic() + grace_after_failure)
                    if len(child.lines) < count:
                        child.process.wait()
                        failures[child.party] = PartyFailure(
                            child.party,
                            "ChildExit",
                            f"exited with {child.process.returncode} before {what}: "
                            f"{child.stderr_tail()}",
                        )
    finally:
        selector.close()
    return failures


def run_committee(
    function: str | Callable[..., Any],
    args: Any = None,
    *,
    party_args: Sequence[Any] | None = None,
    timeout: float = 600.0,
    config: ChannelConfig | None = None,
    session_id: bytes | None = None,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
) -> CommitteeRun:
    """Run ``function`` as parties 0, 1, 2 in three processes connected by the real channels.

    ``function``: a module-level function (or ``"module:qualname"``) importable in a fresh
    interpreter; it is called as ``function(transport)`` when the party's arguments are
    ``None``, else ``function(transport, arguments)``, and must return a JSON value.
    ``args``: one JSON value for all parties; ``party_args``: one per party instead.
    ``timeout``: seconds for the whole run, start-up included; past it every child is
    killed and :class:`CommitteeRunError` lists the parties that had not finished.
    ``config``: the channels' :class:`ChannelConfig`. ``session_id``: bytes binding the
    channels (random by default). ``env``: the children's environment (default: this
    process's, with ``PYTHONPATH`` set to this process's ``sys.path``).

    Raises :class:`CommitteeRunError` if any party raised, exited or timed out; its
    ``failures`` name each such party's error (a :class:`PeerTimeout` keeps the silent
    ``peer``), ``results`` hold the parties that did finish.
    """
    name = function_name(function)
    if party_args is not None and len(party_args) != PARTIES:
        raise ValueError(f"party_args needs {PARTIES} entries, got {len(party_args)}")
    per_party = list(party_args) if party_args is not None else [args] * PARTIES
    json.dumps(per_party)  # plain data only: fail here, not in a child
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    cfg = ChannelConfig() if config is None else config
    sid = os.urandom(32) if session_id is None else bytes(session_id)
    child_env = dict(os.environ if env is None else env)
    if env is None:
        child_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    start = time.monotonic()
    deadline = start + timeout
    children: list[_Child] = []
    with contextlib.ExitStack() as stack:
        try:
            for party in range(PARTIES):
                stderr = stack.enter_context(tempfile.TemporaryFile())
                children.append(_Child(party, child_env, stderr))
            for child in children:
                child.write(
                    {
                        "party": child.party,
                        "host": host,
                        "session_id": sid.hex(),
                        "config": asdict(cfg),
                    }
                )
            failures = _wait_lines(children, 1, deadline, "listening port")
            if failures:
                raise CommitteeRunError(_describe(failures), failures=failures, results={})
            members = [
                [host, int(c.lines[0]["port"]), str(c.lines[0]["public_key"])] for c in children
            ]
            for child in children:
                child.write({"members": members, "function": name, "args": per_party[child.party]})
            failures = _wait_lines(children, 2, deadline, "result", cfg.timeout + cfg.close_timeout)
            results: dict[int, PartyResult] = {}
            for child in children:
                if child.party in failures:
                    continue
                report = child.lines[1]
                if report.get("ok"):
                    results[child.party] = PartyResult(party=child.party, **report["outcome"])
                else:
                    failures[child.party] = PartyFailure(party=child.party, **report["failure"])
            if failures:
                raise CommitteeRunError(_describe(failures), failures=failures, results=results)
            for child in children:
                assert child.process.stdin is not None
                child.process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(_KILL_GRACE_S)
            return CommitteeRun(
                parties=tuple(results[p] for p in range(PARTIES)),
                wall_seconds=time.monotonic() - start,
                pids=tuple(c.process.pid for c in children),
            )
        except CommitteeRunError as exc:
            exc.pids = tuple(c.process.pid for c in children)
            raise
        finally:
            for child in children:
                child.kill()


def _describe(failures: Mapping[int, PartyFailure]) -> str:
    return "; ".join(
        f"party {f.party}: {f.error}: {f.message}"
        for f in sorted(failures.values(), key=lambda x: x.party)
    )


# -- the child side -------------------------------------------------------------------


def _watch_parent(stdin: IO[bytes]) -> None:
    """Exit at once when the parent's end of stdin closes (the parent died or gave up)."""
    while stdin.read(1 << 16):
        pass
    os._exit(_CHILD_ORPHANED_EXIT)


def _child_main() -> None:
    stdin = sys.stdin.buffer
    report = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the function's prints go to stderr

    def send(message: object) -> None:
        report.write(json.dumps(message) + "\n")
        report.flush()

    setup = json.loads(stdin.readline())
    party = int(setup["party"])
    key = StaticKey.generate()
    listener = bind_listener(setup["host"], 0)
    send({"port": listener.getsockname()[1], "public_key": key.public.hex()})
    task_line = stdin.readline()
    if not task_line:
        os._exit(_CHILD_ORPHANED_EXIT)
    task = json.loads(task_line)
    threading.Thread(target=_watch_parent, args=(stdin,), daemon=True).start()
    config = ChannelConfig(**setup["config"])
    members = [MemberEndpoint(h, int(p), bytes.fromhex(k)) for h, p, k in task["members"]]
    try:
        function = _resolve(task["function"])
        t0 = time.perf_counter()
        transport = connect_committee(
            party, key, members, bytes.fromhex(setup["session_id"]), config, listener=listener
        )
        t1 = time.perf_counter()
        with transport:
            args = task["args"]
            result = function(transport) if args is None else function(transport, args)
            json.dumps(result)
            t2 = time.perf_counter()
        send(
            {
                "ok": True,
                "outcome": {
                    "result": result,
                    "bytes_sent": transport.bytes_sent,
                    "wire_bytes_sent": transport.wire_bytes_sent,
                    "connect_seconds": t1 - t0,
                    "run_seconds": t2 - t1,
                },
            }
        )
    except BaseException as exc:
        traceback.print_exc()
        peer, blamed = getattr(exc, "peer", None), getattr(exc, "blamed", None)
        send(
            {
                "ok": False,
                "failure": {
                    "error": type(exc).__name__,
                    "message": str(exc),
                    "peer": peer if isinstance(peer, int) else None,
                    "blamed": blamed if isinstance(blamed, int) else None,
                },
            }
        )
    report.close()


if __name__ == "__main__":
    _child_main()
