"""Parameter sets: validation names the field and the range; the numbers match
the documentation."""

from __future__ import annotations

import pytest

from cipherfuse import he


def test_named_sets() -> None:
    assert he.get_params("paper") is he.PAPER
    assert he.get_params("secure") is he.SECURE
    assert he.PAPER.lwe_dim == 1 and he.PAPER.insecure
    s = he.SECURE
    assert not s.insecure and s.security_bits == 128
    assert s.mask_dist == "uniform" and s.secret_dist == "ternary" and s.error_dist == "cbd"
    # HE standard (ternary secret, 128-bit classical): n/log2(q) >= 2048/54 at q = 2^64.
    assert s.lwe_dim / 64 >= 2048 / 54
    assert s.w * s.t == 2**64 and s.digits == 8
    with pytest.raises(he.ParameterError, match="unknown parameter set 'fast'"):
        he.get_params("fast")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lwe_dim": 0}, "lwe_dim"),
        ({"plaintext_bits": 63}, "plaintext_bits"),
        ({"base_bits": 17}, "base_bits"),
        ({"secret_dist": "gaussian"}, "secret_dist"),
        ({"error_bound": 40}, "error_bound"),
        ({"mask_bound": 5}, "mask_bound"),
        ({"lwe_dim": 1024}, "security_bits"),
        ({"plaintext_bits": 50}, "plaintext_bits"),
        ({"lwe_dim": 2.5}, "lwe_dim"),
    ],
)
def test_invalid_parameters_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(he.ParameterError, match=field):
        he.SECURE.with_(**change)


def test_dict_roundtrip_and_strict_types() -> None:
    d = he.SECURE.to_dict()
    assert he.HEParams.from_dict(d) == he.SECURE
    with pytest.raises(he.ParameterError, match="unknown fields"):
        he.HEParams.from_dict({**d, "extra": 1})
    with pytest.raises(he.ParameterError, match="lwe_dim"):
        he.HEParams.from_dict({**d, "lwe_dim": "2560"})
    assert he.PAPER.fingerprint() != he.SECURE.fingerprint()


def test_parameters_are_frozen() -> None:
    with pytest.raises(AttributeError):
        he.SECURE.lwe_dim = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"error_bound": 1}, r"sigma 0\.71"),  # CBD(1): variance 1/2
        ({"error_bound": 20}, r"sigma 3\.16"),  # just below the standard's 3.2
        ({"secret_dist": "uniform_nonneg", "secret_bound": 1}, "not ternary"),  # binary
        ({"secret_dist": "uniform_nonneg", "secret_bound": 1000}, "not ternary"),  # wide
        ({"error_dist": "uniform_nonneg", "error_bound": 21}, "not a centred binomial"),
        ({"lwe_dim": 2427}, "lwe_dim=2427 < 2428"),
        ({"security_bits": 192}, "gives 128 bits"),
    ],
)
def test_security_claims_are_refused_outside_the_table(change: dict[str, object], why: str) -> None:
    """Before, each of these sets was accepted with security_bits=128 (or 192)."""
    with pytest.raises(he.ParameterError, match=why):
        he.SECURE.with_(**change)
    assert he.SECURE.with_(**{**change, "security_bits": 0}).insecure  # honest: no claim


def test_security_estimate_follows_the_table() -> None:
    from cipherfuse.he.params import (
        HE_STANDARD_TERNARY,
        error_sigma,
        estimated_security_bits,
        required_dimension,
    )

    assert estimated_security_bits(he.SECURE) == 128
    assert error_sigma(he.SECURE) == pytest.approx(3.2404, abs=1e-4)  # sqrt(21 / 2)
    # 128-bit: the most demanding row is n = 1024, log2 q <= 27 (ratio 37.93).
    assert required_dimension(128) == 2428 == -(-1024 * 64 // 27)
    assert required_dimension(192) == -(-2048 * 64 // 37)
    assert required_dimension(256) == -(-1024 * 64 // 14)
    assert HE_STANDARD_TERNARY[128][2048] == 54 and HE_STANDARD_TERNARY[128][4096] == 109
    wide = he.SECURE.with_(lwe_dim=4682, security_bits=256)
    assert estimated_security_bits(wide) == 256
    assert estimated_security_bits(he.PAPER) == 0
