"""Fixtures for the data tests: the MNIST test set on disk and a loopback HTTP mirror."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cipherfuse.data import MNIST_DIR_ENV, Dataset, load_mnist
from cipherfuse.data.mnist import bundled_mnist_dir


def mnist_dir() -> Path:
    """``$CIPHERFUSE_MNIST_DIR``, else the test set shipped in the package."""
    env = os.environ.get(MNIST_DIR_ENV)
    return Path(env) if env else bundled_mnist_dir()


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path = mnist_dir()
    assert (path / "t10k-images-idx3-ubyte.gz").is_file(), (
        f"MNIST test set not found in {path}; set {MNIST_DIR_ENV}"
    )
    return path


@pytest.fixture(scope="session")
def mnist(mnist_path: Path) -> Dataset:
    return load_mnist(path=mnist_path)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve_dir() -> Iterator[object]:
    """Start a loopback HTTP server for a directory; yields ``start(dir) -> base URL``."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
