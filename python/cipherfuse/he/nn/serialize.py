"""The encrypted-model file format: versioned, checksummed, schema-checked; never pickle.

Layout::

    b"CFHENN\\x00\\x01"   (8-byte magic; the last byte is the format version)
    sha256(payload)       (32 bytes)
    payload               msgpack map {
        "format": "cipherfuse.he.nn.model", "version": 1,
        "config": <ModelConfig.to_dict() as JSON text>, "labels": [int, ...],
        "strategy": str, "weight_scale": int, "input_scale": int,
        "key_fingerprint": str, "weight_shape": [int, ...],
        "weights": <CFHE ciphertext bytes>, "bias": <CFHE ciphertext bytes>,
        "plain_params": <msgpack of {layer: {name: {"shape": [...], "data": float32 LE bytes}}}>}

The ciphertexts reuse the CFHE format of :mod:`cipherfuse.he.serialize`
(itself versioned and checksummed). Loading checks the magic, version,
checksum, the exact key sets and types, the config, that both ciphertexts use
the same parameter set and key as ``key_fingerprint``, that their shapes fit
``weight_shape`` and the strategy, and that the plaintext parameters have
exactly the structure, shapes and dtypes the config implies.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped]
import numpy as np

from cipherfuse import envelope
from cipherfuse.errors import SerializationError
from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import HEError, ParameterError
from cipherfuse.he.nn.block import first_block
from cipherfuse.he.nn.strategies import EncryptedWeights, EncryptionStrategy, check_strategy
from cipherfuse.he.serialize import dumps, loads
from cipherfuse.nn.config import ModelConfig
from cipherfuse.nn.errors import ModelConfigError
from cipherfuse.nn.model import param_shapes
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import is_strict_int

FORMAT = "cipherfuse.he.nn.model"
VERSION = 1
MAGIC = b"CFHENN\x00" + bytes([VERSION])
_KEYS = {
    "format": str,
    "version": int,
    "config": str,
    "labels": list,
    "strategy": str,
    "weight_scale": int,
    "input_scale": int,
    "key_fingerprint": str,
    "weight_shape": list,
    "weights": bytes,
    "bias": bytes,
    "plain_params": bytes,
}
MAX_BYTES = 1 << 34
#: The quantizer's bound on p and q (larger scales would overflow int64 arithmetic).
MAX_SCALE = 1 << 31


class EncryptedModelParts(NamedTuple):
    """The fields of an :class:`~cipherfuse.he.nn.model.EncryptedModel`, as the file holds them."""

    config: ModelConfig
    labels: tuple[int, ...]
    strategy: EncryptionStrategy
    weight_scale: int
    input_scale: int
    weights: EncryptedWeights
    plain_params: dict[str, Any]


def _pack_params(tree: dict[str, Any]) -> bytes:
    def conv(node: Any) -> Any:
        if isinstance(node, dict):
            return {str(k): conv(v) for k, v in sorted(node.items())}
        arr = np.ascontiguousarray(np.asarray(node, dtype="<f4"))
        return {"shape": list(arr.shape), "data": arr.tobytes()}

    packed: bytes = msgpack.packb(conv(tree), use_bin_type=True)
    return packed


def encrypted_model_to_bytes(enc: EncryptedModelParts) -> bytes:
    """Serialize the fields of an :class:`~cipherfuse.he.nn.model.EncryptedModel`."""
    payload: bytes = msgpack.packb(
        {
            "format": FORMAT,
            "version": VERSION,
            "config": json.dumps(enc.config.to_dict(), sort_keys=True),
            "labels": [int(v) for v in enc.labels],
            "strategy": enc.strategy,
            "weight_scale": int(enc.weight_scale),
            "input_scale": int(enc.input_scale),
            "key_fingerprint": enc.weights.key_id,
            "weight_shape": list(enc.weights.shape),
            "weights": dumps(enc.weights.weights),
            "bias": dumps(enc.weights.bias),
            "plain_params": _pack_params(enc.plain_params),
        },
        use_bin_type=True,
    )
    return envelope.pack(MAGIC, payload)


def _unpack(data: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several types on malformed input
        raise SerializationError(f"{what} is not valid msgpack: {exc}") from None


def _expected_shapes(config: ModelConfig, skip: str) -> dict[str, Any]:
    def conv(node: Any) -> Any:
        if hasattr(node, "items"):
            return {str(k): conv(v) for k, v in node.items()}
        return tuple(int(d) for d in node.shape)

    tree = conv(param_shapes(config))
    assert isinstance(tree, dict)
    tree.pop(skip, None)
    return tree


def _unpack_params(blob: bytes, expected: dict[str, Any], where: str = "") -> dict[str, Any]:
    tree = _unpack(blob, "plain_params")
    if msgpack.packb(tree, use_bin_type=True) != blob:
        raise SerializationError("plain_params is not in the canonical msgpack encoding")
    out: dict[str, Any] = _check_tree(tree, expected, where)
    return out


def _check_tree(got: Any, expected: Any, where: str) -> Any:
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            have = sorted(got) if isinstance(got, dict) else type(got).__name__
            raise SerializationError(
                f"plain_params{where}: expected keys {sorted(expected)}, found {have}"
            )
        return {k: _check_tree(got[k], expected[k], f"{where}/{k}") for k in expected}
    if (
        not isinstance(got, dict)
        or set(got) != {"shape", "data"}
        or not isinstance(got["data"], bytes)
        or tuple(got["shape"]) != expected
    ):
        raise SerializationError(f"plain_params{where}: expected a float32 array {expected}")
    count = int(np.prod(expected, dtype=np.int64))
    if len(got["data"]) != 4 * count:
        raise SerializationError(f"plain_params{where}: {len(got['data'])} bytes for {expected}")
    arr = np.frombuffer(got["data"], dtype="<f4").reshape(expected).astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise SerializationError(f"plain_params{where}: contains NaN or infinity")
    return arr


def encrypted_model_from_bytes(data: bytes) -> EncryptedModelParts:
    """Parse and fully validate; raises :class:`SerializationError` naming the problem.

    Safe on hostile bytes: the size is bounded, msgpack and JSON nesting are bounded, the
    payload, the config and the plaintext parameters must be the canonical encodings the
    writer produces, and any failure of a component decoder (type, overflow, arithmetic)
    comes out as a :class:`SerializationError`.
    """
    try:
        return _encrypted_model_from_bytes(data)
    except (HEError, SerializationError):
        raise
    except (TypeError, ValueError, OverflowError, ArithmeticError, KeyError, IndexError) as exc:
        raise SerializationError(f"invalid encrypted model: {type(exc).__name__}: {exc}") from None


def _encrypted_model_from_bytes(data: bytes) -> EncryptedModelParts:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SerializationError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)  # after the type check: bytes(int) would allocate int zero bytes
    payload = envelope.unpack(
        data,
        MAGIC,
        error=SerializationError,
        max_bytes=MAX_BYTES,
        too_large="encrypted model is larger than 16 GiB",
        bad_magic="not a cipherfuse encrypted model (bad magic or truncated)",
        bad_version=lambda found: (
            f"unsupported encrypted-model format version {found}; this build "
            f"reads version {VERSION}"
        ),
        bad_digest="checksum mismatch: the data is corrupt or truncated",
    )
    tree = _unpack(payload, "payload")
    if not isinstance(tree, dict) or set(tree) != set(_KEYS):
        raise SerializationError(f"payload must be a map with exactly the keys {sorted(_KEYS)}")
    if msgpack.packb(tree, use_bin_type=True) != payload:
        raise SerializationError("payload is not in the canonical msgpack encoding")
    for name, typ in _KEYS.items():
        if not isinstance(tree[name], typ) or isinstance(tree[name], bool):
            raise SerializationError(f"field {name!r} must be {typ.__name__}")
    if tree["format"] != FORMAT or tree["version"] != VERSION:
        raise SerializationError(
            f"format {tree['format']!r} version {tree['version']!r}; expected {FORMAT!r} "
            f"version {VERSION}"
        )
    try:
        config = ModelConfig.from_dict(parse_json(tree["config"], what="config"))
        if json.dumps(config.to_dict(), sort_keys=True) != tree["config"]:
            raise SerializationError("config is not the canonical JSON of a model config")
        strategy = check_strategy(tree["strategy"])
    except (ValueError, TypeError, ModelConfigError, ParameterError) as exc:
        raise SerializationError(f"invalid config or strategy: {exc}") from None
    for name in ("weight_scale", "input_scale"):
        if not 1 <= tree[name] <= MAX_SCALE:
            raise SerializationError(f"{name} must be in [1, 2^31], got {tree[name]}")
    labels = tree["labels"]
    if (
        not labels
        or not all(
            is_strict_int(v, minimum=0, maximum=config.num_classes - 1, exact=True) for v in labels
        )
        or len(set(labels)) != len(labels)
    ):
        raise SerializationError(f"labels must be distinct ints in 0..{config.num_classes - 1}")
    shape = tree["weight_shape"]
    if not shape or not all(
        is_strict_int(d, minimum=1, maximum=(1 << 31) - 1, exact=True) for d in shape
    ):
        raise SerializationError(f"weight_shape must be positive ints, got {shape}")
    w = loads(tree["weights"], expected_kind="ciphertext")
    b = loads(tree["bias"], expected_kind="ciphertext")
    assert isinstance(w, Ciphertext) and isinstance(b, Ciphertext)
    if w.params != b.params:
        raise SerializationError("weights and bias use different parameter sets")
    if w.key_id != tree["key_fingerprint"] or b.key_id != tree["key_fingerprint"]:
        raise SerializationError("ciphertext key ids do not match key_fingerprint")
    if w.value_bound is None or b.value_bound is None:
        raise SerializationError("encrypted weights must declare value bounds")
    try:
        weights = EncryptedWeights(strategy, tuple(shape), w, b)
        block = first_block(config, tree["weight_scale"], tree["input_scale"])
        expected = _expected_shapes(config, f"layer_{block.layer_index}")
        skipped = _expected_shapes(config, "")
        if tuple(skipped[f"layer_{block.layer_index}"]["kernel"]) != tuple(shape):
            raise SerializationError(
                f"weight_shape {shape} does not match the config's first layer "
                f"{skipped[f'layer_{block.layer_index}']['kernel']}"
            )
        plain = _unpack_params(tree["plain_params"], expected)
        return EncryptedModelParts(
            config=config,
            labels=tuple(labels),
            strategy=strategy,
            weight_scale=tree["weight_scale"],
            input_scale=tree["input_scale"],
            weights=weights,
            plain_params=plain,
        )
    except SerializationError:
        raise
    except (HEError, ValueError, ModelConfigError) as exc:
        raise SerializationError(f"invalid encrypted model: {exc}") from None
