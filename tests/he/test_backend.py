"""Kernel selection: names, availability errors, and per-thread isolation."""

from __future__ import annotations

import threading

import pytest

from cipherfuse import he
from cipherfuse.he.backend import get_kernels, kernels_by_name

from .conftest import CPP_ISAS


def test_names() -> None:
    assert kernels_by_name("reference").name == "reference"
    for isa in CPP_ISAS:
        assert kernels_by_name(f"cpp-{isa}").name == f"cpp-{isa}"
    with pytest.raises(he.ParameterError, match="unknown kernels"):
        kernels_by_name("gpu")
    with pytest.raises(he.ParameterError, match="unknown ISA"):
        kernels_by_name("cpp-sse9")


def test_selection_is_per_thread() -> None:
    seen: list[str] = []
    with he.use_kernels("reference"):
        assert get_kernels().name == "reference"
        worker = threading.Thread(target=lambda: seen.append(get_kernels().name))
        worker.start()
        worker.join()
    assert seen and seen[0].startswith("cpp")
    assert get_kernels().name.startswith("cpp")
