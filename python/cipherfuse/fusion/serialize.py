"""MetaModel files: versioned, checksummed, schema-checked msgpack; never pickle.

Layout::

    b"CFMETA\\x00\\x00"  (8-byte magic)
    sha256(payload)     (32 bytes)
    payload             flax.serialization.msgpack_serialize({
                            "format": "cipherfuse.metamodel", "version": 1,
                            "strategy": "I" | "II", "num_classes": d,
                            "feature_dims": [|f_i|...], "label_sets": [[l_i...]...],
                            "mean": float32 (|f_c|,), "std": float32 (|f_c|,),
                            "params": {"A": float32 (|f_c|, |h|), "B": float32 (|h|, d)},
                            "seconds": float (fusion training time),
                            "models": [<model file bytes of cipherfuse.nn.serialize>...]})

Each fused model is stored as a complete model file (its own magic, checksum,
architecture config and weights); a model whose features were computed with its
first block quantized (:func:`~cipherfuse.fusion.features.quantized_features`)
carries its scaling factors, so loading rebuilds the same integer prefix.

Loading checks the magic, the checksum, the exact key set, the format and
version, every model file, and that the fusion layer's shapes, label sets and
feature sizes agree with the models. Extractors that cannot be rebuilt from a
file (e.g. features computed in cipherspace under someone's key) are refused on
save: decrypt the models first and fuse plaintext or quantized features.
Files are written atomically (temp file in the same directory, fsync, rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import serialization

from cipherfuse import envelope
from cipherfuse.errors import SerializationError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.fusion.features import FeatureExtractor, PlainFeatures, PrefixFeatures
from cipherfuse.fusion.features import quantized_features as _quantized_features
from cipherfuse.fusion.head import FusedHead, FusionLayout, MetaModel
from cipherfuse.nn.errors import ModelFileError
from cipherfuse.nn.quantize import quantize_model
from cipherfuse.nn.serialize import (
    QuantizationSpec,
    model_from_bytes,
    model_to_bytes,
    open_envelope,
)
from cipherfuse.validation import is_strict_int, strict_int

MAGIC = b"CFMETA\x00\x00"
FORMAT = "cipherfuse.metamodel"
VERSION = 1
_KEYS = {
    "format",
    "version",
    "strategy",
    "num_classes",
    "feature_dims",
    "label_sets",
    "mean",
    "std",
    "params",
    "seconds",
    "models",
}


class MetaModelFileError(SerializationError):
    """A MetaModel file is corrupt, truncated, of an unknown version or inconsistent."""


def _extractor_bytes(e: FeatureExtractor, i: int) -> bytes:
    if isinstance(e, PlainFeatures):
        return model_to_bytes(e.model)
    if isinstance(e, PrefixFeatures) and e.quantized is not None:
        qm = e.quantized
        spec = QuantizationSpec(qm.weight_scale, qm.input_scale, qm.resume_layer)
        return model_to_bytes(e.model, spec)
    raise MetaModelFileError(
        f"extractor {i} ({type(e).__name__}) cannot be saved: only plaintext and quantized "
        "features can be rebuilt from a file; decrypt the model first"
    )


def metamodel_to_bytes(meta: MetaModel) -> bytes:
    """Serialize a MetaModel (fusion layer and every fused model) to the file format.

    Raises:
        MetaModelFileError: an extractor is neither plaintext nor quantized features.
    """
    head = meta.head
    layout = head.layout
    models = [_extractor_bytes(e, i) for i, e in enumerate(meta.extractors)]
    payload = serialization.msgpack_serialize(
        {
            "format": FORMAT,
            "version": VERSION,
            "strategy": head.strategy,
            "num_classes": int(layout.num_classes),
            "feature_dims": [int(d) for d in layout.feature_dims],
            "label_sets": [[int(v) for v in s] for s in layout.label_sets],
            "mean": np.asarray(head.mean, np.float32),
            "std": np.asarray(head.std, np.float32),
            "params": {
                "A": np.asarray(head.params["A"], np.float32),
                "B": np.asarray(head.params["B"], np.float32),
            },
            "seconds": float(head.seconds),
            "models": models,
        }
    )
    return envelope.pack(MAGIC, payload)


def save_metamodel(path: Path, meta: MetaModel) -> None:
    """Write ``meta`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    # Private to the owner; the file is fsynced, not the folder; the folder must exist.
    atomic_write_bytes(path, metamodel_to_bytes(meta), mode=0o600, sync_folder=False, parents=False)


def _array(tree: dict[str, Any], key: str, shape: tuple[int, ...], name: str) -> Any:
    value = tree[key]
    if not isinstance(value, np.ndarray) or value.dtype != np.float32 or value.shape != shape:
        got = (value.dtype, value.shape) if isinstance(value, np.ndarray) else type(value).__name__
        raise MetaModelFileError(f"{name}: {key} must be float32 {shape}, found {got}")
    if not np.all(np.isfinite(value)):
        raise MetaModelFileError(f"{name}: {key} contains NaN or infinity")
    return value


def _int_list(value: Any, what: str, name: str) -> list[int]:
    if not isinstance(value, list) or not all(is_strict_int(v) for v in value):
        raise MetaModelFileError(f"{name}: {what} must be a list of integers")
    return value


def _rebuild_extractor(blob: Any, i: int, name: str) -> FeatureExtractor:
    if not isinstance(blob, bytes):
        raise MetaModelFileError(f"{name}: models[{i}] must be a model file's bytes")
    try:
        model, spec = model_from_bytes(blob, name=f"{name} models[{i}]")
    except ModelFileError as exc:
        raise MetaModelFileError(str(exc)) from exc
    if spec is None:
        return PlainFeatures(model)
    try:
        qm = quantize_model(
            model,
            weight_scale=spec.weight_scale,
            input_scale=spec.input_scale,
            n_layers=spec.n_layers,
        )
    except ValueError as exc:
        raise MetaModelFileError(f"{name}: models[{i}] quantization invalid: {exc}") from exc
    return _quantized_features(model, qm)


def metamodel_from_bytes(data: bytes, *, name: str = "<bytes>") -> MetaModel:
    """Parse and fully validate a MetaModel file's bytes.

    Raises:
        MetaModelFileError: anything wrong, naming ``name`` and the field.
    """
    tree = open_envelope(
        data,
        name,
        magic=MAGIC,
        fmt=FORMAT,
        version=VERSION,
        keys=_KEYS,
        kind="MetaModel",
        error=MetaModelFileError,
    )
    strategy = tree["strategy"]
    if strategy not in ("I", "II"):
        raise MetaModelFileError(f"{name}: strategy must be 'I' or 'II', got {strategy!r}")
    num_classes = tree["num_classes"]
    strict_int(num_classes, f"{name}: num_classes", error=MetaModelFileError)
    dims = _int_list(tree["feature_dims"], "feature_dims", name)
    sets = tree["label_sets"]
    if not isinstance(sets, list):
        raise MetaModelFileError(f"{name}: label_sets must be a list of label lists")
    label_sets = tuple(tuple(_int_list(s, "label_sets", name)) for s in sets)
    try:
        layout = FusionLayout(tuple(dims), label_sets, num_classes)
    except ValueError as exc:
        raise MetaModelFileError(f"{name}: inconsistent fusion layout: {exc}") from exc
    models = tree["models"]
    if not isinstance(models, list) or len(models) != len(dims):
        raise MetaModelFileError(f"{name}: need one model file per fused model ({len(dims)})")
    extractors = tuple(_rebuild_extractor(blob, i, name) for i, blob in enumerate(models))
    for i, e in enumerate(extractors):
        if e.feature_dim != dims[i] or e.labels != label_sets[i]:
            raise MetaModelFileError(
                f"{name}: models[{i}] (features {e.feature_dim}, labels {e.labels}) does not "
                f"match the fusion layout (features {dims[i]}, labels {label_sets[i]})"
            )
        if max(e.labels) >= num_classes:
            raise MetaModelFileError(f"{name}: models[{i}] has labels beyond num_classes")
    mean = _array(tree, "mean", (layout.feature_dim,), name)
    std = _array(tree, "std", (layout.feature_dim,), name)
    if not np.all(std > 0):
        raise MetaModelFileError(f"{name}: std must be positive")
    params = tree["params"]
    if not isinstance(params, dict) or set(params) != {"A", "B"}:
        raise MetaModelFileError(f"{name}: params must have exactly A and B")
    a = _array(params, "A", (layout.feature_dim, layout.hidden), name)
    b = _array(params, "B", (layout.hidden, layout.num_classes), name)
    seconds = tree["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise MetaModelFileError(f"{name}: seconds must be a non-negative number")
    head = FusedHead(
        layout=layout,
        strategy=strategy,
        mean=mean,
        std=std,
        params={"A": jnp.asarray(a), "B": jnp.asarray(b)},
        seconds=float(seconds),
    )
    return MetaModel(extractors=extractors, head=head)


def load_metamodel(path: Path) -> MetaModel:
    """Read and validate a MetaModel file written by :func:`save_metamodel`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MetaModelFileError(f"cannot read MetaModel file {path}: {exc}") from exc
    return metamodel_from_bytes(data, name=str(path))
