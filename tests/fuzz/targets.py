"""Every cipherfuse decoder of untrusted bytes, as a fuzz target, with valid seed samples.

A target maps bytes to a decode call. The contract each must keep on ANY input:

* it returns (and then, for the canonical formats, re-encoding gives the input back), or
* it raises a :class:`~cipherfuse.errors.CipherfuseError` subclass.

Anything else (``TypeError``, ``MemoryError``, ``RecursionError``, a crash) is a bug.
Checksummed formats are also fuzzed *behind* their checksum: :func:`reseal` recomputes it
around a mutated body, as an attacker would.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from cipherfuse import he
from cipherfuse.chain.events import load_cursor, save_cursor
from cipherfuse.data.idx import parse_idx
from cipherfuse.fusion.serialize import metamodel_from_bytes
from cipherfuse.he import seeded
from cipherfuse.he.nn import EncryptedModel, encrypt_model
from cipherfuse.he.nn import serialize as hser
from cipherfuse.nn import DenseSpec, FlattenSpec, ModelConfig, TrainedModel
from cipherfuse.nn import serialize as nser
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.sealing import (
    BOX_MAGIC,
    box_public_bytes,
    make_key_box,
    open_key_box,
    open_sealed,
    parse_envelope,
    seal,
)
from cipherfuse.roles.state import StateFile
from cipherfuse.storage import CID, LocalStore, compute_cid
from cipherfuse.storage.protobuf import decode_pbnode, decode_unixfs
from cipherfuse.untrusted import parse_json
from tests.he.nn.conftest import random_params, small_model

Decoder = Callable[[bytes], object]


@dataclass(frozen=True)
class Target:
    """One decoder: ``decode`` must return or raise a CipherfuseError; ``encode`` (optional)
    re-encodes a returned value, which must then equal the input (canonical formats)."""

    decode: Decoder
    samples: Callable[[], list[bytes]]
    encode: Callable[[Any], bytes] | None = None


def reseal(data: bytes) -> bytes:
    """Recompute the checksum of a CFHE / CFSM / CFHENN / CFMODEL / CFMETA blob."""
    if data[:4] in (b"CFHE", b"CFSM") and len(data) >= 32:
        body = data[:-32]
        return body + hashlib.sha256(body).digest()
    for magic in (hser.MAGIC, nser.MAGIC, b"CFMETA\x00\x00"):
        if data.startswith(magic):
            payload = data[len(magic) + 32 :]
            return magic + hashlib.sha256(payload).digest() + payload
    return data


# ------------------------------------------------------------------ valid samples
def _seed(n: int) -> bytes:
    return bytes([n]) * 32


@cache
def he_samples() -> list[bytes]:
    sk = he.keygen(he.PAPER, 2, seed=_seed(1))
    ct = he.encrypt_symmetric(sk, np.array([3, -4]), seed=_seed(2))
    return [he.dumps(he.PAPER), he.dumps(sk), he.dumps(ct)]


@cache
def seeded_samples() -> list[bytes]:
    sk = he.keygen(he.SECURE, 3, seed=_seed(3))
    sm = seeded.seeded_encrypt_matrix(sk, np.arange(12).reshape(4, 3) - 5, bias=np.arange(3))
    return [seeded.to_bytes(sm)]


@cache
def encrypted_model_samples() -> list[bytes]:
    sk = he.keygen(he.PAPER, 1, seed=_seed(4))
    m = he.identity_switch_key(sk, seed=_seed(5))
    return [encrypt_model(small_model(1), m).to_bytes()]


def _tiny_model() -> TrainedModel:
    config = ModelConfig(name="f", input_shape=(2, 2, 1), layers=(FlattenSpec(), DenseSpec(2)))
    return TrainedModel(config=config, params=random_params(config, 0), labels=(0, 1))


@cache
def model_samples() -> list[bytes]:
    return [nser.model_to_bytes(_tiny_model())]


@cache
def manifest_samples() -> list[bytes]:
    manifest = TaskManifest("paper", "k", "i", "v", 0.5, 2, 3, (1, 1), "n")
    return [manifest.to_bytes()]


@cache
def verification_samples() -> list[bytes]:
    rng = np.random.default_rng(0)
    x = rng.random((2, 2, 2, 1), dtype=np.float32)
    y = np.array([0, 1], np.int64)
    return [VerificationData(x, y, x, y).to_bytes()]


@cache
def idx_samples() -> list[bytes]:
    return [bytes([0, 0, 8, 2]) + struct.pack(">2I", 2, 3) + bytes(range(6))]


@cache
def sealed_samples() -> list[bytes]:
    return [seal(b"model", key=bytes(32), nonce=bytes(12)).blob]


@cache
def dag_samples() -> list[bytes]:
    """A serialized "blockstore": u32 count, then (u32 length, block) pairs; the root last."""
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp), chunk_size=64, max_links=3, durable=False)
        cid = store.put(bytes(range(256)) * 3)
        blocks = [store.blocks.get(c) for c in _walk(store, CID.parse(cid))]
    return [pack_blocks(blocks)]


def _walk(store: LocalStore, root: CID) -> list[CID]:
    from cipherfuse.storage.reader import iter_links

    order: list[CID] = []
    stack = [root]
    while stack:
        cid = stack.pop()
        order.append(cid)
        stack.extend(iter_links(cid, store.blocks.get(cid)))
    return order[::-1]


def pack_blocks(blocks: list[bytes]) -> bytes:
    """Blocks in the format :func:`decode_dag` reads (the root is the last one)."""
    return struct.pack("<I", len(blocks)) + b"".join(struct.pack("<I", len(b)) + b for b in blocks)


# ------------------------------------------------------------------ decoders needing setup
def decode_dag(data: bytes) -> bytes:
    """Walk a fuzzed set of blocks (all verified by their CIDs) from the last as root."""
    from cipherfuse.storage.cid import DAG_PB, RAW
    from cipherfuse.storage.errors import BlockNotFoundError
    from cipherfuse.storage.reader import iter_file

    view = memoryview(data)
    if len(view) < 4:
        return b""
    count = min(struct.unpack_from("<I", view)[0], 64)
    pos, blocks = 4, {}
    root: CID | None = None
    for _ in range(count):
        if pos + 4 > len(view):
            break
        size = struct.unpack_from("<I", view, pos)[0]
        block = bytes(view[pos + 4 : pos + 4 + size])
        pos += 4 + size
        for codec, version in ((DAG_PB, 0), (RAW, 1)):
            cid = CID.for_block(block, codec, version)
            blocks[cid.to_bytes()] = block
        root = CID.for_block(block, DAG_PB, 0)
    if root is None:
        return b""

    def get(cid: CID) -> bytes:
        try:
            return blocks[cid.to_bytes()]
        except KeyError:
            raise BlockNotFoundError(str(cid), "the fuzzed blocks") from None

    return b"".join(iter_file(root, get, max_size=1 << 20, max_nodes=4096))


def decode_key_box(data: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.from_private_bytes(bytes(32))
    return open_key_box(data, private, claim_id=1, member="0x" + "00" * 20)


@cache
def key_box_samples() -> list[bytes]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    public = box_public_bytes(X25519PrivateKey.from_private_bytes(bytes(32)))
    return [make_key_box(public, bytes(32), claim_id=1, member="0x" + "00" * 20)]


def _in_file(data: bytes, reader: Callable[[Path], object]) -> object:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        path.write_bytes(data)
        return reader(path)


def decode_state(data: bytes) -> object:
    return _in_file(data, lambda p: StateFile(p, "verifier", "0xabc").data)


def decode_cursor(data: bytes) -> object:
    return _in_file(data, lambda p: load_cursor(p, "0x" + "11" * 20))


@cache
def state_samples() -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        state = StateFile(Path(tmp) / "s", "verifier", "0xabc")
        state.update(claims=[1, 2], decisions={"1": {"accept": True, "salt": "00"}})
        cursor = Path(tmp) / "c"
        save_cursor(cursor, "0x" + "11" * 20, 5)
        return [state.path.read_bytes(), cursor.read_bytes()]


def verification_bytes(arrays: dict[str, bytes]) -> bytes:
    """An ``.npz`` archive of raw member bytes (hostile .npy contents)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, raw in arrays.items():
            zf.writestr(f"{name}.npy", raw)
    return buf.getvalue()


TARGETS: dict[str, Target] = {
    "he.loads": Target(he.loads, he_samples, he.dumps),
    "seeded.from_bytes": Target(seeded.from_bytes, seeded_samples, seeded.to_bytes),
    "EncryptedModel.from_bytes": Target(
        EncryptedModel.from_bytes, encrypted_model_samples, EncryptedModel.to_bytes
    ),
    "model_from_bytes": Target(
        nser.model_from_bytes, model_samples, lambda r: nser.model_to_bytes(r[0], r[1])
    ),
    "metamodel_from_bytes": Target(metamodel_from_bytes, lambda: []),
    "TaskManifest.from_bytes": Target(
        TaskManifest.from_bytes, manifest_samples, TaskManifest.to_bytes
    ),
    "VerificationData.from_bytes": Target(VerificationData.from_bytes, verification_samples),
    "parse_idx": Target(parse_idx, idx_samples),
    "parse_json": Target(lambda d: parse_json(d, what="fuzz"), lambda: [b'{"a": [1, 2.5]}']),
    "open_sealed": Target(lambda d: open_sealed(d, bytes(32)), sealed_samples),
    "open_key_box": Target(decode_key_box, key_box_samples),
    "parse_envelope": Target(parse_envelope, lambda: [b"CFENV\x01" + bytes(64)]),
    "decode_pbnode": Target(decode_pbnode, lambda: []),
    "decode_unixfs": Target(decode_unixfs, lambda: []),
    "CID.from_bytes": Target(CID.from_bytes, lambda: []),
    "CID.parse": Target(
        lambda d: CID.parse(d.decode("latin-1")), lambda: [compute_cid(b"cipherfuse").encode()]
    ),
    "iter_file (DAG)": Target(decode_dag, dag_samples),
    "StateFile": Target(decode_state, lambda: state_samples()[:1]),
    "load_cursor": Target(decode_cursor, lambda: state_samples()[1:]),
}


# ------------------------------------------------------------------ hostile corpus
def _cfhe_header(header: bytes, kind: int = 5) -> bytes:
    body = struct.pack("<4sHHI", b"CFHE", 1, kind, len(header)) + header
    return body + hashlib.sha256(body).digest()


def _cfsm_header(header: dict[str, Any]) -> bytes:
    hbytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    body = struct.pack("<4sHI", b"CFSM", 1, len(hbytes)) + hbytes + bytes(8)
    return body + hashlib.sha256(body).digest()


def _dag_bomb() -> bytes:
    from cipherfuse.storage.cid import DAG_PB
    from cipherfuse.storage.protobuf import (
        UNIXFS_FILE,
        PBLink,
        PBNode,
        UnixFSData,
        encode_pbnode,
        encode_unixfs,
    )

    leaf_data = b"\xab" * 1000
    leaf = encode_pbnode(
        PBNode(data=encode_unixfs(UnixFSData(type=UNIXFS_FILE, data=leaf_data, filesize=1000)))
    )
    blocks, child, size = [leaf], CID.for_block(leaf, DAG_PB, 0), 1000
    for level in range(5):
        unixfs = UnixFSData(
            type=UNIXFS_FILE, filesize=1 if level == 4 else size * 100, blocksizes=(size,) * 100
        )
        links = tuple(PBLink(hash=child.to_bytes(), tsize=size) for _ in range(100))
        block = encode_pbnode(PBNode(data=encode_unixfs(unixfs), links=links))
        blocks.append(block)
        child, size = CID.for_block(block, DAG_PB, 0), size * 100
    return pack_blocks(blocks)


def _zero_dag() -> bytes:
    """Consistent sizes, zero bytes, 100^5 node visits: only the node budget stops it."""
    from cipherfuse.storage.cid import DAG_PB
    from cipherfuse.storage.protobuf import (
        UNIXFS_FILE,
        PBLink,
        PBNode,
        UnixFSData,
        encode_pbnode,
        encode_unixfs,
    )

    leaf = encode_pbnode(PBNode(data=encode_unixfs(UnixFSData(type=UNIXFS_FILE, filesize=0))))
    blocks, child = [leaf], CID.for_block(leaf, DAG_PB, 0)
    for _ in range(5):
        unixfs = UnixFSData(type=UNIXFS_FILE, filesize=0, blocksizes=(0,) * 100)
        links = tuple(PBLink(hash=child.to_bytes(), tsize=0) for _ in range(100))
        block = encode_pbnode(PBNode(data=encode_unixfs(unixfs), links=links))
        blocks.append(block)
        child = CID.for_block(block, DAG_PB, 0)
    return pack_blocks(blocks)


def _zip_variants() -> list[bytes]:
    """Found by fuzzing: a member needing zip version 6.4 (NotImplementedError), an
    unsupported compression method (NotImplementedError), an encrypted member
    (RuntimeError). Each patches the local and central headers of every member."""
    base = verification_samples()[0]
    out = []
    for offset_local, offset_central, value in ((4, 6, 64), (8, 10, 99), (6, 8, 1)):
        buf = bytearray(base)
        for sig, off in ((b"PK\x03\x04", offset_local), (b"PK\x01\x02", offset_central)):
            pos = buf.find(sig)
            while pos >= 0:
                struct.pack_into("<H", buf, pos + off, value)
                pos = buf.find(sig, pos + 4)
        out.append(bytes(buf))
    return out


def hostile_corpus() -> dict[str, list[bytes]]:
    """Known-hostile inputs per target: deep nesting, DAG bombs, wrapped products, huge or
    truncated length fields."""
    deep = b"[" * 70_000 + b"]" * 70_000
    header = json.loads(
        seeded_samples()[0][10 : 10 + struct.unpack_from("<I", seeded_samples()[0], 6)[0]]
    )
    wrapped = {
        **header,
        "kernel_shape": [1 << 32, 1 << 32, 1],
        "array": {"dtype": "<u8", "shape": [1, 3]},
    }
    huge_npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        huge_npy, {"descr": "<f4", "fortran_order": False, "shape": (1 << 30, 1 << 30, 1, 1)}
    )
    model_tree = msgpack.unpackb(encrypted_model_samples()[0][40:], raw=False)
    return {
        "he.loads": [
            _cfhe_header(deep),
            _cfhe_header(b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
            _cfhe_header(b"{}", kind=5)[:-40],
            struct.pack("<4sHHI", b"CFHE", 1, 5, 0xFFFFFFFF) + bytes(40),
            # Found by fuzzing: "value_bound" renamed "walue_bound" was ignored and accepted.
            reseal(he_samples()[2].replace(b'"value_bound"', b'"walue_bound"')),
        ],
        "seeded.from_bytes": [_cfsm_header(wrapped), seeded_samples()[0][:20]],
        "EncryptedModel.from_bytes": [
            reseal(hser.MAGIC + bytes(32) + msgpack.packb({**model_tree, "config": deep.decode()})),
            reseal(hser.MAGIC + bytes(32) + b"\x91" * 100_000),
            reseal(
                hser.MAGIC + bytes(32) + msgpack.packb({**model_tree, "weight_scale": 2**64 - 1})
            ),
        ],
        "model_from_bytes": [reseal(nser.MAGIC + bytes(32) + b"\xdd\xff\xff\xff\xff")],
        "TaskManifest.from_bytes": [deep, b'{"format":' + b"[" * 1000],
        "VerificationData.from_bytes": [
            verification_bytes({"fit_x": huge_npy.getvalue() + bytes(16)}),
            verification_samples()[0][:-30],
            b"PK\x05\x06" + bytes(18),
            *_zip_variants(),
        ],
        "parse_idx": [
            bytes([0, 0, 8, 4]) + struct.pack(">4I", 1 << 16, 1 << 16, 1 << 16, 1 << 16),
            bytes([0, 0, 8, 255]) + b"\xff" * 1020,
            # Found by fuzzing: a zero dim made the count 0, numpy refused the reshape.
            bytes([0, 0, 8, 4]) + struct.pack(">4I", 0, 1 << 31, 1 << 31, 1 << 31),
        ],
        "parse_json": [deep, b'"' + b"\\" * 10_001, b"1" * 5000],
        "open_key_box": [BOX_MAGIC + bytes(92), BOX_MAGIC + b"\x01" + bytes(91)],
        "iter_file (DAG)": [_dag_bomb(), _zero_dag()],
        "StateFile": [b"\xff\xfe", deep],
        "load_cursor": [b"\x80", deep],
    }
