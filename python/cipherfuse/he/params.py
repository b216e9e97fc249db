"""Parameter sets of the integer-vector HE scheme (Zhou–Wornell, as in the paper).

Two named sets are provided:

``paper``
    Reproduces the paper's setting: secret ``T`` with k = 1 column and small
    non-negative entries, small non-negative ``A`` and ``E`` (Section V-B1 and
    the ReLU remark of V-B2). **INSECURE**: the secret key is recovered from the
    public matrix by least squares (see :mod:`cipherfuse.he.attack` and the
    test that runs the attack). Use it for reproduction only.

``secure``
    LWE dimension k = 2560, modulus q = 2^64, uniform ``A``, ternary secret,
    centred-binomial error with eta = 21 (standard deviation 3.24, the
    HomomorphicEncryption.org standard's sigma = 3.2). The standard's 128-bit
    classical table (Albrecht et al., 2018, Table 1, ternary secret) allows
    log2 q <= 54 at n = 2048 and <= 109 at n = 4096; the required n/log2(q) is
    37.9 and 37.6 there (37.2-37.9 across the whole table). For log2 q = 64 that
    gives n >= 64 * 37.9 = 2426; k = 2560 (n/log2 q = 40) is above it with margin.
    See docs/he.md for the derivation.

All quantities are exact integers; arithmetic is modulo q = 2^64 on uint64.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from cipherfuse.he.errors import ParameterError
from cipherfuse.validation import strict_int

SecretDistribution = Literal["ternary", "uniform_nonneg"]
ErrorDistribution = Literal["cbd", "uniform_nonneg"]
MaskDistribution = Literal["uniform", "uniform_nonneg"]

MODULUS_BITS = 64
"""q = 2^64: all ciphertext arithmetic wraps around on uint64."""


@dataclass(frozen=True)
class HEParams:
    """A validated, immutable parameter set.

    Attributes:
        name: label stored with keys and ciphertexts.
        lwe_dim: k, the number of columns of the secret ``T`` (S' = [I, T]).
        plaintext_bits: tau; plaintexts live in Z_t with t = 2^tau, centred in
            [-t/2, t/2). The scaling factor is w = q / t = 2^(64 - tau).
        base_bits: b; key switching decomposes every 64-bit word into
            ceil(64 / b) digits of b bits (base 2 is the paper's bit decomposition).
        secret_dist / secret_bound: distribution of ``T``: "ternary" ({-1, 0, 1})
            or "uniform_nonneg" ({0, ..., secret_bound}).
        error_dist / error_bound: distribution of ``E`` and fresh noise:
            "cbd" (centred binomial with eta = error_bound, support
            [-eta, eta]) or "uniform_nonneg" ({0, ..., error_bound}).
        mask_dist / mask_bound: distribution of ``A``: "uniform" over Z_q or
            "uniform_nonneg" ({0, ..., mask_bound}).
        security_bits: claimed classical security, 0 for insecure sets.
        security_note: where the claim comes from.
    """

    name: str
    lwe_dim: int
    plaintext_bits: int
    base_bits: int
    secret_dist: SecretDistribution
    secret_bound: int
    error_dist: ErrorDistribution
    error_bound: int
    mask_dist: MaskDistribution
    mask_bound: int
    security_bits: int
    security_note: str

    def __post_init__(self) -> None:
        _check_int("lwe_dim", self.lwe_dim, 1, 1 << 16)
        _check_int("plaintext_bits", self.plaintext_bits, 1, 62)
        _check_int("base_bits", self.base_bits, 1, 16)
        if self.secret_dist not in ("ternary", "uniform_nonneg"):
            raise ParameterError(
                f"secret_dist must be 'ternary' or 'uniform_nonneg', got {self.secret_dist!r}"
            )
        if self.error_dist not in ("cbd", "uniform_nonneg"):
            raise ParameterError(
                f"error_dist must be 'cbd' or 'uniform_nonneg', got {self.error_dist!r}"
            )
        if self.mask_dist not in ("uniform", "uniform_nonneg"):
            raise ParameterError(
                f"mask_dist must be 'uniform' or 'uniform_nonneg', got {self.mask_dist!r}"
            )
        if self.secret_dist == "ternary" and self.secret_bound != 1:
            raise ParameterError("secret_bound must be 1 for a ternary secret")
        _check_int("secret_bound", self.secret_bound, 1, 1 << 20)
        _check_int("error_bound", self.error_bound, 1, 1 << 20)
        if self.error_dist == "cbd" and self.error_bound > 32:
            raise ParameterError(
                f"error_bound (eta) of the centred binomial must be in [1, 32], got "
                f"{self.error_bound}"
            )
        if self.mask_dist == "uniform_nonneg":
            _check_int("mask_bound", self.mask_bound, 1, 1 << 20)
        elif self.mask_bound != 0:
            raise ParameterError("mask_bound must be 0 when mask_dist is 'uniform' (all of Z_q)")
        _check_int("security_bits", self.security_bits, 0, 512)
        if self.security_bits > 0:
            supported = estimated_security_bits(self)
            if self.security_bits > supported:
                raise ParameterError(
                    f"security_bits={self.security_bits} is not supported: the HE standard's "
                    f"ternary-secret table gives {supported} bits for this set "
                    f"({security_shortfall(self)}); set security_bits=0 for an insecure set"
                )
        if self.fresh_noise_bound() >= self.half_w:
            raise ParameterError(
                f"plaintext_bits={self.plaintext_bits} leaves w/2 = 2^{63 - self.plaintext_bits}, "
                f"below the fresh-encryption noise bound {self.fresh_noise_bound()}; "
                "lower plaintext_bits"
            )

    # ------------------------------------------------------------- derived
    @property
    def w(self) -> int:
        """The scaling factor w = 2^(64 - plaintext_bits)."""
        return 1 << (MODULUS_BITS - self.plaintext_bits)

    @property
    def half_w(self) -> int:
        """Decryption is exact while |noise| < w/2."""
        return self.w >> 1

    @property
    def t(self) -> int:
        """The plaintext modulus t = 2^plaintext_bits."""
        return 1 << self.plaintext_bits

    @property
    def digits(self) -> int:
        """l = ceil(64 / base_bits): digits per 64-bit word in key switching."""
        return -(-MODULUS_BITS // self.base_bits)

    @property
    def insecure(self) -> bool:
        """True for parameter sets that do not claim any security."""
        return self.security_bits == 0

    @property
    def error_max(self) -> int:
        """Largest possible |e| of one error sample."""
        return self.error_bound

    @property
    def secret_max(self) -> int:
        """Largest possible |T_ij|."""
        return self.secret_bound

    def fresh_noise_bound(self) -> int:
        """Worst-case |noise| of :func:`cipherfuse.he.encrypt` (public-key encryption).

        S'c = w x + E0 r + e1 + T e2 with r drawn like the secret: the bound is
        k * e_max * r_max + e_max + k * T_max * e_max.
        """
        k = self.lwe_dim
        return (
            k * self.error_max * self.secret_max
            + self.error_max
            + k * self.secret_max * (self.error_max)
        )

    def with_(self, **changes: Any) -> HEParams:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dictionary of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HEParams:
        """Builds and validates a parameter set from :meth:`to_dict` output."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        missing = fields - set(data)
        if unknown or missing:
            raise ParameterError(
                f"parameter dictionary has unknown fields {sorted(unknown)} "
                f"and lacks {sorted(missing)}"
            )
        for f in dataclasses.fields(cls):
            value = data[f.name]
            expected = (
                str
                if f.name in ("name", "secret_dist", "error_dist", "mask_dist", "security_note")
                else int
            )
            if type(value) is not expected:
                raise ParameterError(
                    f"parameter {f.name!r} must be {expected.__name__}, got {type(value).__name__}"
                )
        return cls(**data)

    def fingerprint(self) -> str:
        """A stable identifier of the parameter values (used to reject mismatched data)."""
        import hashlib

        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


#: HomomorphicEncryption.org standard (2018), classical security, ternary secret,
#: error sigma = 3.2: the largest log2 q for each ring dimension n, per security level.
HE_STANDARD_TERNARY = {
    128: {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881},
    192: {1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611},
    256: {1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476},
}
#: The standard's error width; the table's bounds assume at least this sigma.
MIN_ERROR_SIGMA = 3.2


def required_dimension(level: int, modulus_bits: int = MODULUS_BITS) -> int:
    """Smallest n the table supports at ``level`` bits for ``log2 q = modulus_bits``.

    Uses the most demanding ratio ``n / log2 q`` over the table's rows (a conservative
    interpolation: 37.93 for 128 bits, 55.35 for 192, 73.14 for 256).
    """
    ratio = max(n / bits for n, bits in HE_STANDARD_TERNARY[level].items())
    return math.ceil(ratio * modulus_bits)


def error_sigma(params: HEParams) -> float:
    """Standard deviation of one error sample (CBD(eta): sqrt(eta / 2))."""
    if params.error_dist == "cbd":
        return math.sqrt(params.error_bound / 2)
    span = params.error_bound + 1  # uniform over {0..B}: not centred
    return math.sqrt((span * span - 1) / 12)


def security_shortfall(params: HEParams) -> str:
    """Why a parameter set falls short of the table's assumptions ("" if it does not)."""
    problems = []
    if params.mask_dist != "uniform":
        problems.append("A is not uniform mod q")
    if params.secret_dist != "ternary":
        problems.append(
            f"the secret is {params.secret_dist} in 0..{params.secret_bound}, not ternary "
            "(binary and wide non-centred secrets are outside the table)"
        )
    if params.error_dist != "cbd":
        problems.append("the error is not a centred binomial")
    elif error_sigma(params) < MIN_ERROR_SIGMA:
        problems.append(
            f"error sigma {error_sigma(params):.2f} (eta={params.error_bound}) is below "
            f"{MIN_ERROR_SIGMA}; eta >= 21 is needed"
        )
    if params.lwe_dim < required_dimension(128):
        problems.append(
            f"lwe_dim={params.lwe_dim} < {required_dimension(128)} (128-bit at q = 2^64)"
        )
    return "; ".join(problems)


def estimated_security_bits(params: HEParams) -> int:
    """The security level (0, 128, 192 or 256) the HE standard's table supports.

    0 unless the set matches the table's assumptions: uniform ``A`` mod ``q = 2^64``, a
    ternary secret, a centred-binomial error with sigma >= 3.2 (eta >= 21); then the
    highest level whose required dimension ``lwe_dim`` reaches.
    """
    if security_shortfall(params):
        return 0
    return max(level for level in (128, 192, 256) if params.lwe_dim >= required_dimension(level))


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    strict_int(value, name, minimum=lo, maximum=hi, exact=True, error=ParameterError)


PAPER = HEParams(
    name="paper",
    lwe_dim=1,
    plaintext_bits=32,
    base_bits=1,
    secret_dist="uniform_nonneg",
    secret_bound=7,
    error_dist="uniform_nonneg",
    error_bound=1,
    mask_dist="uniform_nonneg",
    mask_bound=7,
    security_bits=0,
    security_note=(
        "INSECURE, for reproducing the paper only: k = 1 with small non-negative T, A, E; "
        "the secret is recovered from the public matrix by least squares "
        "(cipherfuse.he.attack.recover_secret)"
    ),
)

SECURE = HEParams(
    name="secure",
    lwe_dim=2560,
    plaintext_bits=24,
    base_bits=8,
    secret_dist="ternary",
    secret_bound=1,
    error_dist="cbd",
    error_bound=21,
    mask_dist="uniform",
    mask_bound=0,
    security_bits=128,
    security_note=(
        "128-bit classical: LWE n = 2560, q = 2^64, ternary secret, sigma = 3.24; "
        "HomomorphicEncryption.org standard Table 1 allows log2 q <= 54 at n = 2048 and "
        "<= 109 at n = 4096 (n / log2 q >= 37.9); 2560 / 64 = 40"
    ),
)

_NAMED = {"paper": PAPER, "secure": SECURE}


def get_params(name: str) -> HEParams:
    """Returns a named parameter set: ``"paper"`` (insecure) or ``"secure"``."""
    try:
        return _NAMED[name]
    except KeyError:
        raise ParameterError(
            f"unknown parameter set {name!r}; expected one of {sorted(_NAMED)}"
        ) from None
