"""The binary format: round trips, and every kind of bad data is rejected."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.he import serialize

from .conftest import seed


@pytest.fixture(scope="module")
def objects() -> dict[str, object]:
    sk = he.keygen(he.PAPER, 3, seed=seed(1))
    pk = he.public_keygen(sk, seed=seed(2))
    ksk = he.identity_switch_key(sk, seed=seed(3))
    ct = he.encrypt(pk, [[1, 2, 3], [-4, 5, -6]], value_bound=6)
    return {
        "params": he.SECURE,
        "secret_key": sk,
        "public_key": pk,
        "switch_key": ksk,
        "ciphertext": ct,
    }


def _same(a: object, b: object) -> bool:
    if isinstance(a, he.HEParams):
        return a == b
    for name in ("params", "key_id", "m", "noise_bound", "value_bound", "source", "target_id"):
        if hasattr(a, name) and getattr(a, name) != getattr(b, name):
            return False
    for name in ("T", "P", "M", "data"):
        if hasattr(a, name) and not np.array_equal(getattr(a, name), getattr(b, name)):
            return False
    return True


@pytest.mark.parametrize("kind", ["params", "secret_key", "public_key", "switch_key", "ciphertext"])
def test_roundtrip(objects: dict[str, object], kind: str, tmp_path: Path) -> None:
    obj = objects[kind]
    blob = he.dumps(obj)  # type: ignore[arg-type]
    assert _same(obj, he.loads(blob, expected_kind=kind))
    path = tmp_path / f"{kind}.cfhe"
    he.save(obj, path)  # type: ignore[arg-type]
    assert _same(obj, he.load(path))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind


def test_loaded_ciphertext_still_decrypts(objects: dict[str, object]) -> None:
    sk = he.loads(he.dumps(objects["secret_key"]))  # type: ignore[arg-type]
    ct = he.loads(he.dumps(objects["ciphertext"]))  # type: ignore[arg-type]
    assert isinstance(sk, he.SecretKey) and isinstance(ct, he.Ciphertext)
    np.testing.assert_array_equal(he.decrypt(sk, ct), [[1, 2, 3], [-4, 5, -6]])


def _reseal(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def _split(blob: bytes) -> tuple[bytes, dict[str, object], bytes]:
    _magic, _version, _kind, hlen = struct.unpack_from("<4sHHI", blob)
    start = struct.calcsize("<4sHHI")
    header = json.loads(blob[start : start + hlen])
    return blob[:start], header, blob[start + hlen : -32]


def _with_header(blob: bytes, header: dict[str, object]) -> bytes:
    prefix, _, arrays = _split(blob)
    hbytes = json.dumps(header).encode()
    prefix = prefix[:8] + struct.pack("<I", len(hbytes))
    return _reseal(prefix + hbytes + arrays)


def test_rejects_corruption_truncation_and_version(objects: dict[str, object]) -> None:
    blob = he.dumps(objects["ciphertext"])  # type: ignore[arg-type]
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    with pytest.raises(he.SerializationError, match="checksum"):
        he.loads(bytes(flipped))
    with pytest.raises(he.SerializationError, match=r"checksum|truncated"):
        he.loads(blob[:-7])
    with pytest.raises(he.SerializationError, match="truncated"):
        he.loads(blob[:10])
    with pytest.raises(he.SerializationError, match="magic"):
        he.loads(b"PK\x03\x04" + blob[4:])
    bumped = blob[:4] + struct.pack("<H", 99) + blob[6:-32]
    with pytest.raises(he.SerializationError, match="version 99"):
        he.loads(_reseal(bumped))


def test_rejects_wrong_kind_and_wrong_parameters(objects: dict[str, object]) -> None:
    blob = he.dumps(objects["ciphertext"])  # type: ignore[arg-type]
    with pytest.raises(he.SerializationError, match="expected a secret_key"):
        he.loads(blob, expected_kind="secret_key")
    with pytest.raises(he.SerializationError, match="parameter mismatch"):
        he.loads(blob, params=he.SECURE)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h.pop("fields"),
        lambda h: h["fields"].update(noise_bound="-5"),
        lambda h: h["fields"].update(noise_bound=str(2**40)),
        lambda h: h["fields"].update(m=2),
        lambda h: h["params"].update(lwe_dim=0),
        lambda h: h["arrays"][0].update(dtype="<f8"),
        lambda h: h["arrays"][0].update(shape=[2, 5]),
        lambda h: h["arrays"][0].update(shape=[1, 4]),
    ],
)
def test_rejects_schema_violations(objects: dict[str, object], mutate: object) -> None:
    blob = he.dumps(objects["ciphertext"])  # type: ignore[arg-type]
    _, header, _ = _split(blob)
    mutate(header)  # type: ignore[operator]
    with pytest.raises(he.SerializationError):
        he.loads(_with_header(blob, header))


def test_rejects_tampered_key_material(objects: dict[str, object]) -> None:
    blob = he.dumps(objects["secret_key"])  # type: ignore[arg-type]
    body = bytearray(blob[:-32])
    body[-1] ^= 1  # last byte of T: key_id no longer matches
    with pytest.raises(he.SerializationError, match="key_id"):
        he.loads(_reseal(bytes(body)))


def test_save_failure_leaves_no_partial_file(tmp_path: Path, objects: dict[str, object]) -> None:
    target = tmp_path / "ct.cfhe"
    he.save(objects["ciphertext"], target)  # type: ignore[arg-type]
    before = target.read_bytes()

    class Boom(he.Ciphertext):
        pass

    with pytest.raises(he.SerializationError):
        serialize.save(object(), target)  # type: ignore[arg-type]
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.cfhe"]


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(he.SerializationError, match="no such file"):
        he.load(tmp_path / "absent.cfhe")
