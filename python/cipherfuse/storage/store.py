"""The ``Store`` interface every role uses, and its embedded on-disk implementation."""

from __future__ import annotations

import abc
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cipherfuse._core as _core
from cipherfuse.errors import ParameterError
from cipherfuse.storage.blockstore import MAX_BLOCK_SIZE, FileBlockstore
from cipherfuse.storage.cid import CID, RAW
from cipherfuse.storage.errors import (
    BlockNotFoundError,
    MalformedNodeError,
    ObjectTooLargeError,
)
from cipherfuse.storage.importer import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_LINKS,
    FileImporter,
    check_layout_params,
)
from cipherfuse.storage.reader import (
    DEFAULT_MAX_NODES,
    iter_file,
    iter_file_views,
    iter_links,
    object_size,
)
from cipherfuse.storage.source import Content, iter_chunks

DEFAULT_MAX_OBJECT_SIZE = 4 * 1024**3  # 4 GiB


@dataclass(frozen=True)
class GCResult:
    """What a garbage collection removed."""

    blocks_removed: int
    bytes_freed: int


def check_max_object_size(max_object_size: int) -> None:
    """Validate a ``max_object_size`` argument."""
    if max_object_size < 0:
        raise ParameterError(f"max_object_size must be >= 0 bytes, got {max_object_size}")


def too_large(what: str, max_object_size: int) -> ObjectTooLargeError:
    """The error raised when content exceeds ``max_object_size``."""
    return ObjectTooLargeError(
        f"{what} exceeds max_object_size={max_object_size} bytes; split it or create the "
        "store with a larger max_object_size"
    )


def known_length(content: Content) -> int | None:
    """Length of bytes-like content or a file path, without reading it; else None."""
    if isinstance(content, bytes | bytearray | memoryview):
        return memoryview(content).nbytes
    if isinstance(content, str | os.PathLike) and Path(content).is_file():
        return Path(content).stat().st_size
    return None


class Store(abc.ABC):
    """Content-addressed object storage with IPFS (Kubo ``ipfs add``) addresses.

    Objects are byte strings identified by the CID Kubo would give them. ``get`` and
    ``stream`` verify what they return against the CID; nothing is ever unpickled.
    """

    cid_version: int
    max_object_size: int
    #: Most blocks one object may span when read (see :func:`~.reader.iter_file`).
    max_nodes: int = DEFAULT_MAX_NODES

    @abc.abstractmethod
    def put(self, content: Content, *, pin: bool = True) -> str:
        """Store ``content`` (bytes, a path or a binary file) and return its CID."""

    @abc.abstractmethod
    def stream(
        self, cid: str, *, max_bytes: int | None = None, expected_size: int | None = None
    ) -> Iterator[bytes]:
        """Yield the object's bytes chunk by chunk, each verified before it is yielded.

        At most ``min(max_object_size, max_bytes)`` bytes are ever produced, counted on
        the bytes themselves, not on the sizes the DAG declares; with ``expected_size``
        (e.g. a size committed on chain) any other size raises
        :class:`ObjectTooLargeError` before the object's leaves are fetched.
        """

    @abc.abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the whole object is available from this store."""

    @abc.abstractmethod
    def pin(self, cid: str) -> None:
        """Protect the object (recursively) from :meth:`gc`."""

    @abc.abstractmethod
    def unpin(self, cid: str) -> None:
        """Remove the pin; the object may then be collected."""

    @abc.abstractmethod
    def gc(self) -> GCResult:
        """Delete every block not reachable from a pin."""

    def get(
        self, cid: str, *, max_bytes: int | None = None, expected_size: int | None = None
    ) -> bytes:
        """The whole object as bytes (at most ``max_object_size`` and ``max_bytes``).

        Pass ``max_bytes`` whenever the CID comes from another party: a DAG bomb then
        fails with :class:`ObjectTooLargeError` after at most that many bytes. See
        :meth:`stream`.
        """
        return b"".join(self.stream(cid, max_bytes=max_bytes, expected_size=expected_size))

    def read_limit(self, max_bytes: int | None) -> int:
        """The effective byte limit of one read: ``max_object_size`` or ``max_bytes``."""
        if max_bytes is None:
            return self.max_object_size
        check_max_object_size(max_bytes)
        return min(self.max_object_size, max_bytes)

    def get_to_file(self, cid: str, destination: BinaryIO) -> int:
        """Stream the object into an open binary file; return the bytes written.

        On an integrity error some verified prefix may already have been written;
        write to a temporary file and rename it on success for all-or-nothing output.
        """
        written = 0
        for chunk in self.stream(cid):
            destination.write(chunk)
            written += len(chunk)
        return written


class LocalStore(Store):
    """The embedded default: a :class:`FileBlockstore` plus pins and garbage collection.

    Safe for concurrent use from several processes: block writes are atomic renames
    of complete files, pins are one marker file each, and ``gc`` takes an exclusive
    ``flock`` that waits for in-flight ``put``/``pin`` calls (which hold it shared).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        cid_version: int = 0,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_links: int = DEFAULT_MAX_LINKS,
        durable: bool = True,
    ) -> None:
        check_layout_params(cid_version, chunk_size, max_links)
        check_max_object_size(max_object_size)
        self.cid_version = cid_version
        self.max_object_size = max_object_size
        self.chunk_size = chunk_size
        self.max_links = max_links
        self.blocks = FileBlockstore(root, durable=durable)
        self._pins = self.blocks.root / "pins"

    def __repr__(self) -> str:
        return f"LocalStore({str(self.blocks.root)!r}, cid_version={self.cid_version})"

    # -- writing -------------------------------------------------------------------
    def put(self, content: Content, *, pin: bool = True) -> str:
        """Chunk, encode and store ``content``; pin its root unless ``pin=False``.

        Raises :class:`ObjectTooLargeError` before writing anything when the size is
        known up front (bytes, paths), or as soon as a stream passes the limit (then
        nothing of it becomes visible: its temporary block files are removed).

        With ``durable=True`` (the default) the blocks are on stable storage before
        they become visible under their names, and the pin after them; see
        :class:`~cipherfuse.storage.blockstore.BlockBatch` for the crash argument.
        """
        length = known_length(content)
        if length is not None and length > self.max_object_size:
            raise too_large(f"content of {length} bytes", self.max_object_size)
        with self.blocks.lock(exclusive=False), self.blocks.batch() as batch:
            importer = FileImporter(
                self.cid_version,
                chunk_size=self.chunk_size,
                max_links=self.max_links,
                sink=batch.add,
            )
            total = 0
            for chunk in iter_chunks(content, self.chunk_size):
                total += len(chunk)
                if total > self.max_object_size:
                    raise too_large("streamed content", self.max_object_size)
                importer.write_chunk(chunk)
            result = importer.finish()
            batch.commit()
            if pin:
                self._write_pin(result.cid)
        return str(result.cid)

    # -- reading -------------------------------------------------------------------
    def _get_block(self, cid: CID) -> bytes:
        return self.blocks.get(cid)

    def stream(
        self, cid: str, *, max_bytes: int | None = None, expected_size: int | None = None
    ) -> Iterator[bytes]:
        """Yield the object's bytes; every block is verified against its CID on read.

        Raises :class:`BlockNotFoundError`, :class:`IntegrityError` (naming the bad
        block's CID), :class:`MalformedNodeError` or :class:`ObjectTooLargeError`
        (:class:`DagTooLargeError` for too many nodes).
        """
        root = CID.parse(cid)
        return iter_file(
            root,
            self._get_block,
            max_size=self.read_limit(max_bytes),
            max_nodes=self.max_nodes,
            expected_size=expected_size,
        )

    def get(
        self, cid: str, *, max_bytes: int | None = None, expected_size: int | None = None
    ) -> bytes:
        """The whole object as bytes (limits as in :meth:`stream`).

        Each block file is read into one reused block buffer (``readinto``, bounded by
        :data:`~.blockstore.MAX_BLOCK_SIZE`) and verified there; its file data, a view
        into that buffer, is copied into one output buffer of the size the root
        declares, allocated once (huge-page advised, so filling it costs few page
        faults). A declared size over the read limit raises :class:`ObjectTooLargeError`
        before anything is allocated, and an object whose blocks hold more or fewer
        bytes than the root declares raises :class:`MalformedNodeError`; the walk's
        limits are those of :meth:`stream` (bytes actually produced, nodes, depth).
        """
        root = CID.parse(cid)
        limit = self.read_limit(max_bytes)
        size = object_size(root, self._get_block)
        if size > limit:
            raise too_large(f"{root} of {size} bytes", limit)
        block_buffer = bytearray(MAX_BLOCK_SIZE)
        pieces = iter_file_views(
            root,
            lambda block_cid: self.blocks.get_into(block_cid, block_buffer),
            max_size=limit,
            max_nodes=self.max_nodes,
            expected_size=expected_size,
        )
        try:
            # gather_bytes copies each piece before it asks for the next one, so the
            # reused block buffer is never overwritten while a piece is still needed.
            return _core.gather_bytes(pieces, size)
        except _core.KernelArgumentError as exc:
            raise MalformedNodeError(
                f"{root}: its blocks do not hold the {size} bytes the root declares"
            ) from exc

    def has(self, cid: str) -> bool:
        """True when every block of the object is present (leaf contents are checked on read)."""
        try:
            self._walk(CID.parse(cid), thorough=False)
        except BlockNotFoundError:
            return False
        return True

    def _walk(self, root: CID, *, thorough: bool = True) -> set[str]:
        """Digests of every block reachable from ``root``; internal nodes are verified.

        ``thorough=False`` skips reading dag-pb leaves: in dag-pb's canonical form links
        come first, so a block whose first byte is not the links tag (0x12) has none.
        """
        seen: set[str] = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            key = cid.digest.hex()
            if key in seen:
                continue
            if not self.blocks.has(cid):
                raise BlockNotFoundError(str(cid), f"blockstore {self.blocks.root}")
            seen.add(key)
            if cid.codec != RAW and (thorough or self.blocks.first_byte(cid) == 0x12):
                stack.extend(iter_links(cid, self.blocks.get(cid)))
        return seen

    # -- pins and gc ---------------------------------------------------------------
    def _write_pin(self, cid: CID) -> None:
        marker = self._pins / str(cid)
        if marker.exists():
            return
        marker.touch(exist_ok=True)
        if self.blocks.durable:
            fd = os.open(self._pins, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def pin(self, cid: str) -> None:
        """Pin an object already in the store (all its blocks must be present)."""
        parsed = CID.parse(cid)
        with self.blocks.lock(exclusive=False):
            self._walk(parsed)
            self._write_pin(parsed)

    def unpin(self, cid: str) -> None:
        """Remove a pin; raises :class:`BlockNotFoundError` if ``cid`` is not pinned."""
        parsed = CID.parse(cid)
        try:
            (self._pins / str(parsed)).unlink()
        except FileNotFoundError:
            raise BlockNotFoundError(str(parsed), "the pin set") from None

    def pins(self) -> list[str]:
        """CIDs currently pinned, sorted."""
        return sorted(p.name for p in self._pins.iterdir())

    def gc(self) -> GCResult:
        """Remove every block not reachable from a pin, and dead writers' temp files.

        A pinned object with a missing block stops the collection with
        :class:`BlockNotFoundError` rather than guessing what is reachable.
        """
        with self.blocks.lock(exclusive=True):
            live: set[str] = set()
            for name in self.pins():
                live |= self._walk(CID.parse(name))
            removed = freed = 0
            for digest in list(self.blocks.iter_digests()):
                if digest not in live:
                    freed += self.blocks.delete(digest)
                    removed += 1
            for temp in list(self.blocks.iter_stale_temps()):
                temp.unlink(missing_ok=True)
        return GCResult(blocks_removed=removed, bytes_freed=freed)

    def destroy(self) -> None:
        """Delete the whole store directory."""
        shutil.rmtree(self.blocks.root)
