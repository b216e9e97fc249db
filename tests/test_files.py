"""cipherfuse.files: atomic writes with the caller's mode, durability and folder policy."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cipherfuse.files import atomic_write_bytes, atomic_writer


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_mode_is_applied_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    old = os.umask(0o077)
    try:
        atomic_write_bytes(tmp_path / "a", b"x", mode=mode)
        with atomic_writer(tmp_path / "b", mode=mode) as fh:
            fh.write(b"y")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == mode
    assert _mode(tmp_path / "b") == mode
    assert (tmp_path / "a").read_bytes() == b"x"
    assert (tmp_path / "b").read_bytes() == b"y"


def test_default_mode_is_private(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "f", b"secret")
    assert _mode(tmp_path / "f") == 0o600


def test_streaming_writer_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_writer(path) as fh:
        for i in range(100):
            fh.write(bytes([i]) * 1000)
        assert path.read_bytes() == b"old"  # nothing visible before the block ends
    assert path.read_bytes() == b"".join(bytes([i]) * 1000 for i in range(100))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def _write_then_fail(path: Path, exc: BaseException) -> None:
    with atomic_writer(path) as fh:
        fh.write(b"half of the new content")
        raise exc


def test_failing_writer_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "kept"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="stop"):
        _write_then_fail(path, RuntimeError("stop"))
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


def test_failing_writer_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _write_then_fail(tmp_path / "new", KeyboardInterrupt())
    assert list(tmp_path.iterdir()) == []


def test_durable_fsyncs_the_file_and_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fsyncs(monkeypatch)
    atomic_write_bytes(tmp_path / "f", b"x")
    assert len(calls) == 2


def test_sync_folder_false_fsyncs_only_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fsyncs(monkeypatch)
    with atomic_writer(tmp_path / "f", sync_folder=False) as fh:
        fh.write(b"x")
    assert len(calls) == 1


def test_durable_false_does_not_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_fsyncs(monkeypatch)
    atomic_write_bytes(tmp_path / "f", b"x", durable=False)
    with atomic_writer(tmp_path / "g", durable=False) as fh:
        fh.write(b"y")
    assert calls == []
    assert (tmp_path / "f").read_bytes() == b"x"
    assert (tmp_path / "g").read_bytes() == b"y"


def test_durable_false_may_still_sync_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fsyncs(monkeypatch)
    atomic_write_bytes(tmp_path / "f", b"x", durable=False, sync_folder=True)
    assert len(calls) == 1


def test_parents_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "f"
    atomic_write_bytes(path, b"x")
    assert path.read_bytes() == b"x"


def test_without_parents_a_missing_folder_raises(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "f"
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(path, b"x", parents=False)
    with pytest.raises(FileNotFoundError), atomic_writer(path, parents=False):
        pass
    assert not (tmp_path / "missing").exists()


def test_accepts_str_paths(tmp_path: Path) -> None:
    atomic_write_bytes(str(tmp_path / "s"), b"x")
    assert (tmp_path / "s").read_bytes() == b"x"
