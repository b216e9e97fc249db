"""The checksummed envelopes of the package's binary formats.

Two layouts:

* ``magic | sha256(payload) | payload`` (:func:`pack`, :func:`unpack`): the model files
  (:mod:`cipherfuse.nn.serialize`), the MetaModel files (:mod:`cipherfuse.fusion.serialize`)
  and the encrypted-model files (:mod:`cipherfuse.he.nn.serialize`). :func:`unpack` reads
  untrusted bytes: it bounds their size, checks the magic (optionally a version byte at
  its end) and the digest, and raises the caller's error class with the caller's messages.
* ``body | sha256(body)``, the body a fixed prefix, a canonical JSON header and arrays
  (:func:`seal_trailing`, :func:`trailing_body`, :func:`canonical_json`,
  :func:`check_canonical`): the HE objects (:mod:`cipherfuse.he.serialize`) and the
  seeded matrices (:mod:`cipherfuse.he.seeded`); their readers check prefix, digest and
  header in their own order with these helpers.

The SHA-256 detects corruption and truncation, not a malicious sender (anyone can
recompute it); authenticate the bytes separately where that matters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

#: Bytes of the SHA-256 digest between the magic and the payload.
DIGEST_BYTES = 32


def pack(magic: bytes, payload: bytes) -> bytes:
    """``magic | sha256(payload) | payload``."""
    return magic + hashlib.sha256(payload).digest() + payload


def unpack(
    data: bytes,
    magic: bytes,
    *,
    error: type[Exception],
    bad_magic: str,
    bad_digest: str,
    max_bytes: int | None = None,
    too_large: str = "",
    bad_version: Callable[[int], str] | None = None,
) -> bytes:
    """The payload of :func:`pack` output, after checking the envelope of ``data``.

    In this order, each failure raising ``error(message)``: more than ``max_bytes``
    bytes (when given; ``too_large``), shorter than the magic and digest or a
    different magic (``bad_magic``), a different version byte (``bad_version(found)``,
    when given: then the last byte of ``magic`` is the format version, and only the
    bytes before it must match for ``bad_magic``), and a digest that does not match
    the payload (``bad_digest``).
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise error(too_large)
    head = len(magic) + DIGEST_BYTES
    fixed = magic if bad_version is None else magic[:-1]
    if len(data) < head or data[: len(fixed)] != fixed:
        raise error(bad_magic)
    if bad_version is not None and data[len(magic) - 1] != magic[-1]:
        raise error(bad_version(data[len(magic) - 1]))
    digest, payload = data[len(magic) : head], data[head:]
    if hashlib.sha256(payload).digest() != digest:
        raise error(bad_digest)
    return payload


def canonical_json(header: Any) -> bytes:
    """The one encoding of a JSON header the trailing-digest formats write and accept."""
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def seal_trailing(body: bytes) -> bytes:
    """``body | sha256(body)``: the digest covers the prefix and header too."""
    return body + hashlib.sha256(body).digest()


def trailing_body(view: memoryview, *, error: type[Exception], bad_digest: str) -> memoryview:
    """The body of :func:`seal_trailing` output ``view`` (at least :data:`DIGEST_BYTES`
    long: the caller checks its fixed prefix first), after checking its digest."""
    body, digest = view[:-DIGEST_BYTES], bytes(view[-DIGEST_BYTES:])
    if hashlib.sha256(body).digest() != digest:
        raise error(bad_digest)
    return body


def check_canonical(header: Any, raw: memoryview, *, error: type[Exception], writer: str) -> None:
    """Refuse a parsed header whose bytes ``raw`` are not :func:`canonical_json` of it
    (so that one object has one encoding); ``writer`` names the function that writes it."""
    if canonical_json(header) != bytes(raw):
        raise error(f"header is not in the canonical encoding {writer} writes")
