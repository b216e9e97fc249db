"""MetaModel files: round trip, and corrupt / truncated / wrong-version / inconsistent rejected."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
from flax import serialization

from cipherfuse.data import Dataset
from cipherfuse.errors import SerializationError
from cipherfuse.fusion import (
    FeatureExtractor,
    FusionConfig,
    MetaModel,
    MetaModelFileError,
    PlainFeatures,
    PrefixFeatures,
    fuse,
    load_metamodel,
    metamodel_from_bytes,
    metamodel_to_bytes,
    quantized_features,
    save_metamodel,
)
from cipherfuse.fusion.serialize import MAGIC
from cipherfuse.nn import TrainedModel, init_params, quantize_model, table6_config


def _models() -> list[TrainedModel]:
    config = table6_config()
    labels = [(0, 1, 2, 3, 4, 5, 6), (0, 1, 2, 3, 4, 8, 9)]
    return [
        TrainedModel(config, init_params(config, jax.random.key(i)), s)
        for i, s in enumerate(labels)
    ]


@pytest.fixture(scope="module")
def images(mnist: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return mnist.images[:200], mnist.labels[:200]


@pytest.fixture(scope="module")
def meta(images: tuple[np.ndarray, np.ndarray]) -> MetaModel:
    """A Strategy II MetaModel of one plaintext and one quantized (p = 2^7) extractor."""
    plain, other = _models()
    qm = quantize_model(other, weight_scale=2**7, input_scale=1000)
    extractors: list[FeatureExtractor] = [PlainFeatures(plain), quantized_features(other, qm)]
    x, y = images
    return fuse(
        extractors, x[:100], y[:100], "II", jax.random.key(3), FusionConfig(1, 1, progress=False)
    )


def _resign(data: bytes, mutate: Callable[[dict[str, Any]], None]) -> bytes:
    """Change the payload and write a valid checksum, so only the schema check can object."""
    tree = serialization.msgpack_restore(data[len(MAGIC) + 32 :])
    mutate(tree)
    payload = serialization.msgpack_serialize(tree)
    return MAGIC + hashlib.sha256(payload).digest() + payload


def test_round_trip_gives_identical_predictions(
    meta: MetaModel, images: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "meta.cfmeta"
    save_metamodel(path, meta)
    assert [p.name for p in tmp_path.iterdir()] == ["meta.cfmeta"]  # no temp file left
    back = load_metamodel(path)
    x = images[0][100:]
    before = meta.head.logits_from_features([e(x) for e in meta.extractors])
    after = back.head.logits_from_features([e(x) for e in back.extractors])
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(back.predict(x), meta.predict(x))
    assert back.head.strategy == "II"
    assert back.head.layout == meta.head.layout
    assert isinstance(back.extractors[0], PlainFeatures)
    second = back.extractors[1]
    assert isinstance(second, PrefixFeatures) and second.quantized is not None
    assert (second.quantized.weight_scale, second.quantized.input_scale) == (2**7, 1000)
    # the quantized prefix really runs: its features differ from the float model's
    assert not np.array_equal(second(x), PlainFeatures(second.model)(x))
    assert metamodel_to_bytes(back) == metamodel_to_bytes(meta)


def test_bytes_are_the_literal_magic_the_digest_and_the_payload(meta: MetaModel) -> None:
    """The envelope (cipherfuse.envelope) writes exactly the documented layout, also for
    the model files inside."""
    data = metamodel_to_bytes(meta)
    payload = data[8 + 32 :]
    assert data == b"CFMETA\x00\x00" + hashlib.sha256(payload).digest() + payload
    tree = serialization.msgpack_restore(payload)
    assert serialization.msgpack_serialize(tree) == payload
    for model in tree["models"]:
        inner = model[8 + 32 :]
        assert model == b"CFMODEL\x00" + hashlib.sha256(inner).digest() + inner


def test_corrupt_and_truncated_files_are_rejected(meta: MetaModel, tmp_path: Path) -> None:
    data = metamodel_to_bytes(meta)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    with pytest.raises(MetaModelFileError, match="checksum"):
        metamodel_from_bytes(bytes(flipped))
    with pytest.raises(MetaModelFileError, match="checksum"):
        metamodel_from_bytes(data[:-100])
    with pytest.raises(MetaModelFileError, match="magic or truncated"):
        metamodel_from_bytes(data[:20])
    with pytest.raises(MetaModelFileError, match="not a cipherfuse MetaModel"):
        metamodel_from_bytes(b"\x80\x04K\x01." + data[5:])  # a pickle header is not our magic
    path = tmp_path / "cut.cfmeta"
    path.write_bytes(data[: len(data) - 1])
    with pytest.raises(SerializationError, match=str(path)):
        load_metamodel(path)
    with pytest.raises(MetaModelFileError, match="cannot read"):
        load_metamodel(tmp_path / "missing.cfmeta")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.update(version=2), "version 2 unsupported"),
        (lambda t: t.update(format="cipherfuse.model"), "format"),
        (lambda t: t.pop("seconds"), "exactly the fields"),
        (lambda t: t.update(strategy="III"), "strategy"),
        (lambda t: t["label_sets"].__setitem__(0, [0, 1, 2]), "does not match"),
        (lambda t: t.update(models=t["models"][:1]), "one model file per fused model"),
        (lambda t: t.update(feature_dims=[784, 100]), "does not match"),
        (lambda t: t["params"].update(A=t["params"]["A"][:, :3]), "A must be float32"),
        (lambda t: t.update(std=-t["std"]), "std must be positive"),
        (lambda t: t.update(mean=t["mean"].astype(np.float64)), "mean must be float32"),
        (lambda t: t["models"].__setitem__(1, t["models"][1][:-1]), "checksum"),
        (lambda t: t["models"].__setitem__(0, "model"), "model file's bytes"),
    ],
)
def test_schema_violations_are_rejected(
    meta: MetaModel, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = _resign(metamodel_to_bytes(meta), mutate)
    with pytest.raises(MetaModelFileError, match=message):
        metamodel_from_bytes(data)


def test_extractors_without_a_file_form_are_refused(
    meta: MetaModel, images: tuple[np.ndarray, np.ndarray]
) -> None:
    model = _models()[0]
    opaque = PrefixFeatures(
        model=model,
        prefix=lambda x: (np.zeros((x.shape[0], 14, 14, 32), np.int64), 1),
        resume_layer=2,
    )
    x, y = images
    bad = fuse([opaque], x[:100], y[:100], "I", jax.random.key(0), FusionConfig(1, 0))
    with pytest.raises(MetaModelFileError, match="decrypt the model first"):
        metamodel_to_bytes(bad)
