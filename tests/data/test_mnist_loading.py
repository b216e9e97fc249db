"""IDX parsing, MNIST sources (path, cache, download, fallback) and their errors."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cipherfuse.data import (
    MNIST_DIR_ENV,
    MNIST_FILES,
    DatasetError,
    DownloadError,
    FallbackDatasetWarning,
    download_mnist,
    load_mnist,
    parse_idx,
    portable_source,
    read_idx,
)
from cipherfuse.errors import CipherfuseError

# Published class counts of the MNIST t10k labels.
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _idx(dims: tuple[int, ...], payload: bytes, dtype: int = 0x08) -> bytes:
    return bytes([0, 0, dtype, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_parse_idx_roundtrip() -> None:
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = parse_idx(_idx((2, 3, 4), data.tobytes()))
    np.testing.assert_array_equal(out, data)
    be = np.array([1, -2, 300], dtype=">i4")
    np.testing.assert_array_equal(parse_idx(_idx((3,), be.tobytes(), 0x0C)), [1, -2, 300])


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x00\x00", "truncated"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"x", "magic"),
        (b"\x00\x00\x42\x01" + struct.pack(">I", 1) + b"x", "element type"),
        (_idx((2, 3), b"\x00" * 5), "truncated"),
        (_idx((2, 3), b"\x00" * 7), "longer"),
        (b"\x00\x00\x08\x02\x00\x00", "header"),
    ],
)
def test_parse_idx_rejects_corrupt(blob: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message) as info:
        parse_idx(blob, name="some-file.idx")
    assert "some-file.idx" in str(info.value)
    assert isinstance(info.value, CipherfuseError)
    assert isinstance(info.value, ValueError)


def test_real_files_match_published_md5(mnist_dir: Path) -> None:
    img, img_md5, lbl, lbl_md5 = MNIST_FILES["test"]
    assert hashlib.md5((mnist_dir / img).read_bytes()).hexdigest() == img_md5
    assert hashlib.md5((mnist_dir / lbl).read_bytes()).hexdigest() == lbl_md5


def test_load_test_split(mnist_dir: Path) -> None:
    data = load_mnist(path=mnist_dir)
    assert data.images.shape == (10_000, 28, 28, 1)
    assert data.images.dtype == np.float32
    assert data.images.min() >= 0.0
    assert data.images.max() == 1.0
    assert np.bincount(data.labels).tolist() == T10K_COUNTS
    # first test label of MNIST is a 7, second a 2
    assert data.labels[:2].tolist() == [7, 2]


def test_env_variable_is_used(mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MNIST_DIR_ENV, str(mnist_dir))
    assert len(load_mnist(download=False)) == 10_000


def test_truncated_file_names_the_file(mnist_dir: Path, tmp_path: Path) -> None:
    img, _, lbl, _ = MNIST_FILES["test"]
    raw = gzip.decompress((mnist_dir / img).read_bytes())
    (tmp_path / img).write_bytes(gzip.compress(raw[:-100]))
    shutil.copy(mnist_dir / lbl, tmp_path / lbl)
    with pytest.raises(DatasetError, match="truncated") as info:
        load_mnist(path=tmp_path)
    assert img in str(info.value)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DatasetError, match=r"x\.gz"):
        read_idx(bad)


def test_mismatched_counts_rejected(mnist_dir: Path, tmp_path: Path) -> None:
    img, _, lbl, _ = MNIST_FILES["test"]
    shutil.copy(mnist_dir / img, tmp_path / img)
    labels = np.zeros(9_999, dtype=np.uint8)
    (tmp_path / lbl).write_bytes(gzip.compress(_idx((9_999,), labels.tobytes())))
    with pytest.raises(DatasetError, match="disagree"):
        load_mnist(path=tmp_path)


def test_download_from_loopback_mirror(
    mnist_dir: Path, tmp_path: Path, serve_dir: Callable[[Path], str], no_mnist_env: None
) -> None:
    good = serve_dir(mnist_dir)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    for name in (MNIST_FILES["test"][0], MNIST_FILES["test"][2]):
        (bad_dir / name).write_bytes(b"not the real file")
    bad = serve_dir(bad_dir)
    cache = tmp_path / "cache"
    missing = good + "does-not-exist/"
    # (load_mnist serves the test split from the shipped copy; the downloader is direct)
    download_mnist(cache, "test", mirrors=[missing, bad, good], timeout=5)
    data = load_mnist(cache_dir=cache, download=False)
    assert data.source == str(cache)
    assert len(data) == 10_000
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [MNIST_FILES["test"][0], MNIST_FILES["test"][2]]
    )
    # second call is served from the cache: no mirror needed
    again = load_mnist(cache_dir=cache, mirrors=[], download=False)
    np.testing.assert_array_equal(again.labels, data.labels)


def test_download_rejects_bad_md5_and_leaves_no_partial_file(
    tmp_path: Path, serve_dir: Callable[[Path], str]
) -> None:
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    for name in (MNIST_FILES["test"][0], MNIST_FILES["test"][2]):
        (bad_dir / name).write_bytes(b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="md5"):
        download_mnist(cache, "test", mirrors=[serve_dir(bad_dir)], timeout=5)
    assert list(cache.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_without_fallback_raises(tmp_path: Path, no_mnist_env: None) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(DatasetError, match="allow_fallback") as info:
        load_mnist("train", cache_dir=tmp_path, mirrors=[url], timeout=2)
    assert "127.0.0.1" in str(info.value)


def test_download_error_type(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download_mnist(tmp_path, mirrors=[f"http://127.0.0.1:{_closed_port()}/"], timeout=2)
    assert isinstance(info.value, OSError)


def test_sklearn_fallback_is_reported(tmp_path: Path, no_mnist_env: None) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.warns(FallbackDatasetWarning, match="scikit-learn"):
        data = load_mnist(
            "train", cache_dir=tmp_path, mirrors=[url], timeout=2, allow_fallback=True
        )
    assert data.source == "sklearn-digits"
    assert data.images.shape == (1797, 28, 28, 1)
    assert set(data.labels.tolist()) == set(range(10))
    assert data.images.min() >= 0.0
    assert data.images.max() <= 1.0


def test_bad_split_name(mnist_dir: Path) -> None:
    with pytest.raises(DatasetError, match="split"):
        load_mnist("validation", path=mnist_dir)  # type: ignore[arg-type]


def test_cli_fetch_mnist(mnist_dir: Path, tmp_path: Path, serve_dir: Callable[[Path], str]) -> None:
    from cipherfuse.cli.main import main

    dest = tmp_path / "fetched"
    assert (
        main(["models", "fetch-mnist", "--dir", str(dest), "--mirror", serve_dir(mnist_dir)]) == 0
    )
    assert len(load_mnist(path=dest)) == 10_000
    closed = f"http://127.0.0.1:{_closed_port()}/"
    assert main(["models", "fetch-mnist", "--dir", str(tmp_path / "x"), "--mirror", closed]) == 2


def test_directory_may_be_given_as_a_string(mnist_dir: Path) -> None:
    by_str = load_mnist(path=str(mnist_dir))
    by_path = load_mnist(path=mnist_dir)
    assert np.array_equal(by_str.images, by_path.images)
    assert np.array_equal(by_str.labels, by_path.labels)


def test_portable_source_names_the_data_not_the_directory(mnist_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "some" / "machine" / "mnist"
    copy.mkdir(parents=True)
    for name in MNIST_FILES["test"][0::2]:
        shutil.copy(mnist_dir / name, copy / name)
    source = load_mnist(path=copy).source
    assert source == str(copy)
    described = portable_source(source)
    assert described == "MNIST IDX files in a local directory (test: published md5)"
    assert str(tmp_path) not in described


def test_portable_source_reports_files_that_are_not_the_published_ones(
    mnist_dir: Path, tmp_path: Path
) -> None:
    img, _, lbl, _ = MNIST_FILES["test"]
    shutil.copy(mnist_dir / img, tmp_path / img)
    raw = gzip.decompress((mnist_dir / lbl).read_bytes())
    (tmp_path / lbl).write_bytes(gzip.compress(raw, mtime=1))  # same labels, other bytes
    rewritten = hashlib.md5((tmp_path / lbl).read_bytes(), usedforsecurity=False).hexdigest()
    assert rewritten != MNIST_FILES["test"][3]
    described = portable_source(str(tmp_path))
    assert described == "MNIST IDX files in a local directory (test: md5 not the published)"


def test_portable_source_keeps_sources_without_a_machine_path() -> None:
    from cipherfuse.data.mnist import BUNDLED_SOURCE, FALLBACK_SOURCE

    for source in (BUNDLED_SOURCE, FALLBACK_SOURCE, "https://example.org/mnist/"):
        assert portable_source(source) == source
    gone = "/no/such/directory/mnist"
    assert portable_source(gone) == "MNIST IDX files in a local directory (md5 not checked)"
