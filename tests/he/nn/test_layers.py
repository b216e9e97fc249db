"""Encrypted layers against the plain integer reference (cipherfuse.nn.quantize.integer_forward)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cipherfuse import he
from cipherfuse.geometry import im2col, im2col_t
from cipherfuse.he.nn import (
    CipherTensor,
    conv_on_encrypted,
    decrypt_tensor,
    dense_on_encrypted,
    encrypt_weights,
    encrypted_conv,
    encrypted_conv2d,
    encrypted_dense,
    relu_components,
    sum_pool,
)
from cipherfuse.nn.config import table6_config
from cipherfuse.nn.quantize import (
    QuantizedConv,
    QuantizedLayer,
    QuantizedModel,
    QuantizedPool,
    integer_forward,
)

KERNELS = ["reference", "cpp-scalar", "cpp"]
STRATEGY_M = {"element-wise": 1, "matrix-pair-wise": 4}


def _reference(x: np.ndarray, *layers: QuantizedLayer) -> np.ndarray:
    """integer_forward of a stack of quantized layers (independent numpy int64 code)."""
    model = QuantizedModel(x.shape[1:], 1, 1, tuple(layers), 1, len(layers), table6_config())
    return integer_forward(model, x)


def _conv(w: np.ndarray, b: np.ndarray, stride: tuple[int, ...], padding: str) -> QuantizedConv:
    return QuantizedConv(w, b, 1, 1, 1, stride, padding, "none")  # type: ignore[arg-type]


def _rand(shape: tuple[int, ...], lo: int, hi: int, key: int) -> np.ndarray:
    return np.random.default_rng(key).integers(lo, hi, size=shape, dtype=np.int64)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("strategy", sorted(STRATEGY_M))
@pytest.mark.parametrize(
    ("stride", "padding"), [((1, 1), "SAME"), ((2, 1), "VALID"), ((2, 2), "SAME")]
)
def test_encrypted_conv2d_matches_integer_forward(
    paper_keys, kernels: str, strategy: str, stride: tuple[int, int], padding: str
) -> None:
    sk, M = paper_keys[STRATEGY_M[strategy]]
    w = _rand((3, 2, 2, 4), -60, 60, 1)
    b = _rand((4,), -5000, 5000, 2)
    x = _rand((3, 7, 6, 2), 0, 1000, 3)
    with he.use_kernels(kernels):
        enc = encrypt_weights(w, b, M, strategy=strategy)  # type: ignore[arg-type]
        ct = encrypted_conv2d(x, enc, stride=stride, padding=padding)
        got = decrypt_tensor(sk, ct)
    np.testing.assert_array_equal(got, _reference(x, _conv(w, b, stride, padding)))
    l1 = int(np.abs(x).sum(axis=(1, 2, 3)).max())
    assert ct.noise_bound <= l1 * enc.weights.noise_bound + enc.bias.noise_bound


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kh=st.integers(1, 3),
    kw=st.integers(1, 3),
    sh=st.integers(1, 3),
    sw=st.integers(1, 2),
    padding=st.sampled_from(["SAME", "VALID"]),
    key=st.integers(0, 2**16),
)
def test_encrypted_conv_hypothesis(paper_keys, kh, kw, sh, sw, padding, key) -> None:
    sk, M = paper_keys[1]
    w = _rand((kh, kw, 1, 3), -128, 128, key)
    b = _rand((3,), -(10**6), 10**6, key + 1)
    x = _rand((2, 5, 4, 1), -1000, 1000, key + 2)
    enc = encrypt_weights(w, b, M)
    got = decrypt_tensor(sk, encrypted_conv(x, enc, stride=(sh, sw), padding=padding))
    np.testing.assert_array_equal(got, _reference(x, _conv(w, b, (sh, sw), padding)))


def test_encrypted_conv1d_and_dense_match_numpy(paper_keys) -> None:
    sk, M = paper_keys[4]
    w = _rand((5, 1, 4), -50, 50, 4)
    b = _rand((4,), -100, 100, 5)
    x = _rand((3, 16, 1), 0, 1000, 6)
    got = decrypt_tensor(
        sk,
        encrypted_conv(x, encrypt_weights(w, b, M, strategy="matrix-pair-wise"), padding="VALID"),
    )
    np.testing.assert_array_equal(got, _reference(x, _conv(w, b, (1,), "VALID")))
    wd = _rand((12, 4), -100, 100, 7)
    xd = _rand((5, 12), -1000, 1000, 8)
    for strategy, m in STRATEGY_M.items():
        sk_m, M_m = paper_keys[m]
        ct = encrypted_dense(xd, encrypt_weights(wd, b, M_m, strategy=strategy))  # type: ignore[arg-type]
        np.testing.assert_array_equal(decrypt_tensor(sk_m, ct), xd @ wd + b)


@pytest.mark.parametrize("kernels", KERNELS)
def test_encrypted_inputs_times_plain_weights(paper_keys, kernels: str) -> None:
    sk, M = paper_keys[1]
    w1 = _rand((3, 3, 1, 4), -30, 30, 9)
    b1 = _rand((4,), -100, 100, 10)
    w2 = _rand((3, 3, 4, 2), -20, 20, 11)
    b2 = _rand((2,), -100, 100, 12)
    x = _rand((2, 6, 6, 1), 0, 255, 13)
    with he.use_kernels(kernels):
        first = encrypted_conv(x, encrypt_weights(w1, b1, M))
        pooled = sum_pool(first, (2, 2))
        second = conv_on_encrypted(pooled, w2, b2, padding="SAME")
        flat = CipherTensor(
            second.params,
            second.key_id,
            1,
            False,
            second.data.reshape(2, -1, second.n),
            second.noise_bound,
            second.value_bound,
        )
        w3 = _rand((flat.plain_shape[1], 3), -1, 2, 14)
        dense = dense_on_encrypted(flat, w3, np.array([1, 2, 3]))
    ref = _reference(
        x,
        _conv(w1, b1, (1, 1), "SAME"),
        QuantizedPool("sum", (2, 2), (2, 2), 1, 1),
        _conv(w2, b2, (1, 1), "SAME"),
    )
    np.testing.assert_array_equal(
        decrypt_tensor(sk, pooled),
        _reference(x, _conv(w1, b1, (1, 1), "SAME"), QuantizedPool("sum", (2, 2), (2, 2), 1, 1)),
    )
    np.testing.assert_array_equal(decrypt_tensor(sk, second), ref)
    np.testing.assert_array_equal(decrypt_tensor(sk, dense), ref.reshape(2, -1) @ w3 + [1, 2, 3])


def test_packed_tensors_refuse_plain_weight_layers(paper_keys) -> None:
    _, M = paper_keys[4]
    ct = encrypted_dense(
        _rand((2, 3), 0, 9, 1),
        encrypt_weights(
            _rand((3, 4), -3, 3, 2), np.zeros(4, np.int64), M, strategy="matrix-pair-wise"
        ),
    )
    with pytest.raises(he.HEError, match="key switch"):
        dense_on_encrypted(ct, _rand((4, 2), -3, 3, 3))


def test_noise_bounds_are_checked_before_computing(paper_keys) -> None:
    _, M = paper_keys[1]
    enc = encrypt_weights(_rand((3, 3, 1, 2), -3, 3, 1), np.zeros(2, np.int64), M)
    huge = np.full((1, 4, 4, 1), 2**24, np.int64)
    with pytest.raises(
        he.NoiseBudgetExceeded, match=re.escape("layer_0 (conv)") + ".*Eq. 34"
    ) as err:
        encrypted_conv(huge, enc, layer="layer_0 (conv)")
    assert err.value.bound >= err.value.limit == he.PAPER.half_w
    ct = encrypted_conv(_rand((1, 4, 4, 1), 0, 9, 2), enc)
    noisy = CipherTensor(ct.params, ct.key_id, 1, False, ct.data, he.PAPER.half_w // 3, None)
    with pytest.raises(he.NoiseBudgetExceeded, match=r"pool7.*Eq\. 42"):
        sum_pool(noisy, (2, 2), layer="pool7")
    with pytest.raises(he.NoiseBudgetExceeded, match="dense3"):
        dense_on_encrypted(
            CipherTensor(
                ct.params,
                ct.key_id,
                1,
                False,
                ct.data.reshape(1, -1, 2),
                he.PAPER.half_w // 3,
                None,
            ),
            np.full((32, 1), 2, np.int64),
            layer="dense3",
        )


def test_relu_on_components_is_exact_for_paper_parameters(paper_keys) -> None:
    sk, M = paper_keys[1]
    w = _rand((5, 5, 1, 8), -100, 100, 20)
    x = _rand((4, 12, 12, 1), 0, 1000, 21)
    b = _rand((8,), -(10**5), 10**5, 22)
    ct = encrypted_conv(x, encrypt_weights(w, b, M))
    y = decrypt_tensor(sk, ct)
    assert (y < 0).any() and (y > 0).any()
    relu, report = relu_components(ct)
    assert report.exact and report.total == y.size
    np.testing.assert_array_equal(decrypt_tensor(sk, relu), np.maximum(y, 0))


def test_relu_on_components_fails_for_secure_parameters(secure_keys) -> None:
    sk, pk = secure_keys[1]
    w = _rand((3, 3, 1, 2), -100, 100, 23)
    x = _rand((2, 5, 5, 1), 0, 1000, 24)
    ct = encrypted_conv(x, encrypt_weights(w, _rand((2,), -9, 9, 25), pk, seed=bytes(32)))
    y = decrypt_tensor(sk, ct)
    np.testing.assert_array_equal(
        y, _reference(x, _conv(w, _rand((2,), -9, 9, 25), (1, 1), "SAME"))
    )
    with pytest.raises(he.NoiseBudgetExceeded, match="not guaranteed exact for 100 of 100"):
        relu_components(ct, layer="relu1")
    relu, report = relu_components(ct, strict=False)
    assert report.not_guaranteed == report.total == 100
    wrong = np.mean(decrypt_tensor(sk, relu) != np.maximum(y, 0))
    assert wrong > 0.9  # measured: the rectifier destroys the uniform tails


@pytest.mark.parametrize("strategy", sorted(STRATEGY_M))
def test_secure_parameters_decrypt_exactly_and_kernels_agree(secure_keys, strategy: str) -> None:
    sk, pk = secure_keys[STRATEGY_M[strategy]]
    w = _rand((3, 3, 2, 4), -128, 128, 30)
    b = _rand((4,), -(10**5), 10**5, 31)
    x = _rand((2, 6, 6, 2), 0, 1000, 32)
    enc = encrypt_weights(w, b, pk, strategy=strategy, seed=bytes(32))  # type: ignore[arg-type]
    outs = []
    for kernels in KERNELS:
        with he.use_kernels(kernels):
            outs.append(sum_pool(encrypted_conv(x, enc, stride=(1, 1)), (2, 2)))
    for other in outs[1:]:
        np.testing.assert_array_equal(other.data, outs[0].data)
    ref = _reference(x, _conv(w, b, (1, 1), "SAME"), QuantizedPool("sum", (2, 2), (2, 2), 1, 1))
    np.testing.assert_array_equal(decrypt_tensor(sk, outs[0]), ref)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("shape", [(28, 28, 1), (10, 3), (9, 9, 2)])
def test_im2col_of_an_empty_batch_has_the_patch_shape_of_a_full_one(
    padding: str, shape: tuple[int, ...]
) -> None:
    kernel = (3,) * (len(shape) - 1)
    stride = (2,) * (len(shape) - 1)
    one = np.arange(np.prod(shape), dtype=np.int64).reshape(1, *shape)
    empty = one[:0]
    full = im2col(one, kernel, stride, padding)
    assert im2col(empty, kernel, stride, padding).shape == (0, *full.shape[1:])
    patches_t, lead = im2col_t(empty, kernel, stride, padding, ones_row=True)
    full_t, full_lead = im2col_t(one, kernel, stride, padding, ones_row=True)
    assert lead == (0, *full_lead[1:])
    assert patches_t.shape == (full_t.shape[0], 0)
