"""Walk a UnixFS file DAG and stream its bytes, verifying every block on the way."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cipherfuse.storage.cid import CID, RAW
from cipherfuse.storage.errors import MalformedNodeError, ObjectTooLargeError
from cipherfuse.storage.protobuf import (
    UNIXFS_FILE,
    UNIXFS_RAW,
    PBNode,
    UnixFSData,
    decode_pbnode,
    decode_unixfs,
)

#: Returns the bytes of a block, already verified against its CID.
BlockGetter = Callable[[CID], bytes]

_MAX_DEPTH = 16  # 174**16 chunks is far beyond any real file; guards against link cycles


def decode_file_node(cid: CID, block: bytes) -> tuple[PBNode, UnixFSData]:
    """Parse a dag-pb block as a UnixFS file node; raise MalformedNodeError otherwise."""
    try:
        node = decode_pbnode(block)
        if node.data is None:
            raise MalformedNodeError("dag-pb node carries no UnixFS data")
        unixfs = decode_unixfs(node.data)
    except MalformedNodeError as exc:
        raise MalformedNodeError(f"{cid}: not a UnixFS file node: {exc}") from exc
    if unixfs.type not in (UNIXFS_FILE, UNIXFS_RAW):
        raise MalformedNodeError(
            f"{cid} is a UnixFS node of type {unixfs.type}, not a file (directories are "
            "not supported by this store)"
        )
    if node.links and len(unixfs.blocksizes) != len(node.links):
        raise MalformedNodeError(
            f"{cid}: {len(node.links)} links but {len(unixfs.blocksizes)} blocksizes"
        )
    return node, unixfs


def object_size(root: CID, get_block: BlockGetter) -> int:
    """The file size recorded in the root node (raw root: its length)."""
    block = get_block(root)
    if root.codec == RAW:
        return len(block)
    _, unixfs = decode_file_node(root, block)
    if unixfs.filesize is not None:
        return unixfs.filesize
    return len(unixfs.data or b"") + sum(unixfs.blocksizes)


def iter_file(root: CID, get_block: BlockGetter, *, max_size: int | None = None) -> Iterator[bytes]:
    """Yield the file's bytes in order, one leaf at a time.

    Every block comes through ``get_block`` (which verifies it against its CID); the
    sizes each node declares are checked against what its children deliver, so a
    well-hashed but inconsistent DAG raises :class:`MalformedNodeError` instead of
    yielding wrong data. ``max_size`` rejects a too-large object before streaming.
    """
    if max_size is not None:
        size = object_size(root, get_block)
        if size > max_size:
            raise ObjectTooLargeError(
                f"{root} holds {size} bytes, more than max_object_size={max_size}; "
                "raise the limit or stream it with a larger one"
            )
    yield from _visit(root, get_block, None, 0)


def _visit(cid: CID, get_block: BlockGetter, expected: int | None, depth: int) -> Iterator[bytes]:
    if depth > _MAX_DEPTH:
        raise MalformedNodeError(f"{cid}: DAG deeper than {_MAX_DEPTH} levels")
    block = get_block(cid)
    if cid.codec == RAW:
        if expected is not None and len(block) != expected:
            raise MalformedNodeError(
                f"{cid}: raw leaf has {len(block)} bytes, parent says {expected}"
            )
        yield block
        return
    node, unixfs = decode_file_node(cid, block)
    produced = 0
    if unixfs.data:
        produced += len(unixfs.data)
        yield unixfs.data
    for link, size in zip(node.links, unixfs.blocksizes, strict=False):
        child = CID.from_bytes(link.hash)
        yield from _visit(child, get_block, size, depth + 1)
        produced += size
    if unixfs.filesize is not None and unixfs.filesize != produced:
        raise MalformedNodeError(f"{cid}: declares {unixfs.filesize} bytes, DAG holds {produced}")
    if expected is not None and produced != expected:
        raise MalformedNodeError(f"{cid}: holds {produced} bytes, parent says {expected}")


def iter_links(cid: CID, block: bytes) -> list[CID]:
    """Children of a block (none for raw blocks)."""
    if cid.codec == RAW:
        return []
    node = decode_pbnode(block)
    return [CID.from_bytes(link.hash) for link in node.links]
