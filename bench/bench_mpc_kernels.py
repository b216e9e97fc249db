"""Benchmarks of the 3PC share kernels (cpp/mpc/) against their numpy reference. Run:

    pytest bench/bench_mpc_kernels.py --benchmark-only

Fixed seeds, operands built outside the timed region, every result asserted equal to
the numpy reference, baseline (numpy) and candidates (C++, one per ISA this CPU runs)
in one group per kernel and shape. The summary (bench/conftest.py) prints min times,
speed-ups over numpy, GB/s against the memory-read roofline measured in the same group
(``stream_sum`` over the operands: the memory floor) and GMAC/s per thread; the
``ring_gemm-in-cache`` group gives one thread's rate on operands that stay in L2 (the
per-core compute floor the large shapes are compared with, docs/mpc-kernels.md).

Shapes: the secret x secret layers of the Case I CNN, scaled from 1,000 images to
``IMAGES`` (20; set ``CIPHERFUSE_BENCH_IMAGES=1000`` for the full sizes) so that each group
runs in seconds: the second convolution as a GEMM (images * 14 * 14, 288) @ (288, 64) and
the dense layer (max(images, 64), 3136) @ (3136, 128); and the second convolution
itself on channel-stacked shares, (images, 14, 14, 64) with 5 x 5 x 16 kernels:
``ring_conv2d`` per ISA against the numpy im2col reference and the HE module's
``conv2d_direct`` (the path the protocol used before), one thread each.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import cipherfuse._core as _core
from cipherfuse.mpc import kernels

if TYPE_CHECKING:
    from bench.conftest import Benchmark

RNG_SEED = 20260
IMAGES = int(os.environ.get("CIPHERFUSE_BENCH_IMAGES", "20"))
ISAS = [name for name in ("scalar", "avx2", "avx512", "neon") if _core.isa_available(name)]
THREADS = _core.default_threads()
# ISA, ring_gemm variant: AVX-512 twice (vpmullq and the 32-bit split product).
GEMM_PATHS = [(isa, "default") for isa in ISAS] + (
    [("avx512", "avx512_split")] if "avx512" in ISAS else []
)
GEMM_SHAPES = {
    "conv2": (IMAGES * 196, 288, 64),
    "dense": (max(IMAGES, 64), 3136, 128),
    "in-cache": (192, 128, 64),
}
# The in-cache shape runs on one thread: a thread start would dominate its 0.1 ms.
GEMM_THREADS = {"conv2": THREADS, "dense": THREADS, "in-cache": 1}


def _words(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64)


# ------------------------------------------------------------------ ring GEMM
@pytest.fixture(scope="module", params=sorted(GEMM_SHAPES))
def gemm_case(request: pytest.FixtureRequest) -> dict[str, Any]:
    name = str(request.param)
    m, k, n = GEMM_SHAPES[name]
    rng = np.random.default_rng(RNG_SEED)
    a, b = _words(rng, (m, k)), _words(rng, (k, n))
    return {
        "name": name,
        "a": a,
        "b": b,
        "expected": kernels.ring_matmul_reference(a, b),
        "macs": m * k * n,
        "bytes": 8 * (m * k + k * n + m * n),
        "operands": np.concatenate([a.reshape(-1), b.reshape(-1)]),
        "threads": GEMM_THREADS[name],
    }


def _gemm_group(case: dict[str, Any]) -> str:
    m, k, n = GEMM_SHAPES[case["name"]]
    return f"ring_gemm-{case['name']}-{m}x{k}x{n}"


def test_ring_gemm_read_roofline(benchmark: Benchmark, gemm_case: dict[str, Any]) -> None:
    flat = gemm_case["operands"]
    benchmark.group = _gemm_group(gemm_case)
    benchmark.extra_info.update(role="roofline", bytes=gemm_case["bytes"])
    assert benchmark(_core.stream_sum, a=flat, threads=gemm_case["threads"]) == int(flat.sum())


def test_ring_gemm_numpy(benchmark: Benchmark, gemm_case: dict[str, Any]) -> None:
    benchmark.group = _gemm_group(gemm_case)
    benchmark.extra_info.update(role="baseline", macs=gemm_case["macs"], threads=1)
    out = benchmark.pedantic(
        kernels.ring_matmul_reference, args=(gemm_case["a"], gemm_case["b"]), rounds=3
    )
    np.testing.assert_array_equal(out, gemm_case["expected"])


@pytest.mark.parametrize(("isa", "variant"), GEMM_PATHS, ids=[f"{i}-{v}" for i, v in GEMM_PATHS])
def test_ring_gemm_cpp(
    benchmark: Benchmark, gemm_case: dict[str, Any], isa: str, variant: str
) -> None:
    benchmark.group = _gemm_group(gemm_case)
    benchmark.extra_info.update(
        role="candidate",
        macs=gemm_case["macs"],
        bytes=gemm_case["bytes"],
        threads=gemm_case["threads"],
    )
    out = benchmark(
        _core.ring_gemm,
        a=gemm_case["a"],
        b=gemm_case["b"],
        isa=isa,
        threads=gemm_case["threads"],
        variant=variant,
    )
    np.testing.assert_array_equal(out, gemm_case["expected"])


# ------------------------------------------------------------------ ring convolution
# The Case I second convolution on channel-stacked shares: (images, 14, 14, 64) words,
# 5 x 5 SAME, 16 outputs; one thread (each party runs on its own core).
CONV_SHAPE = (IMAGES, 14, 14, 64)
CONV_KERNEL = (5, 5, 64, 16)
CONV_GROUP = f"ring_conv-case1-conv2-{IMAGES}x14x14x64-5x5x16"


@pytest.fixture(scope="module")
def conv_case() -> dict[str, Any]:
    from cipherfuse.mpc.linear import ring_conv_reference
    from cipherfuse.nn.quantize import QuantizedConv

    rng = np.random.default_rng(RNG_SEED + 3)
    x, w = _words(rng, CONV_SHAPE), _words(rng, CONV_KERNEL)
    layer = QuantizedConv(
        weight=w.view(np.int64),
        bias=np.zeros(16, np.int64),
        weight_scale=1,
        input_scale=1,
        output_scale=1,
        stride=(1, 1),
        padding="SAME",
        activation="none",
    )
    geometry = {"out_h": 14, "out_w": 14, "stride_h": 1, "stride_w": 1, "pad_top": 2, "pad_left": 2}
    return {
        "x": x,
        "w": w,
        "layer": layer,
        "geometry": geometry,
        "expected": ring_conv_reference(x, w, layer),
        "macs": IMAGES * 196 * 25 * 64 * 16,
    }


def test_ring_conv_numpy(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    from cipherfuse.mpc.linear import ring_conv_reference

    benchmark.group = CONV_GROUP
    benchmark.extra_info.update(role="baseline", macs=conv_case["macs"], threads=1)
    out = benchmark.pedantic(
        ring_conv_reference, args=(conv_case["x"], conv_case["w"], conv_case["layer"]), rounds=3
    )
    np.testing.assert_array_equal(out, conv_case["expected"])


def test_ring_conv_he_direct(benchmark: Benchmark, conv_case: dict[str, Any]) -> None:
    """The earlier path: the HE module's direct convolution (scalar on full-width words)."""
    benchmark.group = CONV_GROUP
    benchmark.extra_info.update(role="baseline", macs=conv_case["macs"], threads=1)
    out = benchmark.pedantic(
        _core.conv2d_direct,
        kwargs={
            "x": conv_case["x"].view(np.int64),
            "kern": conv_case["w"],
            **conv_case["geometry"],
            "threads": 1,
        },
        rounds=3,
    )
    np.testing.assert_array_equal(out, conv_case["expected"])


@pytest.mark.parametrize("isa", ISAS)
def test_ring_conv_cpp(benchmark: Benchmark, conv_case: dict[str, Any], isa: str) -> None:
    benchmark.group = CONV_GROUP
    benchmark.extra_info.update(role="candidate", macs=conv_case["macs"], threads=1)
    out = benchmark(
        _core.ring_conv2d,
        x=conv_case["x"],
        kern=conv_case["w"],
        **conv_case["geometry"],
        isa=isa,
        threads=1,
    )
    np.testing.assert_array_equal(out, conv_case["expected"])


# ------------------------------------------------------------------ RSS local steps
RSS_WORDS = IMAGES * 25_088  # the first ReLU's comparisons per image, scaled


@pytest.fixture(scope="module")
def rss_case() -> dict[str, Any]:
    rng = np.random.default_rng(RNG_SEED + 1)
    ops = [_words(rng, (RSS_WORDS,)) for _ in range(5)]
    return {
        "ops": ops,
        "mul": kernels.rss_mul_local_reference(*ops),
        "and": kernels.rss_and_local_reference(*ops),
        "flat": np.concatenate(ops),
        "bytes": 6 * 8 * RSS_WORDS,  # five operands read, one result written
    }


@pytest.mark.parametrize("op", ["mul", "and"])
def test_rss_local_read_roofline(benchmark: Benchmark, rss_case: dict[str, Any], op: str) -> None:
    flat = rss_case["flat"]
    benchmark.group = f"rss_{op}_local-{RSS_WORDS}"
    benchmark.extra_info.update(role="roofline", bytes=flat.nbytes)
    assert benchmark(_core.stream_sum, a=flat, threads=THREADS) == int(flat.sum())


@pytest.mark.parametrize("op", ["mul", "and"])
def test_rss_local_numpy(benchmark: Benchmark, rss_case: dict[str, Any], op: str) -> None:
    fn = kernels.rss_mul_local_reference if op == "mul" else kernels.rss_and_local_reference
    benchmark.group = f"rss_{op}_local-{RSS_WORDS}"
    benchmark.extra_info.update(role="baseline", bytes=rss_case["bytes"])
    out = benchmark.pedantic(fn, args=tuple(rss_case["ops"]), rounds=5)
    np.testing.assert_array_equal(out, rss_case[op])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("op", ["mul", "and"])
def test_rss_local_cpp(benchmark: Benchmark, rss_case: dict[str, Any], op: str, isa: str) -> None:
    fn = kernels.rss_mul_local if op == "mul" else kernels.rss_and_local
    benchmark.group = f"rss_{op}_local-{RSS_WORDS}"
    benchmark.extra_info.update(role="candidate", bytes=rss_case["bytes"])
    out = benchmark(fn, *rss_case["ops"], isa=isa, threads=THREADS)
    np.testing.assert_array_equal(out, rss_case[op])


# ------------------------------------------------------------------ bit slicing
SLICE_ELEMENTS = IMAGES * 25_088 + 37  # not a multiple of 64: the tail group is timed too


@pytest.fixture(scope="module")
def slice_case() -> dict[str, Any]:
    rng = np.random.default_rng(RNG_SEED + 2)
    x = _words(rng, (SLICE_ELEMENTS,))
    planes = kernels.bitslice_reference(x, 64)
    return {"x": x, "planes": planes, "bytes": 2 * x.nbytes}


def test_bitslice_numpy(benchmark: Benchmark, slice_case: dict[str, Any]) -> None:
    benchmark.group = f"bitslice-{SLICE_ELEMENTS}x64"
    benchmark.extra_info.update(role="baseline", bytes=slice_case["bytes"])
    out = benchmark.pedantic(kernels.bitslice_reference, args=(slice_case["x"], 64), rounds=3)
    np.testing.assert_array_equal(out, slice_case["planes"])


@pytest.mark.parametrize("isa", ISAS)
def test_bitslice_cpp(benchmark: Benchmark, slice_case: dict[str, Any], isa: str) -> None:
    benchmark.group = f"bitslice-{SLICE_ELEMENTS}x64"
    benchmark.extra_info.update(role="candidate", bytes=slice_case["bytes"])
    out = benchmark(kernels.bitslice, slice_case["x"], 64, isa=isa, threads=THREADS)
    np.testing.assert_array_equal(out, slice_case["planes"])


def test_unbitslice_numpy(benchmark: Benchmark, slice_case: dict[str, Any]) -> None:
    benchmark.group = f"unbitslice-{SLICE_ELEMENTS}x64"
    benchmark.extra_info.update(role="baseline", bytes=slice_case["bytes"])
    out = benchmark.pedantic(
        kernels.unbitslice_reference, args=(slice_case["planes"], SLICE_ELEMENTS), rounds=3
    )
    np.testing.assert_array_equal(out, slice_case["x"])


@pytest.mark.parametrize("isa", ISAS)
def test_unbitslice_cpp(benchmark: Benchmark, slice_case: dict[str, Any], isa: str) -> None:
    benchmark.group = f"unbitslice-{SLICE_ELEMENTS}x64"
    benchmark.extra_info.update(role="candidate", bytes=slice_case["bytes"])
    out = benchmark(
        kernels.unbitslice, slice_case["planes"], SLICE_ELEMENTS, isa=isa, threads=THREADS
    )
    np.testing.assert_array_equal(out, slice_case["x"])
