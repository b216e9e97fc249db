"""Quantized description: exact integer arithmetic, scale propagation, documented error."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cipherfuse.data import Dataset
from cipherfuse.nn import (
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    ModelConfig,
    PoolSpec,
    QuantizationError,
    QuantizedConv,
    QuantizedPool,
    TrainedModel,
    first_block_end,
    first_layer_error_bound,
    init_params,
    integer_forward,
    quantize_inputs,
    quantize_model,
    table2_config,
    table6_config,
)


def _model(config: ModelConfig, seed: int = 0) -> TrainedModel:
    return TrainedModel(config, init_params(config, jax.random.key(seed)), (0, 1))


def _naive_conv_same(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: tuple[int, int]
) -> np.ndarray:
    """Direct 2-D cross-correlation with TensorFlow/JAX SAME padding, Python ints."""
    n, h, wd, _ = x.shape
    kh, kw, _, cout = w.shape
    oh, ow = -(-h // stride[0]), -(-wd // stride[1])
    ph = max((oh - 1) * stride[0] + kh - h, 0) // 2
    pw = max((ow - 1) * stride[1] + kw - wd, 0) // 2
    out = np.zeros((n, oh, ow, cout), dtype=object)
    for i in range(oh):
        for j in range(ow):
            for di in range(kh):
                for dj in range(kw):
                    r, c = i * stride[0] + di - ph, j * stride[1] + dj - pw
                    if 0 <= r < h and 0 <= c < wd:
                        out[:, i, j, :] += x[:, r, c, :].astype(object) @ w[di, dj].astype(object)
    return (out + b.astype(object)).astype(np.int64)


@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (2, 1)])
def test_integer_conv_is_exact(stride: tuple[int, int]) -> None:
    config = ModelConfig(
        "t", (7, 6, 2), (ConvSpec(3, (3, 2), stride=stride, activation="none"), FlattenSpec())
    )
    rng = np.random.default_rng(0)
    qm = quantize_model(_model(config), weight_scale=2**7, input_scale=1000, n_layers=1)
    x = rng.integers(-1000, 1000, size=(4, 7, 6, 2))
    expected = _naive_conv_same(x, qm.layers[0].weight, qm.layers[0].bias, stride)  # type: ignore[union-attr]
    np.testing.assert_array_equal(integer_forward(qm, x), expected)


def test_batches_larger_than_a_block_are_exact_and_checked() -> None:
    from cipherfuse.nn.quantize import FORWARD_CHUNK

    config = ModelConfig("t", (7, 6, 2), (ConvSpec(3, (3, 2), activation="none"), FlattenSpec()))
    qm = quantize_model(_model(config), weight_scale=2**7, input_scale=1000, n_layers=1)
    n = 2 * FORWARD_CHUNK + 5
    x = np.random.default_rng(2).integers(-1000, 1000, size=(n, 7, 6, 2))
    expected = _naive_conv_same(x, qm.layers[0].weight, qm.layers[0].bias, (1, 1))  # type: ignore[union-attr]
    np.testing.assert_array_equal(integer_forward(qm, x), expected)
    x[n - 1, 0, 0, 0] = 2**58  # one sample in the last block would overflow int64
    with pytest.raises(QuantizationError, match="overflow"):
        integer_forward(qm, x)


def test_int64_path_equals_float_path_for_large_values() -> None:
    config = ModelConfig("t", (5, 5, 1), (ConvSpec(2, (3, 3), activation="none"), FlattenSpec()))
    qm = quantize_model(_model(config), weight_scale=2**20, input_scale=2**20, n_layers=1)
    x = np.random.default_rng(1).integers(-(2**30), 2**30, size=(3, 5, 5, 1))
    got = integer_forward(qm, x)  # magnitudes beyond 2**53: exact int64 path
    expected = _naive_conv_same(x, qm.layers[0].weight, qm.layers[0].bias, (1, 1))  # type: ignore[union-attr]
    np.testing.assert_array_equal(got, expected)


def test_scale_propagation_table6() -> None:
    qm = quantize_model(_model(table6_config()), weight_scale=2**7, input_scale=1000, n_layers=5)
    conv1, pool1, conv2, _, _ = qm.layers
    assert isinstance(conv1, QuantizedConv)
    assert conv1.output_scale == 128 * 1000
    assert isinstance(pool1, QuantizedPool)
    assert pool1.pool == "sum"
    assert pool1.output_scale == 4 * 128 * 1000  # average = sum, scale x window
    assert conv2.output_scale == 128 * 4 * 128 * 1000  # type: ignore[union-attr]
    assert qm.output_scale == 4 * 128 * 4 * 128 * 1000
    assert conv1.weight.dtype == np.int64
    assert first_block_end(table6_config()) == 2
    assert (
        quantize_model(_model(table6_config()), weight_scale=32, input_scale=1000).resume_layer == 2
    )


@pytest.mark.parametrize("p", [2**5, 2**7])
def test_first_block_within_documented_bound(mnist: Dataset, p: int) -> None:
    model = _model(table6_config(), seed=3)
    qm = quantize_model(model, weight_scale=p, input_scale=1000)
    x = mnist.images[:64]
    ints = integer_forward(qm, quantize_inputs(x, 1000))
    got = ints / qm.output_scale
    reference = model.layer_output(x, stop_layer=qm.resume_layer)
    err = np.max(np.abs(got - reference))
    bound = first_layer_error_bound(qm, x_max=1.0)
    assert err <= bound
    assert err > 0  # quantization really happened
    # a finer p gives a smaller error
    if p == 2**5:
        fine = quantize_model(model, weight_scale=2**9, input_scale=1000)
        fine_err = np.max(
            np.abs(integer_forward(fine, quantize_inputs(x, 1000)) / fine.output_scale - reference)
        )
        assert fine_err < err


def test_whole_model_quantized_converges_to_float(mnist: Dataset) -> None:
    model = _model(table2_config(1), seed=2)
    x = mnist.images[:40]
    reference = model.features(x)
    errors = []
    for p in (2**5, 2**11):
        whole = quantize_model(
            model, weight_scale=p, input_scale=1000, n_layers=len(model.config.layers)
        )
        assert whole.resume_layer == len(model.config.layers)
        feats = integer_forward(whole, quantize_inputs(x, 1000)) / whole.output_scale
        errors.append(np.max(np.abs(feats - reference)))
    assert errors[1] < errors[0] / 16
    assert errors[1] < 0.01 * np.max(np.abs(reference))


def test_taylor_sigmoid_layer_in_integers() -> None:
    config = ModelConfig("s", (6,), (DenseSpec(3, activation="taylor_sigmoid"),))
    model = _model(config, seed=5)
    qm = quantize_model(model, weight_scale=2**7, input_scale=100, n_layers=1)
    assert qm.output_scale == 48 * (128 * 100) ** 3
    x = np.random.default_rng(2).uniform(-1, 1, size=(10, 6)).astype(np.float32)
    got = integer_forward(qm, quantize_inputs(x, 100)) / qm.output_scale
    reference = model.layer_output(x, stop_layer=1)
    np.testing.assert_allclose(got, reference, atol=0.02)


def test_errors() -> None:
    model = _model(table6_config())
    with pytest.raises(QuantizationError, match="weight_scale"):
        quantize_model(model, weight_scale=0, input_scale=1000)
    with pytest.raises(QuantizationError, match="n_layers"):
        quantize_model(model, weight_scale=32, input_scale=1000, n_layers=9)
    qm = quantize_model(model, weight_scale=32, input_scale=1000)
    with pytest.raises(QuantizationError, match="int64"):
        integer_forward(qm, np.zeros((1, 28, 28, 1), np.float32))  # type: ignore[arg-type]
    with pytest.raises(QuantizationError, match="NaN"):
        quantize_inputs(np.array([np.nan]), 1000)
    with pytest.raises(QuantizationError, match="overflow"):
        integer_forward(qm, np.full((1, 28, 28, 1), 2**58, dtype=np.int64))
    with pytest.raises(QuantizationError, match="propagated scale"):
        quantize_model(model, weight_scale=2**31, input_scale=2**31, n_layers=5)
    pool_only = ModelConfig("p", (4, 4, 1), (PoolSpec("avg", (2, 2)), FlattenSpec()))
    with pytest.raises(QuantizationError, match="no convolution"):
        quantize_model(_model(pool_only), weight_scale=2, input_scale=2)


def test_features_of_a_private_input_buffer_equal_the_copied_ones() -> None:
    """``features_async(private_input=True)`` (XLA may read the buffer in place): same values."""
    model = _model(table6_config())
    rng = np.random.default_rng(4)
    middle = rng.random((7, 14, 14, 32)).astype(np.float32)
    raw = np.empty(middle.nbytes + 64, np.uint8)  # a 64-byte aligned copy (the in-place case)
    start = -raw.ctypes.data % 64
    aligned = raw[start : start + middle.nbytes].view(np.float32).reshape(middle.shape)
    aligned[...] = middle
    want = model.features(middle, start_layer=2, batch_size=4)
    for x in (aligned, middle):
        got = model.features_async(x, start_layer=2, batch_size=4, private_input=True)()
        np.testing.assert_array_equal(got, want)
