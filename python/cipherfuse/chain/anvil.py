"""Start and stop a local ``anvil`` node (npm ``@foundry-rs/anvil-linux-amd64``).

:class:`AnvilNode` binds 127.0.0.1 on a free port, pins the hardfork to the one the
contracts are compiled for, waits until the JSON-RPC endpoint answers, and stops the
process by its PID.

anvil runs with no accounts of its own (``--accounts 0``: ``eth_accounts`` is empty and
nothing can be sent unsigned); instead the first ``accounts`` development keys of
:mod:`~cipherfuse.chain.devkeys` are funded with ``anvil_setBalance`` right after start,
and clients sign for them locally (``http_chain(url, kind="anvil", dev_accounts=n)``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

from cipherfuse.chain.compiler import EVM_VERSION
from cipherfuse.chain.devkeys import dev_accounts
from cipherfuse.chain.errors import ChainParameterError, NodeError

_NPM_BINARY = Path("node_modules") / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


#: The one-line install commands the "not found" error names.
ANVIL_INSTALL_HINT = (
    "install it with `npm install -g @foundry-rs/anvil` or "
    "`curl -L https://foundry.paradigm.xyz | bash && foundryup`, or set CIPHERFUSE_ANVIL "
    "to its path"
)


def _source_checkout() -> Path:
    """The repository root when cipherfuse runs from a source checkout (editable install)."""
    return Path(__file__).resolve().parents[3]


def find_anvil(search_from: Path | None = None) -> Path:
    """Locate the anvil binary.

    Order: ``$CIPHERFUSE_ANVIL``; the pinned npm copy in ``contracts/node_modules`` of
    ``search_from`` (default: the source checkout cipherfuse runs from, if any);
    ``anvil`` on ``PATH``; ``~/.foundry/bin/anvil`` (where foundryup installs it).
    The current directory plays no part.

    Raises:
        NodeError: not found (the message gives the one-line install command).
    """
    env = os.environ.get("CIPHERFUSE_ANVIL")
    if env:
        path = Path(env)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise NodeError(f"CIPHERFUSE_ANVIL={env} is not an executable file")
    base = (search_from or _source_checkout()).resolve()
    for candidate in (base / "contracts" / _NPM_BINARY, base / _NPM_BINARY):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    foundry = Path.home() / ".foundry" / "bin" / "anvil"
    if foundry.is_file() and os.access(foundry, os.X_OK):
        return foundry
    raise NodeError(
        f"anvil not found (looked in CIPHERFUSE_ANVIL, {base / 'contracts' / _NPM_BINARY}, "
        f"PATH, {foundry}): {ANVIL_INSTALL_HINT}; in a source checkout `npm ci` in "
        "contracts/ installs the pinned version"
    )


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _loopback_rpc(url: str, method: str, params: list[Any], timeout: float = 1.0) -> Any:
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(
        url, data=payload.encode(), headers={"Content-Type": "application/json"}
    )
    # The node is on loopback: never ask a proxy from the environment (it would not reach it).
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(request, timeout=timeout) as response:
        body = json.loads(response.read())
    if "error" in body:
        raise NodeError(f"{method} failed: {body['error']}")
    return body["result"]


def _rpc_chain_id(url: str) -> int | None:
    try:
        return int(_loopback_rpc(url, "eth_chainId", []), 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError, NodeError):
        return None


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``proc`` by PID, SIGKILL after 5 s; a process already gone is left alone."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class AnvilNode:
    """A running anvil process on 127.0.0.1 (or on ``host``).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        accounts: number of development keys funded at start (0..1000; anvil's own
            accounts are disabled).
        balance_eth: balance of each development key, in ether.
        port: TCP port; 0 picks a free one. A port already in use is refused.
        chain_id: chain id the node reports; readiness requires this exact answer.
        binary: anvil binary; default :func:`find_anvil`.
        startup_timeout: seconds to wait for the RPC endpoint.
        host: IPv4 address to listen on (default loopback; the testbed gives its bridge
            address, so roles in other network namespaces reach it).
    """

    def __init__(
        self,
        *,
        accounts: int = 10,
        balance_eth: int = 10_000,
        port: int = 0,
        chain_id: int = 31337,
        binary: Path | None = None,
        startup_timeout: float = 30.0,
        host: str = "127.0.0.1",
    ) -> None:
        if not 0 <= accounts <= 1000:
            raise ChainParameterError(f"accounts must be in [0, 1000], got {accounts}")
        if balance_eth <= 0:
            raise ChainParameterError(f"balance_eth must be positive, got {balance_eth}")
        if not 0 <= port <= 65535:
            raise ChainParameterError(f"port must be in [0, 65535], got {port}")
        if not 1 <= chain_id < 2**53:
            raise ChainParameterError(f"chain_id must be in [1, 2**53), got {chain_id}")
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ChainParameterError(f"host must be an IPv4 address, got {host!r}") from exc
        self._host = host
        self._chain_id = chain_id
        self._accounts = accounts
        self._balance = balance_eth
        self._port = port
        self._binary = binary
        self._timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._reaper: weakref.finalize[Any, AnvilNode] | None = None

    @property
    def url(self) -> str:
        """HTTP JSON-RPC URL."""
        return f"http://{self._host}:{self._port}"

    @property
    def ws_url(self) -> str:
        """WebSocket JSON-RPC URL."""
        return f"ws://{self._host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """PID of the running process, or None."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> AnvilNode:
        """Start anvil and block until it answers JSON-RPC.

        Raises:
            NodeError: already started, binary missing, process exited, or no answer in time.
        """
        if self._proc is not None:
            raise NodeError(f"anvil already running (pid {self._proc.pid})")
        binary = self._binary or find_anvil()
        if self._port == 0:
            self._port = _free_port(self._host)
        elif _port_in_use(self._port, self._host):
            raise NodeError(f"port {self._port} on {self._host} is already in use; pick another")
        self._log = tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log")  # noqa: SIM115
        argv = [
            str(binary),
            "--host",
            self._host,
            "--port",
            str(self._port),
            "--hardfork",
            EVM_VERSION,
            "--accounts",
            "0",
            "--chain-id",
            str(self._chain_id),
        ]
        self._proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        # Stops the process if this object is dropped or the interpreter exits without
        # stop() (an unhandled exception, sys.exit, or SIGTERM in the cipherfuse CLI,
        # which turns it into SystemExit); holds the process, not ``self``.
        self._reaper = weakref.finalize(self, _terminate, self._proc)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self._read_log()
                self._cleanup()
                raise NodeError(f"anvil exited at startup: {log[-500:]}")
            if _rpc_chain_id(self.url) == self._chain_id and self._proc.poll() is None:
                try:
                    self._fund_dev_keys()
                except (OSError, urllib.error.URLError, NodeError):
                    self.stop()
                    raise
                return self
            time.sleep(0.05)
        self.stop()
        raise NodeError(f"anvil did not answer on {self.url} within {self._timeout} s")

    @property
    def accounts(self) -> int:
        """How many development keys were funded at start."""
        return self._accounts

    def _fund_dev_keys(self) -> None:
        for account in dev_accounts(self._accounts):
            _loopback_rpc(
                self.url, "anvil_setBalance", [account.address, hex(self._balance * 10**18)], 5.0
            )

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        """Stop the process by PID (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        proc = self._proc
        if proc is None:
            return
        _terminate(proc)
        self._cleanup()

    def _cleanup(self) -> None:
        self._proc = None
        if self._reaper is not None:
            self._reaper.detach()
            self._reaper = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
