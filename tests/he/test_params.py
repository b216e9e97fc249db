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
