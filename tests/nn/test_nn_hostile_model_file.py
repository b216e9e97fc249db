"""Hostile model files (re-checksummed): typed errors, and only canonical bytes accepted."""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import pytest
from flax import serialization

from cipherfuse.nn import DenseSpec, FlattenSpec, ModelConfig, TrainedModel
from cipherfuse.nn.errors import ModelFileError
from cipherfuse.nn.model import init_params
from cipherfuse.nn.serialize import MAGIC, model_from_bytes, model_to_bytes


def _model() -> TrainedModel:
    config = ModelConfig(name="m", input_shape=(4, 4, 1), layers=(FlattenSpec(), DenseSpec(3)))
    return TrainedModel(
        config=config, params=init_params(config, jax.random.PRNGKey(0)), labels=(0, 1, 2)
    )


def _tree(blob: bytes) -> dict[str, Any]:
    restored: dict[str, Any] = serialization.msgpack_restore(blob[len(MAGIC) + 32 :])
    return restored


def _reseal(tree: dict[str, Any]) -> bytes:
    payload = serialization.msgpack_serialize(tree)
    return MAGIC + hashlib.sha256(payload).digest() + payload


def test_valid_file_round_trips() -> None:
    blob = model_to_bytes(_model())
    model, spec = model_from_bytes(blob)
    assert spec is None and model_to_bytes(model) == blob


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("config", 5),
        ("config", ["x"]),
        ("labels", [True, 1]),  # bool is not a label
        ("labels", [[0]]),
        ("quantization", {"weight_scale": 1.5, "input_scale": 1, "n_layers": 1}),
        ("params", {"layer_1": 3}),
        ("params", []),
    ],
)
def test_hostile_fields_are_model_file_errors(field: str, value: Any) -> None:
    tree = _tree(model_to_bytes(_model()))
    tree[field] = value
    with pytest.raises(ModelFileError):
        model_from_bytes(_reseal(tree))


def test_non_bytes_input_is_a_model_file_error() -> None:
    with pytest.raises(ModelFileError, match="expected bytes"):
        model_from_bytes("CFMODEL")  # type: ignore[arg-type]


def test_non_canonical_config_text_is_refused() -> None:
    """The same architecture with extra spaces in its JSON: accepted before, refused now."""
    tree = _tree(model_to_bytes(_model()))
    tree["config"] = tree["config"].replace(", ", ",  ")
    with pytest.raises(ModelFileError, match="canonical"):
        model_from_bytes(_reseal(tree))
