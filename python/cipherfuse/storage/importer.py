"""Build the UnixFS file DAG exactly as Kubo's ``ipfs add`` does, one chunk at a time.

Kubo's defaults (boxo ``importer/balanced``): fixed-size chunks of 262 144 bytes,
a balanced tree whose internal nodes hold at most 174 links, leaves at one depth,
the tree no deeper than needed, and a single-chunk file stored as the leaf alone.

* ``cid_version=0``: every node is dag-pb; a leaf is a UnixFS ``File`` node carrying
  its chunk; CIDs print as base58btc ``Qm...``.
* ``cid_version=1`` (Kubo's ``--cid-version=1``, which implies ``--raw-leaves``):
  leaves are raw blocks, internal nodes dag-pb, CIDs print as base32 ``b...``.

The importer is a streaming state machine: memory held is one chunk plus, per
tree level, at most ``max_links`` link records (about 60 bytes each).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cipherfuse.errors import ParameterError
from cipherfuse.storage.cid import CID, DAG_PB, RAW
from cipherfuse.storage.protobuf import (
    UNIXFS_FILE,
    PBLink,
    PBNode,
    UnixFSData,
    encode_pbnode,
    encode_unixfs,
    encode_varint,
)

DEFAULT_CHUNK_SIZE = 262_144
DEFAULT_MAX_LINKS = 174
MAX_CHUNK_SIZE = 1 << 20  # Kubo refuses chunks over 1 MiB (bitswap block limit is 2 MiB)

#: A block sink receives the block's CID and its bytes as one or more buffers to be
#: concatenated (the leaf's chunk is passed through without a copy).
BlockSink = Callable[[CID, Sequence[bytes | memoryview]], object]  # return value ignored


@dataclass(frozen=True)
class _Child:
    cid: CID
    tsize: int  # cumulative serialized size of the subtree (dag-pb link Tsize)
    filesize: int  # file bytes below this child (UnixFS blocksizes entry)


@dataclass(frozen=True)
class ImportResult:
    """Outcome of an import: root CID, file size and cumulative DAG size."""

    cid: CID
    size: int
    dag_size: int
    blocks: int


def check_layout_params(cid_version: int, chunk_size: int, max_links: int) -> None:
    """Validate importer parameters; raise :class:`ParameterError` naming the bad one."""
    if cid_version not in (0, 1):
        raise ParameterError(
            f"cid_version must be 0 or 1 (Kubo's --cid-version), got {cid_version}"
        )
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ParameterError(
            f"chunk_size must be in 1..{MAX_CHUNK_SIZE} bytes (Kubo's limit), got {chunk_size}"
        )
    if max_links < 2:
        raise ParameterError(f"max_links must be at least 2, got {max_links}")


class FileImporter:
    """Chunk a byte stream and emit the blocks of its UnixFS DAG to ``sink``.

    Feed data with :meth:`write` (any sizes) or :meth:`write_chunk`, then call
    :meth:`finish` once to obtain the root CID.
    """

    def __init__(
        self,
        cid_version: int = 0,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_links: int = DEFAULT_MAX_LINKS,
        sink: BlockSink | None = None,
    ) -> None:
        check_layout_params(cid_version, chunk_size, max_links)
        self.cid_version = cid_version
        self.chunk_size = chunk_size
        self.max_links = max_links
        self._sink = sink
        self._pending = bytearray()
        self._levels: list[list[_Child]] = [[]]
        self._size = 0
        self._blocks = 0
        self._finished = False
        self._short_chunk_seen = False

    # -- feeding -------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; full chunks are encoded and emitted immediately."""
        self._check_open()
        if self._short_chunk_seen:
            raise ParameterError("write() cannot follow a short write_chunk()")
        view = memoryview(data).cast("B")
        if self._pending:
            take = min(len(view), self.chunk_size - len(self._pending))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < self.chunk_size:
                return
            self._add_leaf(memoryview(bytes(self._pending)))
            self._pending.clear()
        full = len(view) - len(view) % self.chunk_size
        for start in range(0, full, self.chunk_size):
            self._add_leaf(view[start : start + self.chunk_size])
        if full < len(view):
            self._pending += view[full:]

    def write_chunk(self, chunk: bytes | bytearray | memoryview) -> None:
        """Emit one chunk without buffering (``len(chunk) == chunk_size`` except the last).

        Faster than :meth:`write` for readers that already fill whole chunks.
        """
        self._check_open()
        if self._pending:
            raise ParameterError("write_chunk() cannot follow a partial write()")
        if len(chunk) > self.chunk_size:
            raise ParameterError(
                f"chunk of {len(chunk)} bytes exceeds chunk_size {self.chunk_size}"
            )
        if len(chunk) == 0:
            return
        if self._short_chunk_seen:
            raise ParameterError("only the last chunk may be shorter than chunk_size")
        self._add_leaf(memoryview(chunk).cast("B"))
        self._short_chunk_seen = len(chunk) < self.chunk_size

    def finish(self) -> ImportResult:
        """Flush the last chunk, close every level and return the root."""
        self._check_open()
        if self._pending:
            self._add_leaf(memoryview(bytes(self._pending)))
            self._pending.clear()
        self._finished = True
        if self._size == 0:
            root = self._empty_file()
            return ImportResult(root.cid, 0, root.tsize, self._blocks)
        levels = self._levels
        level = 0
        while True:
            lower_empty = all(not lv for lv in levels[:level])
            if level == len(levels) - 1 and len(levels[level]) == 1 and lower_empty:
                root = levels[level][0]
                return ImportResult(root.cid, self._size, root.tsize, self._blocks)
            if levels[level]:
                self._close_level(level)
            level += 1

    # -- internals -----------------------------------------------------------------
    def _check_open(self) -> None:
        if self._finished:
            raise ParameterError("this importer is finished; create a new one per object")

    def _emit(self, cid: CID, parts: Sequence[bytes | memoryview]) -> None:
        self._blocks += 1
        if self._sink is not None:
            self._sink(cid, parts)

    def _add_leaf(self, chunk: memoryview) -> None:
        n = len(chunk)
        self._size += n
        if self.cid_version == 1:
            cid = CID(1, RAW, hashlib.sha256(chunk).digest())
            self._emit(cid, (chunk,))
            self._push(0, _Child(cid, n, n))
            return
        size_varint = encode_varint(n)
        unixfs_len = 2 + 1 + len(size_varint) + n + 1 + len(size_varint)
        prefix = b"\x0a" + encode_varint(unixfs_len) + b"\x08\x02\x12" + size_varint
        suffix = b"\x18" + size_varint
        digest = hashlib.sha256(prefix)
        digest.update(chunk)
        digest.update(suffix)
        cid = CID(0, DAG_PB, digest.digest())
        self._emit(cid, (prefix, chunk, suffix))
        self._push(0, _Child(cid, len(prefix) + n + len(suffix), n))

    def _push(self, level: int, child: _Child) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(child)
        if len(self._levels[level]) == self.max_links:
            self._close_level(level)

    def _close_level(self, level: int) -> None:
        children = self._levels[level]
        self._levels[level] = []
        filesize = sum(c.filesize for c in children)
        unixfs = encode_unixfs(
            UnixFSData(
                type=UNIXFS_FILE,
                filesize=filesize,
                blocksizes=tuple(c.filesize for c in children),
            )
        )
        links = tuple(PBLink(hash=c.cid.to_bytes(), tsize=c.tsize) for c in children)
        block = encode_pbnode(PBNode(data=unixfs, links=links))
        cid = CID.for_block(block, DAG_PB, self.cid_version)
        self._emit(cid, (block,))
        self._push(level + 1, _Child(cid, len(block) + sum(c.tsize for c in children), filesize))

    def _empty_file(self) -> _Child:
        if self.cid_version == 1:
            cid = CID.for_block(b"", RAW, 1)
            self._emit(cid, (b"",))
            return _Child(cid, 0, 0)
        block = encode_pbnode(PBNode(data=encode_unixfs(UnixFSData(UNIXFS_FILE, filesize=0))))
        cid = CID.for_block(block, DAG_PB, 0)
        self._emit(cid, (block,))
        return _Child(cid, len(block), 0)
