"""cipherfuse.envelope: ``magic | sha256(payload) | payload``, and its checks in order."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from cipherfuse import envelope

MAGIC = b"TESTMAG\x01"


class _Err(ValueError):
    pass


def _unpack(
    data: bytes,
    *,
    max_bytes: int | None = None,
    too_large: str = "",
    bad_version: Callable[[int], str] | None = None,
) -> bytes:
    return envelope.unpack(
        data,
        MAGIC,
        error=_Err,
        bad_magic="bad magic",
        bad_digest="bad digest",
        max_bytes=max_bytes,
        too_large=too_large,
        bad_version=bad_version,
    )


def _versioned(data: bytes) -> bytes:
    return _unpack(data, bad_version=lambda v: f"version {v}")


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 10])
def test_pack_is_magic_digest_payload(payload: bytes) -> None:
    data = envelope.pack(MAGIC, payload)
    assert data == b"TESTMAG\x01" + hashlib.sha256(payload).digest() + payload
    assert _unpack(data) == payload
    assert _versioned(data) == payload


def test_truncated_and_wrong_magic_are_bad_magic() -> None:
    data = envelope.pack(MAGIC, b"payload")
    for bad in (b"", data[:5], data[: len(MAGIC) + 31], b"OTHERMA\x01" + data[8:]):
        with pytest.raises(_Err, match=r"^bad magic$"):
            _unpack(bad)
        with pytest.raises(_Err, match=r"^bad magic$"):
            _versioned(bad)


def test_wrong_digest_is_bad_digest() -> None:
    data = envelope.pack(MAGIC, b"payload")
    for bad in (data[:-1], data + b"\x00", data[:-1] + b"q", data[:10] + b"\x00" + data[11:]):
        with pytest.raises(_Err, match=r"^bad digest$"):
            _unpack(bad)


def test_version_byte_is_checked_before_the_digest() -> None:
    data = envelope.pack(b"TESTMAG\x02", b"payload")
    with pytest.raises(_Err, match=r"^bad magic$"):
        _unpack(data)  # without bad_version the whole magic must match
    with pytest.raises(_Err, match=r"^version 2$"):
        _versioned(data[:-1])  # the version is reported even when the digest is wrong


def test_size_bound_comes_first() -> None:
    data = envelope.pack(MAGIC, b"1234")
    assert _unpack(data, max_bytes=len(data), too_large="big") == b"1234"
    with pytest.raises(_Err, match=r"^big$"):
        _unpack(data, max_bytes=len(data) - 1, too_large="big")
    with pytest.raises(_Err, match=r"^big$"):
        _unpack(b"junk" * 100, max_bytes=10, too_large="big")


def test_the_callers_error_class_is_raised() -> None:
    class Other(Exception):
        pass

    with pytest.raises(Other, match="nope"):
        envelope.unpack(b"", MAGIC, error=Other, bad_magic="nope", bad_digest="x")


# ------------------------------------------------- body | sha256(body) (HE objects, seeded)
def test_trailing_digest_layout_is_the_he_formats_byte_for_byte() -> None:
    import json
    import struct

    import numpy as np

    from cipherfuse import he
    from cipherfuse.he import seeded, serialize

    sk = he.keygen(he.SECURE, 4, seed=b"\x01" * 32)
    sm = seeded.seeded_encrypt_matrix(
        sk,
        np.arange(12, dtype=np.int64).reshape(3, 4) - 5,
        seed=b"\x07" * 32,
        noise_seed=b"\x08" * 32,
    )
    for blob, prefix in (
        (serialize.dumps(sk), struct.Struct("<4sHHI")),
        (seeded.to_bytes(sm), struct.Struct("<4sHI")),
    ):
        body = blob[:-32]
        assert blob == body + hashlib.sha256(body).digest()  # built here without the module
        assert envelope.seal_trailing(body) == blob
        hlen = prefix.unpack_from(blob)[-1]
        raw = blob[prefix.size : prefix.size + hlen]
        header = json.loads(raw)
        assert json.dumps(header, sort_keys=True, separators=(",", ":")).encode() == raw
        assert envelope.canonical_json(header) == raw


def test_trailing_digest_and_canonical_header_refusals() -> None:
    blob = envelope.seal_trailing(b"prefix+header+arrays")
    view = memoryview(blob)
    assert (
        bytes(envelope.trailing_body(view, error=_Err, bad_digest="x")) == b"prefix+header+arrays"
    )
    flipped = memoryview(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(_Err, match=r"^corrupt$"):
        envelope.trailing_body(flipped, error=_Err, bad_digest="corrupt")
    envelope.check_canonical(
        {"a": 1, "b": [2]}, memoryview(b'{"a":1,"b":[2]}'), error=_Err, writer="w"
    )
    for raw in (b'{"b":[2],"a":1}', b'{"a": 1,"b":[2]}'):
        with pytest.raises(_Err, match=r"canonical encoding dumps\(\) writes"):
            envelope.check_canonical(
                {"a": 1, "b": [2]}, memoryview(raw), error=_Err, writer="dumps()"
            )
