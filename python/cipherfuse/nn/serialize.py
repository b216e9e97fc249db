"""Model files: versioned, checksummed, schema-checked msgpack; never pickle.

Layout::

    b"CFMODEL\\x00"  (8-byte magic)
    sha256(payload)   (32 bytes)
    payload           flax.serialization.msgpack_serialize({
                          "format": "cipherfuse.model", "version": 1,
                          "config": <ModelConfig.to_dict() as JSON text>,
                          "labels": [...], "quantization": {"weight_scale": p,
                          "input_scale": q, "n_layers": k} or {} ,
                          "params": <Flax state dict of float32 arrays>})

Loading checks the magic, the checksum, the exact key set, the version, the
config (parsed and validated), the labels, the scaling factors, and that the
parameter tree has exactly the structure, shapes and dtypes the config implies.
Files are written atomically (temp file in the same directory, fsync, rename).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from cipherfuse import envelope
from cipherfuse.errors import SerializationError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.nn.config import ModelConfig
from cipherfuse.nn.errors import ModelConfigError, ModelFileError
from cipherfuse.nn.model import TrainedModel, param_shapes
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import is_strict_int

MAGIC = b"CFMODEL\x00"
FORMAT = "cipherfuse.model"
VERSION = 1
_KEYS = {"format", "version", "config", "labels", "quantization", "params"}


def open_envelope(
    data: bytes,
    name: str,
    *,
    magic: bytes,
    fmt: str,
    version: int,
    keys: set[str],
    kind: str,
    error: type[SerializationError],
) -> dict[str, Any]:
    """Check a ``magic | sha256(payload) | msgpack payload`` file and return its fields.

    Shared by the model and MetaModel files: the magic and the checksum
    (:func:`cipherfuse.envelope.unpack`), the msgpack decoding, the exact key set, the
    ``format`` and the ``version`` field. Every failure raises ``error`` naming ``name``
    (the file) and what is wrong.
    """
    payload = envelope.unpack(
        data,
        magic,
        error=error,
        bad_magic=f"{name} is not a cipherfuse {kind} file (bad magic or truncated)",
        bad_digest=f"{name}: checksum mismatch, the file is corrupt or truncated",
    )
    try:
        tree = serialization.msgpack_restore(payload)
    except Exception as exc:  # msgpack raises many types on bad input
        raise error(f"{name}: payload is not valid msgpack ({exc})") from exc
    if not isinstance(tree, dict) or set(tree) != keys:
        raise error(f"{name}: expected exactly the fields {sorted(keys)}")
    if tree["format"] != fmt:
        raise error(f"{name}: format {tree['format']!r} is not {fmt!r}")
    if tree["version"] != version:
        raise error(
            f"{name}: version {tree['version']!r} unsupported (this cipherfuse reads {version})"
        )
    return tree


@dataclass(frozen=True)
class QuantizationSpec:
    """Scaling factors a contributor chose for its encryption interface."""

    weight_scale: int
    input_scale: int
    n_layers: int


def _state_dict(params: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda a: np.asarray(a, dtype=np.float32), serialization.to_state_dict(params)
    )


def model_to_bytes(model: TrainedModel, quantization: QuantizationSpec | None = None) -> bytes:
    """Serialize ``model`` (and optionally its scaling factors) to the file format."""
    quant: dict[str, int] = {}
    if quantization is not None:
        quant = {
            "weight_scale": int(quantization.weight_scale),
            "input_scale": int(quantization.input_scale),
            "n_layers": int(quantization.n_layers),
        }
    payload = serialization.msgpack_serialize(
        {
            "format": FORMAT,
            "version": VERSION,
            "config": json.dumps(model.config.to_dict(), sort_keys=True),
            "labels": [int(v) for v in model.labels],
            "quantization": quant,
            "params": _state_dict(model.params),
        }
    )
    return envelope.pack(MAGIC, payload)


def save_model(
    path: Path, model: TrainedModel, quantization: QuantizationSpec | None = None
) -> None:
    """Write ``model`` to ``path`` atomically."""
    # Private to the owner; the file is fsynced, not the folder; the folder must exist.
    atomic_write_bytes(
        path, model_to_bytes(model, quantization), mode=0o600, sync_folder=False, parents=False
    )


def _check_tree(expected: Any, got: Any, where: str) -> None:
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            have = sorted(got) if isinstance(got, dict) else type(got).__name__
            raise ModelFileError(f"params{where}: expected keys {sorted(expected)}, found {have}")
        for k in expected:
            _check_tree(expected[k], got[k], f"{where}/{k}")
        return
    if not isinstance(got, np.ndarray):
        raise ModelFileError(f"params{where}: expected an array, found {type(got).__name__}")
    if got.shape != tuple(expected.shape) or got.dtype != np.float32:
        raise ModelFileError(
            f"params{where}: expected float32 {tuple(expected.shape)}, found {got.dtype} "
            f"{got.shape}"
        )
    if not np.all(np.isfinite(got)):
        raise ModelFileError(f"params{where}: contains NaN or infinity")


def model_from_bytes(
    data: bytes, *, name: str = "<bytes>"
) -> tuple[TrainedModel, QuantizationSpec | None]:
    """Parse and fully validate a model file's bytes.

    Safe on hostile bytes: the config's JSON is size- and depth-bounded, the file must be
    exactly the bytes :func:`model_to_bytes` writes for the model it describes (so nothing
    is accepted that differs from what was written), and every failure is typed.

    Raises:
        ModelFileError: anything wrong, with the file ``name`` and what to do.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ModelFileError(f"{name}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        model, spec = _model_from_bytes(data, name)
    except ModelFileError:
        raise
    except (TypeError, ValueError, OverflowError, ArithmeticError, KeyError, IndexError) as exc:
        raise ModelFileError(f"{name}: invalid model file: {type(exc).__name__}: {exc}") from None
    if model_to_bytes(model, spec) != data:
        raise ModelFileError(f"{name}: not the canonical encoding of the model it describes")
    return model, spec


def _model_from_bytes(data: bytes, name: str) -> tuple[TrainedModel, QuantizationSpec | None]:
    tree = open_envelope(
        data,
        name,
        magic=MAGIC,
        fmt=FORMAT,
        version=VERSION,
        keys=_KEYS,
        kind="model",
        error=ModelFileError,
    )
    try:
        config = ModelConfig.from_dict(
            parse_json(tree["config"], what=f"{name}: config", error=ModelFileError)
        )
    except (TypeError, ValueError, ModelConfigError) as exc:
        raise ModelFileError(f"{name}: invalid architecture config: {exc}") from exc
    labels = tree["labels"]
    if (
        not isinstance(labels, list)
        or not labels
        or not all(
            is_strict_int(v, minimum=0, maximum=config.num_classes - 1, exact=True) for v in labels
        )
        or len(set(labels)) != len(labels)
    ):
        raise ModelFileError(f"{name}: labels must be distinct ints in 0..{config.num_classes - 1}")
    quant = tree["quantization"]
    spec: QuantizationSpec | None = None
    if not isinstance(quant, dict):
        raise ModelFileError(f"{name}: quantization must be a map")
    if quant:
        if set(quant) != {"weight_scale", "input_scale", "n_layers"} or not all(
            is_strict_int(v, minimum=1, exact=True) for v in quant.values()
        ):
            raise ModelFileError(f"{name}: quantization needs positive ints p, q, n_layers")
        if quant["n_layers"] > len(config.layers):
            raise ModelFileError(f"{name}: quantization.n_layers exceeds the layer count")
        spec = QuantizationSpec(quant["weight_scale"], quant["input_scale"], quant["n_layers"])
    expected = param_shapes(config)
    _check_tree(serialization.to_state_dict(expected), tree["params"], "")
    params = serialization.from_state_dict(expected, tree["params"])
    params = jax.tree_util.tree_map(jax.numpy.asarray, params)
    return TrainedModel(config=config, params=params, labels=tuple(labels)), spec


def load_model(path: Path) -> tuple[TrainedModel, QuantizationSpec | None]:
    """Read and validate a model file written by :func:`save_model`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from exc
    return model_from_bytes(data, name=str(path))
