"""``cipherfuse store add/get``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from storage_helpers import CHUNK, make_data

from cipherfuse.cli.main import main
from cipherfuse.storage import compute_cid


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "cipherfuse.cli.main", *args], capture_output=True, check=False
    )


@pytest.mark.slow
def test_add_only_hash_and_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    data = make_data(2 * CHUNK + 1)
    src.write_bytes(data)
    store = str(tmp_path / "store")
    only = _run("store", "add", "--only-hash", str(src))
    assert only.returncode == 0, only.stderr
    assert only.stdout.decode().strip() == compute_cid(data)
    assert not (tmp_path / "store").exists()  # --only-hash stores nothing
    v1 = _run("store", "add", "-n", "--cid-version", "1", str(src))
    assert v1.stdout.decode().strip() == compute_cid(data, 1)
    added = _run("store", "add", "--store", store, str(src))
    cid = added.stdout.decode().strip()
    assert cid == compute_cid(data)
    got = _run("store", "get", "--store", store, cid)
    assert got.returncode == 0
    assert got.stdout == data
    out = tmp_path / "out.bin"
    assert main(["store", "get", "--store", store, "-o", str(out), cid]) == 0
    assert out.read_bytes() == data


@pytest.mark.slow
def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = _run("store", "get", "--store", str(tmp_path), "nonsense")
    assert bad.returncode == 2
    assert bad.stderr.decode().startswith("error: ")
    assert b"Traceback" not in bad.stderr
    missing = _run("store", "get", "--store", str(tmp_path), compute_cid(b"absent"))
    assert missing.returncode == 2
    assert b"not found" in missing.stderr
