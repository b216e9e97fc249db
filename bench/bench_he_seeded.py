"""Benchmarks of the seeded secure layers (issue 5) and the TenSEAL comparison. Run:

    pytest bench/bench_he_seeded.py --benchmark-only

Workloads: the Table VI CNN's first conv (5x5, 1 -> 32, SAME, 28x28) over
1,000 MNIST test images and a 784 x 128 dense layer over 1,000 images, as

* the plaintext integer layer (numpy int64, and float32 BLAS);
* the seeded secure layer (``SECURE``: k = 2560, 128-bit), C++, and its numpy reference;
* the plain (unseeded) IVHE matrix form at k = 1024 / 2048 / 4096
  (every row a full ``O + k`` word ciphertext; the conv on 20 images, since
  its output alone is 784 * (32 + k) words per image);
* TenSEAL CKKS (N = 8192, 128-bit; ``bench/tenseal_baseline.py``), per-sample latency,
  when ``tenseal`` is installed (``pip install cipherfuse[bench]``); skipped otherwise.

Fixed seeds, setup outside timing, correctness asserted (decryption equals
the plaintext integer result), baseline and candidates in one group.
MNIST is found by tests/conftest.py's locate_mnist_dir ($CIPHERFUSE_MNIST_DIR,
../shared/data/mnist, the shipped test set); random
images of the same shape are used when neither exists (reported in extra_info).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest
from bench.tenseal_baseline import CkksLayers
from tests.conftest import locate_mnist_dir

import cipherfuse._core as _core
from cipherfuse import he
from cipherfuse.he import seeded

if TYPE_CHECKING:
    from bench.conftest import Benchmark

RNG_SEED = 20181807
N_IMAGES = 1000
N_PLAIN_FORM_CONV = 20
I64 = npt.NDArray[np.int64]


def _seed(i: int) -> bytes:
    return bytes([i]) * 32


def _mnist_images(n: int) -> tuple[npt.NDArray[np.float32], str]:
    from cipherfuse.data import load_mnist

    path = locate_mnist_dir()
    if path is not None:
        return load_mnist(path=path.resolve()).images[:n], "mnist-test"
    rng = np.random.default_rng(RNG_SEED)
    return rng.random((n, 28, 28, 1), dtype=np.float32), "random"


# ------------------------------------------------------------------ workloads
@pytest.fixture(scope="module")
def conv_case() -> dict[str, Any]:
    """Table VI first conv: 8-bit-ish weights (p = 2^7), inputs quantized with q = 1000."""
    rng = np.random.default_rng(RNG_SEED)
    images, source = _mnist_images(N_IMAGES)
    x = np.rint(images.astype(np.float64) * 1000).astype(np.int64)
    w = rng.integers(-127, 128, (5, 5, 1, 32))
    bias = rng.integers(-(10**5), 10**5, 32)
    sk = he.keygen(he.SECURE, 32, seed=_seed(1))
    tau = seeded.plaintext_bits_for(he.SECURE, 25 * 1000, 127, 10**5)
    sm = seeded.seeded_encrypt_matrix(sk, w, bias=bias, plaintext_bits=tau)
    patches, _ = seeded.im2col(x, 5, 5, (1, 1), "SAME")
    expected = patches.reshape(-1, 25) @ w.reshape(25, 32) + bias
    return {
        "x": x,
        "w": w,
        "bias": bias,
        "sk": sk,
        "sm": sm,
        "decryptor": seeded.SeededDecryptor(sk, sm),
        "expected": expected.reshape(N_IMAGES, 28, 28, 32),
        "source": source,
    }


@pytest.fixture(scope="module")
def dense_case() -> dict[str, Any]:
    """784 x 128 dense layer on 8-bit MNIST pixels."""
    rng = np.random.default_rng(RNG_SEED + 1)
    images, source = _mnist_images(N_IMAGES)
    x = np.rint(images.reshape(N_IMAGES, -1).astype(np.float64) * 255).astype(np.int64)
    w = rng.integers(-127, 128, (784, 128))
    sk = he.keygen(he.SECURE, 128, seed=_seed(2))
    tau = seeded.plaintext_bits_for(he.SECURE, 784 * 255, 127)
    sm = seeded.seeded_encrypt_matrix(sk, w, plaintext_bits=tau)
    return {
        "x": x,
        "w": w,
        "sk": sk,
        "sm": sm,
        "decryptor": seeded.SeededDecryptor(sk, sm),
        "expected": x @ w,
        "source": source,
    }


def _info(benchmark: Benchmark, role: str, case: dict[str, Any], **extra: Any) -> None:
    benchmark.extra_info.update({"role": role, "images": case["source"], **extra})


# ------------------------------------------------------------------ conv, 1,000 images
def _plain_conv_int64(x: I64, w: I64, bias: I64) -> I64:
    patches, _ = seeded.im2col(x, 5, 5, (1, 1), "SAME")
    return patches.reshape(-1, 25) @ w.reshape(25, -1) + bias


def _plain_conv_f32(x: I64, w: I64, bias: I64) -> npt.NDArray[np.float32]:
    patches, _ = seeded.im2col(x, 5, 5, (1, 1), "SAME")
    out: npt.NDArray[np.float32] = patches.reshape(-1, 25).astype(np.float32) @ w.reshape(
        25, -1
    ).astype(np.float32) + bias.astype(np.float32)
    return out


def test_conv1000_plaintext_int64(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-conv-1000"
    _info(benchmark, "baseline", conv_case)
    c = conv_case
    out = benchmark.pedantic(_plain_conv_int64, args=(c["x"], c["w"], c["bias"]), rounds=3)
    np.testing.assert_array_equal(out.reshape(c["expected"].shape), c["expected"])


def test_conv1000_plaintext_float32(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-conv-1000"
    _info(benchmark, "plaintext-float32", conv_case)
    c = conv_case
    out = benchmark.pedantic(_plain_conv_f32, args=(c["x"], c["w"], c["bias"]), rounds=3)
    assert np.abs(out.reshape(c["expected"].shape) - c["expected"]).max() < 1.0


def test_conv1000_seeded_cpp(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-conv-1000"
    c = conv_case
    _info(benchmark, "candidate", c, bytes_encrypted_weights=len(seeded.to_bytes(c["sm"])))
    b_parts = benchmark.pedantic(seeded.evaluate_conv, args=(c["sm"], c["x"]), rounds=5)
    np.testing.assert_array_equal(c["decryptor"].decrypt_conv(c["x"], b_parts), c["expected"])


def test_conv1000_seeded_numpy_reference(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-conv-1000"
    c = conv_case
    _info(benchmark, "seeded-numpy-reference", c)
    b_parts = benchmark.pedantic(seeded.reference_conv, args=(c["sm"], c["x"]), rounds=2)
    np.testing.assert_array_equal(b_parts, seeded.evaluate_conv(c["sm"], c["x"]))


def test_conv1000_seeded_decrypt(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    """The key holder's side: b-parts + conv(x, U), rounded (U precomputed)."""
    benchmark.group = "seeded-conv-1000"
    c = conv_case
    _info(benchmark, "decryption", c)
    b_parts = seeded.evaluate_conv(c["sm"], c["x"])
    out = benchmark.pedantic(c["decryptor"].decrypt_conv, args=(c["x"], b_parts), rounds=5)
    np.testing.assert_array_equal(out, c["expected"])


# ------------------------------------------------------------------ decrypt finish, 1,000 images
# The key holder's last step of the Table VI first block (conv -> ReLU -> 2x2 sum
# pool) once the b-parts exist: the numpy path of the prefix (C++ a-term, numpy
# rounding, ReLU and pooling), the C++ finish kernel on a materialised a-term, and
# the fused kernel (a-term per image block, never materialised).


def _numpy_finish_block(dec: seeded.SeededDecryptor, x: I64, b_parts: Any) -> I64:
    y = np.maximum(dec.decrypt_conv(x, b_parts), 0)
    view = np.lib.stride_tricks.sliding_window_view(y, (2, 2), axis=(1, 2))[:, ::2, ::2]
    out: I64 = view.sum(axis=(-2, -1))
    return out


@pytest.fixture(scope="module")
def finish_case(conv_case: dict[str, Any]) -> dict[str, Any]:
    c = conv_case
    b_parts = seeded.evaluate_conv(c["sm"], c["x"])
    relu = np.maximum(c["expected"], 0)
    pooled = np.lib.stride_tricks.sliding_window_view(relu, (2, 2), axis=(1, 2))[:, ::2, ::2]
    twin = c["decryptor"]._twin
    a_term = seeded.evaluate_conv(twin, c["x"])
    return {
        **c,
        "b_parts": b_parts,
        "a_term": a_term,
        "twin": twin,
        "expected_pooled": pooled.sum(axis=(-2, -1)),
    }


def test_finish1000_numpy(benchmark: Benchmark, finish_case: dict[str, Any]) -> None:
    """Baseline: the prefix's numpy path (C++ a-term conv, numpy round, ReLU, sum pool)."""
    benchmark.group = "seeded-finish-1000"
    c = finish_case
    _info(benchmark, "baseline", c)
    out = benchmark.pedantic(
        _numpy_finish_block, args=(c["decryptor"], c["x"], c["b_parts"]), rounds=3
    )
    np.testing.assert_array_equal(out, c["expected_pooled"])


def _conv_then_kernel(c: dict[str, Any]) -> I64:
    a_term = seeded.evaluate_conv(c["twin"], c["x"])
    tau = c["sm"].plaintext_bits
    return _core.decrypt_finish(
        a_term, c["b_parts"], tau, activation="relu", pool_h=2, pool_w=2, pool_sh=2, pool_sw=2
    )


def test_finish1000_conv_then_kernel(benchmark: Benchmark, finish_case: dict[str, Any]) -> None:
    """The C++ a-term conv (materialised), then the one-pass C++ finish."""
    benchmark.group = "seeded-finish-1000"
    c = finish_case
    _info(benchmark, "candidate", c)
    out = benchmark.pedantic(_conv_then_kernel, args=(c,), rounds=5)
    np.testing.assert_array_equal(out, c["expected_pooled"])


def test_finish1000_fused(benchmark: Benchmark, finish_case: dict[str, Any]) -> None:
    """decrypt_conv_pooled: a-term per image block in cache, then the finish."""
    benchmark.group = "seeded-finish-1000"
    c = finish_case
    _info(benchmark, "candidate", c, bytes=int(c["b_parts"].nbytes))
    out = benchmark.pedantic(
        c["decryptor"].decrypt_conv_pooled,
        args=(c["x"], c["b_parts"]),
        kwargs={"activation": "relu", "pool_window": (2, 2), "pool_stride": (2, 2)},
        rounds=5,
    )
    np.testing.assert_array_equal(out, c["expected_pooled"])


def _roofline(benchmark: Benchmark, c: dict[str, Any], array: Any, group: str) -> None:
    """One streaming read of ``array`` (the memory-read roofline), checked against numpy."""
    benchmark.group = group
    flat = array.reshape(-1)
    _info(benchmark, "roofline", c, bytes=int(flat.nbytes))
    total = benchmark.pedantic(_core.stream_sum, args=(flat,), rounds=5)
    assert total == int(flat.sum(dtype=np.uint64))


def test_finish1000_roofline_read_b(benchmark: Benchmark, finish_case: dict[str, Any]) -> None:
    """Reading the b-parts once: the memory traffic the fused kernel cannot avoid."""
    _roofline(benchmark, finish_case, finish_case["b_parts"], "seeded-finish-1000")


def test_finish_kernel1000_numpy(benchmark: Benchmark, finish_case: dict[str, Any]) -> None:
    """Baseline of the finish alone: numpy round -> ReLU -> sum pool on given a and b."""
    benchmark.group = "seeded-finish-kernel-1000"
    c = finish_case
    tau = c["sm"].plaintext_bits

    def numpy_finish() -> I64:
        phase = c["a_term"] + c["b_parts"] + np.uint64(1 << (63 - tau))
        y = np.maximum(phase.view(np.int64) >> np.int64(64 - tau), 0)
        view = np.lib.stride_tricks.sliding_window_view(y, (2, 2), axis=(1, 2))[:, ::2, ::2]
        out: I64 = view.sum(axis=(-2, -1))
        return out

    _info(benchmark, "baseline", c)
    out = benchmark.pedantic(numpy_finish, rounds=3)
    np.testing.assert_array_equal(out, c["expected_pooled"])


def test_finish_kernel1000_cpp(benchmark: Benchmark, finish_case: dict[str, Any]) -> None:
    """The one-pass C++ finish (scalar code; reads a and b once)."""
    benchmark.group = "seeded-finish-kernel-1000"
    c = finish_case
    nbytes = int(c["a_term"].nbytes + c["b_parts"].nbytes)
    _info(benchmark, "candidate", c, bytes=nbytes, threads=_core.default_threads())
    out = benchmark.pedantic(
        _core.decrypt_finish,
        args=(c["a_term"], c["b_parts"], c["sm"].plaintext_bits),
        kwargs={"activation": "relu", "pool_h": 2, "pool_w": 2, "pool_sh": 2, "pool_sw": 2},
        rounds=5,
    )
    np.testing.assert_array_equal(out, c["expected_pooled"])


def test_finish_kernel1000_roofline(benchmark: Benchmark, finish_case: dict[str, Any]) -> None:
    """Memory-read roofline: one pass over the a-term."""
    _roofline(benchmark, finish_case, finish_case["a_term"], "seeded-finish-kernel-1000")


# ------------------------------------------------------------------ the Table XI prefix
@pytest.fixture(scope="module")
def table11_case() -> dict[str, Any]:
    """Table XI's seeded workload: the Table VI CNN, first block seeded, rest in JAX."""
    return _table11_case()


def _table11_case() -> dict[str, Any]:
    import jax

    from cipherfuse.fusion.features import PrefixFeatures, quantized_features
    from cipherfuse.nn.config import table6_config
    from cipherfuse.nn.model import TrainedModel, init_params
    from cipherfuse.nn.quantize import quantize_model

    images, source = _mnist_images(N_IMAGES)
    config = table6_config()
    model = TrainedModel(config, init_params(config, jax.random.key(RNG_SEED)), tuple(range(10)))
    qm = quantize_model(model, weight_scale=2**7, input_scale=1000, n_layers=2)
    sk = he.keygen(he.SECURE, 32, seed=_seed(5))
    feats = {
        fuse: PrefixFeatures(
            model,
            seeded.seeded_first_layer_prefix(qm, sk, noise_seed=_seed(6 + fuse), fuse_pool=fuse),
            resume_layer=qm.resume_layer,
        )
        for fuse in (False, True)
    }
    reference = quantized_features(model, qm)(images)
    for f in feats.values():  # warm-up (JIT) and correctness
        np.testing.assert_array_equal(f(images), reference)
    model.features(images)
    return {
        "model": model,
        "images": images,
        "feats": feats,
        "reference": reference,
        "source": source,
    }


def test_prefix1000_plaintext_jax(benchmark: Benchmark, table11_case: dict[str, Any]) -> None:
    """The plaintext model (JAX): the denominator of Table XI's ratio_secure."""
    benchmark.group = "seeded-prefix-table6-1000"
    _info(benchmark, "baseline", table11_case)
    out = benchmark.pedantic(
        table11_case["model"].features, args=(table11_case["images"],), rounds=5
    )
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("fuse", [False, True], ids=["numpy-finish", "fused-finish"])
def test_prefix1000_seeded(benchmark: Benchmark, table11_case: dict[str, Any], fuse: bool) -> None:
    """Seeded first block + JAX rest, with the numpy or the fused C++ finish."""
    benchmark.group = "seeded-prefix-table6-1000"
    _info(benchmark, "candidate", table11_case, fused=fuse)
    feats = table11_case["feats"]
    out = benchmark.pedantic(feats[fuse], args=(table11_case["images"],), rounds=5)
    np.testing.assert_array_equal(out, table11_case["reference"])


# ------------------------------------------------------------------ plain IVHE matrix form
def _plain_form(k: int, rows: I64, m: int) -> tuple[he.SecretKey, he.Ciphertext]:
    params = he.SECURE.with_(
        name=f"plain-form-k{k}",
        lwe_dim=k,
        plaintext_bits=32,
        security_bits=0,
        security_note="timing only",
    )
    sk = he.keygen(params, m, seed=_seed(3))
    return sk, he.encrypt_symmetric(sk, rows, seed=_seed(4))


def _conv_plain_form(x: I64, cts: he.Ciphertext) -> he.Ciphertext:
    patches, _ = seeded.im2col(x, 5, 5, (1, 1), "SAME")
    return he.linear_combination(patches.reshape(-1, 25), cts)


@pytest.mark.parametrize("k", [1024, 2048, 4096])
def test_conv20_plain_ivhe_form(benchmark: Benchmark, conv_case: dict[str, Any], k: int) -> None:
    benchmark.group = f"seeded-conv-{N_PLAIN_FORM_CONV}-vs-plain-form"
    c = conv_case
    x = c["x"][:N_PLAIN_FORM_CONV]
    sk, cts = _plain_form(k, c["w"].reshape(25, 32), 32)
    _info(benchmark, f"plain-form-k{k}", c, bytes_encrypted_weights=int(cts.data.nbytes))
    res = benchmark.pedantic(_conv_plain_form, args=(x, cts), rounds=1, iterations=1)
    got = he.decrypt(sk, res).reshape(N_PLAIN_FORM_CONV, 28, 28, 32) + c["bias"]
    np.testing.assert_array_equal(got, c["expected"][:N_PLAIN_FORM_CONV])


def test_conv20_plaintext_int64(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    benchmark.group = f"seeded-conv-{N_PLAIN_FORM_CONV}-vs-plain-form"
    c = conv_case
    _info(benchmark, "baseline", c)
    x = c["x"][:N_PLAIN_FORM_CONV]
    out = benchmark.pedantic(_plain_conv_int64, args=(x, c["w"], c["bias"]), rounds=5)
    assert out.shape == (N_PLAIN_FORM_CONV * 784, 32)


def test_conv20_seeded_cpp(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    benchmark.group = f"seeded-conv-{N_PLAIN_FORM_CONV}-vs-plain-form"
    c = conv_case
    _info(benchmark, "candidate", c)
    x = c["x"][:N_PLAIN_FORM_CONV]
    b_parts = benchmark(seeded.evaluate_conv, c["sm"], x)
    np.testing.assert_array_equal(
        c["decryptor"].decrypt_conv(x, b_parts), c["expected"][:N_PLAIN_FORM_CONV]
    )


# ------------------------------------------------------------------ dense, 1,000 samples
def test_dense1000_plaintext_int64(benchmark: Benchmark, dense_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-dense-784x128-1000"
    c = dense_case
    _info(benchmark, "baseline", c)
    out = benchmark.pedantic(np.matmul, args=(c["x"], c["w"]), rounds=3)
    np.testing.assert_array_equal(out, c["expected"])


def test_dense1000_plaintext_float32(benchmark: Benchmark, dense_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-dense-784x128-1000"
    c = dense_case
    _info(benchmark, "plaintext-float32", c)
    xf, wf = c["x"].astype(np.float32), c["w"].astype(np.float32)
    out = benchmark(np.matmul, xf, wf)
    assert np.abs(out - c["expected"]).max() < 16.0  # float32 rounding of sums up to 2^25


def test_dense1000_seeded_cpp(benchmark: Benchmark, dense_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-dense-784x128-1000"
    c = dense_case
    _info(benchmark, "candidate", c, bytes_encrypted_weights=len(seeded.to_bytes(c["sm"])))
    b_parts = benchmark(seeded.evaluate_dense, c["sm"], c["x"])
    np.testing.assert_array_equal(c["decryptor"].decrypt_dense(c["x"], b_parts), c["expected"])


def test_dense1000_seeded_numpy_reference(benchmark: Benchmark, dense_case: dict[str, Any]) -> None:
    benchmark.group = "seeded-dense-784x128-1000"
    c = dense_case
    _info(benchmark, "seeded-numpy-reference", c)
    out = benchmark.pedantic(seeded.reference_dense, args=(c["sm"], c["x"]), rounds=2)
    np.testing.assert_array_equal(out, seeded.evaluate_dense(c["sm"], c["x"]))


@pytest.mark.parametrize("k", [1024, 2048, 4096])
def test_dense1000_plain_ivhe_form(
    benchmark: Benchmark, dense_case: dict[str, Any], k: int
) -> None:
    benchmark.group = "seeded-dense-784x128-1000"
    c = dense_case
    sk, cts = _plain_form(k, c["w"], 128)
    _info(benchmark, f"plain-form-k{k}", c, bytes_encrypted_weights=int(cts.data.nbytes))
    res = benchmark.pedantic(he.linear_combination, args=(c["x"], cts), rounds=2)
    np.testing.assert_array_equal(he.decrypt(sk, res), c["expected"])


# ------------------------------------------------------------------ TenSEAL, per sample
@pytest.fixture(scope="module")
def tenseal_available() -> None:
    """Skips the TenSEAL cases cleanly when the optional ``bench`` extra is absent."""
    pytest.importorskip("tenseal", minversion="0.3.18")


@pytest.fixture(scope="module")
def ckks(
    tenseal_available: None, dense_case: dict[str, Any], conv_case: dict[str, Any]
) -> CkksLayers:
    return CkksLayers(
        dense_case["w"].astype(np.float64) / 128, conv_case["w"].astype(np.float64) / 128
    )


def test_per_sample_dense_tenseal(
    benchmark: Benchmark, ckks: CkksLayers, dense_case: dict[str, Any]
) -> None:
    benchmark.group = "per-sample-vs-tenseal-dense-784x128"
    c = dense_case
    x = c["x"][0].astype(np.float64) / 255
    _info(benchmark, "baseline", c, bytes_encrypted_weights=ckks.ciphertext_bytes(ckks.dense_cts))
    y = benchmark.pedantic(ckks.dense, args=(x,), rounds=3)
    np.testing.assert_allclose(y, c["expected"][0] / (255 * 128), atol=1e-3)


def test_per_sample_dense_seeded(benchmark: Benchmark, dense_case: dict[str, Any]) -> None:
    benchmark.group = "per-sample-vs-tenseal-dense-784x128"
    c = dense_case
    _info(benchmark, "candidate", c, bytes_encrypted_weights=len(seeded.to_bytes(c["sm"])))
    x = c["x"][:1]
    b_parts = benchmark(seeded.evaluate_dense, c["sm"], x)
    np.testing.assert_array_equal(c["decryptor"].decrypt_dense(x, b_parts), c["expected"][:1])


def test_per_sample_conv_tenseal(
    benchmark: Benchmark, ckks: CkksLayers, conv_case: dict[str, Any]
) -> None:
    benchmark.group = "per-sample-vs-tenseal-conv-5x5x32"
    c = conv_case
    cts = [ct for group in ckks.conv_cts for ct in group]
    _info(benchmark, "baseline", c, bytes_encrypted_weights=ckks.ciphertext_bytes(cts))
    image = c["x"][0].astype(np.float64) / 1000
    y = benchmark.pedantic(ckks.conv, args=(image,), rounds=3)
    expect = (c["expected"][0] - c["bias"]).reshape(784, 32) / (1000 * 128)
    np.testing.assert_allclose(y, expect, atol=1e-3)


def test_per_sample_conv_seeded(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    benchmark.group = "per-sample-vs-tenseal-conv-5x5x32"
    c = conv_case
    _info(benchmark, "candidate", c, bytes_encrypted_weights=len(seeded.to_bytes(c["sm"])))
    x = c["x"][:1]
    b_parts = benchmark(seeded.evaluate_conv, c["sm"], x)
    np.testing.assert_array_equal(c["decryptor"].decrypt_conv(x, b_parts), c["expected"][:1])


# ------------------------------------------------------------------ Table VI first block
@pytest.fixture(scope="module")
def prefix_case() -> dict[str, Any]:
    """Table VI first block (conv + ReLU + 2x2 average pool), random init, p = 2^7, q = 1000."""
    import jax

    from cipherfuse.nn.config import table6_config
    from cipherfuse.nn.model import TrainedModel, init_params
    from cipherfuse.nn.quantize import quantize_model

    images, source = _mnist_images(N_IMAGES)
    config = table6_config()
    model = TrainedModel(config, init_params(config, jax.random.key(0)), tuple(range(10)))
    qm = quantize_model(model, weight_scale=2**7, input_scale=1000)
    sk = he.keygen(he.SECURE, 32, seed=_seed(5))
    return {
        "x": images,
        "qm": qm,
        "prefix": seeded.seeded_first_layer_prefix(qm, sk),
        "source": source,
    }


def _integer_block(qm: Any, x: npt.NDArray[np.float32]) -> I64:
    from cipherfuse.nn.quantize import integer_forward, quantize_inputs

    return integer_forward(qm, quantize_inputs(x, qm.input_scale))


def test_first_block_plaintext_integer_forward(
    benchmark: Benchmark, prefix_case: dict[str, Any]
) -> None:
    benchmark.group = "table6-first-block-1000"
    c = prefix_case
    _info(benchmark, "baseline", c)
    out = benchmark.pedantic(_integer_block, args=(c["qm"], c["x"]), rounds=3)
    assert out.shape == (N_IMAGES, 14, 14, 32)


def test_first_block_seeded_prefix(benchmark: Benchmark, prefix_case: dict[str, Any]) -> None:
    """Evaluation, decryption, ReLU and pooling (weights encrypted once, outside timing)."""
    benchmark.group = "table6-first-block-1000"
    c = prefix_case
    _info(benchmark, "candidate", c)
    ints, scale = benchmark.pedantic(c["prefix"], args=(c["x"],), rounds=3)
    assert scale == c["qm"].output_scale
    np.testing.assert_array_equal(ints, _integer_block(c["qm"], c["x"]))


# ------------------------------------------------------------------ interleaved side by side
def side_by_side(rounds: int = 15) -> dict[str, dict[str, float]]:
    """The Table XI prefix ratios with interleaved rounds (plain, numpy finish, fused, ...).

    On a shared machine the short plaintext call catches quiet moments that the
    long ones miss; interleaving exposes all three to the same load. Returns, per
    case, the min wall and min process-CPU time in ms (CPU time counts the
    process's threads, and is less inflated by other jobs than wall time).
    """
    import time

    case = _table11_case()
    images = case["images"]
    runs: dict[str, Callable[[], npt.NDArray[np.generic]]] = {
        "plain": lambda: case["model"].features(images),
        "numpy-finish": lambda: case["feats"][False](images),
        "fused-finish": lambda: case["feats"][True](images),
    }
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            c0, t0 = time.process_time(), time.perf_counter()
            out = fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if name != "plain":
                np.testing.assert_array_equal(out, case["reference"])
    return {
        name: {"wall_ms": min(wall[name]) * 1e3, "cpu_ms": min(cpu[name]) * 1e3} for name in runs
    }


if __name__ == "__main__":
    import sys

    result = side_by_side(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
    plain = result["plain"]
    for name, times in result.items():
        print(
            f"{name:13} min wall {times['wall_ms']:7.1f} ms "
            f"(x{times['wall_ms'] / plain['wall_ms']:.2f})  "
            f"min cpu {times['cpu_ms']:7.1f} ms (x{times['cpu_ms'] / plain['cpu_ms']:.2f})"
        )
