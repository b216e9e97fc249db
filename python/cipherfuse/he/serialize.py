"""Versioned, checksummed, schema-checked binary format for keys and ciphertexts.

Layout (all integers little-endian)::

    b"CFHE" | u16 format version | u16 kind | u32 header length
    | header (UTF-8 JSON, sorted keys) | arrays, raw, in header order
    | SHA-256 of everything before it (32 bytes)

The header names the kind, the full parameter set, the scalar fields and,
for each array, its name, dtype and shape. Loading verifies magic, version,
kind, checksum, header schema, array sizes and (optionally) the expected
parameter set, and raises :class:`SerializationError` naming what is wrong.
Nothing is ever unpickled.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cipherfuse import envelope
from cipherfuse.files import atomic_write_bytes
from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import ParameterError, SerializationError
from cipherfuse.he.keys import KeySwitchKey, PublicKey, SecretKey
from cipherfuse.he.params import HEParams
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import is_strict_int

MAGIC = b"CFHE"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
_PREFIX = struct.Struct("<4sHHI")
_DIGEST = envelope.DIGEST_BYTES

_KINDS = {1: "params", 2: "secret_key", 3: "public_key", 4: "switch_key", 5: "ciphertext"}
_KIND_IDS = {v: k for k, v in _KINDS.items()}
_DTYPES = {"<u8": np.dtype("<u8"), "<i8": np.dtype("<i8")}

Serializable = HEParams | SecretKey | PublicKey | KeySwitchKey | Ciphertext


def _fields(obj: Serializable) -> tuple[str, HEParams, dict[str, Any], list[tuple[str, Any]]]:
    if isinstance(obj, HEParams):
        return "params", obj, {}, []
    if isinstance(obj, SecretKey):
        return "secret_key", obj.params, {"key_id": obj.key_id}, [("T", obj.T)]
    if isinstance(obj, PublicKey):
        return "public_key", obj.params, {"key_id": obj.key_id, "m": obj.m}, [("P", obj.P)]
    if isinstance(obj, KeySwitchKey):
        scal = {
            "source": obj.source,
            "applies_to": obj.applies_to,
            "target_id": obj.target_id,
            "n_in": obj.n_in,
            "m_out": obj.m_out,
            "base_bits": obj.base_bits,
            "added_noise": str(obj.added_noise),
        }
        return "switch_key", obj.params, scal, [("M", obj.M)]
    if isinstance(obj, Ciphertext):
        scal = {
            "key_id": obj.key_id,
            "m": obj.m,
            "noise_bound": str(obj.noise_bound),
            "value_bound": None if obj.value_bound is None else str(obj.value_bound),
        }
        return "ciphertext", obj.params, scal, [("data", obj.data)]
    raise SerializationError(f"cannot serialize objects of type {type(obj).__name__}")


def _header(obj: Serializable) -> tuple[str, dict[str, Any], list[tuple[str, Any]]]:
    """The kind, the JSON header and the arrays :func:`dumps` writes for ``obj``."""
    kind, params, scalars, arrays = _fields(obj)
    header: dict[str, Any] = {
        "kind": kind,
        "params": params.to_dict(),
        "fields": scalars,
        "arrays": [
            {
                "name": name,
                "dtype": np.asarray(a).dtype.newbyteorder("<").str,
                "shape": list(np.asarray(a).shape),
            }
            for name, a in arrays
        ],
    }
    return kind, header, arrays


def dumps(obj: Serializable) -> bytes:
    """Serializes a parameter set, key or ciphertext."""
    kind, header, arrays = _header(obj)
    hbytes = envelope.canonical_json(header)
    parts = [_PREFIX.pack(MAGIC, FORMAT_VERSION, _KIND_IDS[kind], len(hbytes)), hbytes]
    for _, a in arrays:
        parts.append(
            np.ascontiguousarray(a)
            .astype(np.asarray(a).dtype.newbyteorder("<"), copy=False)
            .tobytes()
        )
    return envelope.seal_trailing(b"".join(parts))


def loads(
    blob: bytes, *, expected_kind: str | None = None, params: HEParams | None = None
) -> Serializable:
    """Parses :func:`dumps` output; ``expected_kind``/``params`` reject the wrong data.

    Untrusted input is safe: the header is size- and depth-bounded before it is parsed and
    must be byte for byte the canonical encoding :func:`dumps` writes, arrays are sized
    against the data before anything is allocated, and every failure is a
    :class:`SerializationError`.
    """
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SerializationError(f"expected bytes, got {type(blob).__name__}")
    view = memoryview(blob).cast("B")
    if len(view) < _PREFIX.size + _DIGEST:
        raise SerializationError(
            f"data is truncated: {len(view)} bytes is shorter than the fixed header and checksum"
        )
    magic, version, kind_id, hlen = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise SerializationError(f"not a cipherfuse HE object (magic {bytes(magic)!r})")
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"unsupported format version {version}; this build reads version {FORMAT_VERSION}"
        )
    if kind_id not in _KINDS:
        raise SerializationError(f"unknown object kind {kind_id}")
    kind = _KINDS[kind_id]
    if expected_kind is not None and kind != expected_kind:
        raise SerializationError(f"expected a {expected_kind}, found a {kind}")
    body = envelope.trailing_body(
        view,
        error=SerializationError,
        bad_digest="checksum mismatch: the data is corrupt or truncated",
    )
    if hlen > MAX_HEADER_BYTES or _PREFIX.size + hlen > len(body):
        raise SerializationError(f"header length {hlen} is out of range")
    header = parse_json(
        body[_PREFIX.size : _PREFIX.size + hlen], what="header", max_bytes=MAX_HEADER_BYTES
    )
    if not isinstance(header, dict):
        raise SerializationError("header must be a JSON object")
    envelope.check_canonical(
        header, body[_PREFIX.size : _PREFIX.size + hlen], error=SerializationError, writer="dumps()"
    )
    _require(header, {"kind": str, "params": dict, "fields": dict, "arrays": list}, "header")
    if header["kind"] != kind:
        raise SerializationError("header kind disagrees with the prefix")
    try:
        stored = HEParams.from_dict(header["params"])
    except ParameterError as exc:
        raise SerializationError(f"invalid parameter set in header: {exc}") from None
    if params is not None and stored != params:
        raise SerializationError(
            f"parameter mismatch: data was made with parameter set {stored.name!r} "
            f"({stored.fingerprint()}), expected {params.name!r} ({params.fingerprint()})"
        )
    arrays = _read_arrays(header["arrays"], body, _PREFIX.size + hlen)
    try:
        obj = _build(kind, stored, header["fields"], arrays)
    except (ParameterError, KeyError, TypeError, ValueError, ArithmeticError, IndexError) as exc:
        # ArithmeticError: e.g. a switch key declaring base_bits=0 (ZeroDivisionError).
        if isinstance(exc, SerializationError):
            raise
        raise SerializationError(f"invalid {kind}: {exc}") from None
    if _header(obj)[1] != header:
        # e.g. an unknown extra field, or an array dtype the object does not keep.
        raise SerializationError(f"the header is not the one dumps() writes for this {kind}")
    return obj


def _require(obj: dict[str, Any], schema: dict[str, type | tuple[type, ...]], where: str) -> None:
    for name, typ in schema.items():
        if name not in obj:
            raise SerializationError(f"{where} lacks field {name!r}")
        if not isinstance(obj[name], typ) or isinstance(obj[name], bool):
            raise SerializationError(f"{where} field {name!r} has the wrong type")


def _read_arrays(specs: list[Any], body: memoryview, offset: int) -> dict[str, npt.NDArray[Any]]:
    out: dict[str, npt.NDArray[Any]] = {}
    for spec in specs:
        if not isinstance(spec, dict):
            raise SerializationError("array spec must be an object")
        _require(spec, {"name": str, "dtype": str, "shape": list}, "array spec")
        if spec["dtype"] not in _DTYPES:
            raise SerializationError(f"array {spec['name']!r} has unsupported dtype")
        shape = spec["shape"]
        if len(shape) > 3 or not all(
            is_strict_int(d, minimum=0, maximum=(1 << 40) - 1, exact=True) for d in shape
        ):
            raise SerializationError(f"array {spec['name']!r} has an invalid shape {shape}")
        dtype = _DTYPES[spec["dtype"]]
        count = int(np.prod(shape, dtype=object))
        nbytes = count * dtype.itemsize
        if offset + nbytes > len(body):
            raise SerializationError(f"array {spec['name']!r} is truncated")
        arr = np.frombuffer(body[offset : offset + nbytes], dtype=dtype).reshape(shape)
        out[spec["name"]] = arr.astype(dtype.newbyteorder("="), copy=True)
        offset += nbytes
    if offset != len(body):
        raise SerializationError(f"{len(body) - offset} unexpected trailing bytes")
    return out


def _big(fields: dict[str, Any], name: str) -> int:
    value = fields[name]
    if not isinstance(value, str) or not value.isdigit():
        raise SerializationError(f"field {name!r} must be a decimal string")
    return int(value)


def _build(
    kind: str, params: HEParams, f: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]
) -> Serializable:
    if kind == "params":
        return params
    if kind == "secret_key":
        _require(f, {"key_id": str}, "secret key")
        return SecretKey(params, arrays["T"].astype(np.int64), f["key_id"])
    if kind == "public_key":
        _require(f, {"key_id": str, "m": int}, "public key")
        return PublicKey(params, f["key_id"], f["m"], arrays["P"].astype(np.uint64))
    if kind == "switch_key":
        _require(
            f,
            {
                "source": str,
                "applies_to": str,
                "target_id": str,
                "n_in": int,
                "m_out": int,
                "base_bits": int,
            },
            "switch key",
        )
        return KeySwitchKey(
            params,
            f["source"],
            f["applies_to"],
            f["target_id"],
            f["n_in"],
            f["m_out"],
            f["base_bits"],
            arrays["M"].astype(np.uint64),
            _big(f, "added_noise"),
        )
    _require(f, {"key_id": str, "m": int}, "ciphertext")
    vb = None if f.get("value_bound") is None else _big(f, "value_bound")
    return Ciphertext(
        params, f["key_id"], f["m"], arrays["data"].astype(np.uint64), _big(f, "noise_bound"), vb
    )


def save(obj: Serializable, path: str | os.PathLike[str]) -> None:
    """Writes atomically: a temporary file in the same directory, fsync, rename."""
    # Private (0600: may be a secret key); the file is fsynced, not the folder; the
    # folder must exist.
    atomic_write_bytes(path, dumps(obj), mode=0o600, sync_folder=False, parents=False)


def load(
    path: str | os.PathLike[str],
    *,
    expected_kind: str | None = None,
    params: HEParams | None = None,
) -> Serializable:
    """Reads and validates a file written by :func:`save`."""
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        raise SerializationError(f"{path}: no such file") from None
    try:
        return loads(blob, expected_kind=expected_kind, params=params)
    except SerializationError as exc:
        raise SerializationError(f"{path}: {exc}") from None
