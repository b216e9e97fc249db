"""CID parsing/printing, varints and the dag-pb/UnixFS wire encoding."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cipherfuse.storage import CID, InvalidCIDError, MalformedNodeError, compute_cid
from cipherfuse.storage.cid import DAG_PB, RAW, b58decode, b58encode
from cipherfuse.storage.protobuf import (
    PBLink,
    PBNode,
    UnixFSData,
    decode_pbnode,
    decode_unixfs,
    decode_varint,
    encode_pbnode,
    encode_unixfs,
    encode_varint,
)

# Published, widely quoted values (Kubo / IPFS docs):
EMPTY_FILE_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
EMPTY_FILE_V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HELLO_WORLD_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"  # b"hello world"


def test_known_constants() -> None:
    assert compute_cid(b"") == EMPTY_FILE_V0
    assert compute_cid(b"", 1) == EMPTY_FILE_V1
    assert compute_cid(b"hello world", 1) == HELLO_WORLD_V1


def test_empty_file_node_bytes() -> None:
    # PBNode{Data: UnixFS{Type: File, filesize: 0}} is what Kubo stores for an empty file.
    block = bytes.fromhex("0a0408021800")
    assert str(CID.for_block(block, DAG_PB, 0)) == EMPTY_FILE_V0


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(encoded, 0) == (value, len(encoded))


def test_varint_rejects_bad_input() -> None:
    with pytest.raises(MalformedNodeError):
        encode_varint(-1)
    with pytest.raises(MalformedNodeError):
        decode_varint(b"\x80\x80", 0)
    with pytest.raises(MalformedNodeError):
        decode_varint(b"\xff" * 11, 0)


@given(st.binary(min_size=0, max_size=40))
def test_base58_round_trip(raw: bytes) -> None:
    assert b58decode(b58encode(raw)) == raw


@given(st.binary(min_size=1, max_size=100), st.sampled_from([(0, DAG_PB), (1, DAG_PB), (1, RAW)]))
def test_cid_string_round_trip(block: bytes, version_codec: tuple[int, int]) -> None:
    version, codec = version_codec
    cid = CID.for_block(block, codec, version)
    text = str(cid)
    assert text.startswith("Qm" if version == 0 else "b")
    assert CID.parse(text) == cid
    assert CID.from_bytes(cid.to_bytes()) == cid
    assert cid.digest == hashlib.sha256(block).digest()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hello",
        "Qm" + "0" * 44,  # '0' is not base58
        EMPTY_FILE_V1.upper(),  # not canonical
        "b" + "a" * 10,  # truncated
        "zQmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
    ],
)
def test_invalid_cid_strings(bad: str) -> None:
    with pytest.raises(InvalidCIDError):
        CID.parse(bad)


def test_cid_invariants() -> None:
    with pytest.raises(InvalidCIDError, match="CIDv0 is always dag-pb"):
        CID(0, RAW, bytes(32))
    with pytest.raises(InvalidCIDError, match="32 bytes"):
        CID(1, RAW, bytes(31))
    with pytest.raises(InvalidCIDError, match="codec"):
        CID(1, 0x71, bytes(32))
    assert isinstance(InvalidCIDError("x"), ValueError)


def test_pbnode_round_trip_and_canonical_order() -> None:
    link = PBLink(hash=CID.for_block(b"x", RAW, 1).to_bytes(), tsize=7)
    node = PBNode(data=b"\x08\x02", links=(link, link))
    encoded = encode_pbnode(node)
    assert encoded[0] == 0x12  # links (field 2) come before data (field 1)
    assert decode_pbnode(encoded) == node


def test_unixfs_round_trip() -> None:
    msg = UnixFSData(type=2, data=b"abc", filesize=3, blocksizes=(1, 2))
    assert decode_unixfs(encode_unixfs(msg)) == msg


@pytest.mark.parametrize(
    "block",
    [b"\x0a\x05\x08", b"\x0b", b"\x0a\x00\x12\x00", b"\x08\x01"],
)
def test_malformed_pbnode(block: bytes) -> None:
    with pytest.raises(MalformedNodeError):
        decode_pbnode(block)
