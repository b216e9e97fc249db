"""How the three parties exchange bytes: the :class:`Transport` interface.

A protocol step talks to its two peers only through a :class:`Transport`. Frames are
delivered whole and in order per direction; ``recv`` raises :class:`PeerTimeout` after
the transport's timeout and :class:`ChannelError` on a closed or broken channel.
:func:`in_memory_network` connects three transports inside one process (threads), for
tests and for single-process runs; networked transports (authenticated, encrypted TCP)
implement the same interface.
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol

from cipherfuse.mpc.errors import ChannelError, PeerTimeout

PARTIES = 3


class Transport(Protocol):
    """One party's end of the three-party network."""

    @property
    def party(self) -> int:
        """This party's index, 0, 1 or 2."""
        ...

    @property
    def bytes_sent(self) -> int:
        """Payload bytes this party has sent so far (frames' own overhead excluded)."""
        ...

    def send(self, to: int, data: bytes | bytearray | memoryview) -> None:
        """Send one frame to party ``to`` (never blocks on the receiver).

        ``data`` is copied or sealed before this returns: the caller may reuse the
        buffer (protocols pass views of their arrays, not copies).
        """
        ...

    def recv(self, frm: int) -> bytes:
        """Receive the next frame from party ``frm``."""
        ...

    def close(self) -> None:
        """Close every channel of this party; later calls raise :class:`ChannelError`."""
        ...


_CLOSED = object()


class _InMemoryTransport:
    """One end of :func:`in_memory_network` (queues between threads)."""

    def __init__(
        self, party: int, inboxes: list[list[queue.Queue[object]]], timeout: float
    ) -> None:
        self._party = party
        self._inboxes = inboxes  # inboxes[receiver][sender]
        self._timeout = timeout
        self._sent = 0
        self._closed = threading.Event()

    @property
    def party(self) -> int:
        return self._party

    @property
    def bytes_sent(self) -> int:
        return self._sent

    def _check_peer(self, peer: int) -> None:
        if peer == self._party or not 0 <= peer < PARTIES:
            raise ChannelError(f"party {self._party} has no channel to {peer!r}", peer=peer)
        if self._closed.is_set():
            raise ChannelError(f"party {self._party}'s transport is closed", peer=peer)

    def send(self, to: int, data: bytes | bytearray | memoryview) -> None:
        self._check_peer(to)
        frame = bytes(data)
        self._sent += len(frame)
        self._inboxes[to][self._party].put(frame)

    def recv(self, frm: int) -> bytes:
        self._check_peer(frm)
        try:
            frame = self._inboxes[self._party][frm].get(timeout=self._timeout)
        except queue.Empty:
            raise PeerTimeout(
                f"party {frm} sent nothing to party {self._party} in {self._timeout} s", peer=frm
            ) from None
        if frame is _CLOSED:
            raise ChannelError(f"party {frm} closed its channel to {self._party}", peer=frm)
        assert isinstance(frame, bytes)
        return frame

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for peer in range(PARTIES):
            if peer != self._party:
                self._inboxes[peer][self._party].put(_CLOSED)


def in_memory_network(timeout: float = 30.0) -> tuple[Transport, Transport, Transport]:
    """Three connected transports for parties 0, 1, 2 in one process.

    ``timeout`` (seconds) bounds every ``recv``; a party that never sends makes its
    peers raise :class:`PeerTimeout` instead of hanging.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    inboxes: list[list[queue.Queue[object]]] = [
        [queue.Queue() for _ in range(PARTIES)] for _ in range(PARTIES)
    ]
    t0, t1, t2 = (_InMemoryTransport(p, inboxes, timeout) for p in range(PARTIES))
    return t0, t1, t2
