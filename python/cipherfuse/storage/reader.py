"""Walk a UnixFS file DAG and stream its bytes, verifying every block on the way."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cipherfuse.errors import ParameterError
from cipherfuse.storage.cid import CID, RAW
from cipherfuse.storage.errors import DagTooLargeError, MalformedNodeError, ObjectTooLargeError
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
#: Like :data:`BlockGetter`, but may return a view into a buffer it reuses: the view is
#: valid until the next call (see :func:`iter_file_views`).
BlockViewGetter = Callable[[CID], bytes | memoryview]

#: 174**16 chunks is far beyond any real file; also stops link cycles.
MAX_DEPTH = 16


def decode_file_node(
    cid: CID, block: bytes | memoryview, *, zero_copy: bool = False
) -> tuple[PBNode, UnixFSData]:
    """Parse a dag-pb block as a UnixFS file node; raise MalformedNodeError otherwise.

    With ``zero_copy`` the node's file data is a view into ``block``, not a copy.
    """
    try:
        node = decode_pbnode(block)
        if node.data is None:
            raise MalformedNodeError("dag-pb node carries no UnixFS data")
        unixfs = decode_unixfs(node.data, zero_copy=zero_copy)
    except MalformedNodeError as exc:
        raise MalformedNodeError(f"{cid}: not a UnixFS file node: {exc}") from exc
    if unixfs.type not in (UNIXFS_FILE, UNIXFS_RAW):
        raise MalformedNodeError(
            f"{cid} is a UnixFS node of type {unixfs.type}, not a file (directories are "
            "not supported by this store)"
        )
    if len(unixfs.blocksizes) != len(node.links):
        raise MalformedNodeError(
            f"{cid}: {len(node.links)} links but {len(unixfs.blocksizes)} blocksizes"
        )
    return node, unixfs


def object_size(root: CID, get_block: BlockViewGetter) -> int:
    """The file size recorded in the root node (raw root: its length)."""
    block = get_block(root)
    if root.codec == RAW:
        return len(block)
    _, unixfs = decode_file_node(root, block, zero_copy=True)
    if unixfs.filesize is not None:
        return unixfs.filesize
    return len(unixfs.data or b"") + sum(unixfs.blocksizes)


#: Default bound on the blocks one object may span (1 Mi nodes: 256 GiB at Kubo's default
#: 256 KiB chunks). Blocks are counted as they are visited, so a DAG whose links repeat a
#: child counts every repetition.
DEFAULT_MAX_NODES = 1 << 20


class _Budget:
    """What a walk may still produce: bytes and visited nodes."""

    def __init__(self, root: CID, max_bytes: int | None, max_nodes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_nodes = max_nodes
        self.produced = 0
        self.nodes = 0

    def visit(self, cid: CID) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise DagTooLargeError(
                f"{self.root} spans more than max_nodes={self.max_nodes} blocks (at {cid}); "
                "a DAG bomb or an object too large for this store"
            )

    def take(self, n: int) -> None:
        self.produced += n
        if self.max_bytes is not None and self.produced > self.max_bytes:
            raise ObjectTooLargeError(
                f"{self.root} produced more than the {self.max_bytes}-byte limit"
            )


def iter_file(
    root: CID,
    get_block: BlockGetter,
    *,
    max_size: int | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = MAX_DEPTH,
    expected_size: int | None = None,
) -> Iterator[bytes]:
    """Yield the file's bytes in order, one leaf at a time.

    Every block comes through ``get_block`` (which verifies it against its CID). A hostile
    but well-hashed DAG cannot make the walk exceed its limits, whatever sizes it declares:

    * each node's declared sizes are checked *before* its children are fetched: its
      ``filesize`` must equal its inline data plus its ``blocksizes``, and the size its
      parent declares for it, so a node cannot claim fewer bytes than its links produce;
    * the bytes actually produced are counted against ``max_size`` before each leaf is
      yielded, and the root's declared size is refused up front when above it;
    * the nodes visited (every repetition of a repeated child counts) are bounded by
      ``max_nodes`` (:class:`DagTooLargeError`) and the depth by ``max_depth``;
    * ``expected_size`` (e.g. a size committed on chain) must equal the root's size.

    Raises:
        ObjectTooLargeError / DagTooLargeError: a limit is exceeded.
        MalformedNodeError: a node is not a consistent UnixFS file node.
    """
    for piece in iter_file_views(
        root,
        get_block,
        max_size=max_size,
        max_nodes=max_nodes,
        max_depth=max_depth,
        expected_size=expected_size,
    ):
        yield piece if isinstance(piece, bytes) else bytes(piece)


def iter_file_views(
    root: CID,
    get_block: BlockViewGetter,
    *,
    max_size: int | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = MAX_DEPTH,
    expected_size: int | None = None,
) -> Iterator[bytes | memoryview]:
    """:func:`iter_file` without copies: each piece may be a view into the leaf's block.

    With a ``get_block`` that reuses one buffer, a piece is valid only until the next
    piece is requested: copy it out first (``LocalStore.get`` copies each into the
    output buffer). Same checks and limits as :func:`iter_file`.
    """
    if max_nodes < 1:
        raise ParameterError(f"max_nodes must be >= 1, got {max_nodes}")
    budget = _Budget(root, max_size, max_nodes)
    if max_size is not None or expected_size is not None:
        size = object_size(root, get_block)
        if max_size is not None and size > max_size:
            raise ObjectTooLargeError(
                f"{root} holds {size} bytes, more than the limit of {max_size}; "
                "raise the limit or stream it with a larger one"
            )
        if expected_size is not None and size != expected_size:
            raise ObjectTooLargeError(
                f"{root} holds {size} bytes, not the expected {expected_size}"
            )
    yield from _visit(root, get_block, expected_size, 0, budget, max_depth)


def _visit(
    cid: CID,
    get_block: BlockViewGetter,
    expected: int | None,
    depth: int,
    budget: _Budget,
    max_depth: int,
) -> Iterator[bytes | memoryview]:
    if depth > max_depth:
        raise MalformedNodeError(f"{cid}: DAG deeper than {max_depth} levels")
    budget.visit(cid)
    block = get_block(cid)
    if cid.codec == RAW:
        if expected is not None and len(block) != expected:
            raise MalformedNodeError(
                f"{cid}: raw leaf has {len(block)} bytes, parent says {expected}"
            )
        budget.take(len(block))
        yield block
        return
    # Links and sizes are decoded into Python values here, before the children are
    # fetched (which may reuse the block's buffer); only the inline data is a view.
    node, unixfs = decode_file_node(cid, block, zero_copy=True)
    inline = len(unixfs.data or b"")
    declared = inline + sum(unixfs.blocksizes) if node.links else inline
    if unixfs.filesize is not None and unixfs.filesize != declared:
        raise MalformedNodeError(
            f"{cid}: declares filesize {unixfs.filesize} but its data and blocksizes "
            f"add up to {declared}"
        )
    if expected is not None and declared != expected:
        raise MalformedNodeError(f"{cid}: holds {declared} bytes, parent says {expected}")
    if unixfs.data:
        budget.take(inline)
        yield unixfs.data
    for link, size in zip(node.links, unixfs.blocksizes, strict=True):
        child = CID.from_bytes(link.hash)
        yield from _visit(child, get_block, size, depth + 1, budget, max_depth)


def iter_links(cid: CID, block: bytes) -> list[CID]:
    """Children of a block (none for raw blocks)."""
    if cid.codec == RAW:
        return []
    node = decode_pbnode(block)
    return [CID.from_bytes(link.hash) for link in node.links]
