"""Benchmarks of the encrypted layers (issue 5). Run:

    pytest bench/bench_he_nn.py --benchmark-only

Fixed seeds, setup outside the timed region, correctness asserted, baseline and
candidate in the same group (bench/conftest.py prints the speed-ups):

* ``he-nn-conv``: the encrypted first convolution of the Table VI CNN (32 filters
  5x5, SAME, element-wise strategy, paper parameters) over 1,000 28x28 images:
  784,000 x 25 plaintext patches times 25 x 64 ciphertext words (+ the bias words).
  Baseline: the numpy reference kernels (im2col + one uint64 integer matmul);
  candidate: the C++ direct convolution (patches built per block of output pixels,
  output written once in its final layout). Target: >= 10x.
* ``he-nn-table11``: the Table XI workload, 1,000 images: plaintext model features
  (JAX) vs the encrypted interface (``cipherspace_features``); the "speed-up" the
  summary prints is 1 / ratio_paper. Side by side in the same group, the limb
  first block alone (``LimbPlan.run``) on the XLA function and on the fused C++
  kernel (``_core.limb_block``), each as a fraction of the whole plain model.
  These images are uniform noise (no all-zero patches to skip, unlike MNIST).
  ``test_table11_encrypted_interface_unpipelined`` is the former composition (the
  cipherspace first block over all images, then the remaining layers), against the
  pipelined ``PrefixFeatures`` of ``test_table11_encrypted_interface`` (blocks after
  the first run their C++ first block on half the cores while XLA runs the previous
  block) and ``test_table11_encrypted_interface_all_threads`` (the same pipeline with
  every block's first block on all cores, ``overlapped_prefix=None``).

Per-round ratios (interleaved plain / unpipelined / all-threads / pipelined, and the
first block and the remaining layers alone; median and range):
``python bench/bench_he_nn.py [rounds] [perf_counter|process_time]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.fusion.features import FloatArray, PrefixFeatures, quantized_features
from cipherfuse.he.nn import (
    EncryptedModel,
    cipherspace_features,
    decrypt_tensor,
    encrypt_model,
    encrypted_conv,
)
from cipherfuse.he.nn.limbs import LimbPlan, limb_plan
from cipherfuse.nn.config import table6_config
from cipherfuse.nn.model import TrainedModel, init_params
from cipherfuse.nn.quantize import QuantizedConv, integer_forward, quantize_inputs, quantize_model

if TYPE_CHECKING:
    from bench.conftest import Benchmark

SEED = 20181807
N_IMAGES = 1000


@pytest.fixture(scope="module")
def workload() -> dict[str, Any]:
    cfg = table6_config()
    model = TrainedModel(cfg, init_params(cfg, jax.random.key(SEED)), tuple(range(10)))
    sk = he.keygen(he.PAPER, m=1, seed=bytes([1]) * 32)
    M = he.identity_switch_key(sk, seed=bytes([2]) * 32)
    enc = encrypt_model(model, M)
    images = np.random.default_rng(SEED).random((N_IMAGES, 28, 28, 1)).astype(np.float32)
    x_int = quantize_inputs(images, 1000)
    with he.use_kernels("cpp"):
        expected = encrypted_conv(x_int[:20], enc.weights).data
    with he.use_kernels("reference"):
        assert np.array_equal(encrypted_conv(x_int[:20], enc.weights).data, expected)
    return {"model": model, "enc": enc, "images": images, "x_int": x_int, "sk": sk}


def _prefix_features(enc: EncryptedModel) -> PrefixFeatures:
    """``cipherspace_features`` (declared as the FeatureExtractor protocol) with its type.

    It is a PrefixFeatures whose first block also returns descaled floats; the benches
    below replace its fields and run the first block alone.
    """
    fx = cipherspace_features(enc)
    assert isinstance(fx, PrefixFeatures)
    return fx


def _conv(workload: dict[str, Any]) -> Any:
    return encrypted_conv(workload["x_int"], workload["enc"].weights)


def _macs(workload: dict[str, Any]) -> int:
    enc = workload["enc"]
    cols = enc.weights.matrix().shape[1]
    return int(workload["x_int"].shape[0] * 28 * 28 * enc.weights.fan_in * cols)


@pytest.mark.benchmark(group="he-nn-conv")
def test_conv_numpy_reference(benchmark: Benchmark, workload: dict[str, Any]) -> None:
    with he.use_kernels("reference"):
        out = benchmark.pedantic(_conv, args=(workload,), rounds=2, iterations=1)
    benchmark.extra_info.update(role="baseline", macs=_macs(workload))
    assert decrypt_tensor(workload["sk"], out).shape == (N_IMAGES, 28, 28, 32)


@pytest.mark.benchmark(group="he-nn-conv")
def test_conv_cpp(benchmark: Benchmark, workload: dict[str, Any]) -> None:
    with he.use_kernels("cpp"):
        out = benchmark.pedantic(_conv, args=(workload,), rounds=5, iterations=1)
    benchmark.extra_info.update(role="candidate", macs=_macs(workload))
    q = quantize_model(workload["model"], weight_scale=2**7, input_scale=1000, n_layers=1)
    first = q.layers[0]
    assert isinstance(first, QuantizedConv)
    linear = replace(q, layers=(replace(first, activation="none"),))
    got = decrypt_tensor(workload["sk"], out)
    np.testing.assert_array_equal(got, integer_forward(linear, workload["x_int"]))


@pytest.mark.benchmark(group="he-nn-table11")
def test_table11_plain_model(benchmark: Benchmark, workload: dict[str, Any]) -> None:
    model, images = workload["model"], workload["images"]
    model.features(images)  # JIT compilation outside the timing
    out = benchmark.pedantic(model.features, args=(images,), rounds=5, iterations=1)
    benchmark.extra_info.update(role="baseline")
    assert out.shape == (N_IMAGES, 784)


@pytest.mark.benchmark(group="he-nn-table11")
def test_table11_encrypted_interface(benchmark: Benchmark, workload: dict[str, Any]) -> None:
    model, images = workload["model"], workload["images"]
    fx = cipherspace_features(workload["enc"])
    fx(images[:10])
    out = benchmark.pedantic(fx, args=(images,), rounds=3, iterations=1)
    benchmark.extra_info.update(role="candidate")
    q = quantize_model(model, weight_scale=2**7, input_scale=1000)
    np.testing.assert_array_equal(out, quantized_features(model, q)(images))


@pytest.mark.benchmark(group="he-nn-table11")
def test_table11_encrypted_interface_all_threads(
    benchmark: Benchmark, workload: dict[str, Any]
) -> None:
    """The pipeline with the C++ first block on all cores in every block (no overlap split)."""
    model, images = workload["model"], workload["images"]
    fx = replace(_prefix_features(workload["enc"]), overlapped_prefix=None)
    fx(images[:10])
    out = benchmark.pedantic(fx, args=(images,), rounds=3, iterations=1)
    benchmark.extra_info.update(role="candidate")
    q = quantize_model(model, weight_scale=2**7, input_scale=1000)
    np.testing.assert_array_equal(out, quantized_features(model, q)(images))


def _unpipelined(fx: PrefixFeatures) -> Callable[[FloatArray], FloatArray]:
    """The encrypted interface without the block pipeline: prefix on all, then the rest."""
    descaled_prefix = fx.descaled_prefix
    assert descaled_prefix is not None

    def run(x: FloatArray) -> FloatArray:
        middle = descaled_prefix(x)
        return fx.model.features(middle, start_layer=fx.resume_layer)

    return run


@pytest.mark.benchmark(group="he-nn-table11")
def test_table11_encrypted_interface_unpipelined(
    benchmark: Benchmark, workload: dict[str, Any]
) -> None:
    model, images = workload["model"], workload["images"]
    run = _unpipelined(_prefix_features(workload["enc"]))
    run(images[:10])
    out = benchmark.pedantic(run, args=(images,), rounds=3, iterations=1)
    benchmark.extra_info.update(role="candidate")
    q = quantize_model(model, weight_scale=2**7, input_scale=1000)
    np.testing.assert_array_equal(out, quantized_features(model, q)(images))


@pytest.mark.benchmark(group="he-nn-table11")
def test_table11_encrypted_interface_64bit_words(
    benchmark: Benchmark, workload: dict[str, Any]
) -> None:
    """The same interface on whole 64-bit words (C++ GEMM), without the limb path."""
    model, images = workload["model"], workload["images"]
    fx = cipherspace_features(workload["enc"], limbs=False)
    fx(images[:10])
    out = benchmark.pedantic(fx, args=(images,), rounds=3, iterations=1)
    benchmark.extra_info.update(role="candidate")
    q = quantize_model(model, weight_scale=2**7, input_scale=1000)
    np.testing.assert_array_equal(out, quantized_features(model, q)(images))


def _limb_plan(workload: dict[str, Any]) -> LimbPlan:
    block = workload["enc"].block
    plan = limb_plan(workload["enc"].weights, block.weight, block.pool)
    assert plan is not None
    return plan


def _first_block_reference(workload: dict[str, Any]) -> Any:
    q = quantize_model(workload["model"], weight_scale=2**7, input_scale=1000, n_layers=2)
    return integer_forward(q, workload["x_int"])


@pytest.mark.benchmark(group="he-nn-table11")
def test_table11_limb_block_xla(benchmark: Benchmark, workload: dict[str, Any]) -> None:
    """The limb first block on the XLA function (the numpy reference kernels select it)."""
    plan, x_int = _limb_plan(workload), workload["x_int"]
    with he.use_kernels("reference"):
        plan.run(x_int)  # JIT compilation outside the timing
        out = benchmark.pedantic(plan.run, args=(x_int,), rounds=3, iterations=1)
    benchmark.extra_info.update(role="candidate")
    np.testing.assert_array_equal(out, _first_block_reference(workload))


@pytest.mark.benchmark(group="he-nn-table11")
def test_table11_limb_block_cpp(benchmark: Benchmark, workload: dict[str, Any]) -> None:
    """The limb first block on the fused C++ kernel (cpp/he/limb_kernel.hpp)."""
    plan, x_int = _limb_plan(workload), workload["x_int"]
    with he.use_kernels("cpp"):
        plan.run(x_int[:8])
        out = benchmark.pedantic(plan.run, args=(x_int,), rounds=5, iterations=1)
    benchmark.extra_info.update(role="candidate")
    np.testing.assert_array_equal(out, _first_block_reference(workload))


def side_by_side(rounds: int = 9, clock: str = "perf_counter") -> dict[str, str]:
    """Interleaved plain model, unpipelined, all-threads and pipelined encrypted interface.

    Also the two parts alone: the cipherspace first block over all images and the
    remaining layers on its output (in the pipeline's blocks of 256). ``clock``:
    ``perf_counter`` (wall) or ``process_time`` (CPU time of all threads).
    """
    import time

    from cipherfuse.analysis.timing import interleaved_times, paired_ratio
    from cipherfuse.fusion.features import PIPELINE_BLOCK

    cfg = table6_config()
    model = TrainedModel(cfg, init_params(cfg, jax.random.key(SEED)), tuple(range(10)))
    sk = he.keygen(he.PAPER, m=1, seed=bytes([1]) * 32)
    enc = encrypt_model(model, he.identity_switch_key(sk, seed=bytes([2]) * 32))
    images = np.random.default_rng(SEED).random((N_IMAGES, 28, 28, 1)).astype(np.float32)
    fx = _prefix_features(enc)
    all_threads = replace(fx, overlapped_prefix=None)
    q = quantize_model(model, weight_scale=2**7, input_scale=1000)
    expected = quantized_features(model, q)(images)

    descaled_prefix = fx.descaled_prefix
    assert descaled_prefix is not None
    middle = descaled_prefix(images)
    rest = fx.resume_layer

    def check(name: str, out: Any) -> None:
        if name not in ("plain", "first block", "rest"):
            np.testing.assert_array_equal(out, expected)

    times = interleaved_times(
        {
            "plain": lambda: model.features(images),
            "unpipelined": lambda: _unpipelined(fx)(images),
            "all-threads": lambda: all_threads(images),
            "pipelined": lambda: fx(images),
            "first block": lambda: descaled_prefix(images),
            "rest": lambda: model.features(middle, start_layer=rest, batch_size=PIPELINE_BLOCK),
        },
        rounds,
        check=check,
        clock=getattr(time, clock),
    )
    return {
        name: f"{1e3 * min(t):7.1f} ms min, {paired_ratio(t, times['plain'])} of plain"
        for name, t in times.items()
    }


if __name__ == "__main__":
    import sys

    args = sys.argv[1:]
    for name, line in side_by_side(int(args[0]) if args else 9, *args[1:2]).items():
        print(f"{name:12} {line}")
