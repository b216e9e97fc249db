"""Throughput of compute_cid, LocalStore put and verified get on a 100 MB object.

Each result is reported next to raw ``hashlib.sha256`` over the same bytes, in the
same run (pytest-benchmark group "storage-100MB"); MB/s = 100 MB / mean time.
Run: ``pytest bench/bench_storage.py --benchmark-only``; the per-pair ratios of
``Store.get`` (candidate) and the former ``b"".join`` over the stream (baseline) to
sha256, interleaved in one process: ``python bench/bench_storage.py [rounds] [--cpu]``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from cipherfuse.analysis.timing import interleaved_times, paired_ratio
from cipherfuse.storage import LocalStore, blockstore, compute_cid

if TYPE_CHECKING:
    from bench.conftest import Benchmark

SIZE = 100 * 1000 * 1000
GROUP = "storage-100MB"


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path, str]:
    data = np.random.default_rng(2024).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    path = tmp_path_factory.mktemp("bench") / "object.bin"
    path.write_bytes(data)
    return data, path, compute_cid(data)


def test_sha256_baseline(benchmark: Benchmark, payload: tuple[bytes, Path, str]) -> None:
    data, _, _ = payload
    benchmark.group = GROUP
    digest = benchmark(lambda: hashlib.sha256(data).digest())
    assert len(digest) == 32


def test_compute_cid_bytes(benchmark: Benchmark, payload: tuple[bytes, Path, str]) -> None:
    data, _, cid = payload
    benchmark.group = GROUP
    assert benchmark(compute_cid, data) == cid


def test_compute_cid_file(benchmark: Benchmark, payload: tuple[bytes, Path, str]) -> None:
    _, path, cid = payload
    benchmark.group = GROUP
    assert benchmark(compute_cid, path) == cid


@pytest.mark.parametrize(
    "mode",
    ["no-fsync", "fsync", "fsync-per-file"],
)
def test_local_put(
    benchmark: Benchmark,
    payload: tuple[bytes, Path, str],
    tmp_path: Path,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``durable=False``; the default (one syncfs per put); and the fallback used where
    syncfs(2) is unavailable (fsync of every block file and directory, as before)."""
    data, _, cid = payload
    benchmark.group = GROUP
    if mode == "fsync-per-file":
        monkeypatch.setattr(blockstore, "_SYNCFS", None)
    root = tmp_path / "store"

    def setup() -> tuple[tuple[LocalStore], dict[str, object]]:
        shutil.rmtree(root, ignore_errors=True)
        store = LocalStore(root, durable=mode != "no-fsync")
        # Flush the previous round's deletion now, so the timed put's syncfs does not
        # pay for it (setup outside timing).
        os.sync()
        return (store,), {}

    result = benchmark.pedantic(lambda s: s.put(data), setup=setup, rounds=3)
    assert result == cid
    assert LocalStore(root).get(cid) == data


def test_local_verified_get(
    benchmark: Benchmark, payload: tuple[bytes, Path, str], tmp_path: Path
) -> None:
    data, _, cid = payload
    benchmark.group = GROUP
    store = LocalStore(tmp_path / "store", durable=False)
    store.put(data)

    def read_all() -> int:
        total = 0
        for chunk in store.stream(cid):
            total += len(chunk)
        return total

    assert benchmark.pedantic(read_all, rounds=5) == SIZE
    assert store.get(cid) == data


@pytest.fixture(scope="module")
def stored(
    payload: tuple[bytes, Path, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[LocalStore, bytes, str]:
    data, _, cid = payload
    store = LocalStore(tmp_path_factory.mktemp("get") / "store", durable=False)
    assert store.put(data) == cid
    return store, data, cid


def test_get_joined_stream_baseline(
    benchmark: Benchmark, stored: tuple[LocalStore, bytes, str]
) -> None:
    """The former ``Store.get``: ``b"".join`` over the verified stream."""
    store, data, cid = stored
    benchmark.group = GROUP
    benchmark.extra_info.update(role="baseline")
    assert benchmark.pedantic(lambda: b"".join(store.stream(cid)), rounds=5) == data


def test_get_preallocated(benchmark: Benchmark, stored: tuple[LocalStore, bytes, str]) -> None:
    """``LocalStore.get``: the verified blocks copied into one preallocated buffer."""
    store, data, cid = stored
    benchmark.group = GROUP
    benchmark.extra_info.update(role="candidate")
    assert benchmark.pedantic(store.get, args=(cid,), rounds=5) == data


def side_by_side(rounds: int = 9, *, cpu: bool = False) -> dict[str, str]:
    """Per-round ratios to sha256 of the joined stream and of ``get``, interleaved.

    ``cpu``: CPU time of the calling thread instead of wall time (everything here runs
    in that thread), for a machine shared with other jobs. Each output is dropped
    before the next run, so no run pays for another's 100 MB.
    """
    import tempfile
    import time

    data = np.random.default_rng(2024).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    with tempfile.TemporaryDirectory() as root:
        store = LocalStore(Path(root) / "store", durable=False)
        cid = store.put(data)

        def check(name: str, out: object) -> None:
            if name != "sha256":
                assert out == data, name

        times = interleaved_times(
            {
                "sha256": lambda: hashlib.sha256(data).digest(),
                "join-stream": lambda: b"".join(store.stream(cid)),
                "get": lambda: store.get(cid),
            },
            rounds,
            check=check,
            clock=time.thread_time if cpu else time.perf_counter,
        )
    return {
        name: f"{1e3 * min(t):7.1f} ms min, {paired_ratio(t, times['sha256'])} of sha256"
        for name, t in times.items()
    }


if __name__ == "__main__":
    import sys

    args = [a for a in sys.argv[1:] if a != "--cpu"]
    for name, line in side_by_side(int(args[0]) if args else 9, cpu="--cpu" in sys.argv).items():
        print(f"{name:12} {line}")
