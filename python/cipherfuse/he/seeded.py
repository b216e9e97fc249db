"""Seeded, packed encryption of a weight matrix: plaintext inputs times encrypted weights.

Layout (docs/he-seeded.md has the full argument). The key is ``S = [I_O, T]``
with ``T`` of shape ``(O, k)``. Row ``j`` of a weight matrix ``W`` (``d x O``;
for a filter bank ``(kh, kw, C, F)`` the row of one patch position and channel)
is encrypted as ONE packed ciphertext::

    c_j = (b_j, a_j),   b_j = w W[j, :] + e_j - T a_j  (mod 2^64)

with ``a_j`` uniform in ``Z_q^k``. Each column of ``b`` is an LWE sample with
secret ``T[o, :]``; the ``O`` samples of a row share ``a_j`` (multi-secret /
packed LWE, secure under LWE by a hybrid over the ``O`` secrets). The masks
``a_j`` are not stored: they are expanded from a public 32-byte ``seed`` with
the package's SHAKE-256 + ChaCha20 sampler (as Kyber expands its matrix from
``rho``). The noise ``e_j`` comes from a separate, secret seed.

For a public plaintext input ``x`` the result ``sum_j x_j c_j`` has b-part
``x^T b`` and a-part ``x^T A``; the a-part is a public function of ``x`` and
the seed, so the evaluator computes only the b-part -- the plaintext layer in
uint64 arithmetic mod 2^64. The key holder decrypts with the precomputed
``U = A T^T`` (``d x O``): ``x^T b + x^T U = w x^T W + x^T E``, rounded by ``w``.

Design rules (tested): a (key, mask seed) pair encrypts ONE matrix -- two
matrices under the same key and mask seed have the same ``a``'s, so ``b - b'`` is
``w (W - W') + (e - e')`` and leaks the difference. The stored mask seed is
therefore never the caller's: :func:`bind_mask_seed` derives it from the caller's
seed, the secret noise seed and the content, so a seed reused across calls or
processes still gives two matrices independent masks; the noise stream is
labelled with the derived seed, so a reused noise seed gives independent noise
too. Fresh ``os.urandom`` seeds are the default. The noise seed is secret and
never derived from the public seed. Insecure parameter sets (``paper``, k = 1)
are refused: with one small secret column, W follows from the b-parts alone.

Noise: ``|x^T E| <= (||x||_1 + [bias]) * eta`` per output, checked before
computing against ``w / 2`` (:class:`NoiseBudgetExceeded`); the plaintext
result must satisfy ``|y| < t / 2`` for the declared weight and bias bounds
(:class:`PlaintextOverflow`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt

from cipherfuse import envelope, geometry
from cipherfuse.geometry import same_output_size, same_pads
from cipherfuse.he.backend import CppKernels, get_kernels
from cipherfuse.he.errors import (
    HEError,
    KeyMismatchError,
    NoiseBudgetExceeded,
    ParameterError,
    PlaintextOverflow,
    SerializationError,
)
from cipherfuse.he.keys import SecretKey
from cipherfuse.he.params import HEParams
from cipherfuse.he.sampling import SEED_BYTES, Sampler, fresh_seed
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import is_strict_int, strict_int

if TYPE_CHECKING:
    from cipherfuse.nn.quantize import QuantizedModel, QuantizedPool

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]
Padding = Literal["SAME", "VALID"]

MAGIC = b"CFSM"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 16
_PREFIX = struct.Struct("<4sHI")
_DIGEST = envelope.DIGEST_BYTES
_MASK_LABEL = "seeded-matrix/A"
_NOISE_LABEL = "seeded-matrix/e"
_X_LIMIT = 1 << 31
#: Largest kernel dimension or output count (the b-part rows are ``prod(kernel_shape)``).
_MAX_DIM = 1 << 24


class SeedReuseError(HEError, ValueError):
    """The same (key, mask seed) pair was asked to encrypt a second matrix.

    Both ciphertexts would share every ``a_j``, so their b-parts would differ
    by ``w (W - W') + (e - e')``: the difference of the plaintexts leaks.
    """


# ------------------------------------------------------------------ the object
@dataclass(frozen=True, eq=False)
class SeededMatrix:
    """A seeded packed encryption of a dense weight matrix or a filter bank.

    Attributes:
        params: the LWE parameter set of the key (k, error distribution, security).
        key_id: id of the secret key it is encrypted under.
        seed: the public 32-byte seed the masks ``a_j`` are expanded from.
        kernel_shape: ``(d,)`` for a dense layer, ``(kh, kw, C)`` for a filter bank.
        outputs: ``O`` (dense outputs or filters); the key encrypts length-``O`` plaintexts.
        has_bias: the last row of ``b`` encrypts a bias, evaluated with input 1.
        plaintext_bits: tau; scale ``w = 2^(64 - tau)``; results lie in
            ``[-2^(tau-1), 2^(tau-1))``.
        weight_bound / bias_bound: declared public bounds on ``|W|`` and ``|bias|``
            (only the bit width is revealed by default).
        b: the b-parts, uint64 ``(rows, O)`` with ``rows = prod(kernel_shape) + has_bias``.
    """

    params: HEParams
    key_id: str
    seed: bytes
    kernel_shape: tuple[int, ...]
    outputs: int
    has_bias: bool
    plaintext_bits: int
    weight_bound: int
    bias_bound: int
    b: U64Array

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != SEED_BYTES:
            raise ParameterError(f"seed must be {SEED_BYTES} bytes")
        if len(self.kernel_shape) not in (1, 3) or not all(
            is_strict_int(v, minimum=1, maximum=_MAX_DIM, exact=True) for v in self.kernel_shape
        ):
            raise ParameterError(
                f"kernel_shape must be (d,) or (kh, kw, C) of positive ints, got "
                f"{self.kernel_shape!r}"
            )
        _check_plaintext_bits(self.params, self.plaintext_bits)
        for name, value in (("weight_bound", self.weight_bound), ("bias_bound", self.bias_bound)):
            strict_int(
                value, name, minimum=0, maximum=(1 << 62) - 1, exact=True, error=ParameterError
            )
        shape = (self.rows, self.outputs)
        if self.b.dtype != np.uint64 or self.b.shape != shape:
            raise ParameterError(f"b must be uint64 {shape}, got {self.b.dtype} {self.b.shape}")
        self.b.setflags(write=False)

    @property
    def kind(self) -> Literal["dense", "conv"]:
        """``"dense"`` or ``"conv"``."""
        return "dense" if len(self.kernel_shape) == 1 else "conv"

    @property
    def fan_in(self) -> int:
        """``d``: weights per output (``prod(kernel_shape)``)."""
        return math.prod(self.kernel_shape)

    @property
    def rows(self) -> int:
        """Rows of ``b``: ``d`` plus one for the bias."""
        return self.fan_in + int(self.has_bias)

    @property
    def w(self) -> int:
        """The scaling factor ``2^(64 - plaintext_bits)``."""
        return 1 << (64 - self.plaintext_bits)

    @property
    def nbytes(self) -> int:
        """Stored size of the encrypted weights: ``rows * O`` words plus the seed."""
        return int(self.b.nbytes) + SEED_BYTES

    def weights_b(self) -> U64Array:
        """The b-parts of the weights, shaped ``(d, O)`` or ``(kh, kw, C, F)``."""
        return self.b[: self.fan_in].reshape(*self.kernel_shape, self.outputs)

    def bias_b(self) -> U64Array | None:
        """The b-part of the bias row, or None."""
        return self.b[self.fan_in] if self.has_bias else None


def _check_plaintext_bits(params: HEParams, bits: object) -> int:
    tau = strict_int(
        bits, "plaintext_bits", minimum=2, maximum=62, exact=True, error=ParameterError
    )
    if params.error_max >= 1 << (63 - tau):
        raise ParameterError(
            f"plaintext_bits={tau} leaves w/2 = 2^{63 - tau}, not above one error sample "
            f"({params.error_max}); lower plaintext_bits"
        )
    return tau


def _bit_width_bound(values: I64Array) -> int:
    """2^bits - 1 for the bit width of max|values|: reveals only the width."""
    peak = int(np.abs(values).max()) if values.size else 0
    return (1 << peak.bit_length()) - 1


def plaintext_bits_for(
    params: HEParams, input_l1: int, weight_bound: int, bias_bound: int = 0
) -> int:
    """The plaintext_bits with the most margin on both sides for inputs of l1 norm ``input_l1``.

    Needs ``input_l1 * weight_bound + bias_bound < 2^(tau-1)`` (no wrap mod t)
    and ``(input_l1 + 1) * eta < 2^(63-tau)`` (exact rounding); returns the
    middle of the feasible range or raises :class:`NoiseBudgetExceeded`.
    """
    value = input_l1 * weight_bound + bias_bound
    noise = (input_l1 + 1) * params.error_max
    lo = value.bit_length() + 1  # value < 2^(lo - 1)
    hi = 63 - noise.bit_length()  # noise < 2^(63 - hi)
    lo = max(lo, 2)
    hi = min(hi, 62)
    if lo > hi:
        raise NoiseBudgetExceeded(
            "seeded plaintext_bits",
            noise,
            1 << (63 - lo) if lo <= 63 else 0,
            f"results up to {value} and noise up to {noise} cannot both fit in 64 bits; "
            "use smaller inputs or weights",
        )
    return (lo + hi) // 2


# ------------------------------------------------------------------ encryption
_used_lock = threading.Lock()
_used_seeds: set[tuple[str, bytes]] = set()


def bind_mask_seed(
    seed: bytes, noise_seed: bytes, key_id: str, rows: I64Array, plaintext_bits: int
) -> bytes:
    """The public mask seed actually used: ``seed`` bound to the secret noise seed and content.

    ``SHAKE-256(label | seed | noise_seed | key id | tau | shape | SHA-256(rows))``. Two
    different matrices can never share their masks, whichever seeds the callers chose and
    in however many processes (no state is needed); publishing it reveals nothing about
    the rows while ``noise_seed`` is secret (it is a hash keyed by 32 secret bytes).
    """
    xof = hashlib.shake_256()
    xof.update(b"cipherfuse-seeded-mask-seed-v1\x00")
    xof.update(seed)
    xof.update(noise_seed)
    xof.update(key_id.encode())
    xof.update(struct.pack("<B2Q", plaintext_bits, *rows.shape))
    xof.update(hashlib.sha256(np.ascontiguousarray(rows, dtype="<i8").tobytes()).digest())
    return xof.digest(SEED_BYTES)


def expand_masks(params: HEParams, seed: bytes, rows: int) -> U64Array:
    """The masks ``a_j`` (``rows x k``, uniform mod 2^64) expanded from the public seed."""
    strict_int(rows, "rows", minimum=1, exact=True, error=ParameterError)
    return Sampler(seed).child(_MASK_LABEL).uniform_u64((rows, params.lwe_dim))


def _encrypt_rows(
    sk: SecretKey, rows_plain: I64Array, w: int, seed: bytes, noise_seed: bytes
) -> U64Array:
    """``b = w P + E - A T^T`` for plaintext rows ``P`` (no checks, no seed bookkeeping)."""
    params = sk.params
    a = expand_masks(params, seed, rows_plain.shape[0])
    # The noise stream is labelled with the (content-bound) mask seed: one noise seed
    # reused for two matrices still gives independent noise.
    e = Sampler(noise_seed).child(f"{_NOISE_LABEL}/{seed.hex()}").error(params, rows_plain.shape)
    at = get_kernels().gemm_wide_small(a, np.ascontiguousarray(sk.T.T))
    b: U64Array = rows_plain.astype(np.uint64) * np.uint64(w) + e.astype(np.uint64) - at
    return b


def seeded_encrypt_matrix(
    sk: SecretKey,
    weights: npt.ArrayLike,
    *,
    seed: bytes | None = None,
    bias: npt.ArrayLike | None = None,
    noise_seed: bytes | None = None,
    plaintext_bits: int | None = None,
    weight_bound: int | None = None,
    bias_bound: int | None = None,
) -> SeededMatrix:
    """Encrypts integer weights ``(d, O)`` (dense) or ``(kh, kw, C, F)`` (filter bank).

    Args:
        sk: secret key with ``m = O`` (one plaintext slot per output).
        weights: integer weights.
        seed: 32 bytes the public mask seed is derived from (default: os.urandom). The
            stored seed is :func:`bind_mask_seed` of it, the secret noise seed and the
            content, so a reused ``seed`` never makes two matrices share masks.
        bias: optional integer bias of length ``O``, encrypted as one more row.
        noise_seed: SECRET seed of the noise (default: os.urandom; set only in tests: a
            known noise seed lets anyone test guesses of the rows against the stored seed).
        plaintext_bits: tau (default: the parameter set's); see :func:`plaintext_bits_for`.
        weight_bound / bias_bound: declared public bounds (default: 2^bitwidth - 1).

    Raises:
        ParameterError: an insecure parameter set (``paper``), wrong shapes/dtypes, values
            above the declared bounds.
        SeedReuseError: this process already made this exact encryption (same key, seeds
            and content).
    """
    params = sk.params
    if params.insecure or params.lwe_dim < 2:
        raise ParameterError(
            f"seeded encryption needs a secure parameter set; {params.name!r} is insecure "
            f"(k = {params.lwe_dim}): with one small secret column the weights are recovered "
            "from the b-parts and the public masks alone. Use the 'secure' set"
        )
    wt = np.asarray(weights)
    if wt.dtype.kind not in "iu" or wt.ndim not in (2, 4):
        raise ParameterError(
            f"weights must be an integer array (d, O) or (kh, kw, C, F), got {wt.dtype} {wt.shape}"
        )
    if wt.size == 0:
        raise ParameterError("weights must not be empty")
    wt = wt.astype(np.int64)
    outputs = int(wt.shape[-1])
    if outputs != sk.m:
        raise KeyMismatchError(
            f"the key encrypts length-{sk.m} plaintexts but the weights have {outputs} outputs; "
            f"use keygen(params, m={outputs})"
        )
    tau = _check_plaintext_bits(
        params, params.plaintext_bits if plaintext_bits is None else plaintext_bits
    )
    rows = wt.reshape(-1, outputs)
    wb = _bit_width_bound(rows) if weight_bound is None else weight_bound
    if not is_strict_int(wb, minimum=0, exact=True) or (rows.size and int(np.abs(rows).max()) > wb):
        raise ParameterError(f"weight_bound={wb!r} must be an int >= max|W|")
    bb = 0
    if bias is not None:
        bv = np.asarray(bias)
        if bv.dtype.kind not in "iu" or bv.shape != (outputs,):
            raise ParameterError(
                f"bias must be integers of shape ({outputs},), got {bv.dtype} {bv.shape}"
            )
        bv = bv.astype(np.int64)
        bb = _bit_width_bound(bv) if bias_bound is None else bias_bound
        if not is_strict_int(bb, minimum=0, exact=True) or int(np.abs(bv).max()) > bb:
            raise ParameterError(f"bias_bound={bb!r} must be an int >= max|bias|")
        rows = np.concatenate([rows, bv[None, :]], axis=0)
    half_t = 1 << (tau - 1)
    if int(np.abs(rows).max()) >= half_t:
        raise ParameterError(f"weights and bias must lie in (-2^{tau - 1}, 2^{tau - 1})")
    caller_seed = fresh_seed() if seed is None else seed
    if not isinstance(caller_seed, bytes) or len(caller_seed) != SEED_BYTES:
        raise ParameterError(f"seed must be {SEED_BYTES} bytes")
    secret_seed = fresh_seed() if noise_seed is None else noise_seed
    if not isinstance(secret_seed, bytes) or len(secret_seed) != SEED_BYTES:
        raise ParameterError(f"noise_seed must be {SEED_BYTES} bytes")
    if secret_seed == caller_seed:
        raise ParameterError("noise_seed must be secret and different from the public seed")
    mask_seed = bind_mask_seed(caller_seed, secret_seed, sk.key_id, rows, tau)
    with _used_lock:
        if (sk.key_id, mask_seed) in _used_seeds:
            raise SeedReuseError(
                "this key already encrypted this very matrix with these seeds in this "
                "process (a deterministic duplicate); leave seed and noise_seed unset"
            )
        _used_seeds.add((sk.key_id, mask_seed))
    b = _encrypt_rows(sk, rows, 1 << (64 - tau), mask_seed, secret_seed)
    return SeededMatrix(
        params=params,
        key_id=sk.key_id,
        seed=mask_seed,
        kernel_shape=tuple(int(v) for v in wt.shape[:-1]),
        outputs=outputs,
        has_bias=bias is not None,
        plaintext_bits=tau,
        weight_bound=wb,
        bias_bound=bb,
        b=b,
    )


# ------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class ConvGeometry:
    """Output size and leading padding of a convolution (TF ``SAME``/``VALID`` rules)."""

    out_h: int
    out_w: int
    pad_top: int
    pad_left: int


def conv_geometry(
    h: int, w: int, kh: int, kw: int, stride: tuple[int, int], padding: Padding
) -> ConvGeometry:
    """Geometry of a ``kh x kw`` convolution of an ``h x w`` image."""
    sh, sw = stride
    if padding == "SAME":
        oh, ow = same_output_size(h, sh), same_output_size(w, sw)
        return ConvGeometry(oh, ow, same_pads(h, kh, sh)[0], same_pads(w, kw, sw)[0])
    if padding == "VALID":
        if h < kh or w < kw:
            raise ParameterError(f"VALID padding needs images of at least {kh}x{kw}, got {h}x{w}")
        return ConvGeometry((h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0)
    raise ParameterError(f"padding must be 'SAME' or 'VALID', got {padding!r}")


def _as_stride(stride: int | tuple[int, int]) -> tuple[int, int]:
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    if len(s) != 2 or not all(is_strict_int(v, minimum=1, exact=True) for v in s):
        raise ParameterError(f"stride must be a positive int or a pair of them, got {stride!r}")
    return (s[0], s[1])


def _check_inputs(sm: SeededMatrix, x: npt.ArrayLike) -> I64Array:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"inputs must be integers, got dtype {arr.dtype}")
    if sm.kind == "dense":
        if arr.ndim != 2 or arr.shape[1] != sm.fan_in:
            raise ParameterError(f"dense inputs must have shape (n, {sm.fan_in}), got {arr.shape}")
    elif arr.ndim != 4 or arr.shape[3] != sm.kernel_shape[2]:
        raise ParameterError(
            f"conv inputs must be NHWC (n, H, W, {sm.kernel_shape[2]}), got {arr.shape}"
        )
    out = np.ascontiguousarray(arr, dtype=np.int64)
    if out.size and int(np.abs(out).max()) >= _X_LIMIT:
        raise ParameterError("inputs must satisfy |x| < 2^31")
    return out


def input_l1_bound(sm: SeededMatrix, x: I64Array) -> int:
    """Upper bound on the l1 norm of the inputs one output reads (exact for dense)."""
    if x.size == 0:
        return 0
    if sm.kind == "dense":
        return int(np.abs(x).sum(axis=1).max())
    return sm.fan_in * int(np.abs(x).max())


def check_budget(sm: SeededMatrix, x_l1: int, operation: str = "seeded layer") -> None:
    """Raises before computing if the result could wrap mod t or the noise could reach w/2."""
    bias = int(sm.has_bias)
    noise = (x_l1 + bias) * sm.params.error_max
    if noise >= sm.w // 2:
        raise NoiseBudgetExceeded(
            operation,
            noise,
            sm.w // 2,
            f"inputs of l1 norm {x_l1}; lower plaintext_bits or the input scale",
        )
    value = x_l1 * sm.weight_bound + bias * sm.bias_bound
    if value >= 1 << (sm.plaintext_bits - 1):
        raise PlaintextOverflow(
            f"{operation}: results could reach {value} >= t/2 = 2^{sm.plaintext_bits - 1} "
            f"(inputs of l1 norm {x_l1}, |W| <= {sm.weight_bound}); raise plaintext_bits "
            "(see plaintext_bits_for) or scale the inputs down"
        )


#: Up to this many samples, a dense layer runs as a matrix-vector product (the
#: wrapping scalar kernel, which reads ``b`` once); above it, as one GEMM.
MATVEC_MAX_BATCH = 4
#: The matrix-vector path: the scalar seeded kernel on one thread.
_MATVEC_KERNELS = CppKernels(isa="scalar", threads=1)


def evaluate_dense(sm: SeededMatrix, x: npt.ArrayLike) -> U64Array:
    """b-parts ``x b (+ bias row)`` for a batch ``x`` ``(n, d)``: one uint64 GEMM.

    Batches of at most :data:`MATVEC_MAX_BATCH` samples take the C++
    matrix-vector path (the seeded kernel as a 1x1 convolution) instead.
    """
    if sm.kind != "dense":
        raise ParameterError("evaluate_dense needs a dense SeededMatrix; use evaluate_conv")
    xi = _check_inputs(sm, x)
    check_budget(sm, input_l1_bound(sm, xi), "seeded dense")
    n, d = xi.shape
    if 0 < n <= MATVEC_MAX_BATCH:
        kern = np.ascontiguousarray(sm.weights_b()).reshape(1, 1, d, sm.outputs)
        y = _MATVEC_KERNELS.seeded_conv(
            xi.reshape(n, 1, 1, d), kern, sm.bias_b(), stride=(1, 1), pads=(0, 0), out_hw=(1, 1)
        )
        return y.reshape(n, sm.outputs)
    out = get_kernels().gemm_small_wide(xi, np.ascontiguousarray(sm.weights_b()))
    bias = sm.bias_b()
    if bias is not None:
        out += bias
    return out


def evaluate_conv(
    sm: SeededMatrix,
    images: npt.ArrayLike,
    *,
    stride: int | tuple[int, int] = 1,
    padding: Padding = "SAME",
    isa: str = "auto",
    threads: int = 0,
) -> U64Array:
    """b-parts of the encrypted filter bank on NHWC integer images: ``(n, H', W', F)``.

    C++ kernel (SIMD per ISA, threads over output rows, GIL released).
    """
    if sm.kind != "conv":
        raise ParameterError("evaluate_conv needs a filter bank SeededMatrix; use evaluate_dense")
    xi = _check_inputs(sm, images)
    kh, kw, _ = sm.kernel_shape
    g = conv_geometry(int(xi.shape[1]), int(xi.shape[2]), kh, kw, _as_stride(stride), padding)
    check_budget(sm, input_l1_bound(sm, xi), "seeded conv")
    sh, sw = _as_stride(stride)
    return CppKernels(isa=isa, threads=threads).seeded_conv(
        xi,
        np.ascontiguousarray(sm.weights_b()),
        sm.bias_b(),
        stride=(sh, sw),
        pads=(g.pad_top, g.pad_left),
        out_hw=(g.out_h, g.out_w),
    )


# ------------------------------------------------------------------ numpy references
def reference_dense(sm: SeededMatrix, x: npt.ArrayLike) -> U64Array:
    """numpy reference of :func:`evaluate_dense` (uint64 matmul wraps mod 2^64)."""
    xi = _check_inputs(sm, x)
    out: U64Array = xi.astype(np.uint64) @ sm.weights_b()
    bias = sm.bias_b()
    if bias is not None:
        out += bias
    return out


def im2col(
    images: I64Array, kh: int, kw: int, stride: tuple[int, int], padding: Padding
) -> tuple[I64Array, ConvGeometry]:
    """Patches ``(n, H', W', kh * kw * C)`` in (ky, kx, c) order, zero padded."""
    _, h, w, _ = images.shape
    g = conv_geometry(h, w, kh, kw, stride, padding)
    return cast(I64Array, geometry.im2col(images, (kh, kw), stride, padding)), g


def reference_conv(
    sm: SeededMatrix,
    images: npt.ArrayLike,
    *,
    stride: int | tuple[int, int] = 1,
    padding: Padding = "SAME",
    chunk: int = 64,
) -> U64Array:
    """numpy reference of :func:`evaluate_conv`: im2col + uint64 matmul, ``chunk`` images a time."""
    xi = _check_inputs(sm, images)
    kh, kw, _ = sm.kernel_shape
    st = _as_stride(stride)
    wb = sm.b[: sm.fan_in]
    bias = sm.bias_b()
    outs = []
    for i in range(0, max(xi.shape[0], 1), chunk):
        patches, _ = im2col(xi[i : i + chunk], kh, kw, st, padding)
        y = patches.astype(np.uint64) @ wb
        if bias is not None:
            y += bias
        outs.append(y)
    return np.concatenate(outs, axis=0)


# ------------------------------------------------------------------ decryption
class SeededDecryptor:
    """The key holder's side: ``U = A T^T`` precomputed once, then decryption of b-parts."""

    def __init__(self, sk: SecretKey, sm: SeededMatrix) -> None:
        if sk.key_id != sm.key_id or sk.params != sm.params:
            raise KeyMismatchError(
                f"the matrix is encrypted under key {sm.key_id}, not {sk.key_id}"
            )
        a = expand_masks(sm.params, sm.seed, sm.rows)
        u = get_kernels().gemm_wide_small(a, np.ascontiguousarray(sk.T.T))
        self.matrix = sm
        self._twin = dataclasses.replace(sm, b=u)

    def decrypt_dense(self, x: npt.ArrayLike, b_parts: npt.ArrayLike) -> I64Array:
        """Plain ``x W (+ bias)`` from the evaluator's b-parts ``(n, O)``."""
        b = self._checked(b_parts)
        return self._round(b, evaluate_dense(self._twin, x))

    def decrypt_conv(
        self,
        images: npt.ArrayLike,
        b_parts: npt.ArrayLike,
        *,
        stride: int | tuple[int, int] = 1,
        padding: Padding = "SAME",
    ) -> I64Array:
        """Plain ``conv(images, W) (+ bias)`` from the b-parts ``(n, H', W', F)``."""
        b = self._checked(b_parts)
        return self._round(b, evaluate_conv(self._twin, images, stride=stride, padding=padding))

    def decrypt_conv_pooled(
        self,
        images: npt.ArrayLike,
        b_parts: npt.ArrayLike,
        *,
        stride: int | tuple[int, int] = 1,
        padding: Padding = "SAME",
        activation: Literal["relu", "none"] = "none",
        pool_window: tuple[int, int] = (1, 1),
        pool_stride: tuple[int, int] = (1, 1),
        isa: str = "auto",
        threads: int = 0,
    ) -> I64Array:
        """Decryption, activation and 2-D sum pooling in one C++ pass.

        Equals ``decrypt_conv`` followed by ``max(y, 0)`` (``activation="relu"``)
        and the sum over the VALID ``pool_window`` windows taken every
        ``pool_stride`` (the ``"sum"`` pool of
        :func:`cipherfuse.nn.quantize.integer_forward`), bit for bit. The a-term
        ``x U`` is computed a block of images at a time inside the kernel and
        never materialised; threads over images, GIL released. A ``(1, 1)``
        window with stride ``(1, 1)`` is no pooling.

        Raises:
            ParameterError: wrong b-parts, inputs, activation or pooling arguments.
            NoiseBudgetExceeded / PlaintextOverflow: the inputs exceed the budget.
        """
        sm = self.matrix
        b = self._checked(b_parts)
        if activation not in ("relu", "none"):
            raise ParameterError(f"activation must be 'relu' or 'none', got {activation!r}")
        window = _as_stride(pool_window)
        step = _as_stride(pool_stride)
        xi = _check_inputs(self._twin, images)
        kh, kw, _ = sm.kernel_shape
        st = _as_stride(stride)
        g = conv_geometry(int(xi.shape[1]), int(xi.shape[2]), kh, kw, st, padding)
        expect = (int(xi.shape[0]), g.out_h, g.out_w, sm.outputs)
        if b.shape != expect:
            raise ParameterError(f"b-parts have shape {b.shape}, these inputs give {expect}")
        if window[0] > g.out_h or window[1] > g.out_w:
            raise ParameterError(
                f"pool_window {window} is larger than the {g.out_h}x{g.out_w} layer output"
            )
        check_budget(self._twin, input_l1_bound(self._twin, xi), "seeded conv")
        return CppKernels(isa=isa, threads=threads).seeded_conv_finish(
            xi,
            np.ascontiguousarray(self._twin.weights_b()),
            self._twin.bias_b(),
            np.ascontiguousarray(b),
            plaintext_bits=sm.plaintext_bits,
            stride=st,
            pads=(g.pad_top, g.pad_left),
            activation=activation,
            pool_window=window,
            pool_stride=step,
        )

    def _checked(self, b_parts: npt.ArrayLike) -> U64Array:
        arr = np.asarray(b_parts)
        if arr.dtype != np.uint64 or arr.ndim < 2 or arr.shape[-1] != self.matrix.outputs:
            raise ParameterError(
                f"b-parts must be uint64 with {self.matrix.outputs} outputs in the last axis, "
                f"got {arr.dtype} {arr.shape}"
            )
        return arr

    def _round(self, b_parts: U64Array, a_term: U64Array) -> I64Array:
        """``round((b + x U) / w)``, in place on ``a_term`` (which this object owns).

        The phase is ``w y + noise`` with ``|w y| + |noise| + w/2 < 2^63``, so read
        as int64 it is the signed value, and an arithmetic shift rounds it.
        """
        if b_parts.shape != a_term.shape:
            raise ParameterError(
                f"b-parts have shape {b_parts.shape}, these inputs give {a_term.shape}"
            )
        tau = self.matrix.plaintext_bits
        np.add(a_term, b_parts, out=a_term)
        a_term += np.uint64(1 << (63 - tau))
        out = a_term.view(np.int64)
        out >>= np.int64(64 - tau)
        return out


# ------------------------------------------------------------------ serialization
_HEADER_KEYS = {
    "params",
    "key_id",
    "seed",
    "kernel_shape",
    "outputs",
    "has_bias",
    "plaintext_bits",
    "weight_bound",
    "bias_bound",
    "array",
}


def to_bytes(sm: SeededMatrix) -> bytes:
    """Versioned, checksummed bytes: header (JSON), the b-parts, SHA-256. Masks are not stored."""
    header = {
        "params": sm.params.to_dict(),
        "key_id": sm.key_id,
        "seed": sm.seed.hex(),
        "kernel_shape": list(sm.kernel_shape),
        "outputs": sm.outputs,
        "has_bias": sm.has_bias,
        "plaintext_bits": sm.plaintext_bits,
        "weight_bound": sm.weight_bound,
        "bias_bound": sm.bias_bound,
        "array": {"dtype": "<u8", "shape": [sm.rows, sm.outputs]},
    }
    hbytes = envelope.canonical_json(header)
    body = b"".join(
        [
            _PREFIX.pack(MAGIC, FORMAT_VERSION, len(hbytes)),
            hbytes,
            np.ascontiguousarray(sm.b).astype("<u8", copy=False).tobytes(),
        ]
    )
    return envelope.seal_trailing(body)


def _field(header: dict[str, Any], name: str, kind: type) -> Any:
    value = header[name]
    if type(value) is not kind:
        raise SerializationError(f"header field {name!r} must be {kind.__name__}")
    return value


def from_bytes(blob: bytes, *, params: HEParams | None = None) -> SeededMatrix:
    """Parses :func:`to_bytes` output, checking magic, version, checksum and schema.

    The SHA-256 detects corruption, not a malicious sender (anyone can
    recompute it); authenticate the bytes separately if that matters.
    """
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SerializationError(f"expected bytes, got {type(blob).__name__}")
    view = memoryview(blob).cast("B")
    if len(view) < _PREFIX.size + _DIGEST:
        raise SerializationError(f"data is truncated ({len(view)} bytes)")
    magic, version, hlen = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise SerializationError(f"not a cipherfuse seeded matrix (magic {bytes(magic)!r})")
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"unsupported seeded-matrix format version {version}; this build reads {FORMAT_VERSION}"
        )
    envelope.trailing_body(
        view,
        error=SerializationError,
        bad_digest="checksum mismatch: the data is corrupted or was modified",
    )
    if hlen > MAX_HEADER_BYTES or _PREFIX.size + hlen > len(view) - _DIGEST:
        raise SerializationError(f"header length {hlen} is out of range")
    header = parse_json(
        view[_PREFIX.size : _PREFIX.size + hlen], what="header", max_bytes=MAX_HEADER_BYTES
    )
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        raise SerializationError(f"header must have exactly the fields {sorted(_HEADER_KEYS)}")
    envelope.check_canonical(
        header,
        view[_PREFIX.size : _PREFIX.size + hlen],
        error=SerializationError,
        writer="to_bytes()",
    )
    try:
        stored = HEParams.from_dict(_field(header, "params", dict))
    except ParameterError as exc:
        raise SerializationError(f"bad parameter set: {exc}") from None
    if params is not None and stored != params:
        raise SerializationError(
            f"the matrix uses parameter set {stored.name!r} ({stored.fingerprint()}), expected "
            f"{params.name!r} ({params.fingerprint()})"
        )
    array = _field(header, "array", dict)
    kernel_shape = _field(header, "kernel_shape", list)
    outputs = _field(header, "outputs", int)
    has_bias = _field(header, "has_bias", bool)
    if (
        len(kernel_shape) not in (1, 3)
        or not all(is_strict_int(v, minimum=1, maximum=_MAX_DIM, exact=True) for v in kernel_shape)
        or not 1 <= outputs <= _MAX_DIM
    ):
        raise SerializationError(
            f"kernel_shape must be 1 or 3 ints and outputs an int, each in [1, {_MAX_DIM}]"
        )
    # Exact integer product: numpy's int64 product would wrap for a hostile shape.
    rows = math.prod(kernel_shape) + int(has_bias)
    if array != {"dtype": "<u8", "shape": [rows, outputs]}:
        raise SerializationError(f"array must be <u8 of shape [{rows}, {outputs}], got {array}")
    data = view[_PREFIX.size + hlen : -_DIGEST]
    if len(data) != rows * outputs * 8:
        raise SerializationError(f"array data has {len(data)} bytes, expected {rows * outputs * 8}")
    try:
        seed = bytes.fromhex(_field(header, "seed", str))
        return SeededMatrix(
            params=stored,
            key_id=_field(header, "key_id", str),
            seed=seed,
            kernel_shape=tuple(kernel_shape),
            outputs=outputs,
            has_bias=has_bias,
            plaintext_bits=_field(header, "plaintext_bits", int),
            weight_bound=_field(header, "weight_bound", int),
            bias_bound=_field(header, "bias_bound", int),
            b=np.frombuffer(data, dtype="<u8").astype(np.uint64).reshape(rows, outputs),
        )
    except (ValueError, ParameterError) as exc:
        raise SerializationError(f"invalid seeded matrix: {exc}") from None


# ------------------------------------------------------------------ model prefix
def seeded_first_layer_prefix(
    quantized: QuantizedModel,
    sk: SecretKey,
    seed: bytes | None = None,
    *,
    input_bound: float = 1.0,
    noise_seed: bytes | None = None,
    fuse_pool: bool = True,
) -> Callable[[npt.NDArray[np.float32]], tuple[I64Array, int]]:
    """A :data:`cipherfuse.fusion.features.PrefixFn` running the first layer encrypted.

    The first conv/dense layer of ``quantized`` (a
    :class:`cipherfuse.nn.quantize.QuantizedModel`) is encrypted once with
    :func:`seeded_encrypt_matrix` (bias included); the returned function
    quantizes float images, evaluates the b-parts, decrypts them with the key,
    applies the layer's activation and runs the remaining quantized layers
    (pooling, ...) in plaintext integers. It returns ``(ints, output_scale)``,
    equal to :func:`cipherfuse.nn.quantize.integer_forward` on the same inputs.

    ``input_bound`` bounds ``|x|`` of the float inputs; it fixes plaintext_bits
    so that the results cannot wrap and the noise cannot reach w/2.

    When the first layer is a conv with ReLU (or no activation) followed by a
    2-D sum pool and ``fuse_pool`` is true, decryption, activation and pooling
    run as one C++ pass (:meth:`SeededDecryptor.decrypt_conv_pooled`), bit for
    bit the numpy path's result; ``fuse_pool=False`` forces the numpy path.
    """
    from cipherfuse.nn.quantize import (
        QuantizedConv,
        QuantizedDense,
        integer_forward,
        quantize_inputs,
    )

    first = quantized.layers[0]
    if not isinstance(first, QuantizedConv | QuantizedDense):
        raise ParameterError("the quantized model must start with a conv or dense layer")
    if isinstance(first, QuantizedConv) and len(first.stride) != 2:
        raise ParameterError("only 2-D convolutions are supported")
    weight = np.asarray(first.weight, np.int64)
    bias = np.asarray(first.bias, np.int64)
    fan_in = int(np.prod(weight.shape[:-1]))
    x_max = int(np.ceil(float(input_bound) * quantized.input_scale))
    wb = _bit_width_bound(weight)
    bb = _bit_width_bound(bias)
    tau = plaintext_bits_for(sk.params, fan_in * x_max, wb, bb)
    sm = seeded_encrypt_matrix(
        sk, weight, seed=seed, bias=bias, noise_seed=noise_seed, plaintext_bits=tau
    )
    decryptor = SeededDecryptor(sk, sm)
    rest = dataclasses.replace(quantized, layers=quantized.layers[1:])
    scale = first.input_scale * first.weight_scale
    pool = _fusable_sum_pool(quantized) if fuse_pool else None

    def prefix(x: npt.NDArray[np.float32]) -> tuple[I64Array, int]:
        xi = quantize_inputs(x, quantized.input_scale)
        if isinstance(first, QuantizedConv) and pool is not None:
            # One C++ pass: decrypt, activation, sum pool (the conv's pooling layer).
            st = (int(first.stride[0]), int(first.stride[1]))
            b_parts = evaluate_conv(sm, xi, stride=st, padding=first.padding)
            y = decryptor.decrypt_conv_pooled(
                xi,
                b_parts,
                stride=st,
                padding=first.padding,
                activation="relu" if first.activation == "relu" else "none",
                pool_window=(int(pool.window[0]), int(pool.window[1])),
                pool_stride=(int(pool.stride[0]), int(pool.stride[1])),
            )
            after = dataclasses.replace(quantized, layers=quantized.layers[2:])
            if after.layers:
                y = integer_forward(dataclasses.replace(after, input_shape=y.shape[1:]), y)
            return y, int(quantized.output_scale)
        if isinstance(first, QuantizedConv):
            st = (int(first.stride[0]), int(first.stride[1]))
            b_parts = evaluate_conv(sm, xi, stride=st, padding=first.padding)
            y = decryptor.decrypt_conv(xi, b_parts, stride=st, padding=first.padding)
        else:
            flat = xi.reshape(xi.shape[0], -1)
            y = decryptor.decrypt_dense(flat, evaluate_dense(sm, flat))
        y = _activate(y, first.activation, scale)
        if rest.layers:
            y = integer_forward(dataclasses.replace(rest, input_shape=y.shape[1:]), y)
        return y, int(quantized.output_scale)

    return prefix


def _fusable_sum_pool(quantized: QuantizedModel) -> QuantizedPool | None:
    """The 2-D sum pool right after a first conv with ReLU or no activation, else None.

    That pair runs as one :meth:`SeededDecryptor.decrypt_conv_pooled` pass;
    anything else (max pooling, the Taylor sigmoid, a dense first layer) takes
    the numpy path.
    """
    from cipherfuse.nn.quantize import QuantizedConv, QuantizedPool

    layers = quantized.layers
    if len(layers) < 2:
        return None
    first, second = layers[0], layers[1]
    if not isinstance(first, QuantizedConv) or first.activation not in ("relu", "none"):
        return None
    if not isinstance(second, QuantizedPool) or second.pool != "sum":
        return None
    if len(second.window) != 2 or len(second.stride) != 2:
        return None
    return second


def _activate(y: I64Array, activation: str, scale: int) -> I64Array:
    """The activations of :mod:`cipherfuse.nn.quantize`, on the decrypted integers."""
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "taylor_sigmoid":
        peak = float(np.max(np.abs(y), initial=0))
        if peak**3 + 24 * float(scale) ** 3 + 12 * float(scale) ** 2 * peak >= 2.0**62:
            raise PlaintextOverflow("the integer Taylor sigmoid would overflow int64: lower p or q")
        out: I64Array = 24 * scale**3 + 12 * scale**2 * y - y**3
        return out
    return y
