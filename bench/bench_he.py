"""Benchmarks of the IVHE core (issue: foundation). Run:

    pytest bench/bench_he.py --benchmark-only

Fixed seeds, setup outside the timed region, correctness asserted, baseline
(numpy reference) and candidate (C++) in the same group. The summary printed
at the end (bench/conftest.py) gives speed-ups, GB/s against the memory-read
roofline measured in the same run, and GMAC/s per thread.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import cipherfuse._core as _core
from cipherfuse import he
from cipherfuse.he import reference

if TYPE_CHECKING:
    from bench.conftest import Benchmark

RNG_SEED = 20181807
M_PLAIN = 784  # the paper's MNIST input length


def _seed(i: int) -> bytes:
    return bytes([i]) * 32


def _measure(benchmark: Benchmark, kernels: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Few rounds for the slow numpy baseline, calibrated rounds for the C++ candidate."""
    with he.use_kernels(kernels):
        if kernels == "reference":
            return benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=3)
        return benchmark(fn, *args, **kwargs)


# ------------------------------------------------------------------ key switching
@pytest.fixture(scope="module", params=[1, 8], ids=["base2", "base256"])
def switch_case(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The paper's public matrix M at n = 784 (k = 1): 315 MB at base 2, 39 MB at 2^8."""
    base_bits = int(request.param)
    rng = np.random.default_rng(RNG_SEED)
    l = reference.digit_count(base_bits)
    M = rng.integers(0, 2**64, size=(M_PLAIN + 1, M_PLAIN * l), dtype=np.uint64)
    c = rng.integers(0, 2**64, size=M_PLAIN, dtype=np.uint64)
    return {"M": M, "c": c, "b": base_bits, "expected": M @ reference.decompose(c, base_bits)}


def _group(name: str, case: dict[str, Any]) -> str:
    return f"{name}-b{case['b']}-n{M_PLAIN}"


def test_keyswitch_read_roofline(benchmark: Benchmark, switch_case: dict[str, Any]) -> None:
    M = switch_case["M"]
    flat = M.reshape(-1)
    benchmark.group = _group("keyswitch", switch_case)
    benchmark.extra_info.update(role="roofline", bytes=M.nbytes)
    total = benchmark(_core.stream_sum, flat, threads=0)
    assert total == int(flat.sum())


def test_keyswitch_numpy(benchmark: Benchmark, switch_case: dict[str, Any]) -> None:
    M, c, b = switch_case["M"], switch_case["c"], switch_case["b"]
    benchmark.group = _group("keyswitch", switch_case)
    benchmark.extra_info.update(role="baseline", bytes=M.nbytes)
    out = benchmark.pedantic(reference.ReferenceKernels().keyswitch, args=(M, c, b), rounds=5)
    np.testing.assert_array_equal(out, switch_case["expected"])


def test_keyswitch_cpp(benchmark: Benchmark, switch_case: dict[str, Any]) -> None:
    M, c, b = switch_case["M"], switch_case["c"], switch_case["b"]
    benchmark.group = _group("keyswitch", switch_case)
    benchmark.extra_info.update(role="candidate", bytes=M.nbytes)
    out = benchmark(_core.keyswitch, M, c, b)
    np.testing.assert_array_equal(out, switch_case["expected"])


# ------------------------------------------------------------------ GEMM (uint64 MAC rate)
@pytest.fixture(scope="module")
def gemm_case() -> dict[str, Any]:
    rng = np.random.default_rng(RNG_SEED)
    w = rng.integers(0, 2**64, size=(1024, 1024), dtype=np.uint64)
    s = rng.integers(-1, 2, size=(1024, 256), dtype=np.int64)
    return {"w": w, "s": s, "expected": reference.gemm(w, s), "macs": 1024 * 1024 * 256}


def test_gemm_numpy(benchmark: Benchmark, gemm_case: dict[str, Any]) -> None:
    benchmark.group = "gemm-u64-1024x1024x256"
    benchmark.extra_info.update(role="baseline", macs=gemm_case["macs"])
    out = benchmark.pedantic(reference.gemm, args=(gemm_case["w"], gemm_case["s"]), rounds=3)
    np.testing.assert_array_equal(out, gemm_case["expected"])


@pytest.mark.parametrize("threads", [1, 2])
def test_gemm_cpp(benchmark: Benchmark, gemm_case: dict[str, Any], threads: int) -> None:
    benchmark.group = "gemm-u64-1024x1024x256"
    benchmark.extra_info.update(role="candidate", macs=gemm_case["macs"], threads=threads)
    out = benchmark(
        _core.gemm_wide_small, gemm_case["w"], gemm_case["s"], isa="auto", threads=threads
    )
    np.testing.assert_array_equal(out, gemm_case["expected"])


# ------------------------------------------------------------------ scheme operations, n = 784
@pytest.fixture(scope="module")
def secure_keys() -> dict[str, Any]:
    sk = he.keygen(he.SECURE, M_PLAIN, seed=_seed(1))
    pk = he.public_keygen(sk, seed=_seed(2))
    x = np.random.default_rng(RNG_SEED).integers(-1000, 1000, size=(64, M_PLAIN))
    return {"sk": sk, "pk": pk, "x": x}


@pytest.mark.parametrize("kernels", ["reference", "cpp"])
def test_encrypt_batch_secure(
    benchmark: Benchmark, secure_keys: dict[str, Any], kernels: str
) -> None:
    """64 vectors of length 784 under the secure set: one (64 x 2560) x (2560 x 3344) GEMM."""
    benchmark.group = "encrypt-secure-64x784"
    k = he.SECURE.lwe_dim
    benchmark.extra_info.update(
        role="baseline" if kernels == "reference" else "candidate", macs=64 * k * (M_PLAIN + k)
    )
    with he.use_kernels(kernels):
        ct = benchmark.pedantic(
            he.encrypt,
            args=(secure_keys["pk"], secure_keys["x"]),
            kwargs={"seed": _seed(3)},
            rounds=3,
        )
    np.testing.assert_array_equal(he.decrypt(secure_keys["sk"], ct), secure_keys["x"])


@pytest.fixture(scope="module", params=[1, 2, 3, 4, 8, 16, 24, 32], ids=lambda b: f"batch{b}")
def small_batch(request: pytest.FixtureRequest, secure_keys: dict[str, Any]) -> dict[str, Any]:
    """The first ``batch`` vectors of the 64 (a single vector is passed as shape (784,)).

    On AVX-512 every size here takes the narrow path (up to 64 vectors), on AVX2 up to
    12, beyond that the float64 GEMM; 64 vectors are the group ``encrypt-secure-64x784``."""
    batch = request.param
    x = secure_keys["x"][0] if batch == 1 else secure_keys["x"][:batch]
    return {"batch": batch, "x": x}


def test_encrypt_small_batch_read_roofline(
    benchmark: Benchmark, secure_keys: dict[str, Any], small_batch: dict[str, Any]
) -> None:
    """The memory-read floor of an encryption: reading the public matrix P once."""
    benchmark.group = f"encrypt-secure-{small_batch['batch']}x784"
    flat = secure_keys["pk"].P.reshape(-1)
    benchmark.extra_info.update(role="roofline", bytes=flat.nbytes)
    assert benchmark(_core.stream_sum, flat) == int(flat.sum(dtype=np.uint64))


@pytest.mark.parametrize("kernels", ["reference", "cpp"])
def test_encrypt_small_batch_secure(
    benchmark: Benchmark, secure_keys: dict[str, Any], small_batch: dict[str, Any], kernels: str
) -> None:
    """1-32 vectors: a product with P, which the narrow path reads once per 8 vectors."""
    benchmark.group = f"encrypt-secure-{small_batch['batch']}x784"
    pk = secure_keys["pk"]
    benchmark.extra_info.update(
        role="baseline" if kernels == "reference" else "candidate", bytes=pk.P.nbytes
    )
    with he.use_kernels(kernels):
        ct = benchmark.pedantic(
            he.encrypt, args=(pk, small_batch["x"]), kwargs={"seed": _seed(3)}, rounds=5
        )
    with he.use_kernels("reference"):
        expected = he.encrypt(pk, small_batch["x"], seed=_seed(3))
    np.testing.assert_array_equal(ct.data, expected.data)
    np.testing.assert_array_equal(he.decrypt(secure_keys["sk"], ct), small_batch["x"])


@pytest.mark.parametrize("kernels", ["reference", "cpp"])
def test_weighted_sums_secure(
    benchmark: Benchmark, secure_keys: dict[str, Any], kernels: str
) -> None:
    """Plaintext-weighted inner products (paper Eq. 21): 784 weight rows over 64 ciphertexts."""
    benchmark.group = "weighted-sum-secure-784x64"
    cts = he.encrypt(secure_keys["pk"], secure_keys["x"], seed=_seed(12))
    g = np.random.default_rng(RNG_SEED).integers(-127, 128, size=(M_PLAIN, 64))
    benchmark.extra_info.update(
        role="baseline" if kernels == "reference" else "candidate", macs=M_PLAIN * 64 * cts.n
    )
    out = _measure(benchmark, kernels, he.linear_combination, g, cts)
    np.testing.assert_array_equal(he.decrypt(secure_keys["sk"], out), g @ secure_keys["x"])


INNER = he.PAPER.with_(name="paper-inner", plaintext_bits=16, base_bits=8)


@pytest.fixture(scope="module")
def inner_keys() -> dict[str, Any]:
    sk = he.keygen(INNER, M_PLAIN, seed=_seed(4))
    target = he.keygen(INNER, 1, seed=_seed(5))
    pk = he.public_keygen(sk, seed=_seed(6))
    key = he.inner_product_key(sk, target, seed=_seed(7))
    rng = np.random.default_rng(RNG_SEED)
    x, y = rng.integers(-5, 6, M_PLAIN), rng.integers(-5, 6, M_PLAIN)
    a = he.encrypt(pk, x, value_bound=5, seed=_seed(8))
    b = he.encrypt(pk, y, value_bound=5, seed=_seed(9))
    return {"a": a, "b": b, "key": key, "target": target, "xy": int(x @ y)}


@pytest.mark.parametrize("kernels", ["reference", "cpp"])
def test_inner_product_n784(benchmark: Benchmark, inner_keys: dict[str, Any], kernels: str) -> None:
    """Paper Eq. 44 (ct x ct) at n = 785 plus the switch back (79 MB key at base 2^8)."""
    benchmark.group = "ct-x-ct-n784"
    benchmark.extra_info.update(
        role="baseline" if kernels == "reference" else "candidate", bytes=inner_keys["key"].nbytes
    )
    with he.use_kernels(kernels):
        out = benchmark.pedantic(
            he.inner_product, args=(inner_keys["a"], inner_keys["b"], inner_keys["key"]), rounds=5
        )
    assert int(he.decrypt(inner_keys["target"], out)[0]) == inner_keys["xy"]


@pytest.fixture(scope="module")
def paper_keys() -> dict[str, Any]:
    sk = he.keygen(he.PAPER, M_PLAIN, seed=_seed(10))
    ident = he.identity_switch_key(sk, seed=_seed(11))
    x = np.random.default_rng(RNG_SEED).integers(-1000, 1000, size=M_PLAIN)
    return {"sk": sk, "M": ident, "x": x}


@pytest.mark.parametrize("kernels", ["reference", "cpp"])
def test_encrypt_paper_n784(benchmark: Benchmark, paper_keys: dict[str, Any], kernels: str) -> None:
    """The paper's Eq. 6 encryption c = M (w x)* with its 315 MB base-2 matrix."""
    benchmark.group = "encrypt-paper-eq6-n784"
    benchmark.extra_info.update(
        role="baseline" if kernels == "reference" else "candidate", bytes=paper_keys["M"].nbytes
    )
    with he.use_kernels(kernels):
        ct = benchmark.pedantic(he.encrypt_paper, args=(paper_keys["M"], paper_keys["x"]), rounds=5)
    np.testing.assert_array_equal(he.decrypt(paper_keys["sk"], ct), paper_keys["x"])


# ------------------------------------------------------------------ the GIL is released
def _keyswitch_in_threads(matrix: Any, c: Any, base_bits: int, count: int) -> list[Any]:
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        results[i] = _core.keyswitch(matrix, c, base_bits, isa="auto", threads=1)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("count", [1, 2], ids=["one-keyswitch", "two-keyswitches-2-threads"])
def test_gil_released(benchmark: Benchmark, switch_case: dict[str, Any], count: int) -> None:
    """Two Python threads, each running a single-threaded key switch.

    With the GIL released they overlap: on the 39 MB base-2^8 matrix (cache-resident)
    two take about the time of one. On the 315 MB base-2 matrix both are limited by
    the same DRAM bandwidth, so two take about twice as long; both are reported.
    """
    benchmark.group = f"gil-two-keyswitches-b{switch_case['b']}"
    benchmark.extra_info.update(
        role="baseline" if count == 1 else "candidate", bytes=count * switch_case["M"].nbytes
    )
    results = benchmark(
        _keyswitch_in_threads, switch_case["M"], switch_case["c"], switch_case["b"], count
    )
    for r in results:
        np.testing.assert_array_equal(r, switch_case["expected"])


def encrypt_side_by_side(rounds: int = 9, *, cpu: bool = False) -> dict[int, str]:
    """Per-round ratios of the C++ encryption to numpy and to reading P, interleaved.

    ``cpu``: one C++ thread everywhere (kernels and the read of P) and CPU time of the
    calling thread instead of wall time: the comparison for a machine shared with
    other jobs.

    ``cpp-scalar`` is the scalar reference GEMM, the route batches of at most 4
    vectors took before the narrow path (one accumulator store per multiply-add); it
    is timed up to 8 vectors only (it takes ~70 ms per vector).
    """
    import time

    from cipherfuse.analysis.timing import interleaved_times, paired_ratio
    from cipherfuse.he.backend import CppKernels

    sk = he.keygen(he.SECURE, M_PLAIN, seed=_seed(1))
    pk = he.public_keygen(sk, seed=_seed(2))
    xs = np.random.default_rng(RNG_SEED).integers(-1000, 1000, size=(64, M_PLAIN))
    flat = pk.P.reshape(-1)
    threads = 1 if cpu else 0
    kernels: dict[str, Any] = {
        "reference": "reference",
        "cpp-scalar": CppKernels(isa="scalar", threads=threads),
        "cpp": CppKernels(threads=threads),
    }
    lines = {}
    for batch in (1, 2, 3, 4, 8, 16, 24, 32, 64):
        x = xs[0] if batch == 1 else xs[:batch]

        def encrypt(name: str, x: Any = x) -> Any:
            with he.use_kernels(kernels[name]):
                return he.encrypt(pk, x, seed=_seed(3)).data

        expected = encrypt("reference")

        def check(name: str, out: Any, expected: Any = expected) -> None:
            if name != "read-P":
                np.testing.assert_array_equal(out, expected)

        runs = {
            "numpy": lambda: encrypt("reference"),
            "cpp-scalar": lambda: encrypt("cpp-scalar"),  # the former route of batch <= 4
            "cpp": lambda: encrypt("cpp"),
            "read-P": lambda: _core.stream_sum(flat, threads=threads),
        }
        if batch > 8:
            del runs["cpp-scalar"]
        clock = time.thread_time if cpu else time.perf_counter
        times = interleaved_times(runs, rounds, check=check, clock=clock)
        scalar = (
            f"cpp-scalar/numpy {paired_ratio(times['cpp-scalar'], times['numpy'])}; "
            if "cpp-scalar" in times
            else ""
        )
        lines[batch] = (
            f"cpp {1e3 * min(times['cpp']):7.2f} ms min, numpy {1e3 * min(times['numpy']):7.2f}"
            f" ms min; {scalar}cpp/numpy {paired_ratio(times['cpp'], times['numpy'])}; "
            f"cpp/read-P {paired_ratio(times['cpp'], times['read-P'])}"
        )
    return lines


if __name__ == "__main__":
    import sys

    args = [a for a in sys.argv[1:] if a != "--cpu"]
    side = encrypt_side_by_side(int(args[0]) if args else 9, cpu="--cpu" in sys.argv)
    for batch, line in side.items():
        print(f"batch {batch:3}: {line}")
