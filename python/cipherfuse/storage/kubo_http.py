"""A :class:`Store` backed by a Kubo daemon's HTTP RPC API (``/api/v0``).

Relation to ``ipfshttpclient``: version 0.7 of that package refuses to
``connect()`` to Kubo newer than 0.8 (its hard-coded version window) and is
unmaintained. This client is a small replacement for the handful of calls the
storage layer needs (``add``, ``cat``, ``block/get``, ``pin/add``, ``pin/rm``,
``repo/gc``, ``version``), all sent as ``POST`` as current Kubo requires, with
no version gate. Unlike ``ipfshttpclient`` it trusts nothing it reads:

* ``stream``/``get`` walk the DAG with ``block/get`` and hash every block
  against the CID that named it, so a lying or corrupted daemon raises
  :class:`IntegrityError` and its bytes are never returned;
* ``cat`` re-derives the CID of the bytes it received with this store's layout
  and refuses them when they do not match;
* ``put`` computes the CID locally while uploading and refuses a daemon whose
  answer differs (e.g. one configured with another chunker).

Connection failures are retried (``retries``) by the transport; every request
has connect/read timeouts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from cipherfuse.errors import ParameterError
from cipherfuse.storage.cid import CID
from cipherfuse.storage.errors import (
    BackendUnavailableError,
    BlockNotFoundError,
    IntegrityError,
    StorageError,
)
from cipherfuse.storage.importer import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LINKS, FileImporter
from cipherfuse.storage.reader import iter_file
from cipherfuse.storage.source import Content, iter_chunks
from cipherfuse.storage.store import (
    DEFAULT_MAX_OBJECT_SIZE,
    GCResult,
    Store,
    check_max_object_size,
    known_length,
    too_large,
)


class _TeeReader:
    """File-like view of ``content`` that feeds every byte to an importer as it is read."""

    def __init__(self, content: Content, importer: FileImporter, limit: int) -> None:
        self._chunks = iter_chunks(content, importer.chunk_size)
        self._importer = importer
        self._limit = limit
        self._buffer = b""
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self.total += len(chunk)
            if self.total > self._limit:
                raise too_large("streamed content", self._limit)
            self._importer.write_chunk(chunk)
            self._buffer = bytes(chunk)
        if size < 0 or size >= len(self._buffer):
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class KuboHttpStore(Store):
    """Store objects in a Kubo daemon reachable at ``api_url`` (e.g. ``http://127.0.0.1:5001``)."""

    def __init__(
        self,
        api_url: str,
        *,
        cid_version: int = 0,
        timeout: float = 30.0,
        retries: int = 3,
        max_object_size: int = DEFAULT_MAX_OBJECT_SIZE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if cid_version not in (0, 1):
            raise ParameterError(f"cid_version must be 0 or 1, got {cid_version}")
        if timeout <= 0:
            raise ParameterError(f"timeout must be > 0 seconds, got {timeout}")
        if retries < 0:
            raise ParameterError(f"retries must be >= 0, got {retries}")
        check_max_object_size(max_object_size)
        if not api_url.startswith(("http://", "https://")):
            raise ParameterError(
                f"api_url must be an http(s) URL such as http://127.0.0.1:5001, got {api_url!r}"
            )
        self.api_url = api_url.rstrip("/")
        self.cid_version = cid_version
        self.max_object_size = max_object_size
        self._client = httpx.Client(
            base_url=self.api_url + "/api/v0",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport or httpx.HTTPTransport(retries=retries),
        )

    def __repr__(self) -> str:
        return f"KuboHttpStore({self.api_url!r}, cid_version={self.cid_version})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> KuboHttpStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------
    def _post(self, endpoint: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.post(endpoint, **kwargs)
        except httpx.TransportError as exc:
            raise BackendUnavailableError(
                f"Kubo RPC {self.api_url}/api/v0/{endpoint} unreachable: {exc!r}"
            ) from exc
        if response.status_code != 200:
            raise self._error(endpoint, response)
        return response

    def _error(self, endpoint: str, response: httpx.Response) -> StorageError:
        try:
            message = str(json.loads(response.read()).get("Message", ""))
        except (ValueError, AttributeError):
            message = response.text[:200]
        return StorageError(f"Kubo {endpoint} failed (HTTP {response.status_code}): {message}")

    def _json(self, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        body = self._post(endpoint, **kwargs).text
        lines = [line for line in body.splitlines() if line.strip()]
        if not lines:
            raise StorageError(f"Kubo {endpoint} returned an empty body")
        try:
            value = json.loads(lines[-1])
        except ValueError as exc:
            raise StorageError(f"Kubo {endpoint} returned non-JSON: {lines[-1][:200]!r}") from exc
        if not isinstance(value, dict):
            raise StorageError(f"Kubo {endpoint} returned {type(value).__name__}, not an object")
        return value

    # -- API calls -------------------------------------------------------------------
    def version(self) -> str:
        """The daemon's Kubo version string (``/api/v0/version``)."""
        return str(self._json("version").get("Version", ""))

    def block_get(self, cid: str | CID) -> bytes:
        """One raw block (``/api/v0/block/get``), verified against ``cid``."""
        parsed = CID.parse(cid)
        block = self._post("block/get", params={"arg": str(parsed)}).content
        parsed.verify(block)
        return block

    def put(self, content: Content, *, pin: bool = True) -> str:
        """``/api/v0/add`` with Kubo's defaults; the daemon's CID must equal ours."""
        length = known_length(content)
        if length is not None and length > self.max_object_size:
            raise too_large(f"content of {length} bytes", self.max_object_size)
        importer = FileImporter(self.cid_version)
        reader = _TeeReader(content, importer, self.max_object_size)
        params = {
            "cid-version": str(self.cid_version),
            "chunker": f"size-{DEFAULT_CHUNK_SIZE}",
            "pin": "true" if pin else "false",
            "quieter": "true",
        }
        answer = self._json("add", params=params, files={"file": ("object", reader)})
        expected = str(importer.finish().cid)
        got = str(answer.get("Hash", ""))
        if got != expected:
            raise IntegrityError(
                got or "<none>",
                f"the daemon answered {got!r} but the content's Kubo-default CID is {expected} "
                f"(is the daemon configured with a non-default layout or max links "
                f"other than {DEFAULT_MAX_LINKS}?)",
            )
        return got

    def stream(
        self, cid: str, *, max_bytes: int | None = None, expected_size: int | None = None
    ) -> Iterator[bytes]:
        """Walk the DAG over ``block/get``; every block is verified before use."""
        return iter_file(
            CID.parse(cid),
            self.block_get,
            max_size=self.read_limit(max_bytes),
            max_nodes=self.max_nodes,
            expected_size=expected_size,
        )

    def cat(self, cid: str) -> bytes:
        """``/api/v0/cat``, accepted only if the bytes re-hash to ``cid`` (Kubo layout)."""
        parsed = CID.parse(cid)
        importer = FileImporter(parsed.version)
        parts: list[bytes] = []
        total = 0
        try:
            with self._client.stream("POST", "cat", params={"arg": str(parsed)}) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._error("cat", response)
                for piece in response.iter_bytes():
                    total += len(piece)
                    if total > self.max_object_size:
                        raise too_large(f"{parsed}", self.max_object_size)
                    importer.write(piece)
                    parts.append(piece)
        except httpx.TransportError as exc:
            raise BackendUnavailableError(f"Kubo RPC cat of {parsed} failed: {exc!r}") from exc
        actual = importer.finish().cid
        if actual != parsed:
            raise IntegrityError(str(parsed), f"bytes served by cat hash to {actual}")
        return b"".join(parts)

    def has(self, cid: str) -> bool:
        """Whether the daemon holds the whole DAG locally (``files/stat --with-local``)."""
        parsed = CID.parse(cid)
        try:
            info = self._json(
                "files/stat",
                params={"arg": f"/ipfs/{parsed}", "with-local": "true", "offline": "true"},
            )
        except StorageError as exc:
            if isinstance(exc, BackendUnavailableError):
                raise
            return False
        return bool(info.get("Local"))

    def pin(self, cid: str) -> None:
        """``/api/v0/pin/add`` (recursive)."""
        self._json("pin/add", params={"arg": str(CID.parse(cid)), "recursive": "true"})

    def unpin(self, cid: str) -> None:
        """``/api/v0/pin/rm``; raises :class:`BlockNotFoundError` if it was not pinned."""
        parsed = CID.parse(cid)
        try:
            self._json("pin/rm", params={"arg": str(parsed)})
        except StorageError as exc:
            if "not pinned" in str(exc):
                raise BlockNotFoundError(str(parsed), f"the pin set of {self.api_url}") from exc
            raise

    def gc(self) -> GCResult:
        """``/api/v0/repo/gc``; Kubo reports removed keys but not their sizes."""
        body = self._post("repo/gc").text
        removed = 0
        for line in body.splitlines():
            if line.strip():
                entry = json.loads(line)
                if entry.get("Error"):
                    raise StorageError(f"Kubo repo/gc: {entry['Error']}")
                removed += 1
        return GCResult(blocks_removed=removed, bytes_freed=0)
