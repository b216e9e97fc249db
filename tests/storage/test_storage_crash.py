"""A writer that dies between the phases of a durable put leaves a consistent store.

The child process really dies (``os._exit``: no ``finally``, no ``atexit``, no
cleanup) at a hook point of :class:`BlockBatch`; the parent then inspects the store
with an independent check (sha2-256 of every visible block file against its name).
This simulates a process crash; a power loss cannot be simulated in a unit test
(docs/storage.md gives the argument for that case).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest
from storage_helpers import CHUNK, make_data

from cipherfuse.storage import BlockNotFoundError, LocalStore, compute_cid
from cipherfuse.storage.blockstore import BlockBatch

CRASH_EXIT = 17
DATA = make_data(5 * CHUNK + 123, seed=8)  # 6 leaves + 1 root node = 7 blocks


def _die_during_put(root: str, phase: str, renames_before_death: int) -> None:
    """Child process: put ``DATA`` and die at ``phase`` without any cleanup."""
    if phase == "before-rename":
        original_sync = BlockBatch._sync_data

        def sync_then_die(self: BlockBatch) -> None:
            original_sync(self)
            os._exit(CRASH_EXIT)

        BlockBatch._sync_data = sync_then_die  # type: ignore[method-assign]
    else:
        original_rename = BlockBatch._rename
        done = [0]

        def rename_then_die(self: BlockBatch, temp: str, path: str) -> None:
            if done[0] == renames_before_death:
                os._exit(CRASH_EXIT)
            original_rename(self, temp, path)
            done[0] += 1

        BlockBatch._rename = rename_then_die  # type: ignore[method-assign]
    LocalStore(root).put(DATA)
    os._exit(0)  # not reached when the hook fires


def _visible_block_files(root: Path) -> list[Path]:
    return [p for p in (root / "blocks").glob("*/*") if not p.name.startswith(".tmp-")]


def _assert_every_visible_block_is_complete(root: Path) -> None:
    for path in _visible_block_files(root):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path


@pytest.mark.parametrize(
    ("phase", "renames"),
    [("before-rename", 0), ("mid-rename", 3)],
    ids=["after-write-before-rename", "after-3-of-7-renames"],
)
def test_crash_between_write_and_rename_leaves_store_consistent(
    tmp_path: Path, phase: str, renames: int
) -> None:
    root = tmp_path / "store"
    cid = compute_cid(DATA)
    process = multiprocessing.get_context("spawn").Process(
        target=_die_during_put, args=(str(root), phase, renames)
    )
    process.start()
    process.join()
    assert process.exitcode == CRASH_EXIT

    store = LocalStore(root)
    visible = _visible_block_files(root)
    temps = list(store.blocks.iter_stale_temps())
    assert len(visible) == renames  # nothing became visible before its rename
    assert len(visible) + len(temps) == 7  # the other blocks wait under temporary names
    _assert_every_visible_block_is_complete(root)
    assert not store.has(cid)
    assert store.pins() == []  # the pin is written only after the commit
    with pytest.raises(BlockNotFoundError):
        store.get(cid)

    result = store.gc()  # no writer holds the lock: temporaries and orphans go
    assert result.blocks_removed == renames
    assert list(store.blocks.iter_stale_temps()) == []
    assert _visible_block_files(root) == []

    assert store.put(DATA) == cid  # the store is usable again
    assert store.get(cid) == DATA
    _assert_every_visible_block_is_complete(root)


def test_exception_during_rename_removes_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    original_rename = BlockBatch._rename
    done = [0]

    def rename_then_fail(self: BlockBatch, temp: str, path: str) -> None:
        if done[0] == 2:
            raise OSError(5, "injected I/O error")
        original_rename(self, temp, path)
        done[0] += 1

    monkeypatch.setattr(BlockBatch, "_rename", rename_then_fail)
    with pytest.raises(OSError, match="injected"):
        store.put(DATA)
    assert list(store.blocks.iter_stale_temps()) == []  # abort removed them
    assert len(_visible_block_files(store.blocks.root)) == 2
    _assert_every_visible_block_is_complete(store.blocks.root)
    assert store.pins() == []
    monkeypatch.undo()
    cid = store.put(DATA)
    assert store.get(cid) == DATA


def test_failure_on_the_writer_thread_aborts_the_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks after the first are written on a background thread; a failure there is
    re-raised by put, leaves no temporary file and makes no block visible."""
    store = LocalStore(tmp_path / "store")
    original_write = BlockBatch._write_block
    calls = [0]

    def write_then_fail(self: BlockBatch, temp: str, parts: object, cid: object) -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(5, "injected write error")
        original_write(self, temp, parts, cid)  # type: ignore[arg-type]

    monkeypatch.setattr(BlockBatch, "_write_block", write_then_fail)
    with pytest.raises(OSError, match="injected write error"):
        store.put(DATA)
    assert list(store.blocks.iter_stale_temps()) == []
    assert _visible_block_files(store.blocks.root) == []
    assert store.pins() == []
    monkeypatch.undo()
    cid = store.put(DATA)
    assert store.get(cid) == DATA


def test_put_from_a_file_with_a_reused_read_buffer(tmp_path: Path) -> None:
    """File chunks arrive in one reused buffer; the queued writes own copies."""
    data = make_data(9 * CHUNK + 777)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    store = LocalStore(tmp_path / "store")
    cid = store.put(path)
    assert cid == compute_cid(data)
    assert store.get(cid) == data
    _assert_every_visible_block_is_complete(store.blocks.root)
