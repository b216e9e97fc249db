"""Model files: round trip, checksum, version, schema, atomic writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from cipherfuse.nn import (
    ModelFileError,
    QuantizationSpec,
    TrainedModel,
    init_params,
    load_model,
    model_from_bytes,
    model_to_bytes,
    save_model,
    table2_config,
    table6_config,
)
from cipherfuse.nn.serialize import MAGIC


@pytest.fixture
def model() -> TrainedModel:
    config = table6_config()
    return TrainedModel(config, init_params(config, jax.random.key(9)), (0, 4, 7))


def _resign(payload_tree: dict[str, object]) -> bytes:
    payload = serialization.msgpack_serialize(payload_tree)
    return MAGIC + hashlib.sha256(payload).digest() + payload


def _tree(data: bytes) -> dict[str, object]:
    tree = serialization.msgpack_restore(data[len(MAGIC) + 32 :])
    assert isinstance(tree, dict)
    return tree


def test_roundtrip(model: TrainedModel, tmp_path: Path) -> None:
    path = tmp_path / "m.cfm"
    save_model(path, model, QuantizationSpec(128, 1000, 2))
    assert [p.name for p in tmp_path.iterdir()] == ["m.cfm"]  # no temp file left behind
    loaded, quant = load_model(path)
    assert quant == QuantizationSpec(128, 1000, 2)
    assert loaded.config == model.config
    assert loaded.labels == model.labels
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(loaded.logits(x), model.logits(x))
    assert path.read_bytes()[:8] == MAGIC
    assert load_model_no_quant(model)[1] is None


def test_bytes_are_the_literal_magic_the_digest_and_the_payload(model: TrainedModel) -> None:
    """The envelope (cipherfuse.envelope) writes exactly the documented layout."""
    data = model_to_bytes(model, QuantizationSpec(128, 1000, 2))
    payload = data[8 + 32 :]
    assert serialization.msgpack_serialize(_tree(data)) == payload
    assert data == b"CFMODEL\x00" + hashlib.sha256(payload).digest() + payload


def load_model_no_quant(model: TrainedModel) -> tuple[TrainedModel, QuantizationSpec | None]:
    return model_from_bytes(model_to_bytes(model))


def test_every_flipped_byte_region_is_detected(model: TrainedModel) -> None:
    data = bytearray(model_to_bytes(model))
    for pos in (0, 9, 50, len(data) // 2, len(data) - 1):
        corrupt = bytearray(data)
        corrupt[pos] ^= 0x40
        with pytest.raises(ModelFileError):
            model_from_bytes(bytes(corrupt), name="x.cfm")
    with pytest.raises(ModelFileError, match=r"truncated|checksum"):
        model_from_bytes(bytes(data[:-10]), name="x.cfm")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t: t.update(version=2), "version"),
        (lambda t: t.update(format="other"), "format"),
        (lambda t: t.update(extra=1), "fields"),
        (lambda t: t.update(labels=[0, 0]), "labels"),
        (lambda t: t.update(labels=[11]), "labels"),
        (
            lambda t: t.update(quantization={"weight_scale": 0, "input_scale": 1, "n_layers": 1}),
            "quantization",
        ),
        (lambda t: t.update(config="{not json"), "config"),
        (lambda t: t.update(config=json.dumps(table2_config(1).to_dict())), "params"),
        (lambda t: t["params"]["head"].update(bias=np.zeros(10, np.float64)), "float32"),
        (lambda t: t["params"]["head"].update(bias=np.full(10, np.nan, np.float32)), "NaN"),
        (lambda t: t["params"].pop("layer_0"), "keys"),
    ],
)
def test_schema_violations_with_valid_checksum(
    model: TrainedModel, mutate: object, match: str
) -> None:
    tree = _tree(model_to_bytes(model))
    mutate(tree)  # type: ignore[operator]
    with pytest.raises(ModelFileError, match=match):
        model_from_bytes(_resign(tree))


def test_not_a_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="magic"):
        model_from_bytes(b"\x80\x04\x95 pickle-looking bytes")
    with pytest.raises(ModelFileError, match="cannot read"):
        load_model(tmp_path / "missing.cfm")
    payload = b"\xc1"  # reserved msgpack byte
    with pytest.raises(ModelFileError, match="msgpack"):
        model_from_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
