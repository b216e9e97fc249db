"""Hypothesis settings of the decoder fuzz tests (see tests/fuzz/test_fuzz_decoders.py).

``--hypothesis-profile=fuzz`` selects the long profile registered here.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
