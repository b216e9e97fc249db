"""Hostile bytes for the HE decoders: every one ends in a typed error, never a crash.

Each case is an attacker's input with a valid checksum (the checksums detect corruption,
not malice: anyone can recompute them).
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.errors import SerializationError
from cipherfuse.he import seeded
from cipherfuse.untrusted import MAX_JSON_DEPTH, json_depth, parse_json


def _cfhe(header: dict[str, object] | bytes, kind_id: int, arrays: bytes = b"") -> bytes:
    hbytes = (
        header
        if isinstance(header, bytes)
        else json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    )
    body = struct.pack("<4sHHI", b"CFHE", 1, kind_id, len(hbytes)) + hbytes + arrays
    return body + hashlib.sha256(body).digest()


def _cfsm(header: dict[str, object] | bytes, arrays: bytes = b"") -> bytes:
    hbytes = (
        header
        if isinstance(header, bytes)
        else json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    )
    body = struct.pack("<4sHI", b"CFSM", 1, len(hbytes)) + hbytes + arrays
    return body + hashlib.sha256(body).digest()


def test_depth_scan_skips_strings_and_counts_nesting() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(b"[" * 100) == 100
    with pytest.raises(SerializationError, match="nests 65 levels"):
        parse_json(b"[" * 65 + b"]" * 65, what="doc")
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, what="doc") is not None
    with pytest.raises(SerializationError, match="must be JSON text"):
        parse_json(5, what="doc")  # type: ignore[arg-type]


DEEP = 70_000
DEEP_SCRIPT = textwrap.dedent(
    f"""
    import hashlib, json, struct, sys
    import cipherfuse.chain  # raises the recursion limit to 100,000 (web3's dependencies)
    assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()
    from cipherfuse import he
    from cipherfuse.errors import CipherfuseError
    from cipherfuse.nn.serialize import model_from_bytes
    from cipherfuse.roles.manifest import TaskManifest
    header = b"[" * {DEEP} + b"]" * {DEEP}
    body = struct.pack("<4sHHI", b"CFHE", 1, 5, len(header)) + header
    cases = {{
        "he.loads": lambda: he.loads(body + hashlib.sha256(body).digest()),
        "manifest": lambda: TaskManifest.from_bytes(b'{{"a":' * {DEEP} + b"1" + b"}}" * {DEEP}),
    }}
    from flax import serialization
    from cipherfuse.nn.serialize import FORMAT, MAGIC, VERSION
    payload = serialization.msgpack_serialize({{
        "format": FORMAT, "version": VERSION, "config": "[" * {DEEP} + "]" * {DEEP},
        "labels": [0], "quantization": {{}}, "params": {{}}}})
    cases["model"] = lambda: model_from_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    from cipherfuse.mpc.sharing import MAGIC as BUNDLE_MAGIC, MemberBundle
    bundle_header = b'{{"format": 1, "layout": ' + header + b"}}"
    cases["mpc bundle"] = lambda: MemberBundle.from_bytes(
        BUNDLE_MAGIC + struct.pack("<I", len(bundle_header)) + bundle_header
    )
    for name, call in cases.items():
        try:
            call()
        except CipherfuseError as exc:
            assert "levels deep" in str(exc) or "limit" in str(exc), (name, exc)
        else:
            raise AssertionError(name + " accepted a 70,000-deep document")
    print("typed")
    """
)


def test_deep_json_raises_a_typed_error_in_a_process_with_chain_imported() -> None:
    """Unbounded, the C parser overflows the stack: the process dies with SIGSEGV (-11)."""
    done = subprocess.run(
        [sys.executable, "-c", DEEP_SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "typed"


def _switch_key_header(base_bits: object) -> dict[str, object]:
    return {
        "kind": "switch_key",
        "params": he.PAPER.to_dict(),
        "fields": {
            "source": "identity",
            "applies_to": "",
            "target_id": "x",
            "n_in": 1,
            "m_out": 1,
            "base_bits": base_bits,
            "added_noise": "0",
        },
        "arrays": [{"name": "M", "dtype": "<u8", "shape": [0, 0]}],
    }


def test_switch_key_with_base_bits_zero_is_a_serialization_error() -> None:
    """Was ZeroDivisionError from ``-(-64 // base_bits)``."""
    with pytest.raises(SerializationError, match="base_bits"):
        he.loads(_cfhe(_switch_key_header(0), 4))


@pytest.mark.parametrize("blob", ["text", 12, None, [1, 2]])
def test_loads_of_non_bytes_is_a_serialization_error(blob: object) -> None:
    """Was TypeError from ``memoryview``."""
    with pytest.raises(SerializationError, match="expected bytes"):
        he.loads(blob)  # type: ignore[arg-type]


def test_non_canonical_header_is_refused() -> None:
    """The same object with spaces in its JSON header: accepted before, refused now."""
    sk = he.keygen(he.PAPER, 2, seed=bytes(32))
    blob = he.dumps(sk)
    assert isinstance(he.loads(blob), he.SecretKey)
    hlen = struct.unpack_from("<I", blob, 8)[0]
    header = json.loads(blob[12 : 12 + hlen])
    spaced = json.dumps(header, sort_keys=True).encode()
    arrays = blob[12 + hlen : -32]
    with pytest.raises(SerializationError, match="canonical"):
        he.loads(_cfhe(spaced, 2, arrays))


def _seeded_header(kernel_shape: list[int], rows: int) -> dict[str, object]:
    return {
        "params": he.SECURE.to_dict(),
        "key_id": "k",
        "seed": "00" * 32,
        "kernel_shape": kernel_shape,
        "outputs": 1,
        "has_bias": True,
        "plaintext_bits": 16,
        "weight_bound": 1,
        "bias_bound": 1,
        "array": {"dtype": "<u8", "shape": [rows, 1]},
    }


def test_seeded_kernel_shape_whose_product_wraps_is_refused() -> None:
    """2^32 * 2^32 * 1 wraps to 0 in int64: before, a one-row matrix claiming that kernel
    shape was accepted (rows = 0 + bias)."""
    wrapped = [1 << 32, 1 << 32, 1]
    assert int(np.prod(wrapped)) == 0  # the wrap the old code trusted
    blob = _cfsm(_seeded_header(wrapped, 1), np.zeros(1, "<u8").tobytes())
    with pytest.raises(SerializationError, match="kernel_shape"):
        seeded.from_bytes(blob)


def test_seeded_round_trip_still_holds() -> None:
    sk = he.keygen(he.SECURE, 3, seed=bytes([1]) * 32)
    sm = seeded.seeded_encrypt_matrix(sk, np.arange(12).reshape(4, 3) - 6)
    back = seeded.from_bytes(seeded.to_bytes(sm))
    assert back.kernel_shape == (4,) and np.array_equal(back.b, sm.b)


def test_truncated_and_huge_length_fields_are_typed() -> None:
    sk = he.keygen(he.PAPER, 2, seed=bytes(32))
    blob = he.dumps(sk)
    for cut in (0, 5, 12, len(blob) // 2, len(blob) - 1):
        with pytest.raises(SerializationError):
            he.loads(blob[:cut])
    body = bytearray(blob[:-32])
    struct.pack_into("<I", body, 8, 0xFFFFFFFF)
    with pytest.raises(SerializationError, match="header length"):
        he.loads(bytes(body) + hashlib.sha256(body).digest())
    header = _switch_key_header(8)
    header["arrays"] = [{"name": "M", "dtype": "<u8", "shape": [1 << 39, 1 << 39, 1 << 39]}]
    with pytest.raises(SerializationError, match="truncated"):
        he.loads(_cfhe(header, 4))


def test_unknown_header_field_is_refused() -> None:
    """Found by fuzzing: a renamed optional field was ignored, so bytes that differ from
    what dumps() writes were accepted."""
    sk = he.keygen(he.PAPER, 2, seed=bytes(32))
    ct = he.encrypt_symmetric(sk, np.array([1, 2]), seed=bytes([1]) * 32)
    blob = he.dumps(ct)
    body = blob[:-32].replace(b'"value_bound"', b'"walue_bound"')
    with pytest.raises(SerializationError, match="not the one dumps"):
        he.loads(body + hashlib.sha256(body).digest())
