"""An on-disk blockstore: one file per block, atomic writes, verified reads.

Layout under ``root``::

    blocks/<2 hex>/<64 hex sha2-256 digest>   block bytes (keyed by multihash digest,
                                              so CIDv0 and CIDv1 of a block share it)
    pins/<cid>                                empty marker file: a recursive pin
    lock                                      flock(2) target: writers share, gc excludes
    tmp/                                      nothing stays here; writes go to the
                                              block's own directory then rename

Writes: the block goes to a uniquely named temporary file in the destination
directory, is optionally fsync'ed, then ``os.replace``'d onto its final name, so a
reader never sees a partial block under a real name and concurrent writers of the
same block (any number of processes) each install a complete, identical file.
Reads: every block is hashed and compared with its CID; a mismatch (bit flip,
truncation, replaced file) raises :class:`IntegrityError` and the bytes are dropped.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cipherfuse.storage.cid import CID
from cipherfuse.storage.errors import BlockNotFoundError, IntegrityError, StorageError

MAX_BLOCK_SIZE = 2 * 1024 * 1024  # bitswap's limit; larger blocks are never legitimate


def _write_all(fd: int, parts: Sequence[bytes | memoryview]) -> None:
    """``writev`` every byte of ``parts`` to ``fd`` (retrying short writes)."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


class FileBlockstore:
    """Content-addressed block files under ``root`` (created if missing)."""

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        self._blocks = self.root / "blocks"
        try:
            self._blocks.mkdir(parents=True, exist_ok=True)
            (self.root / "pins").mkdir(exist_ok=True)
            (self.root / "lock").touch(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create blockstore at {self.root}: {exc}") from exc

    # -- paths ---------------------------------------------------------------------
    def _path(self, cid: CID) -> Path:
        key = cid.digest.hex()
        return self._blocks / key[:2] / key

    # -- locking ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the store lock: shared for writers and pins, exclusive for gc."""
        with open(self.root / "lock", "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # -- blocks --------------------------------------------------------------------
    def has(self, cid: CID) -> bool:
        """Whether a file exists for this block (its content is checked on read)."""
        return self._path(cid).is_file()

    def put(self, cid: CID, parts: Sequence[bytes | memoryview]) -> bool:
        """Store a block given as buffers to concatenate; return False if already present.

        The caller computed ``cid`` from the same bytes (the importer does). A block
        already on disk with the right length is not rewritten (a bit flip in it is
        caught on read); one with the wrong length (truncated) is replaced.
        """
        path = self._path(cid)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size == sum(len(p) for p in parts):
                return False
        directory = path.parent
        directory.mkdir(exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            try:
                _write_all(fd, parts)
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_name, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise StorageError(f"no space left writing block {cid} under {self.root}") from exc
            raise
        return True

    def sync_dirs(self, cids: Sequence[CID]) -> None:
        """fsync the directories of ``cids`` so their renames survive a crash."""
        if not self.durable:
            return
        for directory in {self._path(c).parent for c in cids}:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def get(self, cid: CID) -> bytes:
        """Return the verified bytes of a block.

        Raises :class:`BlockNotFoundError` if absent, :class:`IntegrityError` (naming
        the CID) if its content no longer matches.
        """
        path = self._path(cid)
        try:
            with open(path, "rb", buffering=0) as fh:
                if os.fstat(fh.fileno()).st_size > MAX_BLOCK_SIZE:
                    raise IntegrityError(str(cid), f"block file exceeds {MAX_BLOCK_SIZE} bytes")
                block = fh.readall()
        except FileNotFoundError:
            raise BlockNotFoundError(str(cid), f"blockstore {self.root}") from None
        cid.verify(block)
        return block

    def first_byte(self, cid: CID) -> int | None:
        """The block's first byte, unverified (None for an empty or absent block)."""
        try:
            with open(self._path(cid), "rb", buffering=0) as fh:
                head = fh.read(1)
        except FileNotFoundError:
            return None
        return head[0] if head else None

    def delete(self, digest_hex: str) -> int:
        """Remove a block by digest; return the bytes freed (0 if it was absent)."""
        path = self._blocks / digest_hex[:2] / digest_hex
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def iter_digests(self) -> Iterator[str]:
        """Hex digests of every stored block (temporary files are skipped)."""
        for shard in self._blocks.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.iterdir():
                if not entry.name.startswith(".tmp-"):
                    yield entry.name

    def iter_stale_temps(self) -> Iterator[Path]:
        """Temporary files left by writers that died mid-write."""
        for shard in self._blocks.iterdir():
            if shard.is_dir():
                yield from shard.glob(".tmp-*")
