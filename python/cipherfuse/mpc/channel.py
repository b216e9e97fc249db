"""Authenticated, encrypted TCP channels between the three committee members.

:func:`connect_committee` gives one member a :class:`TcpTransport` (the
:class:`~cipherfuse.mpc.transport.Transport` interface) over which it talks to the two
other members. Each pair runs a ``Noise_KK_25519_AESGCM_SHA256`` handshake
(:mod:`cipherfuse.mpc.noise`) between the members' static X25519 keys, with the session
id and both party indices in the prologue; then every frame is sealed with
AES-256-GCM under per-direction counter nonces.

Roles are deterministic: for each pair, the member with the lower party index listens
and the higher one dials, retrying with exponential backoff until ``connect_timeout``,
so three processes started in any order connect.

Wire format after the handshake, per frame (nothing in the clear)::

    header  = Seal(ad=b"H", u64_be(n))   # 24 bytes
    body    = Seal(ad=b"B", payload)     # n + 16 bytes

The receiver authenticates the header before it allocates anything for the body, and
refuses ``n > max_frame_bytes`` with :class:`ChannelError`. A background reader thread
per peer drains the socket into an inbox (bounded by ``max_buffered_bytes``) and a
writer thread per peer sends, so :meth:`TcpTransport.send` never blocks on the
receiver and the three members can all send before any of them receives.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cipherfuse.mpc.errors import ChannelError, PeerTimeout
from cipherfuse.mpc.noise import (
    HANDSHAKE_MESSAGE_LEN,
    TAG_LEN,
    CipherState,
    HandshakeError,
    KKHandshake,
    LowOrderPoint,
    check_public_key,
    private_key_from_bytes,
    public_bytes,
)
from cipherfuse.mpc.transport import PARTIES

__all__ = [
    "HEADER_LEN",
    "MAX_FRAME_LIMIT",
    "ChannelConfig",
    "HandshakeError",
    "HandshakeInterrupted",
    "LowOrderPoint",
    "MemberEndpoint",
    "StaticKey",
    "TcpTransport",
    "bind_listener",
    "connect_committee",
    "prologue",
]

#: First bytes of every connection: protocol magic and version.
MAGIC = b"CFMPC\x00\x01\x00"
#: Cleartext hello: magic, initiator index, responder index.
HELLO_LEN = len(MAGIC) + 2
#: Bytes of a sealed frame header (a u64 length and its tag).
HEADER_LEN = 8 + TAG_LEN
#: Bytes of the initiator's key confirmation (an empty sealed record).
CONFIRM_LEN = TAG_LEN
#: The largest ``max_frame_bytes`` a channel accepts (AES-GCM in
#: ``cryptography`` seals at most 2^31 - 1 bytes at once).
MAX_FRAME_LIMIT = 2**31 - 1 - TAG_LEN
_MAX_SESSION_ID = 255
_BACKOFF_START_S = 0.02
_BACKOFF_MAX_S = 1.0
_AD_HEADER, _AD_BODY, _AD_CONFIRM = b"H", b"B", b"C"


@dataclass(frozen=True)
class ChannelConfig:
    """Limits and timeouts of the committee channels (seconds and bytes).

    ``timeout``: the longest :meth:`TcpTransport.recv` waits for a frame before it raises
    :class:`PeerTimeout` naming the silent peer. ``connect_timeout``: the deadline for
    both of a member's channels to be up. ``handshake_timeout``: how long one TCP
    connection may take to finish its handshake. ``close_timeout``: how long
    :meth:`TcpTransport.close` waits to flush queued frames and for the peers' close.
    ``max_frame_bytes``: the largest payload of one frame, sent or received.
    ``max_buffered_bytes``: received payload bytes held per peer before the reader stops
    reading (TCP back-pressure); ``None`` means ``max_frame_bytes``. One frame is always
    accepted into an empty inbox.
    """

    timeout: float = 60.0
    connect_timeout: float = 60.0
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    max_frame_bytes: int = 256 * 2**20
    max_buffered_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout", "handshake_timeout", "close_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
        if not isinstance(self.max_frame_bytes, int) or not (
            1 <= self.max_frame_bytes <= MAX_FRAME_LIMIT
        ):
            raise ValueError(
                f"max_frame_bytes must be in 1..{MAX_FRAME_LIMIT}, got {self.max_frame_bytes!r}"
            )
        buffered = self.max_buffered_bytes
        if buffered is not None and (not isinstance(buffered, int) or buffered < 1):
            raise ValueError(f"max_buffered_bytes must be >= 1 or None, got {buffered!r}")

    @property
    def buffered_limit(self) -> int:
        """``max_buffered_bytes`` with its default applied."""
        return self.max_frame_bytes if self.max_buffered_bytes is None else self.max_buffered_bytes


@dataclass(frozen=True)
class StaticKey:
    """A member's static X25519 key pair (raw 32-byte keys); ``repr`` hides the private key."""

    private: bytes = field(repr=False)
    public: bytes

    @classmethod
    def generate(cls) -> StaticKey:
        """A fresh key pair from the OS's randomness."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        key = X25519PrivateKey.generate()
        return cls(key.private_bytes_raw(), public_bytes(key))

    @classmethod
    def from_private(cls, private: bytes) -> StaticKey:
        """The key pair of a 32-byte private key."""
        return cls(bytes(private), public_bytes(private_key_from_bytes(private)))


@dataclass(frozen=True)
class MemberEndpoint:
    """Where a committee member listens and the static public key it registered."""

    host: str
    port: int
    public_key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"host must be a non-empty string, got {self.host!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port!r}")
        object.__setattr__(
            self, "public_key", check_public_key(self.public_key, what="member public key")
        )


def prologue(session_id: bytes, initiator: int, responder: int) -> bytes:
    """The Noise prologue of the channel ``initiator -> responder`` in session ``session_id``."""
    return (
        b"cipherfuse/mpc-channel/v1\x00"
        + bytes([initiator, responder, len(session_id)])
        + session_id
    )


def bind_listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port chosen by the OS).

    Binding first and announcing ``listener.getsockname()[1]`` afterwards is the
    race-free way to use a free port.
    """
    return socket.create_server((host, port), backlog=16)


def _check_session_id(session_id: bytes) -> bytes:
    if not isinstance(session_id, bytes | bytearray) or not 1 <= len(session_id) <= _MAX_SESSION_ID:
        raise ValueError(f"session_id must be 1..{_MAX_SESSION_ID} bytes")
    return bytes(session_id)


def _read_exact(sock: socket.socket, view: memoryview, peer: int, what: str) -> bool:
    """Fill ``view`` from ``sock``; ``False`` on EOF before the first byte."""
    got = 0
    total = len(view)
    while got < total:
        n = sock.recv_into(view[got:], total - got)
        if n == 0:
            if got == 0:
                return False
            raise ChannelError(f"party {peer} closed the connection inside {what}", peer=peer)
        got += n
    return True


class HandshakeInterrupted(HandshakeError):
    """The connection closed, reset or stalled during the handshake (a dialer retries)."""


def _recv_exact(sock: socket.socket, n: int, peer: int | None, what: str) -> bytes:
    who = "the peer" if peer is None else f"party {peer}"
    buf = bytearray(n)
    try:
        complete = _read_exact(sock, memoryview(buf), -1 if peer is None else peer, what)
    except TimeoutError:
        raise HandshakeInterrupted(f"{who} sent no {what} in time", peer=peer) from None
    except (ChannelError, OSError):
        raise HandshakeInterrupted(
            f"{who} closed the connection inside {what}", peer=peer
        ) from None
    if not complete:
        raise HandshakeInterrupted(
            f"{who} closed the connection before {what} (handshake refused)", peer=peer
        )
    return bytes(buf)


class _Link:
    """The channel to one peer: socket, cipher states, reader and writer threads."""

    def __init__(
        self,
        party: int,
        peer: int,
        sock: socket.socket,
        send_cipher: CipherState,
        recv_cipher: CipherState,
        config: ChannelConfig,
    ) -> None:
        self.party = party
        self.peer = peer
        self.sock = sock
        self._send_cipher = send_cipher
        self._recv_cipher = recv_cipher
        self._config = config
        self._send_lock = threading.Lock()
        self._outbox: queue.SimpleQueue[tuple[bytes, bytes] | None] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[bytes | ChannelError] = queue.SimpleQueue()
        self._budget = threading.Condition()
        self._buffered = 0
        self._closing = False
        self.writer_error: ChannelError | None = None
        self.wire_bytes_sent = 0
        self._reader = threading.Thread(
            target=self._read_loop, name=f"mpc-read-{party}<-{peer}", daemon=True
        )
        self._writer = threading.Thread(
            target=self._write_loop, name=f"mpc-write-{party}->{peer}", daemon=True
        )
        sock.settimeout(None)
        self._reader.start()
        self._writer.start()

    # -- sending ------------------------------------------------------------------------
    def send(self, view: memoryview) -> None:
        if self.writer_error is not None:
            raise self.writer_error
        with self._send_lock:
            header = self._send_cipher.encrypt(_AD_HEADER, len(view).to_bytes(8, "big"))
            body = self._send_cipher.encrypt(_AD_BODY, view)
            self._outbox.put((header, body))

    def _write_loop(self) -> None:
        try:
            while True:
                item = self._outbox.get()
                if item is None:
                    break
                self._send_all(item)
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.writer_error = ChannelError(
                f"sending to party {self.peer} failed: {exc}", peer=self.peer
            )

    def _send_all(self, parts: tuple[bytes, bytes]) -> None:
        views = [memoryview(p) for p in parts]
        while views:
            sent = self.sock.sendmsg(views)
            self.wire_bytes_sent += sent
            while sent:
                if sent >= len(views[0]):
                    sent -= len(views[0])
                    views.pop(0)
                else:
                    views[0] = views[0][sent:]
                    sent = 0

    # -- receiving ----------------------------------------------------------------------
    def _read_loop(self) -> None:
        header = bytearray(HEADER_LEN)
        header_view = memoryview(header)
        buffer = bytearray()  # the body buffer, allocated once per size class and reused
        limit = self._config.max_frame_bytes
        try:
            while True:
                if not _read_exact(self.sock, header_view, self.peer, "a frame header"):
                    raise ChannelError(
                        f"party {self.peer} closed its channel to party {self.party}",
                        peer=self.peer,
                    )
                plain = self._recv_cipher.decrypt(_AD_HEADER, header, peer=self.peer)
                size = int.from_bytes(plain, "big")
                if size > limit:
                    raise ChannelError(
                        f"party {self.peer} announced a frame of {size} bytes, over the "
                        f"limit of {limit}",
                        peer=self.peer,
                    )
                self._wait_for_budget(size)
                if len(buffer) < size + TAG_LEN:  # grow the reused body buffer (<= the limit)
                    buffer = bytearray(size + TAG_LEN)
                body = memoryview(buffer)[: size + TAG_LEN]
                if not _read_exact(self.sock, body, self.peer, "a frame body"):
                    raise ChannelError(
                        f"party {self.peer} closed the connection inside a frame", peer=self.peer
                    )
                payload = self._recv_cipher.decrypt(_AD_BODY, body, peer=self.peer)
                body.release()
                with self._budget:
                    if self._closing:
                        continue
                    self._buffered += size
                self._inbox.put(payload)
        except ChannelError as exc:
            self._inbox.put(exc)
        except OSError as exc:
            self._inbox.put(
                ChannelError(f"receiving from party {self.peer} failed: {exc}", peer=self.peer)
            )
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)

    def _wait_for_budget(self, size: int) -> None:
        limit = self._config.buffered_limit
        with self._budget:
            while self._buffered and self._buffered + size > limit and not self._closing:
                self._budget.wait()

    def recv(self, timeout: float) -> bytes:
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise PeerTimeout(
                f"party {self.peer} sent nothing to party {self.party} in {timeout} s",
                peer=self.peer,
            ) from None
        if isinstance(item, ChannelError):
            self._inbox.put(item)  # the channel stays failed for every later recv
            raise item
        with self._budget:
            self._buffered -= len(item)
            self._budget.notify_all()
        return item

    # -- closing ------------------------------------------------------------------------
    def start_close(self) -> None:
        self._outbox.put(None)

    def finish_close(self, deadline: float) -> None:
        self._writer.join(max(0.0, deadline - time.monotonic()))
        with self._budget:
            self._closing = True
            self._budget.notify_all()
        self._reader.join(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._writer.join(1.0)
        self._reader.join(1.0)
        self.sock.close()


class TcpTransport:
    """One member's end of the committee network over authenticated, encrypted TCP.

    Made by :func:`connect_committee`. Implements
    :class:`~cipherfuse.mpc.transport.Transport`; frames are delivered whole and in
    order per direction. Extras: :attr:`session_id`, :attr:`wire_bytes_sent`, use as
    a context manager (closes on exit). Safe to call from several threads.
    """

    def __init__(
        self, party: int, session_id: bytes, links: dict[int, _Link], config: ChannelConfig
    ) -> None:
        self._party = party
        self._session_id = session_id
        self._links = links
        self._config = config
        self._sent = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def party(self) -> int:
        """This member's party index, 0, 1 or 2."""
        return self._party

    @property
    def session_id(self) -> bytes:
        """The session id every channel of this transport is bound to."""
        return self._session_id

    @property
    def config(self) -> ChannelConfig:
        """The limits and timeouts in force."""
        return self._config

    @property
    def bytes_sent(self) -> int:
        """Payload bytes sent so far (frame headers, tags and handshakes excluded)."""
        return self._sent

    @property
    def wire_bytes_sent(self) -> int:
        """Bytes written to the sockets so far after the handshakes (headers and tags included)."""
        return sum(link.wire_bytes_sent for link in self._links.values())

    def _link(self, peer: int) -> _Link:
        if isinstance(peer, bool) or peer not in self._links:
            raise ChannelError(f"party {self._party} has no channel to {peer!r}", peer=None)
        if self._closed:
            raise ChannelError(f"party {self._party}'s transport is closed", peer=peer)
        return self._links[peer]

    def send(self, to: int, data: bytes | bytearray | memoryview) -> None:
        """Queue one frame for party ``to``; it is sealed before this returns (no later copy).

        Raises :class:`ChannelError` when ``data`` is over ``max_frame_bytes``, not
        contiguous, or the channel has failed.
        """
        link = self._link(to)
        view = memoryview(data)
        if not view.c_contiguous:
            raise ChannelError("send needs a C-contiguous buffer", peer=to)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        size = len(view)
        if size > self._config.max_frame_bytes:
            raise ChannelError(
                f"frame of {size} bytes is over max_frame_bytes={self._config.max_frame_bytes}",
                peer=to,
            )
        link.send(view)
        with self._lock:
            self._sent += size

    def recv(self, frm: int) -> bytes:
        """The next frame from party ``frm``; :class:`PeerTimeout` after ``config.timeout`` s."""
        return self._link(frm).recv(self._config.timeout)

    def close(self) -> None:
        """Flush queued frames, close both channels (idempotent); later use raises ChannelError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + self._config.close_timeout
        for link in self._links.values():
            link.start_close()
        for link in self._links.values():
            link.finish_close(deadline)

    def __enter__(self) -> TcpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Rendezvous:
    """Collects the channels of one member while dialers and the acceptor run."""

    def __init__(self, party: int, expected: set[int]) -> None:
        self.party = party
        self.expected = expected
        self.events: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.open = True
        self.notes: dict[int, list[str]] = {p: [] for p in expected}
        self.stray: list[str] = []

    def offer(self, peer: int, value: object) -> bool:
        """Post a result; ``False`` (and the caller closes it) once the rendezvous ended."""
        with self.lock:
            if not self.open:
                return False
            self.events.put((peer, value))
            return True

    def note(self, peer: int | None, text: str) -> None:
        with self.lock:
            target = self.notes[peer] if peer is not None and peer in self.notes else self.stray
            target.append(text)

    def end(self) -> None:
        with self.lock:
            self.open = False


def _initiate(
    sock: socket.socket,
    party: int,
    peer: int,
    key: StaticKey,
    remote: bytes,
    session_id: bytes,
    config: ChannelConfig,
    timeout: float,
) -> _Link:
    sock.settimeout(timeout)
    handshake = KKHandshake(
        initiator=True,
        static_private=key.private,
        remote_static=remote,
        prologue=prologue(session_id, party, peer),
        peer=peer,
    )
    sock.sendall(MAGIC + bytes([party, peer]) + handshake.write_message())
    handshake.read_message(_recv_exact(sock, HANDSHAKE_MESSAGE_LEN, peer, "handshake message 2"))
    send_cipher, recv_cipher = handshake.split()
    sock.sendall(send_cipher.encrypt(_AD_CONFIRM, b""))
    return _Link(party, peer, sock, send_cipher, recv_cipher, config)


def _respond(
    sock: socket.socket,
    party: int,
    key: StaticKey,
    members: Sequence[MemberEndpoint],
    session_id: bytes,
    config: ChannelConfig,
    timeout: float,
) -> tuple[int, _Link]:
    sock.settimeout(timeout)
    hello = _recv_exact(sock, HELLO_LEN, None, "the hello")
    if hello[: len(MAGIC)] != MAGIC:
        raise HandshakeError("connection does not speak the committee channel protocol")
    peer, responder = hello[len(MAGIC)], hello[len(MAGIC) + 1]
    if responder != party or not party < peer < PARTIES:
        raise HandshakeError(
            f"hello from party {peer} to party {responder}: party {party} accepts only "
            f"higher-indexed peers addressed to it"
        )
    handshake = KKHandshake(
        initiator=False,
        static_private=key.private,
        remote_static=members[peer].public_key,
        prologue=prologue(session_id, peer, party),
        peer=peer,
    )
    handshake.read_message(_recv_exact(sock, HANDSHAKE_MESSAGE_LEN, peer, "handshake message 1"))
    sock.sendall(handshake.write_message())
    send_cipher, recv_cipher = handshake.split()
    confirm = _recv_exact(sock, CONFIRM_LEN, peer, "the key confirmation")
    try:
        recv_cipher.decrypt(_AD_CONFIRM, confirm, peer=peer)
    except ChannelError:
        raise HandshakeError(f"party {peer}'s key confirmation failed", peer=peer) from None
    return peer, _Link(party, peer, sock, send_cipher, recv_cipher, config)


def _dial_loop(
    rendezvous: _Rendezvous,
    peer: int,
    key: StaticKey,
    member: MemberEndpoint,
    session_id: bytes,
    config: ChannelConfig,
    deadline: float,
) -> None:
    backoff = _BACKOFF_START_S
    while rendezvous.open:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            sock = socket.create_connection(
                (member.host, member.port), timeout=min(remaining, config.handshake_timeout)
            )
        except OSError as exc:
            rendezvous.note(peer, f"dial {member.host}:{member.port}: {exc}")
            time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
            backoff = min(2 * backoff, _BACKOFF_MAX_S)
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _initiate(
                sock,
                rendezvous.party,
                peer,
                key,
                member.public_key,
                session_id,
                config,
                min(max(deadline - time.monotonic(), 0.001), config.handshake_timeout),
            )
        except (HandshakeInterrupted, OSError) as exc:
            # the listener closed, reset or did not answer: it may not be accepting yet,
            # or it refused us; retry until the deadline, which reports the last reason
            sock.close()
            rendezvous.note(peer, f"handshake with {member.host}:{member.port}: {exc}")
            time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
            backoff = min(2 * backoff, _BACKOFF_MAX_S)
            continue
        except ChannelError as exc:  # the peer failed authentication: not the member
            sock.close()
            rendezvous.offer(peer, exc)
            return
        if not rendezvous.offer(peer, link):
            link.start_close()
            link.finish_close(time.monotonic())
        return


def _accept_loop(
    rendezvous: _Rendezvous,
    listener: socket.socket,
    key: StaticKey,
    members: Sequence[MemberEndpoint],
    session_id: bytes,
    config: ChannelConfig,
    deadline: float,
) -> None:
    listener.settimeout(0.05)
    while rendezvous.open and time.monotonic() < deadline:
        try:
            sock, address = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(
            target=_respond_one,
            args=(rendezvous, sock, address, key, members, session_id, config, deadline),
            name=f"mpc-handshake-{rendezvous.party}",
            daemon=True,
        ).start()


def _respond_one(
    rendezvous: _Rendezvous,
    sock: socket.socket,
    address: object,
    key: StaticKey,
    members: Sequence[MemberEndpoint],
    session_id: bytes,
    config: ChannelConfig,
    deadline: float,
) -> None:
    timeout = min(max(deadline - time.monotonic(), 0.001), config.handshake_timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer, link = _respond(sock, rendezvous.party, key, members, session_id, config, timeout)
    except (ChannelError, OSError) as exc:
        sock.close()
        peer_id = exc.peer if isinstance(exc, ChannelError) else None
        rendezvous.note(peer_id, f"refused a connection from {address}: {exc}")
        return
    if not rendezvous.offer(peer, link):
        link.start_close()
        link.finish_close(time.monotonic())


def _summary(notes: list[str], keep: int = 3) -> str:
    """The last ``keep`` distinct reasons, oldest first, and how many attempts there were."""
    if not notes:
        return "no connection attempt"
    distinct: list[str] = []
    for text in reversed(notes):
        if text not in distinct:
            distinct.append(text)
        if len(distinct) == keep:
            break
    return " | ".join(reversed(distinct)) + f" ({len(notes)} attempts or refusals)"


def connect_committee(
    party: int,
    static_key: StaticKey | bytes,
    members: Sequence[MemberEndpoint],
    session_id: bytes,
    config: ChannelConfig | None = None,
    *,
    listener: socket.socket | None = None,
) -> TcpTransport:
    """Open this member's authenticated, encrypted channels to the two other members.

    ``party``: this member's index (0, 1, 2). ``static_key``: its static X25519 key pair
    (or the 32-byte private key); its public key must equal ``members[party].public_key``.
    ``members``: the three members' endpoints and registered public keys, by party
    index. ``session_id``: 1-255 bytes naming the protocol instance (for example a hash
    of the claim id); all three must pass the same. ``listener``: an already bound,
    listening socket for ``members[party]`` (see :func:`bind_listener`; this function
    takes it over and closes it); without it one is bound at ``members[party]``.

    Member ``p`` accepts ``q > p`` and dials ``q < p``, retrying refused connections
    with backoff until ``config.connect_timeout``. A peer that fails authentication is
    refused and does not count; the member keeps waiting for the real one. Raises
    :class:`PeerTimeout` (naming the first missing peer; the message lists every
    refusal) when a channel is not up by the deadline (a dialer whose handshake is
    refused, reset or unanswered retries until then), :class:`HandshakeError` when a
    peer this member dialed fails authentication (it does not hold the registered key),
    :class:`LowOrderPoint` for a low-order key.
    """
    cfg = ChannelConfig() if config is None else config
    try:
        if isinstance(party, bool) or party not in range(PARTIES):
            raise ValueError(f"party must be 0, 1 or 2, got {party!r}")
        if len(members) != PARTIES:
            raise ValueError(f"need the endpoints of {PARTIES} members, got {len(members)}")
        key = (
            static_key if isinstance(static_key, StaticKey) else StaticKey.from_private(static_key)
        )
        if key.public != members[party].public_key:
            raise ValueError(f"static_key is not the key registered for party {party}")
        if len({m.public_key for m in members}) != PARTIES:
            raise ValueError("the three members must have distinct public keys")
        sid = _check_session_id(session_id)
    except BaseException:
        if listener is not None:  # taken over: closed on every way out, refusals included
            listener.close()
        raise
    deadline = time.monotonic() + cfg.connect_timeout
    own_listener = listener
    if own_listener is None:
        own_listener = bind_listener(members[party].host, members[party].port)
    rendezvous = _Rendezvous(party, {p for p in range(PARTIES) if p != party})
    threads = [
        threading.Thread(
            target=_dial_loop,
            args=(rendezvous, peer, key, members[peer], sid, cfg, deadline),
            name=f"mpc-dial-{party}->{peer}",
            daemon=True,
        )
        for peer in range(party)
    ]
    if party < PARTIES - 1:
        threads.append(
            threading.Thread(
                target=_accept_loop,
                args=(rendezvous, own_listener, key, members, sid, cfg, deadline),
                name=f"mpc-accept-{party}",
                daemon=True,
            )
        )
    for thread in threads:
        thread.start()
    links: dict[int, _Link] = {}
    failure: ChannelError | None = None
    try:
        while len(links) < PARTIES - 1 and failure is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                peer, value = rendezvous.events.get(timeout=remaining)
            except queue.Empty:
                break
            if isinstance(value, ChannelError):
                failure = value
            elif isinstance(value, _Link):
                if peer in links:
                    rendezvous.note(peer, "refused a second channel")
                    value.start_close()
                    value.finish_close(time.monotonic())
                else:
                    links[peer] = value
    finally:
        rendezvous.end()
        own_listener.close()
        while True:  # links offered after the last get
            try:
                peer, value = rendezvous.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(value, _Link):
                if peer in links or failure is not None:
                    value.start_close()
                    value.finish_close(time.monotonic())
                else:
                    links[peer] = value
    missing = sorted(rendezvous.expected - set(links))
    if failure is None and not missing:
        return TcpTransport(party, sid, links, cfg)
    for link in links.values():
        link.start_close()
        link.finish_close(time.monotonic())
    if failure is not None:
        raise failure
    details = "; ".join(f"party {p}: {_summary(rendezvous.notes[p])}" for p in missing)
    stray = f"; other refusals: {rendezvous.stray[-3:]}" if rendezvous.stray else ""
    raise PeerTimeout(
        f"party {party} has no channel to part{'ies' if len(missing) > 1 else 'y'} "
        f"{', '.join(map(str, missing))} after {cfg.connect_timeout} s: {details}{stray}",
        peer=missing[0],
    )
