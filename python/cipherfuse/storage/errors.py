"""Exceptions raised by :mod:`cipherfuse.storage`."""

from __future__ import annotations

from cipherfuse.errors import CipherfuseError, ParameterError, SerializationError


class StorageError(CipherfuseError):
    """Base class of every storage failure."""


class InvalidCIDError(ParameterError):
    """A string or byte sequence is not a CID this package understands."""


class IntegrityError(StorageError, ValueError):
    """A block's bytes do not hash to the CID under which they were stored or served.

    The message names the CID. The offending bytes are never returned to the caller.
    """

    def __init__(self, cid: str, detail: str) -> None:
        super().__init__(f"block {cid} failed verification: {detail}")
        self.cid = cid


class BlockNotFoundError(StorageError, KeyError):
    """The store holds no block (or no complete object) under the requested CID."""

    def __init__(self, cid: str, where: str) -> None:
        super().__init__(f"{cid} not found in {where}")
        self.cid = cid

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ContentUnavailableError(BlockNotFoundError):
    """No reachable peer provided the object within the fetch timeout.

    The provider may be offline, not (yet) connected, never had it, or serve corrupted
    blocks (a block that does not hash to its CID is dropped on arrival, so such a peer
    provides nothing); the fetch gave up instead of waiting forever. Retrying later, once
    an honest provider is back, can succeed.
    """

    def __init__(self, cid: str, timeout: float, peers: int) -> None:
        KeyError.__init__(
            self,
            f"{cid}: no connected peer provided it intact within {timeout:g} s ({peers} "
            "peers connected); is its provider online and in the same swarm (swarm key, "
            "bootstrap peers)? Blocks that do not match their CID are dropped.",
        )
        self.cid = cid
        self.timeout = timeout


class ObjectTooLargeError(StorageError, ValueError):
    """An object exceeds the store's configured ``max_object_size``."""


class DagTooLargeError(ObjectTooLargeError):
    """A DAG spans more nodes than the reader's ``max_nodes`` (e.g. links repeating a child)."""


class MalformedNodeError(SerializationError):
    """A block that verified against its CID is not a well-formed dag-pb/UnixFS file node."""


class BackendUnavailableError(StorageError, ConnectionError):
    """A remote or embedded backend could not be reached after the configured retries."""
