"""Errors raised by :mod:`cipherfuse.mpc`."""

from __future__ import annotations

from cipherfuse.errors import CipherfuseError


class MpcError(CipherfuseError):
    """Base class of three-party-computation errors."""


class ChannelError(MpcError, OSError):
    """A channel to a peer failed: closed, unauthenticated, malformed or oversized frame."""

    def __init__(self, message: str, *, peer: int | None = None) -> None:
        super().__init__(message)
        self.peer = peer


class PeerTimeout(ChannelError, TimeoutError):
    """A peer sent nothing within the protocol's timeout; ``peer`` names it."""


class ProtocolAbort(MpcError):
    """The protocol detected a deviation and stopped (security with abort).

    ``blamed`` is the party the evidence points to, or ``None`` where the deviation
    cannot be attributed to one party (for example two members disagree on a share
    that both hold).
    """

    def __init__(self, message: str, *, blamed: int | None = None) -> None:
        super().__init__(message)
        self.blamed = blamed


class ShareInconsistency(ProtocolAbort):
    """Two members holding the same share hold different values (or digests) of it."""


class EncodingError(MpcError):
    """A model, input or share bundle cannot be encoded or decoded exactly (typed, never silent)."""
