"""Seeded packed encryption of weight matrices (cipherfuse.he.seeded)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from cipherfuse import _core, he
from cipherfuse.he import seeded
from tests.he.conftest import CPP_ISAS, seed

I64 = npt.NDArray[np.int64]


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(n)


def _key(m: int, n: int = 1) -> he.SecretKey:
    return he.keygen(he.SECURE, m, seed=seed(100 + n))


def _conv_plain(x: I64, w: I64, bias: I64 | None, stride: tuple[int, int], padding: str) -> I64:
    """Independent int64 reference: a sum of shifted, strided image slices times each tap."""
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    if padding == "SAME":
        oh, ow = -(-h // stride[0]), -(-wd // stride[1])
        pt = max((oh - 1) * stride[0] + kh - h, 0) // 2
        pl = max((ow - 1) * stride[1] + kw - wd, 0) // 2
    else:
        oh, ow = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
        pt = pl = 0
    big = np.zeros((n, h + 2 * kh, wd + 2 * kw, x.shape[3]), np.int64)
    big[:, kh : kh + h, kw : kw + wd] = x
    out = np.zeros((n, oh, ow, f), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            y0 = kh - pt + ky
            x0 = kw - pl + kx
            sl = big[:, y0 : y0 + oh * stride[0] : stride[0], x0 : x0 + ow * stride[1] : stride[1]]
            out += sl @ w[ky, kx]
    return out if bias is None else out + bias


def test_dense_decrypts_to_the_integer_product() -> None:
    rng = _rng(1)
    d, o = 50, 8
    w = rng.integers(-127, 128, (d, o))
    b = rng.integers(-(10**5), 10**5, o)
    x = rng.integers(-255, 256, (7, d))
    sk = _key(o)
    sm = seeded.seeded_encrypt_matrix(sk, w, bias=b, seed=seed(1), noise_seed=seed(2))
    y = seeded.SeededDecryptor(sk, sm).decrypt_dense(x, seeded.evaluate_dense(sm, x))
    expect = [
        [sum(int(x[i, j]) * int(w[j, k]) for j in range(d)) + int(b[k]) for k in range(o)]
        for i in range(7)
    ]
    assert y.dtype == np.int64
    assert y.tolist() == expect


@pytest.mark.parametrize(
    ("shape", "stride", "padding", "with_bias"),
    [
        ((5, 5, 1, 32), (1, 1), "SAME", True),  # the Table VI first conv
        ((3, 3, 2, 6), (2, 2), "SAME", False),
        ((3, 2, 3, 5), (1, 2), "VALID", True),
    ],
)
def test_conv_decrypts_to_the_integer_convolution(
    shape: tuple[int, int, int, int], stride: tuple[int, int], padding: str, with_bias: bool
) -> None:
    rng = _rng(2)
    w = rng.integers(-127, 128, shape)
    bias = rng.integers(-5000, 5000, shape[3]) if with_bias else None
    x = rng.integers(0, 1001, (3, 11, 9, shape[2]))
    sk = _key(shape[3], 2)
    sm = seeded.seeded_encrypt_matrix(sk, w, bias=bias, seed=seed(3), noise_seed=seed(4))
    pad: seeded.Padding = "SAME" if padding == "SAME" else "VALID"
    b_parts = seeded.evaluate_conv(sm, x, stride=stride, padding=pad)
    y = seeded.SeededDecryptor(sk, sm).decrypt_conv(x, b_parts, stride=stride, padding=pad)
    np.testing.assert_array_equal(y, _conv_plain(x, w, bias, stride, padding))


@pytest.mark.parametrize("isa", CPP_ISAS)
def test_cpp_conv_is_bit_exact_against_the_numpy_reference(isa: str) -> None:
    rng = _rng(3)
    w = rng.integers(-127, 128, (5, 5, 3, 20))
    x = rng.integers(-(2**31) + 1, 2**31, (4, 13, 10, 3))
    sk = _key(20, 3)
    sm = seeded.seeded_encrypt_matrix(sk, w, bias=rng.integers(-9, 9, 20), plaintext_bits=8)
    for stride, padding in (((1, 1), "SAME"), ((2, 3), "VALID"), ((3, 2), "SAME")):
        pad: seeded.Padding = "SAME" if padding == "SAME" else "VALID"
        # Bit-exactness of the uint64 arithmetic, not decryption: bypass the budget check.
        got = _core.seeded_conv(
            x,
            np.ascontiguousarray(sm.weights_b()),
            sm.bias_b(),
            stride_h=stride[0],
            stride_w=stride[1],
            **_pads(x.shape, (5, 5), stride, pad),
            isa=isa,
            threads=2,
        )
        ref = _reference_conv_unchecked(sm, x, stride, pad)
        np.testing.assert_array_equal(got, ref)


def _pads(
    shape: tuple[int, ...], k: tuple[int, int], stride: tuple[int, int], pad: seeded.Padding
) -> dict[str, int]:
    """The padding and output size keywords of ``_core.seeded_conv``."""
    g = seeded.conv_geometry(shape[1], shape[2], k[0], k[1], stride, pad)
    return {"pad_top": g.pad_top, "pad_left": g.pad_left, "out_h": g.out_h, "out_w": g.out_w}


def _reference_conv_unchecked(
    sm: seeded.SeededMatrix, x: I64, stride: tuple[int, int], pad: seeded.Padding
) -> npt.NDArray[np.uint64]:
    patches, _ = seeded.im2col(x, sm.kernel_shape[0], sm.kernel_shape[1], stride, pad)
    out: npt.NDArray[np.uint64] = patches.astype(np.uint64) @ sm.b[: sm.fan_in]
    bias = sm.bias_b()
    return out if bias is None else out + bias


@pytest.mark.parametrize("kernels", ["reference", "cpp-scalar", "cpp"])
def test_evaluations_match_their_numpy_references(kernels: str) -> None:
    rng = _rng(4)
    sk = _key(16, 4)
    dense = seeded.seeded_encrypt_matrix(
        sk, rng.integers(-127, 128, (40, 16)), bias=rng.integers(-9, 9, 16)
    )
    x = rng.integers(-255, 256, (9, 40))
    with he.use_kernels(kernels):
        np.testing.assert_array_equal(
            seeded.evaluate_dense(dense, x), seeded.reference_dense(dense, x)
        )
    # Small batches take the matrix-vector path.
    for n in range(1, seeded.MATVEC_MAX_BATCH + 2):
        np.testing.assert_array_equal(
            seeded.evaluate_dense(dense, x[:n]), seeded.reference_dense(dense, x[:n])
        )
    conv = seeded.seeded_encrypt_matrix(sk, rng.integers(-127, 128, (3, 3, 2, 16)))
    imgs = rng.integers(0, 256, (70, 6, 6, 2))  # more images than one reference chunk
    np.testing.assert_array_equal(
        seeded.evaluate_conv(conv, imgs, stride=2), seeded.reference_conv(conv, imgs, stride=2)
    )


def test_stored_rows_are_lwe_samples_under_the_key() -> None:
    """b + A T^T - w W is the fresh noise, inside [-eta, eta] (checked with numpy, not the core)."""
    rng = _rng(5)
    sk = _key(4, 5)
    w = rng.integers(-100, 100, (12, 4))
    sm = seeded.seeded_encrypt_matrix(sk, w, seed=seed(7), noise_seed=seed(8))
    bound = seeded.bind_mask_seed(seed(7), seed(8), sk.key_id, w, he.SECURE.plaintext_bits)
    assert sm.seed == bound != seed(7)  # the stored seed is bound to the secret and content
    a = seeded.expand_masks(he.SECURE, sm.seed, 12)
    assert a.shape == (12, he.SECURE.lwe_dim)
    np.testing.assert_array_equal(a, seeded.expand_masks(he.SECURE, sm.seed, 12))
    assert not np.array_equal(a, seeded.expand_masks(he.SECURE, seed(9), 12))
    u = a @ sk.T.T.astype(np.uint64)
    e = (sm.b + u - w.astype(np.uint64) * np.uint64(sm.w)).view(np.int64)
    assert int(np.abs(e).max()) <= he.SECURE.error_max
    assert int(np.abs(e).max()) > 0  # noise is really there


def test_noise_budget_is_checked_before_computing() -> None:
    sk = _key(4, 6)
    w = np.ones((10, 4), np.int64)
    # plaintext_bits=57: w/2 = 2^6 = 64; ||x||_1 = 10 gives a noise bound of 10 * 21.
    sm = seeded.seeded_encrypt_matrix(sk, w, plaintext_bits=57)
    with pytest.raises(he.NoiseBudgetExceeded) as info:
        seeded.evaluate_dense(sm, np.ones((1, 10), np.int64))
    assert info.value.bound == 10 * he.SECURE.error_max
    assert info.value.limit == 64
    seeded.evaluate_dense(sm, np.eye(10, dtype=np.int64)[:1])  # l1 = 1: 21 < 64 is fine
    conv = seeded.seeded_encrypt_matrix(sk, np.ones((2, 2, 1, 4), np.int64), plaintext_bits=57)
    with pytest.raises(he.NoiseBudgetExceeded):
        seeded.evaluate_conv(conv, np.full((1, 4, 4, 1), 3, np.int64))
    small = seeded.seeded_encrypt_matrix(sk, w * 100, plaintext_bits=12)
    with pytest.raises(he.PlaintextOverflow, match="plaintext_bits"):
        seeded.evaluate_dense(small, np.full((1, 10), 3, np.int64))


def test_plaintext_bits_for_balances_both_limits() -> None:
    tau = seeded.plaintext_bits_for(he.SECURE, 25 * 1000, 127, 10**6)
    assert 2 ** (tau - 1) > 25 * 1000 * 127 + 10**6
    assert (25 * 1000 + 1) * he.SECURE.error_max < 2 ** (63 - tau)
    with pytest.raises(he.NoiseBudgetExceeded):
        seeded.plaintext_bits_for(he.SECURE, 2**30, 2**30)


def test_serialization_round_trip_size_and_tampering() -> None:
    rng = _rng(7)
    d, o = 784, 16
    sk = _key(o, 7)
    w = rng.integers(-127, 128, (d, o))
    sm = seeded.seeded_encrypt_matrix(sk, w, bias=np.arange(o), plaintext_bits=32)
    blob = seeded.to_bytes(sm)
    # ~ (d + 1) * O words + the 32-byte seed + a small header; no masks (d * k words).
    assert sm.nbytes == (d + 1) * o * 8 + 32
    assert (d + 1) * o * 8 < len(blob) < (d + 1) * o * 8 + 2048
    back = seeded.from_bytes(blob, params=he.SECURE)
    assert back.seed == sm.seed
    assert back.kernel_shape == sm.kernel_shape
    np.testing.assert_array_equal(back.b, sm.b)
    x = rng.integers(0, 256, (3, d))
    y = seeded.SeededDecryptor(sk, back).decrypt_dense(x, seeded.evaluate_dense(back, x))
    np.testing.assert_array_equal(y, x @ w + np.arange(o))
    for pos in (10, 40, len(blob) // 2, len(blob) - 1):
        bad = bytearray(blob)
        bad[pos] ^= 1
        with pytest.raises(he.SerializationError):
            seeded.from_bytes(bytes(bad))
    with pytest.raises(he.SerializationError, match="truncated"):
        seeded.from_bytes(blob[:20])
    with pytest.raises(he.SerializationError, match="parameter set"):
        seeded.from_bytes(blob, params=he.PAPER)


def test_schema_is_checked_even_with_a_valid_checksum() -> None:
    import hashlib
    import json

    sk = _key(4, 8)
    blob = seeded.to_bytes(seeded.seeded_encrypt_matrix(sk, np.ones((3, 4), np.int64)))
    hlen = int.from_bytes(blob[6:10], "little")
    header = json.loads(blob[10 : 10 + hlen])
    arrays = blob[10 + hlen : -32]
    for change in ({"outputs": 5}, {"kernel_shape": [0]}, {"extra": 1}, {"seed": "00"}):
        h = dict(header, **change)
        hb = json.dumps(h, sort_keys=True).encode()
        body = blob[:6] + len(hb).to_bytes(4, "little") + hb + arrays
        with pytest.raises(he.SerializationError):
            seeded.from_bytes(body + hashlib.sha256(body).digest())
    body = b"CFSM" + (2).to_bytes(2, "little") + blob[6:-32]
    with pytest.raises(he.SerializationError, match="version"):
        seeded.from_bytes(body + hashlib.sha256(body).digest())


def _difference_estimate(b1: npt.NDArray[np.uint64], b2: npt.NDArray[np.uint64]) -> I64:
    """The attack on shared masks: round (b1 - b2) / w, centred mod t."""
    scale = 1 << (64 - he.SECURE.plaintext_bits)
    diff = ((b1 - b2 + np.uint64(scale // 2)) // np.uint64(scale)).astype(np.int64)
    diff[diff >= 1 << 23] -= 1 << 24
    return diff


def test_shared_masks_leak_the_difference() -> None:
    """The design rule: one (key, mask seed) pair encrypts one matrix; shared masks give
    b1 - b2 = w (W1 - W2) + (e1 - e2), and rounding by the public w recovers W1 - W2."""
    rng = _rng(9)
    sk = _key(8, 9)
    w1 = rng.integers(-127, 128, (30, 8))
    w2 = rng.integers(-127, 128, (30, 8))
    scale = 1 << (64 - he.SECURE.plaintext_bits)
    b1 = seeded._encrypt_rows(sk, w1, scale, seed(11), seed(12))
    b2 = seeded._encrypt_rows(sk, w2, scale, seed(11), seed(13))
    np.testing.assert_array_equal(_difference_estimate(b1, b2), w1 - w2)
    b3 = seeded._encrypt_rows(sk, w2, scale, seed(14), seed(13))
    assert np.mean(_difference_estimate(b1, b3) == (w1 - w2)) < 0.05


SEED_REUSE_SCRIPT = """
import sys
import numpy as np
from cipherfuse import he
from cipherfuse.he import seeded
sk = he.keygen(he.SECURE, 8, seed=bytes([109]) * 32)
w = np.random.default_rng(int(sys.argv[1])).integers(-127, 128, (30, 8))
noise = bytes([13]) * 32 if sys.argv[2] == "same-noise" else None
sm = seeded.seeded_encrypt_matrix(sk, w, seed=bytes([11]) * 32, noise_seed=noise)
sys.stdout.buffer.write(seeded.to_bytes(sm))
"""


@pytest.mark.parametrize("noise", ["same-noise", "fresh-noise"])
def test_a_seed_reused_in_two_processes_does_not_share_masks(noise: str) -> None:
    """Two processes (no shared state) encrypt different W under one key with the same
    caller seed (and the same noise seed): before, the masks were shared and the estimator
    above returned W1 - W2 exactly; now the stored seeds differ and it finds nothing."""
    import subprocess
    import sys

    def run(matrix_seed: int) -> seeded.SeededMatrix:
        out = subprocess.run(
            [sys.executable, "-c", SEED_REUSE_SCRIPT, str(matrix_seed), noise],
            capture_output=True,
            check=True,
            timeout=300,
        ).stdout
        return seeded.from_bytes(out)

    first, second = run(1), run(2)
    w1 = np.random.default_rng(1).integers(-127, 128, (30, 8))
    w2 = np.random.default_rng(2).integers(-127, 128, (30, 8))
    assert first.seed != second.seed
    assert np.mean(_difference_estimate(first.b, second.b) == (w1 - w2)) < 0.05
    # Both still decrypt to their own matrix.
    sk = he.keygen(he.SECURE, 8, seed=bytes([109]) * 32)
    eye = np.eye(30, dtype=np.int64)
    assert np.array_equal(
        seeded.SeededDecryptor(sk, first).decrypt_dense(eye, seeded.evaluate_dense(first, eye)),
        w1,
    )


def test_reused_noise_seed_gives_independent_noise() -> None:
    """With one noise seed for two matrices under fresh mask seeds, b - b' mod w would be
    an error-free equation in T if the noise repeated; the noise streams differ."""
    sk = _key(8, 15)
    rng = _rng(16)
    w1, w2 = rng.integers(-127, 128, (30, 8)), rng.integers(-127, 128, (30, 8))
    a = seeded.seeded_encrypt_matrix(sk, w1, noise_seed=seed(17))
    b = seeded.seeded_encrypt_matrix(sk, w2, noise_seed=seed(17))
    params = sk.params
    e1 = seeded.Sampler(seed(17)).child(f"seeded-matrix/e/{a.seed.hex()}").error(params, (30, 8))
    e2 = seeded.Sampler(seed(17)).child(f"seeded-matrix/e/{b.seed.hex()}").error(params, (30, 8))
    assert not np.array_equal(e1, e2)


def test_exact_duplicate_encryption_is_refused_within_a_process() -> None:
    sk = _key(8, 18)
    w = _rng(19).integers(-127, 128, (30, 8))
    seeded.seeded_encrypt_matrix(sk, w, seed=seed(20), noise_seed=seed(21))
    with pytest.raises(seeded.SeedReuseError):
        seeded.seeded_encrypt_matrix(sk, w, seed=seed(20), noise_seed=seed(21))


def test_paper_keys_are_refused_because_the_b_parts_give_w_away() -> None:
    """With k = 1 and T in {0..7}, b = w W + e - T a: trying the 8 values of T[o] against
    the public masks finds the one leaving residues in {0, 1} mod w, and W with it."""
    sk = he.keygen(he.PAPER, 4, seed=seed(22))
    w = _rng(23).integers(-127, 128, (40, 4))
    with pytest.raises(he.ParameterError, match="insecure"):
        seeded.seeded_encrypt_matrix(sk, w)
    # The attack the refusal prevents, on the raw primitive.
    scale = 1 << (64 - 32)
    mask_seed = seed(24)
    b = seeded._encrypt_rows(sk, w, scale, mask_seed, seed(25))
    a = seeded.expand_masks(he.PAPER, mask_seed, 40)[:, 0]
    recovered = np.zeros_like(w)
    for o in range(4):
        for t in range(8):
            phase = b[:, o] + a * np.uint64(t)
            if np.all(phase % np.uint64(scale) <= np.uint64(he.PAPER.error_bound)):
                centred = (phase // np.uint64(scale)).astype(np.int64)
                centred[centred >= 1 << 31] -= 1 << 32
                recovered[:, o] = centred
    np.testing.assert_array_equal(recovered, w)


def test_bad_inputs_raise_typed_errors() -> None:
    sk = _key(4, 10)
    with pytest.raises(he.KeyMismatchError, match="m=5"):
        seeded.seeded_encrypt_matrix(sk, np.ones((3, 5), np.int64))
    with pytest.raises(he.ParameterError):
        seeded.seeded_encrypt_matrix(sk, np.ones((3, 4)))  # floats
    with pytest.raises(he.ParameterError, match="noise_seed"):
        seeded.seeded_encrypt_matrix(
            sk, np.ones((3, 4), np.int64), seed=seed(1), noise_seed=seed(1)
        )
    sm = seeded.seeded_encrypt_matrix(sk, np.ones((3, 4), np.int64))
    with pytest.raises(he.ParameterError, match="shape"):
        seeded.evaluate_dense(sm, np.ones((2, 4), np.int64))
    with pytest.raises(he.ParameterError, match="2\\^31"):
        seeded.evaluate_dense(sm, np.full((2, 3), 2**31, np.int64))
    with pytest.raises(he.ParameterError, match="filter bank"):
        seeded.evaluate_conv(sm, np.ones((1, 3, 3, 1), np.int64))
    dec = seeded.SeededDecryptor(sk, sm)
    with pytest.raises(he.ParameterError, match="b-parts"):
        dec.decrypt_dense(np.ones((2, 3), np.int64), np.zeros((3, 4), np.uint64))
    with pytest.raises(he.ParameterError, match="b-parts"):
        dec.decrypt_dense(np.ones((2, 3), np.int64), np.zeros((2, 4), np.int64))
    other = _key(4, 11)
    with pytest.raises(he.KeyMismatchError):
        seeded.SeededDecryptor(other, sm)
    conv = seeded.seeded_encrypt_matrix(sk, np.ones((3, 3, 1, 4), np.int64))
    with pytest.raises(he.ParameterError, match="VALID"):
        seeded.evaluate_conv(conv, np.ones((1, 2, 2, 1), np.int64), padding="VALID")
    with pytest.raises(he.ParameterError, match="stride"):
        seeded.evaluate_conv(conv, np.ones((1, 4, 4, 1), np.int64), stride=0)
