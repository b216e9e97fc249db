"""The embedded on-disk store: round trips, verification, limits, pins/gc, concurrency."""

from __future__ import annotations

import io
import multiprocessing
import os
import tracemalloc
from pathlib import Path

import pytest
from storage_helpers import CHUNK, make_data

from cipherfuse.errors import ParameterError
from cipherfuse.storage import (
    CID,
    BlockNotFoundError,
    IntegrityError,
    LocalStore,
    MalformedNodeError,
    ObjectTooLargeError,
    compute_cid,
)
from cipherfuse.storage.blockstore import MAX_BLOCK_SIZE
from cipherfuse.storage.protobuf import (
    UNIXFS_FILE,
    PBLink,
    PBNode,
    UnixFSData,
    decode_pbnode,
    encode_pbnode,
    encode_unixfs,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 7])
def test_round_trip(tmp_path: Path, size: int, version: int) -> None:
    store = LocalStore(tmp_path / "s", cid_version=version)
    data = make_data(size, seed=size)
    cid = store.put(data)
    assert cid == compute_cid(data, version)
    assert store.get(cid) == data
    assert b"".join(store.stream(cid)) == data
    assert store.has(cid)
    assert store.put(io.BytesIO(data)) == cid  # idempotent, file-object input


def test_put_from_path_and_get_to_file(store: LocalStore, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(make_data(2 * CHUNK + 3))
    cid = store.put(src)
    out = io.BytesIO()
    assert store.get_to_file(cid, out) == src.stat().st_size
    assert out.getvalue() == src.read_bytes()


def _leaf_path(store: LocalStore, cid: str) -> tuple[CID, Path]:
    root = CID.parse(cid)
    leaf = CID.from_bytes(decode_pbnode(store.blocks.get(root)).links[1].hash)
    key = leaf.digest.hex()
    return leaf, store.blocks.root / "blocks" / key[:2] / key


def test_bit_flip_raises_integrity_error_naming_the_block(store: LocalStore) -> None:
    data = make_data(3 * CHUNK, seed=9)
    cid = store.put(data)
    leaf, path = _leaf_path(store, cid)
    block = bytearray(path.read_bytes())
    block[1000] ^= 0x01
    path.write_bytes(bytes(block))
    received: list[bytes] = []
    with pytest.raises(IntegrityError, match=str(leaf)) as info:
        received.extend(store.stream(cid))
    assert info.value.cid == str(leaf)
    # only the first (intact) chunk was delivered; the corrupted one never was
    assert received == [data[:CHUNK]]
    with pytest.raises(IntegrityError):
        store.get(cid)


def test_truncated_block_raises(store: LocalStore) -> None:
    cid = store.put(make_data(2 * CHUNK))
    leaf, path = _leaf_path(store, cid)
    with open(path, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(IntegrityError, match=str(leaf)):
        store.get(cid)
    assert store.put(make_data(2 * CHUNK)) == cid  # adding the object again repairs it
    assert store.get(cid) == make_data(2 * CHUNK)


def test_corrupted_root_raises(store: LocalStore) -> None:
    cid = store.put(make_data(2 * CHUNK))
    key = CID.parse(cid).digest.hex()
    path = store.blocks.root / "blocks" / key[:2] / key
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match=cid):
        store.get(cid)


def test_missing_block(store: LocalStore) -> None:
    cid = store.put(make_data(2 * CHUNK))
    _, path = _leaf_path(store, cid)
    path.unlink()
    assert not store.has(cid)
    with pytest.raises(BlockNotFoundError, match="not found"):
        store.get(cid)
    with pytest.raises(BlockNotFoundError):
        store.get(compute_cid(b"never stored"))


def test_non_file_node_is_rejected(store: LocalStore) -> None:
    # A verified block that is not a UnixFS file (an empty directory node).
    block = bytes.fromhex("0a020801")
    cid = CID.for_block(block, 0x70, 0)
    store.blocks.put(cid, [block])
    with pytest.raises(MalformedNodeError, match="not a file"):
        store.get(str(cid))


@pytest.mark.parametrize("declared", [1, 10])
def test_get_rejects_a_root_whose_size_disagrees_with_its_data(
    store: LocalStore, declared: int
) -> None:
    """``get`` preallocates the size the root declares; a DAG holding fewer or more
    bytes than that raises instead of returning a short or clipped object."""
    unixfs = encode_unixfs(UnixFSData(UNIXFS_FILE, data=b"abc", filesize=declared))
    block = encode_pbnode(PBNode(data=unixfs))
    cid = CID.for_block(block, 0x70, 0)
    store.blocks.put(cid, [block])
    with pytest.raises(MalformedNodeError):
        store.get(str(cid))
    with pytest.raises(MalformedNodeError):
        b"".join(store.stream(str(cid)))


def test_size_limits(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", max_object_size=CHUNK)
    with pytest.raises(ObjectTooLargeError, match="max_object_size=262144"):
        store.put(make_data(CHUNK + 1))
    assert list(store.blocks.iter_digests()) == []  # nothing written for known sizes
    with pytest.raises(ObjectTooLargeError):
        store.put(io.BytesIO(make_data(3 * CHUNK)))  # a stream fails once past the limit
    # the aborted put leaves neither visible blocks nor temporary files
    assert list(store.blocks.iter_digests()) == []
    assert list(store.blocks.iter_stale_temps()) == []
    big = LocalStore(tmp_path / "s").put(make_data(2 * CHUNK))  # same directory, no limit
    with pytest.raises(ObjectTooLargeError, match=big):
        store.get(big)
    with pytest.raises(ParameterError, match="max_object_size"):
        LocalStore(tmp_path / "x", max_object_size=-1)


def test_pin_unpin_gc(store: LocalStore) -> None:
    a = store.put(make_data(2 * CHUNK, 1))
    b = store.put(make_data(2 * CHUNK, 2), pin=False)
    shared = store.put(make_data(CHUNK, 1))  # the first chunk of a: a shared block
    assert store.pins() == sorted([a, shared])
    result = store.gc()
    assert result.blocks_removed == 3  # b's two leaves and root
    assert not store.has(b)
    assert store.has(a)
    store.unpin(shared)
    assert store.gc().blocks_removed == 0  # still referenced by a
    assert store.get(shared) == make_data(CHUNK, 1)
    store.unpin(a)
    assert store.gc().blocks_removed == 3
    assert list(store.blocks.iter_digests()) == []
    with pytest.raises(BlockNotFoundError):
        store.unpin(a)
    with pytest.raises(BlockNotFoundError):
        store.pin(a)


def test_gc_removes_dead_writers_temp_files(store: LocalStore) -> None:
    cid = store.put(b"x")
    shard = next(p for p in (store.blocks.root / "blocks").iterdir())
    (shard / ".tmp-dead").write_bytes(b"half")
    store.gc()
    assert not (shard / ".tmp-dead").exists()
    assert store.get(cid) == b"x"


def _writer(root: str, seed: int) -> list[str]:
    store = LocalStore(root)
    cids = []
    for i in range(6):
        # objects share their first chunks across processes
        data = make_data(CHUNK, 0) + make_data(CHUNK + i, seed * 100 + i)
        cids.append(store.put(data))
        if i % 2:
            store.gc()
    return cids


def test_concurrent_writers_from_several_processes(tmp_path: Path) -> None:
    root = str(tmp_path / "shared")
    LocalStore(root)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_writer, [(root, seed) for seed in range(4)])
    store = LocalStore(root)
    for seed, cids in enumerate(results):
        for i, cid in enumerate(cids):
            assert store.get(cid) == make_data(CHUNK, 0) + make_data(CHUNK + i, seed * 100 + i)
    assert store.gc().blocks_removed == 0
    assert not list(store.blocks.iter_stale_temps())


def test_memory_stays_flat_when_streaming(tmp_path: Path) -> None:
    size = 24 * 1024 * 1024
    src = tmp_path / "big.bin"
    with open(src, "wb") as fh:
        for i in range(size // (1 << 20)):
            fh.write(make_data(1 << 20, i))
    store = LocalStore(tmp_path / "s", durable=False)
    tracemalloc.start()
    try:
        cid = compute_cid(src)
        _, peak_hash = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert store.put(src) == cid
        _, peak_put = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = 0
        for chunk in store.stream(cid):
            total += len(chunk)
        _, peak_get = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    limit = 8 * CHUNK  # a few chunks (2 MiB), independent of the 24 MiB object
    assert max(peak_hash, peak_put, peak_get) < limit, (peak_hash, peak_put, peak_get)


def test_bad_cid_argument(store: LocalStore) -> None:
    with pytest.raises(ParameterError):
        store.get("not-a-cid")
    assert os.path.isdir(store.blocks.root)


def test_gather_bytes_concatenates_exactly_size_bytes() -> None:
    import cipherfuse._core as _core

    big = make_data(5 * 2**20, seed=3)  # above the huge-page advice threshold
    parts = [b"", b"ab", bytearray(b"cd"), memoryview(big)]
    out = _core.gather_bytes(iter(parts), 4 + len(big))
    assert type(out) is bytes and out == b"abcd" + big
    assert _core.gather_bytes([], 0) == b""
    with pytest.raises(ValueError, match="more than size"):
        _core.gather_bytes([b"abc"], 2)
    with pytest.raises(ValueError, match="fewer than size"):
        _core.gather_bytes([b"abc"], 4)
    with pytest.raises(ValueError, match="size must be"):
        _core.gather_bytes([], -1)
    with pytest.raises(TypeError):
        _core.gather_bytes([123], 3)  # type: ignore[list-item]


def _put_file_node(store: LocalStore, unixfs: UnixFSData, links: tuple[CID, ...] = ()) -> CID:
    """Store a hand-built UnixFS file node (CIDv0) and return its CID."""
    pb_links = tuple(PBLink(hash=link.to_bytes(), tsize=0) for link in links)
    block = encode_pbnode(PBNode(data=encode_unixfs(unixfs), links=pb_links))
    cid = CID.for_block(block, 0x70, 0)
    store.blocks.put(cid, [block])
    return cid


@pytest.mark.parametrize("version", [0, 1])
def test_get_of_a_deep_dag_equals_its_stream(tmp_path: Path, version: int) -> None:
    """Three levels (4 links per node, 1 KiB chunks): ``get`` reuses one block buffer for
    every block it reads, so each piece must be copied out before the next is read."""
    store = LocalStore(tmp_path / "s", cid_version=version, chunk_size=1024, max_links=4)
    data = make_data(40 * 1024 + 5, seed=3)
    cid = store.put(data)
    assert store.get(cid) == data
    assert b"".join(store.stream(cid)) == data
    assert store.get(cid, max_bytes=len(data), expected_size=len(data)) == data


def test_get_of_a_node_with_inline_data_and_links(store: LocalStore) -> None:
    """A node's own data comes before its children's, also when they share the buffer."""
    leaves = (make_data(3000, seed=1), make_data(5000, seed=2))
    leaf_cids = tuple(
        _put_file_node(store, UnixFSData(UNIXFS_FILE, data=leaf, filesize=len(leaf)))
        for leaf in leaves
    )
    root = _put_file_node(
        store,
        UnixFSData(
            UNIXFS_FILE,
            data=b"head",
            filesize=4 + sum(map(len, leaves)),
            blocksizes=tuple(map(len, leaves)),
        ),
        leaf_cids,
    )
    expected = b"head" + leaves[0] + leaves[1]
    assert store.get(str(root)) == expected
    assert b"".join(store.stream(str(root))) == expected


def test_get_refuses_a_block_file_over_the_block_limit(store: LocalStore) -> None:
    """Block files are read into a buffer of MAX_BLOCK_SIZE bytes, never one sized by the
    file: a longer file is refused before it is hashed."""
    cid = store.put(make_data(2 * CHUNK))
    leaf, path = _leaf_path(store, cid)
    path.write_bytes(bytes(MAX_BLOCK_SIZE + 1))
    with pytest.raises(IntegrityError, match=f"{leaf}.*exceeds"):
        store.get(cid)
    with pytest.raises(IntegrityError, match="exceeds"):
        store.blocks.get_into(leaf, bytearray(MAX_BLOCK_SIZE))
    with pytest.raises(ValueError, match="MAX_BLOCK_SIZE"):
        store.blocks.get_into(leaf, bytearray(16))
