"""Shared fixtures for the HE tests."""

from __future__ import annotations

import pytest

from cipherfuse import _core, he

CPP_ISAS = [name for name in ("scalar", "avx2", "neon") if _core.isa_available(name)]
KERNEL_NAMES = ["reference", *[f"cpp-{isa}" for isa in CPP_ISAS]]

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
