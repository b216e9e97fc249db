"""Hostile DAGs: a well-hashed DAG that declares little and produces a lot must fail fast.

An attacker publishes a CID whose blocks all verify but whose root declares ``filesize=1``
while its links repeat the same child: six small blocks expand to terabytes. The reader
must stop on the sizes it checks before descending, on the bytes it has actually produced,
and on the number of nodes it visits, never on trust in the declared size.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import make_data

from cipherfuse.errors import CipherfuseError
from cipherfuse.storage import (
    CID,
    DagTooLargeError,
    LocalStore,
    MalformedNodeError,
    ObjectTooLargeError,
)
from cipherfuse.storage.cid import DAG_PB, RAW
from cipherfuse.storage.protobuf import (
    UNIXFS_FILE,
    PBLink,
    PBNode,
    UnixFSData,
    encode_pbnode,
    encode_unixfs,
)

LEAF = 262_144


def _put(store: LocalStore, block: bytes, codec: int) -> CID:
    cid = CID.for_block(block, codec, 1 if codec == RAW else 0)
    store.blocks.put(cid, [block])
    return cid


def _node(store: LocalStore, child: CID, fanout: int, child_size: int, filesize: int | None) -> CID:
    """A dag-pb file node whose ``fanout`` links all point at the same child."""
    unixfs = UnixFSData(
        type=UNIXFS_FILE, filesize=filesize, blocksizes=tuple([child_size] * fanout)
    )
    links = tuple(PBLink(hash=child.to_bytes(), tsize=child_size) for _ in range(fanout))
    block = encode_pbnode(PBNode(data=encode_unixfs(unixfs), links=links))
    return _put(store, block, DAG_PB)


def bomb(store: LocalStore, *, levels: int, fanout: int, honest_inner: bool) -> CID:
    """Six blocks (levels=5): one 256 KiB raw leaf under ``levels`` repeating nodes.

    The root declares ``filesize=1``. With ``honest_inner`` every inner node declares the
    true sizes of its children (only the root lies); otherwise every node declares
    ``filesize=1`` while its blocksizes say the truth about its children.
    """
    child, size = _put(store, make_data(LEAF, 5), RAW), LEAF
    for level in range(levels):
        total = size * fanout
        is_root = level == levels - 1
        declared = 1 if (is_root or not honest_inner) else total
        child = _node(store, child, fanout, size, declared)
        size = total
    return child


@pytest.mark.parametrize("honest_inner", [True, False])
def test_dag_bomb_declaring_one_byte_fails_fast_in_stream_and_get(
    tmp_path: Path, honest_inner: bool
) -> None:
    store = LocalStore(tmp_path / "s", durable=False)
    root = bomb(store, levels=5, fanout=174, honest_inner=honest_inner)  # 174^5 * 256 KiB
    chunks = store.stream(str(root))
    with pytest.raises(MalformedNodeError, match="declares filesize 1"):
        next(iter(chunks))  # refused before a single leaf was fetched
    with pytest.raises(MalformedNodeError):
        store.get(str(root), max_bytes=1 << 20)


def test_consistent_repeating_dag_is_refused_on_its_declared_size(tmp_path: Path) -> None:
    """If every node tells the truth the root declares 6.7 TB: refused before streaming."""
    store = LocalStore(tmp_path / "s", durable=False)
    child, size = _put(store, make_data(LEAF, 6), RAW), LEAF
    for _ in range(4):
        child = _node(store, child, 174, size, size * 174)
        size *= 174
    with pytest.raises(ObjectTooLargeError, match="more than the limit"):
        next(iter(store.stream(str(child))))
    with pytest.raises(ObjectTooLargeError):
        store.get(str(child), max_bytes=10 << 20)


def test_zero_byte_repetitions_are_bounded_by_the_node_count(tmp_path: Path) -> None:
    """Empty leaves repeated 40^3 times produce no bytes: the node budget stops the walk
    (before, all 65,641 node visits ran and an empty object came back)."""
    store = LocalStore(tmp_path / "s", durable=False)
    store.max_nodes = 10_000
    child = _put(store, b"", RAW)
    for _ in range(3):
        child = _node(store, child, 40, 0, 0)
    with pytest.raises(DagTooLargeError, match="max_nodes=10000"):
        store.get(str(child))


def test_byte_limit_holds_on_produced_bytes_and_expected_size(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", durable=False)
    data = make_data(3 * LEAF + 17, 7)
    cid = store.put(data)
    assert store.get(cid, max_bytes=len(data)) == data
    assert store.get(cid, expected_size=len(data)) == data
    with pytest.raises(ObjectTooLargeError):
        store.get(cid, max_bytes=len(data) - 1)
    with pytest.raises(ObjectTooLargeError, match="not the expected"):
        store.get(cid, expected_size=len(data) + 1)


def test_a_leaf_longer_than_its_parent_says_is_refused_before_it_is_yielded(
    tmp_path: Path,
) -> None:
    """The root's blocksizes and filesize agree (1 byte) but the child is 256 KiB."""
    store = LocalStore(tmp_path / "s", durable=False)
    leaf = _put(store, make_data(LEAF, 8), RAW)
    root = _node(store, leaf, 1, 1, 1)
    chunks = store.stream(str(root))
    with pytest.raises(MalformedNodeError, match="parent says 1"):
        next(iter(chunks))


def test_every_failure_is_a_cipherfuse_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", durable=False)
    root = bomb(store, levels=3, fanout=50, honest_inner=False)
    with pytest.raises(CipherfuseError):
        store.get(str(root))
