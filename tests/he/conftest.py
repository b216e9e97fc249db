"""Shared fixtures for the HE tests."""

from __future__ import annotations

import pytest

from cipherfuse import _core, he

CPP_ISAS = [name for name in ("scalar", "avx2", "avx512", "neon") if _core.isa_available(name)]
# Scheme-level identities run on the numpy reference, the scalar C++ path and the
# best SIMD path; every ISA is checked bit for bit against scalar in test_kernels.
KERNEL_NAMES = ["reference", "cpp-scalar", "cpp"]

# Small but faithful parameter sets for fast tests: the paper set itself, and
# the secure distributions (uniform A, ternary T, CBD errors) at the real k.
PARAM_SETS = {"paper": he.PAPER, "secure": he.SECURE}


@pytest.fixture(params=KERNEL_NAMES)
def kernels(request: pytest.FixtureRequest) -> str:
    """Runs a test under every kernel implementation available here."""
    return str(request.param)


@pytest.fixture(params=sorted(PARAM_SETS))
def params(request: pytest.FixtureRequest) -> he.HEParams:
    return PARAM_SETS[str(request.param)]


def seed(n: int) -> bytes:
    """A deterministic 32-byte seed."""
    return bytes([n % 256]) * 32
