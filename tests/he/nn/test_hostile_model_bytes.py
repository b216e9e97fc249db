"""Hostile encrypted-model files: re-checksummed payloads with hostile fields are typed errors."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import pytest

from cipherfuse.errors import SerializationError
from cipherfuse.he.nn import EncryptedModel, encrypt_model
from cipherfuse.he.nn import serialize as hser

from .conftest import small_model


def _reseal(tree: dict[str, Any]) -> bytes:
    payload = msgpack.packb(tree, use_bin_type=True)
    return hser.MAGIC + hashlib.sha256(payload).digest() + payload


@pytest.fixture(scope="module")
def valid(paper_keys: Any) -> tuple[bytes, dict[str, Any]]:
    _, M = paper_keys[1]
    blob = encrypt_model(small_model(4), M).to_bytes()
    tree = msgpack.unpackb(blob[len(hser.MAGIC) + 32 :], raw=False)
    return blob, tree


def _mutated(tree: dict[str, Any], **changes: Any) -> bytes:
    return _reseal({**tree, **changes})


def _plain(tree: dict[str, Any], mutate: Any) -> bytes:
    params = msgpack.unpackb(tree["plain_params"], raw=False)
    mutate(params)
    return _mutated(tree, plain_params=msgpack.packb(params, use_bin_type=True))


def test_valid_file_round_trips(valid: tuple[bytes, dict[str, Any]]) -> None:
    blob, _ = valid
    assert EncryptedModel.from_bytes(blob).to_bytes() == blob


def test_bytes_are_the_literal_magic_the_digest_and_the_payload(
    valid: tuple[bytes, dict[str, Any]],
) -> None:
    """The envelope (cipherfuse.envelope) writes exactly the documented layout."""
    blob, tree = valid
    payload = msgpack.packb(tree, use_bin_type=True)
    assert blob == b"CFHENN\x00\x01" + hashlib.sha256(payload).digest() + payload


def test_huge_scale_is_a_serialization_error(valid: tuple[bytes, dict[str, Any]]) -> None:
    """A weight_scale above int64 reached numpy (OverflowError)."""
    _, tree = valid
    with pytest.raises(SerializationError):
        EncryptedModel.from_bytes(_mutated(tree, weight_scale=2**64 - 1))


def test_plain_param_shape_of_the_wrong_type_is_a_serialization_error(
    valid: tuple[bytes, dict[str, Any]],
) -> None:
    """``tuple(7)`` in the shape check raised TypeError."""
    _, tree = valid

    def set_shape(params: dict[str, Any]) -> None:
        layer = next(iter(params.values()))
        next(iter(layer.values()))["shape"] = 7

    with pytest.raises(SerializationError):
        EncryptedModel.from_bytes(_plain(tree, set_shape))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("config", '{"name": "x"'),
        ("config", "[" * 70_000 + "]" * 70_000),
        ("labels", [True]),
        ("weight_shape", [2**40]),
        ("weights", b"CFHE" + bytes(60)),
        ("strategy", "nonsense"),
        ("plain_params", b"\x91" * 5000),
    ],
)
def test_hostile_fields_are_serialization_errors(
    valid: tuple[bytes, dict[str, Any]], field: str, value: Any
) -> None:
    _, tree = valid
    blob = _mutated(tree, **{field: value})
    with pytest.raises(SerializationError):
        EncryptedModel.from_bytes(blob)


def test_non_canonical_payload_is_refused(valid: tuple[bytes, dict[str, Any]]) -> None:
    """Same fields, an int re-encoded as a wider msgpack type: accepted before, refused now."""
    blob, tree = valid
    payload = msgpack.packb(tree, use_bin_type=True)
    assert payload == blob[len(hser.MAGIC) + 32 :]
    scale = msgpack.packb(tree["input_scale"])
    wide = b"\xcf" + tree["input_scale"].to_bytes(8, "big")  # uint64, not the shortest form
    assert payload.count(b"\xabinput_scale" + scale) == 1
    hostile = payload.replace(b"\xabinput_scale" + scale, b"\xabinput_scale" + wide)
    with pytest.raises(SerializationError, match="canonical"):
        EncryptedModel.from_bytes(hser.MAGIC + hashlib.sha256(hostile).digest() + hostile)
