"""Fixtures for the data tests: no MNIST variable and a loopback HTTP mirror.

The MNIST test set itself comes from ``tests/conftest.py`` (``mnist_dir``, ``mnist``).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cipherfuse.data import MNIST_DIR_ENV


@pytest.fixture
def no_mnist_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``$CIPHERFUSE_MNIST_DIR`` unset, for tests of the cache, download and fallback path.

    ``load_mnist`` reads the variable first, so with it set those paths are never taken.
    """
    monkeypatch.delenv(MNIST_DIR_ENV, raising=False)


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
