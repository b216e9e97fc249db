"""The committee channels over real loopback TCP: delivery, authentication, limits, timeouts.

Hostile peers and a man in the middle are played by real sockets: a TCP proxy that
rewrites the byte stream, and raw clients that speak the documented wire format with
the Noise handshake of :mod:`cipherfuse.mpc.noise`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from cipherfuse.mpc.channel import (
    HEADER_LEN,
    MAGIC,
    ChannelConfig,
    MemberEndpoint,
    StaticKey,
    TcpTransport,
    bind_listener,
    connect_committee,
    prologue,
)
from cipherfuse.mpc.errors import ChannelError, PeerTimeout
from cipherfuse.mpc.noise import (
    TAG_LEN,
    CipherState,
    HandshakeError,
    KKHandshake,
    LowOrderPoint,
    check_public_key,
)

P = 2**255 - 19
#: u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519 and their
#: non-canonical encodings (values >= p and the same with the ignored top bit set).
LOW_ORDER_U = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    P - 1,
    P,
    P + 1,
    2**255,  # 0 with the top bit set
    2**255 + 1,
]
LOW_ORDER_POINTS = [u.to_bytes(32, "little") for u in LOW_ORDER_U]

FAST = ChannelConfig(timeout=20.0, connect_timeout=20.0, handshake_timeout=10.0)


class Committee:
    """Keys, listeners and endpoints of three members on loopback."""

    #: Every listener bound by a test; the ones no member took over are closed after it.
    bound: ClassVar[list[socket.socket]] = []

    def __init__(self, keys: list[StaticKey] | None = None) -> None:
        self.keys = [StaticKey.generate() for _ in range(3)] if keys is None else keys
        self.listeners = [bind_listener() for _ in range(3)]
        Committee.bound.extend(self.listeners)
        self.members = [
            MemberEndpoint("127.0.0.1", sock.getsockname()[1], key.public)
            for sock, key in zip(self.listeners, self.keys, strict=True)
        ]

    def view_with(self, party: int, endpoint: MemberEndpoint) -> list[MemberEndpoint]:
        """The member list with ``members[party]`` replaced (what one member is told)."""
        members = list(self.members)
        members[party] = endpoint
        return members


@pytest.fixture(autouse=True)
def _close_unused_listeners() -> Iterator[None]:
    """A test that runs two of the three members leaves the third listener open."""
    yield
    while Committee.bound:
        Committee.bound.pop().close()


def run_parties(
    functions: dict[int, Callable[[], Any]],
) -> tuple[dict[int, Any], dict[int, BaseException]]:
    """Run ``functions[p]()`` in threads; return (results, exceptions) by party."""
    results: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def wrap(p: int) -> None:
        try:
            results[p] = functions[p]()
        except BaseException as exc:
            errors[p] = exc

    threads = [threading.Thread(target=wrap, args=(p,)) for p in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def connect(c: Committee, party: int, config: ChannelConfig = FAST, **kw: Any) -> TcpTransport:
    members = kw.pop("members", c.members)
    session_id = kw.pop("session_id", b"claim-7")
    key = kw.pop("key", c.keys[party])
    return connect_committee(
        party, key, members, session_id, config, listener=c.listeners[party], **kw
    )


class Proxy:
    """A one-connection TCP proxy; ``rewrite(offset, chunk)`` edits the client->server stream."""

    def __init__(
        self, target_port: int, rewrite: Callable[[int, bytes], bytes] = lambda o, c: c
    ) -> None:
        self.listener = bind_listener()
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        self.rewrite = rewrite
        self.upstream_log = bytearray()  # client->server bytes as received from the client
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        client, _ = self.listener.accept()
        self.listener.close()
        server = socket.create_connection(("127.0.0.1", self.target_port))
        back = threading.Thread(target=self._pump, args=(server, client, False), daemon=True)
        back.start()
        self._pump(client, server, True)
        back.join()
        client.close()
        server.close()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        offset = 0
        while True:
            try:
                chunk = src.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if upstream:
                self.upstream_log += chunk
                out = self.rewrite(offset, chunk)
                offset += len(chunk)
            else:
                out = chunk
            try:
                dst.sendall(out)
            except OSError:
                break
        for sock in (dst, src):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR if sock is dst else socket.SHUT_RD)


def flip_at(position: int) -> Callable[[int, bytes], bytes]:
    def rewrite(offset: int, chunk: bytes) -> bytes:
        if offset <= position < offset + len(chunk):
            edited = bytearray(chunk)
            edited[position - offset] ^= 0x01
            return bytes(edited)
        return chunk

    return rewrite


#: Bytes the dialer sends before its first frame: hello, handshake message 1, confirmation.
HANDSHAKE_UPSTREAM = len(MAGIC) + 2 + 48 + TAG_LEN


def raw_dial(
    port: int, me: int, peer: int, key: StaticKey, peer_public: bytes, session_id: bytes
) -> tuple[socket.socket, CipherState, CipherState]:
    """A hand-made dialer speaking the documented wire format (a hostile member's tool)."""
    sock = socket.create_connection(("127.0.0.1", port))
    hs = KKHandshake(
        initiator=True,
        static_private=key.private,
        remote_static=peer_public,
        prologue=prologue(session_id, me, peer),
    )
    sock.sendall(MAGIC + bytes([me, peer]) + hs.write_message())
    msg2 = b""
    while len(msg2) < 48:
        part = sock.recv(48 - len(msg2))
        assert part, "responder closed during the handshake"
        msg2 += part
    hs.read_message(msg2)
    send, recv = hs.split()
    sock.sendall(send.encrypt(b"C", b""))
    return sock, send, recv


def seal_frame(cipher: CipherState, payload: bytes) -> bytes:
    return cipher.encrypt(b"H", len(payload).to_bytes(8, "big")) + cipher.encrypt(b"B", payload)


# -- delivery ---------------------------------------------------------------------------


def test_three_parties_exchange_frames_in_order_over_tcp() -> None:
    c = Committee()
    rng = np.random.default_rng(20)
    payloads = {
        (p, q): [
            b"",
            rng.integers(0, 2**63, size=3_000_000, dtype=np.uint64).tobytes(),
            *(bytes([p, q, i]) * (i + 1) for i in range(50)),
        ]
        for p in range(3)
        for q in range(3)
        if p != q
    }

    def party(p: int) -> Any:
        with connect(c, p) as t:
            for q in range(3):
                if q != p:
                    for data in payloads[(p, q)]:
                        t.send(q, memoryview(data))
            got = {q: [t.recv(q) for _ in payloads[(q, p)]] for q in range(3) if q != p}
            return got, t.bytes_sent, t.party, t.session_id

    results, errors = run_parties({p: (lambda p=p: party(p)) for p in (2, 0, 1)})
    assert not errors
    for p in range(3):
        got, sent, index, sid = results[p]
        assert index == p
        assert sid == b"claim-7"
        for q, frames in got.items():
            assert frames == payloads[(q, p)]
        assert sent == sum(len(d) for (a, _), ds in payloads.items() if a == p for d in ds)


def test_numpy_arrays_are_sent_without_conversion() -> None:
    c = Committee()
    shares = np.arange(12, dtype=np.uint64).reshape(3, 4)

    def party(p: int) -> Any:
        with connect(c, p) as t:
            t.send((p + 1) % 3, memoryview(shares))
            got = np.frombuffer(t.recv((p - 1) % 3), dtype=np.uint64).reshape(3, 4)
            with pytest.raises(ChannelError, match="contiguous"):
                t.send((p + 1) % 3, memoryview(shares[:, ::2]))
            return got

    results, errors = run_parties({p: (lambda p=p: party(p)) for p in range(3)})
    assert not errors
    for p in range(3):
        np.testing.assert_array_equal(results[p], shares)


def test_members_started_in_any_order_connect() -> None:
    c = Committee()
    for listener in c.listeners:  # nobody listens yet: the dialers must retry
        listener.close()
    c.listeners = [None, None, None]  # type: ignore[list-item]

    def party(p: int, delay: float) -> int:
        time.sleep(delay)
        with connect_committee(p, c.keys[p], c.members, b"s", FAST) as t:
            t.send((p + 1) % 3, bytes([p]))
            return t.recv((p - 1) % 3)[0]

    delays = {0: 0.6, 1: 0.3, 2: 0.0}  # the dialers start first
    results, errors = run_parties({p: (lambda p=p: party(p, delays[p])) for p in range(3)})
    assert not errors
    assert results == {0: 2, 1: 0, 2: 1}


def test_close_flushes_then_peer_sees_channel_error() -> None:
    c = Committee()

    def party(p: int) -> Any:
        t = connect(c, p)
        if p == 1:
            t.send(0, b"last words")
            t.close()
            with pytest.raises(ChannelError, match="closed"):
                t.send(0, b"after close")
            return None
        if p == 0:
            first = t.recv(1)
            with pytest.raises(ChannelError, match="closed its channel") as info:
                t.recv(1)
            t.close()
            return first, info.value.peer
        t.close()
        return None

    results, errors = run_parties({p: (lambda p=p: party(p)) for p in range(3)})
    assert not errors
    assert results[0] == (b"last words", 1)


# -- the handshake ----------------------------------------------------------------------


@pytest.mark.parametrize("we_initiate", [True, False])
def test_handshake_matches_reference_noise_implementation(we_initiate: bool) -> None:
    connection = pytest.importorskip("noise.connection")
    ours, theirs = StaticKey.generate(), StaticKey.generate()
    pro = prologue(b"sid", 2, 0)
    mine = KKHandshake(
        initiator=we_initiate,
        static_private=ours.private,
        remote_static=theirs.public,
        prologue=pro,
    )
    ref = connection.NoiseConnection.from_name(b"Noise_KK_25519_AESGCM_SHA256")
    if we_initiate:
        ref.set_as_responder()
    else:
        ref.set_as_initiator()
    ref.set_prologue(pro)
    ref.set_keypair_from_private_bytes(connection.Keypair.STATIC, theirs.private)
    ref.set_keypair_from_public_bytes(connection.Keypair.REMOTE_STATIC, ours.public)
    ref.start_handshake()
    if we_initiate:
        assert ref.read_message(mine.write_message(b"one")) == b"one"
        assert mine.read_message(ref.write_message(b"two")) == b"two"
    else:
        assert mine.read_message(ref.write_message(b"one")) == b"one"
        assert ref.read_message(mine.write_message(b"two")) == b"two"
    assert bytes(ref.get_handshake_hash()) == mine.handshake_hash
    send, recv = mine.split()
    for i in range(3):
        assert ref.decrypt(send.encrypt(b"", b"to ref %d" % i)) == b"to ref %d" % i
        assert recv.decrypt(b"", ref.encrypt(b"from ref %d" % i)) == b"from ref %d" % i


def test_handshake_fails_on_wrong_key_or_prologue() -> None:
    a, b, mallory = StaticKey.generate(), StaticKey.generate(), StaticKey.generate()
    for initiator_key, pro_b in ((mallory, b"p"), (a, b"other session")):
        init = KKHandshake(
            initiator=True,
            static_private=initiator_key.private,
            remote_static=b.public,
            prologue=b"p",
        )
        resp = KKHandshake(
            initiator=False, static_private=b.private, remote_static=a.public, prologue=pro_b
        )
        with pytest.raises(HandshakeError, match="expected static key"):
            resp.read_message(init.write_message())


def test_impostor_dialer_is_refused_and_the_member_keeps_waiting() -> None:
    c = Committee()
    impostor = StaticKey.generate()
    short = ChannelConfig(timeout=5.0, connect_timeout=1.5, handshake_timeout=1.0)

    def impostor_party() -> None:
        # claims to be party 1 with its own key; party 0 expects the registered one
        members = c.view_with(1, MemberEndpoint("127.0.0.1", 1, impostor.public))
        connect_committee(1, impostor, members, b"claim-7", short, listener=c.listeners[1])

    _results, errors = run_parties({0: lambda: connect(c, 0, short), 1: impostor_party})
    assert isinstance(errors[1], PeerTimeout)  # it retried until its deadline ...
    assert "handshake refused" in str(errors[1])  # ... and was refused each time
    assert isinstance(errors[0], PeerTimeout)
    assert errors[0].peer == 1
    assert "expected static key" in str(errors[0])


def test_impostor_listener_is_refused_by_the_dialer() -> None:
    c = Committee()
    impostor = StaticKey.generate()
    fake_members = c.view_with(0, MemberEndpoint("127.0.0.1", c.members[0].port, impostor.public))
    short = ChannelConfig(timeout=5.0, connect_timeout=1.5, handshake_timeout=1.0)

    _results, errors = run_parties(
        {
            0: lambda: connect_committee(
                0, impostor, fake_members, b"claim-7", short, listener=c.listeners[0]
            ),
            1: lambda: connect(c, 1, short),
        }
    )
    # KK: the impostor cannot even read party 1's first message (it lacks party 0's
    # private key), so it can only drop the connection; party 1 retries until its deadline
    assert isinstance(errors[1], PeerTimeout)
    assert errors[1].peer == 0
    assert "handshake refused" in str(errors[1])
    assert isinstance(errors[0], PeerTimeout)  # the impostor never gets a channel
    assert "expected static key" in str(errors[0])


def test_other_session_id_is_refused() -> None:
    c = Committee()
    short = ChannelConfig(timeout=5.0, connect_timeout=1.5, handshake_timeout=1.0)
    _results, errors = run_parties(
        {0: lambda: connect(c, 0, short), 1: lambda: connect(c, 1, short, session_id=b"claim-8")}
    )
    assert isinstance(errors[1], PeerTimeout)
    assert "handshake refused" in str(errors[1])
    assert isinstance(errors[0], PeerTimeout)
    assert "session id" in str(errors[0])


def test_replayed_handshake_is_refused() -> None:
    c = Committee()
    proxy = Proxy(c.members[0].port)
    via_proxy = c.view_with(0, MemberEndpoint("127.0.0.1", proxy.port, c.keys[0].public))
    results, errors = run_parties(
        {
            0: lambda: connect(c, 0).close(),
            1: lambda: connect(c, 1, members=via_proxy).close(),
            2: lambda: connect(c, 2).close(),
        }
    )
    assert not errors
    proxy.thread.join()
    recorded = bytes(proxy.upstream_log[:HANDSHAKE_UPSTREAM])

    # a new session (same keys, same session id): replay party 1's recorded handshake
    fresh = Committee(keys=c.keys)
    short = ChannelConfig(timeout=5.0, connect_timeout=1.5, handshake_timeout=1.0)

    def replay() -> bytes:
        sock = socket.create_connection(("127.0.0.1", fresh.members[0].port))
        sock.sendall(recorded[: len(MAGIC) + 2 + 48])
        reply = sock.recv(48)  # the responder answers with a fresh ephemeral key ...
        sock.sendall(recorded[len(MAGIC) + 2 + 48 :])  # ... the old confirmation cannot match
        rest = sock.recv(1)
        sock.close()
        return reply + rest

    results, errors = run_parties({0: lambda: connect(fresh, 0, short), 1: replay})
    assert len(results[1]) == 48  # msg2 came back, then the connection was closed
    assert isinstance(errors[0], PeerTimeout)
    assert "key confirmation failed" in str(errors[0])


def test_low_order_points_are_rejected() -> None:
    for point in LOW_ORDER_POINTS:
        with pytest.raises(LowOrderPoint):
            check_public_key(point)
        with pytest.raises(LowOrderPoint):
            MemberEndpoint("127.0.0.1", 1, point)
        responder = KKHandshake(
            initiator=False,
            static_private=StaticKey.generate().private,
            remote_static=StaticKey.generate().public,
            prologue=b"p",
        )
        with pytest.raises(LowOrderPoint):
            responder.read_message(point + bytes(TAG_LEN))
    assert check_public_key(StaticKey.generate().public)  # an ordinary key passes


def test_low_order_ephemeral_over_the_network_is_refused() -> None:
    c = Committee()
    short = ChannelConfig(timeout=5.0, connect_timeout=1.5, handshake_timeout=1.0)

    def hostile() -> bytes:
        sock = socket.create_connection(("127.0.0.1", c.members[0].port))
        sock.sendall(MAGIC + bytes([1, 0]) + LOW_ORDER_POINTS[2] + bytes(TAG_LEN))
        answer = sock.recv(64)
        sock.close()
        return answer

    results, errors = run_parties({0: lambda: connect(c, 0, short), 1: hostile})
    assert results[1] == b""  # closed without a handshake reply
    assert isinstance(errors[0], PeerTimeout)
    assert "low-order" in str(errors[0])


def test_garbage_connection_is_refused_and_the_real_peer_still_connects() -> None:
    c = Committee()

    def garbage_then_real() -> bytes:
        sock = socket.create_connection(("127.0.0.1", c.members[0].port))
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        sock.close()
        with connect(c, 1) as t:
            t.send(0, b"real")
            return t.recv(0)

    def zero() -> bytes:
        with connect(c, 0) as t:
            t.send(1, b"ok")
            return t.recv(1)

    def two() -> None:
        connect(c, 2).close()

    results, errors = run_parties({0: zero, 1: garbage_then_real, 2: two})
    assert not errors
    assert results[0] == b"real"
    assert results[1] == b"ok"


# -- man in the middle ------------------------------------------------------------------


def _through_proxy(rewrite: Callable[[int, bytes], bytes], frames: list[bytes]) -> list[Any]:
    """Party 1 sends ``frames`` to party 0 through a proxy; what party 0's recvs give."""
    c = Committee()
    proxy = Proxy(c.members[0].port, rewrite)
    via_proxy = c.view_with(0, MemberEndpoint("127.0.0.1", proxy.port, c.keys[0].public))
    cfg = ChannelConfig(timeout=10.0, connect_timeout=10.0)

    def zero() -> list[Any]:
        with connect(c, 0, cfg) as t:
            out: list[Any] = []
            for _ in frames:
                try:
                    out.append(t.recv(1))
                except ChannelError as exc:
                    out.append(exc)
                    break
            t.send(1, b"done")
            return out

    def one() -> None:
        with connect(c, 1, cfg, members=via_proxy) as t:
            for frame in frames:
                t.send(0, frame)
            with contextlib.suppress(ChannelError):
                t.recv(0)

    results, errors = run_parties({0: zero, 1: one, 2: lambda: connect(c, 2, cfg).close()})
    assert not errors, errors
    out: list[Any] = results[0]
    return out


def test_flipped_ciphertext_byte_is_detected() -> None:
    frames = [b"A" * 1000, b"B" * 1000]
    # a byte inside the second frame's body
    position = HANDSHAKE_UPSTREAM + (HEADER_LEN + 1000 + TAG_LEN) + HEADER_LEN + 500
    out = _through_proxy(flip_at(position), frames)
    assert out[0] == frames[0]
    assert isinstance(out[1], ChannelError)
    assert out[1].peer == 1
    assert "failed authentication" in str(out[1])


def test_flipped_header_byte_is_detected() -> None:
    out = _through_proxy(flip_at(HANDSHAKE_UPSTREAM + 3), [b"x" * 10])
    assert isinstance(out[0], ChannelError)
    assert "failed authentication" in str(out[0])


def test_replayed_frame_is_refused() -> None:
    frame_len = HEADER_LEN + 100 + TAG_LEN
    start = HANDSHAKE_UPSTREAM
    log = bytearray()

    def duplicate_first_frame(offset: int, chunk: bytes) -> bytes:
        log.extend(chunk)
        end = offset + len(chunk)
        if offset < start + frame_len <= end:  # append a copy right after frame 1
            cut = start + frame_len - offset
            return chunk[:cut] + bytes(log[start : start + frame_len]) + chunk[cut:]
        return chunk

    out = _through_proxy(duplicate_first_frame, [b"p" * 100, b"q" * 100])
    assert out[0] == b"p" * 100
    assert isinstance(out[1], ChannelError)
    assert "failed authentication" in str(out[1])


def test_frames_from_another_session_are_refused() -> None:
    frame = b"s" * 64
    frame_len = HEADER_LEN + len(frame) + TAG_LEN
    recorded = _record_first_frame(frame)

    def substitute(offset: int, chunk: bytes) -> bytes:
        edited = bytearray(chunk)
        for i in range(len(chunk)):
            k = offset + i - HANDSHAKE_UPSTREAM
            if 0 <= k < frame_len:
                edited[i] = recorded[k]
        return bytes(edited)

    out = _through_proxy(substitute, [frame])
    assert isinstance(out[0], ChannelError)
    assert "failed authentication" in str(out[0])


def _record_first_frame(frame: bytes) -> bytes:
    """The wire bytes of ``frame`` sent 1 -> 0 in one session."""
    c = Committee()
    proxy = Proxy(c.members[0].port)
    via_proxy = c.view_with(0, MemberEndpoint("127.0.0.1", proxy.port, c.keys[0].public))

    def zero() -> bytes:
        with connect(c, 0) as t:
            return t.recv(1)

    def one() -> None:
        with connect(c, 1, members=via_proxy) as t:
            t.send(0, frame)

    results, errors = run_parties({0: zero, 1: one, 2: lambda: connect(c, 2).close()})
    assert not errors and results[0] == frame
    proxy.thread.join()
    start = HANDSHAKE_UPSTREAM
    return bytes(proxy.upstream_log[start : start + HEADER_LEN + len(frame) + TAG_LEN])


# -- limits and timeouts ----------------------------------------------------------------


def test_oversized_frame_length_is_refused_without_allocating_it() -> None:
    c = Committee()
    limit = 1 << 20
    cfg = ChannelConfig(
        timeout=10.0, connect_timeout=10.0, close_timeout=1.0, max_frame_bytes=limit
    )
    hostile_socks: list[socket.socket] = []
    announced = 1 << 30

    def zero() -> tuple[BaseException, int]:
        t = connect(c, 0, cfg)
        tracemalloc.start()
        try:
            with pytest.raises(ChannelError) as info:
                t.recv(2)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        t.close()
        return info.value, peak

    def hostile_two() -> None:
        # an authenticated member (it holds party 2's key) that announces a 1 GiB frame
        for peer in (0, 1):
            sock, send, _ = raw_dial(
                c.members[peer].port, 2, peer, c.keys[2], c.keys[peer].public, b"claim-7"
            )
            hostile_socks.append(sock)
            if peer == 0:
                sock.sendall(send.encrypt(b"H", announced.to_bytes(8, "big")))

    results, errors = run_parties({0: zero, 1: lambda: connect(c, 1, cfg).close(), 2: hostile_two})
    for sock in hostile_socks:
        sock.close()
    assert not errors, errors
    error, peak = results[0]
    assert error.peer == 2
    assert f"announced a frame of {announced} bytes" in str(error)
    assert peak < limit  # not even the limit, let alone the announced size, was allocated


def test_frames_over_the_limit_are_refused_by_sender_and_receiver() -> None:
    c = Committee()
    small = ChannelConfig(timeout=10.0, connect_timeout=10.0, max_frame_bytes=1000)
    large = ChannelConfig(timeout=10.0, connect_timeout=10.0, max_frame_bytes=10_000)

    def zero() -> Any:
        with connect(c, 0, small) as t:
            with pytest.raises(ChannelError, match="over max_frame_bytes"):
                t.send(1, bytes(1001))
            t.send(1, bytes(1000))  # exactly the limit passes
            ok = t.recv(1)
            with pytest.raises(ChannelError, match="over the limit") as info:
                t.recv(1)
            return ok, info.value.peer

    def one() -> bytes:
        with connect(c, 1, large) as t:
            t.send(0, bytes(1000))
            t.send(0, bytes(1001))
            return t.recv(0)

    results, errors = run_parties({0: zero, 1: one, 2: lambda: connect(c, 2, small).close()})
    assert not errors, errors
    assert results[0] == (bytes(1000), 1)
    assert results[1] == bytes(1000)
    with pytest.raises(ValueError, match="max_frame_bytes"):
        ChannelConfig(max_frame_bytes=2**31)


def test_silent_peer_raises_peer_timeout_naming_it() -> None:
    c = Committee()
    cfg = ChannelConfig(timeout=0.5, connect_timeout=20.0)
    release = threading.Event()

    def zero() -> tuple[PeerTimeout, float]:
        with connect(c, 0, cfg) as t:
            t.send(1, b"hi")
            assert t.recv(1) == b"hi back"
            start = time.monotonic()
            with pytest.raises(PeerTimeout) as info:
                t.recv(2)
            waited = time.monotonic() - start
            release.set()
            return info.value, waited

    def one() -> None:
        with connect(c, 1, cfg) as t:
            t.send(0, t.recv(0) + b" back")

    def silent_two() -> None:
        with connect(c, 2, cfg):
            release.wait()

    results, errors = run_parties({0: zero, 1: one, 2: silent_two})
    assert not errors
    error, waited = results[0]
    assert error.peer == 2
    assert "party 2 sent nothing to party 0" in str(error)
    assert waited >= 0.5  # it waited the configured timeout, no less


def test_connect_deadline_names_the_missing_peers() -> None:
    c = Committee()
    with pytest.raises(PeerTimeout, match="no channel to parties 1, 2") as info:
        connect(c, 0, ChannelConfig(connect_timeout=0.3))
    assert info.value.peer == 1
    c.listeners[0].close()  # party 0 is down: dials to it are refused
    with pytest.raises(PeerTimeout, match="no channel to parties 0, 1") as info:
        connect(c, 2, ChannelConfig(connect_timeout=0.3))
    assert info.value.peer == 0
    assert "Connection refused" in str(info.value)


def test_configuration_is_validated() -> None:
    c = Committee()
    with pytest.raises(ValueError, match="not the key registered"):
        connect_committee(0, c.keys[1], c.members, b"s", listener=c.listeners[0])
    assert c.listeners[0].fileno() == -1  # the listener it took over is closed
    with pytest.raises(ValueError, match="session_id"):
        connect_committee(1, c.keys[1], c.members, b"", listener=c.listeners[1])
    assert c.listeners[1].fileno() == -1
    with pytest.raises(ValueError, match="timeout"):
        ChannelConfig(timeout=0)
    with pytest.raises(HandshakeError, match="32 bytes"):
        MemberEndpoint("127.0.0.1", 1, os.urandom(31))
    assert "private" not in repr(c.keys[0])
