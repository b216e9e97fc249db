"""The C++ share kernels (every ISA this CPU runs) against the numpy reference of
cipherfuse.mpc.kernels, bit for bit, and the reference against plain Python integers."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cipherfuse._core as _core
from cipherfuse.mpc import kernels

ISAS = [name for name in ("scalar", "avx2", "avx512", "neon") if _core.isa_available(name)]
MISSING_ISAS = [name for name in ("avx2", "avx512", "neon") if name not in ISAS]
MOD = 1 << 64
EDGES = np.array([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1], dtype=np.uint64)

U64Array = npt.NDArray[np.uint64]


def words(seed: int, shape: tuple[int, ...]) -> U64Array:
    """Uniform uint64 words with about one in eight replaced by an edge value."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)
    edge = rng.random(shape) < 0.125
    out[edge] = EDGES[rng.integers(0, EDGES.size, size=int(edge.sum()))]
    return out


SEEDS = st.integers(0, 2**32 - 1)
DIM = st.integers(0, 70)
SHAPES = st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple)


# ------------------------------------------------------------------ reference vs Python
@settings(max_examples=30, deadline=None)
@given(SEEDS, st.integers(0, 5), st.integers(0, 5), st.integers(0, 5))
def test_reference_ring_matmul_matches_python_integers(seed: int, m: int, k: int, n: int) -> None:
    a, b = words(seed, (m, k)), words(seed + 1, (k, n))
    got = kernels.ring_matmul_reference(a, b)
    want = [
        [sum(int(a[i, p]) * int(b[p, j]) for p in range(k)) % MOD for j in range(n)]
        for i in range(m)
    ]
    assert got.shape == (m, n)
    assert got.tolist() == want


@settings(max_examples=30, deadline=None)
@given(SEEDS, st.integers(0, 200), st.integers(1, 64))
def test_reference_bitslice_matches_python_integers(seed: int, n: int, bits: int) -> None:
    x = words(seed, (n,))
    planes = kernels.bitslice_reference(x, bits)
    assert planes.shape == (bits, -(-n // 64))
    for i in range(n):
        value = sum(((int(planes[b, i // 64]) >> (i % 64)) & 1) << b for b in range(bits))
        assert value == int(x[i]) % (1 << bits)


# ------------------------------------------------------------------ ring GEMM
@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, m=DIM, k=DIM, n=DIM, threads=st.sampled_from([0, 1, 3]))
def test_ring_matmul_matches_reference(
    isa: str, seed: int, m: int, k: int, n: int, threads: int
) -> None:
    a, b = words(seed, (m, k)), words(seed + 1, (k, n))
    got = kernels.ring_matmul(a, b, isa=isa, threads=threads)
    assert got.dtype == np.uint64 and got.shape == (m, n)
    np.testing.assert_array_equal(got, kernels.ring_matmul_reference(a, b), strict=True)


@pytest.mark.parametrize("isa", ISAS)
def test_ring_matmul_across_cache_blocks(isa: str) -> None:
    # m, k past the row block (192) and depth block (128), n past several panels.
    a, b = words(1, (397, 301)), words(2, (301, 71))
    want = kernels.ring_matmul_reference(a, b)
    np.testing.assert_array_equal(kernels.ring_matmul(a, b, isa=isa, threads=2), want)
    if isa == "avx512":
        split = _core.ring_gemm(a=a, b=b, isa="avx512", threads=2, variant="avx512_split")
        np.testing.assert_array_equal(split, want)


def test_ring_matmul_textbook_wraparound() -> None:
    a = np.array([[2**63 + 1, 2**32]], dtype=np.uint64)
    b = np.array([[2], [2**32]], dtype=np.uint64)
    for isa in ISAS:
        assert kernels.ring_matmul(a, b, isa=isa).tolist() == [[2]]


def test_ring_matmul_copies_non_contiguous_operands_and_leaves_them_alone() -> None:
    a, b = words(3, (40, 30)), words(4, (80, 20))
    a_t, b_view = a.T, b[::2]
    before = (a.copy(), b.copy())
    got = kernels.ring_matmul(a_t, b_view)
    np.testing.assert_array_equal(got, kernels.ring_matmul_reference(a_t, b_view))
    np.testing.assert_array_equal(a, before[0])
    np.testing.assert_array_equal(b, before[1])


# ------------------------------------------------------------------ RSS local steps
@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, shape=SHAPES, threads=st.sampled_from([0, 1, 2]))
def test_rss_local_steps_match_reference(
    isa: str, seed: int, shape: tuple[int, ...], threads: int
) -> None:
    ops = [words(seed + i, shape) for i in range(5)]
    mul = kernels.rss_mul_local(*ops, isa=isa, threads=threads)
    boolean = kernels.rss_and_local(*ops, isa=isa, threads=threads)
    # strict: shapes equal too (a 0-d operand gives shape (1,), like the reference)
    np.testing.assert_array_equal(mul, kernels.rss_mul_local_reference(*ops), strict=True)
    np.testing.assert_array_equal(boolean, kernels.rss_and_local_reference(*ops), strict=True)
    assert mul.size == boolean.size == int(np.prod(shape))


@pytest.mark.parametrize("isa", ISAS)
def test_rss_local_steps_long_vectors_split_over_threads(isa: str) -> None:
    ops = [words(10 + i, (100_003,)) for i in range(5)]
    np.testing.assert_array_equal(
        kernels.rss_mul_local(*ops, isa=isa, threads=3), kernels.rss_mul_local_reference(*ops)
    )
    np.testing.assert_array_equal(
        kernels.rss_and_local(*ops, isa=isa, threads=3), kernels.rss_and_local_reference(*ops)
    )


@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, rows=st.integers(0, 9), cols=st.integers(0, 70), step=st.integers(1, 3))
def test_rss_and_rows_on_strided_planes_matches_reference(
    isa: str, seed: int, rows: int, cols: int, step: int
) -> None:
    """Every ``step``-th plane of larger arrays, written into a slice of a bigger buffer."""
    x0, x1, y0, y1, mask = (words(seed + t, (rows * step, cols))[::step] for t in range(5))
    buffer = np.full((rows + 2, cols), 7, dtype=np.uint64)
    kernels.rss_and_rows(x0, x1, y0, y1, mask, buffer[1 : rows + 1], isa=isa, threads=1)
    want = kernels.rss_and_local_reference(x0, x1, y0, y1, mask)
    np.testing.assert_array_equal(buffer[1 : rows + 1], want)
    assert (buffer[0] == 7).all() and (buffer[rows + 1] == 7).all()  # nothing else written


def test_rss_and_rows_rejects_bad_operands() -> None:
    a = np.zeros((2, 4), dtype=np.uint64)
    with pytest.raises(ValueError, match="one shape"):
        kernels.rss_and_rows(a, a, a, a, a, np.zeros((2, 3), dtype=np.uint64))
    with pytest.raises(TypeError, match="uint64"):
        kernels.rss_and_rows(a, a, a, a, a, np.zeros((2, 4), dtype=np.int64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contiguous rows"):
        kernels.rss_and_rows(a[:, ::2], a[:, ::2], a[:, ::2], a[:, ::2], a[:, ::2], a[:, :2])
    with pytest.raises(ValueError, match="writeable"):
        kernels.rss_and_rows(a, a, a, a, a, np.broadcast_to(np.zeros(4, np.uint64), (2, 4)))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("boolean", [False, True])
def test_three_local_products_share_the_product(isa: str, boolean: bool) -> None:
    """With masks that share zero, the three parties' outputs share x*y (or x&y)."""
    n = 301
    x = [words(20 + i, (n,)) for i in range(3)]
    y = [words(30 + i, (n,)) for i in range(3)]
    alpha = [words(40 + i, (n,)) for i in range(3)]
    outs = []
    for i in range(3):
        j = (i + 1) % 3
        if boolean:
            mask = alpha[i] ^ alpha[j]
            outs.append(kernels.rss_and_local(x[i], x[j], y[i], y[j], mask, isa=isa))
        else:
            mask = alpha[i] - alpha[j]
            outs.append(kernels.rss_mul_local(x[i], x[j], y[i], y[j], mask, isa=isa))
    if boolean:
        np.testing.assert_array_equal(
            outs[0] ^ outs[1] ^ outs[2], (x[0] ^ x[1] ^ x[2]) & (y[0] ^ y[1] ^ y[2])
        )
    else:
        np.testing.assert_array_equal(
            outs[0] + outs[1] + outs[2], (x[0] + x[1] + x[2]) * (y[0] + y[1] + y[2])
        )


# ------------------------------------------------------------------ bit slicing
@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=40, deadline=None)
@given(
    seed=SEEDS,
    n=st.one_of(st.integers(0, 140), st.integers(500, 1100)),
    bits=st.integers(1, 64),
    threads=st.sampled_from([0, 1, 3]),
)
def test_bitslice_matches_reference_and_inverts(
    isa: str, seed: int, n: int, bits: int, threads: int
) -> None:
    x = words(seed, (n,))
    planes = kernels.bitslice(x, bits, isa=isa, threads=threads)
    np.testing.assert_array_equal(planes, kernels.bitslice_reference(x, bits), strict=True)
    back = kernels.unbitslice(planes, n, isa=isa, threads=threads)
    np.testing.assert_array_equal(back, kernels.unbitslice_reference(planes, n), strict=True)
    keep = np.uint64(2**bits - 1) if bits < 64 else np.uint64(2**64 - 1)
    np.testing.assert_array_equal(back, x & keep)


@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, bits=st.integers(1, 64), words_=st.integers(0, 20), data=st.data())
def test_unbitslice_of_any_planes_matches_reference(
    isa: str, seed: int, bits: int, words_: int, data: st.DataObject
) -> None:
    planes = words(seed, (bits, words_))
    n = data.draw(st.integers(0, 64 * words_))
    np.testing.assert_array_equal(
        kernels.unbitslice(planes, n, isa=isa), kernels.unbitslice_reference(planes, n)
    )


def test_bitslice_flattens_any_shape() -> None:
    x = words(5, (3, 7, 11))
    for isa in ISAS:
        np.testing.assert_array_equal(
            kernels.bitslice(x, 20, isa=isa), kernels.bitslice_reference(x, 20)
        )


# ------------------------------------------------------------------ argument errors
def test_wrong_dtypes_raise_type_error() -> None:
    good = words(6, (4, 4))
    bad = good.astype(np.int64)
    with pytest.raises(TypeError):
        kernels.ring_matmul(bad, good)
    with pytest.raises(TypeError):
        kernels.rss_mul_local(good, good, bad, good, good)
    with pytest.raises(TypeError):
        kernels.rss_and_local(good, good, good, good, bad)
    with pytest.raises(TypeError):
        kernels.bitslice(bad)
    with pytest.raises(TypeError):
        kernels.unbitslice(bad, 4)


def test_bad_shapes_and_sizes_raise_value_error() -> None:
    a = words(7, (4, 5))
    with pytest.raises(ValueError, match="need"):
        kernels.ring_matmul(a, a)
    with pytest.raises(ValueError, match="need"):
        kernels.ring_matmul(a.reshape(-1), a)
    with pytest.raises(ValueError, match="one shape"):
        kernels.rss_mul_local(a, a, a, a, a.T)
    with pytest.raises(ValueError, match="one shape"):
        kernels.rss_and_local(a, a, a, a[:3], a)
    for bits in (0, 65):
        with pytest.raises(ValueError, match="bits"):
            kernels.bitslice(a, bits)
    with pytest.raises(ValueError, match="n must be"):
        kernels.unbitslice(a, 5 * 64 + 1)
    with pytest.raises(ValueError, match="n must be"):
        kernels.unbitslice(a, -1)
    with pytest.raises(ValueError, match="planes"):
        kernels.unbitslice(words(8, (65, 2)), 10)


def test_unknown_or_unavailable_isa_raises() -> None:
    a = words(9, (3, 3))
    with pytest.raises(_core.KernelArgumentError, match="unknown isa"):
        kernels.ring_matmul(a, a, isa="sse9")
    for isa in MISSING_ISAS:
        with pytest.raises(_core.KernelArgumentError, match="not available"):
            kernels.rss_mul_local(a, a, a, a, a, isa=isa)
        with pytest.raises(_core.KernelArgumentError, match="not available"):
            kernels.bitslice(a, isa=isa)


def test_core_bindings_validate_their_operands() -> None:
    a = words(11, (6, 6))
    with pytest.raises(_core.KernelArgumentError, match="uint64"):
        _core.ring_gemm(a=a.astype(np.int64), b=a)
    with pytest.raises(_core.KernelArgumentError, match="C-contiguous"):
        _core.ring_gemm(a=a.T, b=a)
    with pytest.raises(_core.KernelArgumentError, match="need"):
        _core.ring_gemm(a=a[:, :5].copy(), b=a[:4].copy())
    with pytest.raises(_core.KernelArgumentError, match="variant"):
        _core.ring_gemm(a=a, b=a, variant="fast")
    with pytest.raises(_core.KernelArgumentError, match="one shape"):
        _core.rss_mul_local(x0=a, x1=a, y0=a, y1=a, mask=a[:2].copy())
    with pytest.raises(_core.KernelArgumentError, match="C-contiguous"):
        _core.rss_and_local(x0=a, x1=a, y0=a[:, ::2], y1=a, mask=a)
    with pytest.raises(_core.KernelArgumentError, match="bits"):
        _core.bitslice(x=a, bits=0)
    with pytest.raises(_core.KernelArgumentError, match="n must be"):
        _core.unbitslice(planes=a, n=6 * 64 + 1)
    with pytest.raises(_core.KernelArgumentError, match="planes"):
        _core.unbitslice(planes=a.reshape(-1), n=1)


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "geometry", "match"),
    [
        ((1, 4, 4, 2), (3, 3, 3, 1), {}, "need images"),  # channels differ
        ((4, 4, 2), (3, 3, 2, 1), {}, "need images"),  # not 4-D
        ((1, 4, 4, 2), (3, 3, 2, 1), {"pad_top": 3}, "padding"),
        ((1, 4, 4, 2), (3, 3, 2, 1), {"out_h": 9}, "output size"),
    ],
)
def test_ring_conv2d_rejects_bad_geometry(
    x_shape: tuple[int, ...], k_shape: tuple[int, ...], geometry: dict[str, int], match: str
) -> None:
    args = {"out_h": 2, "out_w": 2, **geometry}
    with pytest.raises(ValueError, match=match):
        _core.ring_conv2d(x=np.zeros(x_shape, np.uint64), kern=np.zeros(k_shape, np.uint64), **args)


def test_ring_conv2d_rejects_other_dtypes() -> None:
    with pytest.raises(ValueError, match="uint64"):
        _core.ring_conv2d(
            x=np.zeros((1, 4, 4, 2), np.int64),
            kern=np.zeros((3, 3, 2, 1), np.uint64),
            out_h=2,
            out_w=2,
        )
