"""An on-disk blockstore: one file per block, atomic writes, verified reads.

Layout under ``root``::

    blocks/<2 hex>/<64 hex sha2-256 digest>   block bytes (keyed by multihash digest,
                                              so CIDv0 and CIDv1 of a block share it)
    pins/<cid>                                empty marker file: a recursive pin
    lock                                      flock(2) target: writers share, gc excludes
    tmp/                                      nothing stays here; writes go to the
                                              block's own directory then rename

Writes go in batches (one batch per ``put``): every new block is written to a
uniquely named temporary file ``.tmp-*`` in its destination directory; only when all
of them are written does the batch make their data durable (one ``syncfs(2)`` of the
store's filesystem, or an ``fsync`` per file where ``syncfs`` is unavailable), then
``os.replace`` each onto its final name, then make the renames durable (a second
``syncfs``, or an ``fsync`` per touched directory). So a file visible under a block
name was complete on stable storage before it got that name, a reader never sees a
partial block, and concurrent writers of the same block (any number of processes)
each install a complete, identical file. A crash before the renames leaves only
``.tmp-*`` files, which :meth:`LocalStore.gc` removes.
Reads: every block is hashed and compared with its CID; a mismatch (bit flip,
truncation, replaced file) raises :class:`IntegrityError` and the bytes are dropped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import ctypes
import errno
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cipherfuse.storage.cid import CID
from cipherfuse.storage.errors import BlockNotFoundError, IntegrityError, StorageError

MAX_BLOCK_SIZE = 2 * 1024 * 1024  # bitswap's limit; larger blocks are never legitimate
TEMP_PREFIX = ".tmp-"


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(fd)`` (Linux >= 2.6.39, glibc >= 2.14, musl), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


_SYNCFS = _load_syncfs()
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait


def _load_start_writeback() -> Callable[[int], object] | None:
    """``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)`` from libc (Linux), or None.

    It only starts writing a file's pages to the device, without waiting, so the disk
    works while the importer hashes the next chunks; durability still comes from the
    ``syncfs`` in :meth:`BlockBatch.commit` (``sync_file_range`` alone guarantees
    nothing about metadata, see its man page).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int

    def start_writeback(fd: int) -> object:
        return function(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)

    return start_writeback


_START_WRITEBACK = _load_start_writeback()


def syncfs(path: str | os.PathLike[str]) -> bool:
    """Flush every dirty page and inode of the filesystem holding ``path``.

    Returns False (doing nothing) where ``syncfs(2)`` is unavailable; raises
    :class:`StorageError` if the kernel reports a writeback error (Linux >= 5.8
    reports errors that happened since the descriptor was opened).
    """
    if _SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            raise StorageError(f"syncfs({path}) failed: {os.strerror(code)}")
    finally:
        os.close(fd)
    return True


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
            self._make_shard_dirs()
        except OSError as exc:
            raise StorageError(f"cannot create blockstore at {self.root}: {exc}") from exc

    def _make_shard_dirs(self) -> None:
        """Create the 256 ``blocks/<2 hex>`` directories once, so puts need no mkdir."""
        if (self._blocks / "ff").is_dir():
            return
        for index in range(256):
            (self._blocks / f"{index:02x}").mkdir(exist_ok=True)
        if self.durable:
            _fsync_path(str(self._blocks))

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

    def batch(self) -> BlockBatch:
        """A new write batch; see :class:`BlockBatch`."""
        return BlockBatch(self)

    def put(self, cid: CID, parts: Sequence[bytes | memoryview]) -> bool:
        """Store one block given as buffers to concatenate; False if already present.

        A batch of one: see :class:`BlockBatch` (used by ``LocalStore.put`` for whole
        objects, which is much faster than one call per block when durable).
        """
        with self.batch() as batch:
            return batch.add(cid, parts)

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

    def get_into(self, cid: CID, buffer: bytearray) -> memoryview:
        """Read a block into ``buffer`` (reused by the caller) and return the verified view.

        ``buffer`` must hold :data:`MAX_BLOCK_SIZE` bytes, the most a block may have: the
        read is bounded by it, never by the file's size. The view is valid until
        ``buffer`` is next written. Raises as :meth:`get` does.
        """
        if len(buffer) != MAX_BLOCK_SIZE:
            raise ValueError(f"buffer must hold MAX_BLOCK_SIZE = {MAX_BLOCK_SIZE} bytes")
        view = memoryview(buffer)
        filled = 0
        try:
            with open(self._path(cid), "rb", buffering=0) as fh:
                while filled < MAX_BLOCK_SIZE:
                    got = fh.readinto(view[filled:])
                    if not got:
                        break
                    filled += got
                if filled == MAX_BLOCK_SIZE and fh.read(1):
                    raise IntegrityError(str(cid), f"block file exceeds {MAX_BLOCK_SIZE} bytes")
        except FileNotFoundError:
            raise BlockNotFoundError(str(cid), f"blockstore {self.root}") from None
        block = view[:filled]
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
                if not entry.name.startswith(TEMP_PREFIX):
                    yield entry.name

    def iter_stale_temps(self) -> Iterator[Path]:
        """Temporary files left by writers that died mid-write."""
        for shard in self._blocks.iterdir():
            if shard.is_dir():
                yield from shard.glob(TEMP_PREFIX + "*")


_MAX_IN_FLIGHT = 4  # queued block writes (4 x 256 KiB of copies at most: memory stays flat)


class BlockBatch:
    """Blocks written as temporary files, made durable together, then renamed.

    Use as a context manager: a normal exit commits (:meth:`commit`), an exception
    aborts (:meth:`abort`: the temporary files are removed, no block becomes visible).
    Holding the store lock (shared) around a batch keeps ``gc`` from deleting its
    temporary files. Crash safety, for ``durable`` stores:

    1. every new block is written to ``.tmp-<random>`` in its final directory;
    2. ``commit`` flushes them all to stable storage with one ``syncfs`` (or one
       ``fsync`` per file, done right after writing, where ``syncfs`` is missing);
    3. only then renames each onto its block name (atomic within a directory);
    4. then flushes the renames (a second ``syncfs``, or ``fsync`` of each directory).

    A crash before 3 leaves only temporary files; during 3 or 4 some blocks keep their
    temporary names and the object is incomplete (``has`` is False, the pin is only
    written after 4), but every block visible under its name is complete.
    """

    def __init__(self, store: FileBlockstore) -> None:
        self._store = store
        self._use_syncfs = store.durable and _SYNCFS is not None
        self._pending: dict[str, tuple[str, str]] = {}  # digest hex -> (temp, final)
        self._blocks_dir = str(store._blocks) + os.sep
        self._temp_prefix = f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}-"
        self._done = False
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._in_flight: collections.deque[concurrent.futures.Future[None]] = collections.deque()

    def __enter__(self) -> BlockBatch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def add(self, cid: CID, parts: Sequence[bytes | memoryview]) -> bool:
        """Write a block's bytes to a temporary file; False if already stored.

        The caller computed ``cid`` from the same bytes (the importer does). A block
        already on disk with the right length is not rewritten (a bit flip in it is
        caught on read); one with the wrong length (truncated) is replaced.
        """
        if self._done:
            raise StorageError("this block batch is already committed or aborted")
        key = cid.digest.hex()
        if key in self._pending:
            return False
        directory = self._blocks_dir + key[:2] + os.sep
        path = directory + key
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_size == sum(len(p) for p in parts):
                return False
        temp = f"{directory}{self._temp_prefix}{len(self._pending)}"
        self._pending[key] = (temp, path)
        if self._writer is None and len(self._pending) >= 2:
            # Objects of several blocks: file creation and writing run on one writer
            # thread, overlapping the caller's hashing (both release the GIL). The
            # bytes are copied because callers may reuse their buffers.
            self._writer = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="cipherfuse-blocks"
            )
        if self._writer is None:
            self._write_block(temp, parts, cid)
            return True
        while len(self._in_flight) >= _MAX_IN_FLIGHT:
            self._in_flight.popleft().result()
        owned = [bytes(p) for p in parts]
        self._in_flight.append(self._writer.submit(self._write_block, temp, owned, cid))
        return True

    def _write_block(self, temp: str, parts: Sequence[bytes | memoryview], cid: CID) -> None:
        try:
            fd = self._create(temp)
        except OSError as exc:
            self._raise_if_disk_full(exc, cid)
            raise
        try:
            try:
                _write_all(fd, parts)
                if self._use_syncfs and _START_WRITEBACK is not None:
                    _START_WRITEBACK(fd)
                elif self._store.durable and not self._use_syncfs:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                self._raise_if_disk_full(exc, cid)
            raise

    def _drain(self) -> None:
        """Waits for every queued write; re-raises the first failure."""
        try:
            while self._in_flight:
                self._in_flight.popleft().result()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True, cancel_futures=True)
                self._writer = None

    def _raise_if_disk_full(self, exc: OSError, cid: CID) -> None:
        if exc.errno == errno.ENOSPC:
            raise StorageError(
                f"no space left writing block {cid} under {self._store.root}"
            ) from exc

    def _create(self, temp: str) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(temp, flags, 0o644)
        except FileNotFoundError:  # a shard directory removed by hand: recreate it
            os.makedirs(os.path.dirname(temp), exist_ok=True)
            return os.open(temp, flags, 0o644)

    def commit(self) -> None:
        """Make the written blocks durable, then visible under their names (see class doc)."""
        if self._done:
            return
        try:
            self._drain()
            if self._pending and self._use_syncfs:
                self._sync_data()
            for temp, path in self._pending.values():
                self._rename(temp, path)
            if self._pending and self._store.durable:
                self._sync_names()
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        """Remove the temporary files not yet renamed; nothing further becomes visible."""
        self._done = True
        with contextlib.suppress(BaseException):
            self._drain()
        for temp, _ in self._pending.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        self._pending.clear()

    # Separate methods so tests can stop a writer process between the phases.
    def _sync_data(self) -> None:
        syncfs(self._store.root)

    def _rename(self, temp: str, path: str) -> None:
        # Not cipherfuse.files.atomic_writer: a batch writes all its temporary files
        # first (in a thread), makes their data durable together (one syncfs or an fsync
        # each), renames them, then syncs each touched folder once; the helper syncs
        # one file and its folder per call.
        os.replace(temp, path)

    def _sync_names(self) -> None:
        if self._use_syncfs:
            syncfs(self._store.root)
            return
        for directory in {os.path.dirname(path) for _, path in self._pending.values()}:
            _fsync_path(directory)
