"""The agreed interface end to end: encrypt_model -> bytes -> cipherspace_features -> decrypt."""

from __future__ import annotations

import hashlib

import msgpack
import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.errors import SerializationError
from cipherfuse.fusion.features import FeatureExtractor, quantized_features
from cipherfuse.he.nn import (
    CipherspaceError,
    EncryptedModel,
    cipherspace_features,
    decrypt_model,
    decrypt_tensor,
    encrypt_model,
    evaluate_first_block,
)
from cipherfuse.he.nn import serialize as hser
from cipherfuse.nn.quantize import integer_forward, quantize_inputs, quantize_model

from .conftest import seed, small_model

STRATEGY_M = {"element-wise": 1, "matrix-pair-wise": 4}


def _inputs(n: int, key: int = 0) -> np.ndarray:
    return np.random.default_rng(key).random((n, 10, 10, 1)).astype(np.float32)


@pytest.mark.parametrize("strategy", sorted(STRATEGY_M))
def test_paper_roundtrip_features_and_decryption_are_exact(strategy, paper_keys) -> None:
    model = small_model(1)
    sk, M = paper_keys[STRATEGY_M[strategy]]
    enc = encrypt_model(model, M, weight_scale=2**7, input_scale=1000, strategy=strategy)
    assert enc.params_name == "paper" and enc.key_fingerprint == sk.key_id
    loaded = EncryptedModel.from_bytes(enc.to_bytes())
    assert loaded.to_bytes() == enc.to_bytes()
    q = quantize_model(model, weight_scale=2**7, input_scale=1000, n_layers=2)
    # The verifier: no secret key, features equal the quantized plaintext model's.
    fx = cipherspace_features(loaded)
    assert isinstance(fx, FeatureExtractor)
    assert fx.labels == model.labels and fx.feature_dim == model.config.feature_dim
    x = _inputs(7)
    np.testing.assert_array_equal(fx(x), quantized_features(model, q)(x))
    # The cipherspace block itself decrypts to integer_forward exactly.
    ct, report = evaluate_first_block(loaded, quantize_inputs(x, 1000))
    assert report is not None and report.exact
    np.testing.assert_array_equal(
        decrypt_tensor(sk, ct), integer_forward(q, quantize_inputs(x, 1000))
    )
    # The initiator: decrypted weights equal the quantized weights exactly.
    plain = decrypt_model(loaded, sk)
    kernel = np.asarray(plain.params["layer_0"]["kernel"], np.float64) * 2**7
    np.testing.assert_array_equal(kernel, q.layers[0].weight)  # type: ignore[union-attr]
    bias = np.rint(np.asarray(plain.params["layer_0"]["bias"], np.float64) * 2**7 * 1000)
    np.testing.assert_array_equal(bias, q.layers[0].bias)  # type: ignore[union-attr]
    # It is a working Flax model: its features differ from the original only by rounding.
    diff = np.abs(plain.features(x) - model.features(x)).max()
    assert 0 < diff < 0.05 * np.abs(model.features(x)).max()
    q2 = quantize_model(plain, weight_scale=2**7, input_scale=1000, n_layers=2)
    np.testing.assert_array_equal(q2.layers[0].weight, q.layers[0].weight)  # type: ignore[union-attr]
    np.testing.assert_array_equal(
        np.asarray(plain.params["layer_2"]["kernel"]), np.asarray(model.params["layer_2"]["kernel"])
    )


def test_encrypted_bytes_do_not_contain_the_first_layer(paper_keys) -> None:
    model = small_model(2)
    _, M = paper_keys[1]
    blob = encrypt_model(model, M).to_bytes()
    kernel = np.asarray(model.params["layer_0"]["kernel"], np.float32).tobytes()
    assert kernel not in blob
    q = quantize_model(model, weight_scale=2**7, input_scale=1000, n_layers=2)
    assert q.layers[0].weight.astype("<i8").tobytes() not in blob  # type: ignore[union-attr]


def test_secure_encryption_decrypts_exactly_but_has_no_keyless_features(secure_keys) -> None:
    model = small_model(3, activation="none")
    sk, pk = secure_keys[1]
    enc = EncryptedModel.from_bytes(encrypt_model(model, pk, seed=seed(5)).to_bytes())
    assert enc.params_name == "secure"
    x_int = quantize_inputs(_inputs(3), 1000)
    ct, report = evaluate_first_block(enc, x_int)
    assert report is None
    q = quantize_model(model, weight_scale=2**7, input_scale=1000, n_layers=2)
    np.testing.assert_array_equal(decrypt_tensor(sk, ct), integer_forward(q, x_int))
    with pytest.raises(CipherspaceError, match="secure"):
        cipherspace_features(enc)
    # Randomized: two encryptions of the same model differ.
    other = encrypt_model(model, pk, seed=seed(6))
    assert not np.array_equal(other.weights.weights.data, enc.weights.weights.data)
    back = decrypt_model(enc, sk)
    np.testing.assert_array_equal(
        np.asarray(back.params["layer_0"]["kernel"], np.float64) * 2**7,
        q.layers[0].weight,  # type: ignore[union-attr]
    )


def test_wrong_keys_and_arguments_are_rejected(paper_keys) -> None:
    model = small_model(4)
    sk1, M1 = paper_keys[1]
    sk4, M4 = paper_keys[4]
    with pytest.raises(he.ParameterError, match="length 1"):
        encrypt_model(model, M4)  # element-wise needs m = 1
    with pytest.raises(he.ParameterError, match="length 4"):
        encrypt_model(model, M1, strategy="matrix-pair-wise")
    with pytest.raises(he.ParameterError, match="strategy"):
        encrypt_model(model, M1, strategy="row-wise")  # type: ignore[arg-type]
    with pytest.raises(he.ParameterError, match="seed"):
        encrypt_model(model, he.public_keygen(sk1), seed=b"short")
    enc = encrypt_model(model, M1)
    with pytest.raises(he.KeyMismatchError):
        decrypt_model(enc, sk4)
    with pytest.raises(CipherspaceError, match="max pooling"):
        encrypt_model(small_model(4, pool="max"), M1)


@pytest.fixture(scope="module")
def blob(paper_keys) -> bytes:
    return encrypt_model(small_model(5), paper_keys[1][1]).to_bytes()


def _reseal(payload: dict) -> bytes:
    raw = msgpack.packb(payload, use_bin_type=True)
    return hser.MAGIC + hashlib.sha256(raw).digest() + raw


def _payload(blob: bytes) -> dict:
    return msgpack.unpackb(blob[len(hser.MAGIC) + 32 :], raw=False)


def test_corrupt_truncated_and_wrong_version_data_is_rejected(blob: bytes) -> None:
    with pytest.raises(SerializationError, match="checksum"):
        EncryptedModel.from_bytes(blob[:-10])
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x40
    with pytest.raises(SerializationError, match="checksum"):
        EncryptedModel.from_bytes(bytes(flipped))
    with pytest.raises(SerializationError, match="magic"):
        EncryptedModel.from_bytes(b"PK" + blob[2:])
    with pytest.raises(SerializationError, match="truncated"):
        EncryptedModel.from_bytes(blob[:20])
    newer = bytearray(blob)
    newer[len(hser.MAGIC) - 1] = 2
    with pytest.raises(SerializationError, match="version 2"):
        EncryptedModel.from_bytes(bytes(newer))
    payload = _payload(blob)
    payload["version"] = 9
    with pytest.raises(SerializationError, match="version"):
        EncryptedModel.from_bytes(_reseal(payload))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda p: p.pop("bias"), "exactly the keys"),
        (lambda p: p.update(extra=1), "exactly the keys"),
        (lambda p: p.update(weight_scale="128"), "weight_scale"),
        (lambda p: p.update(labels=[1, 1]), "labels"),
        (lambda p: p.update(strategy="row-wise"), "strategy"),
        (lambda p: p.update(weight_shape=[3, 3, 1, 5]), "weight"),
        (lambda p: p.update(key_fingerprint="0" * 24), "key_fingerprint"),
        (lambda p: p.update(weights=p["weights"][:-1]), "checksum|truncated"),
        (lambda p: p.update(plain_params=msgpack.packb({"head": 1})), "plain_params"),
        (lambda p: p.update(config='{"name": 1}'), "config"),
    ],
)
def test_schema_violations_are_rejected(blob: bytes, mutate, match: str) -> None:
    payload = _payload(blob)
    mutate(payload)
    with pytest.raises(SerializationError, match=match):
        EncryptedModel.from_bytes(_reseal(payload))


def test_payload_is_never_unpickled(blob: bytes) -> None:
    import pickle

    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (pytest.fail, ("unpickled!",))

    raw = pickle.dumps(Boom())
    with pytest.raises(SerializationError, match=r"map|msgpack"):
        EncryptedModel.from_bytes(hser.MAGIC + hashlib.sha256(raw).digest() + raw)
