"""The strict integer checks of :mod:`cipherfuse.validation`."""

from __future__ import annotations

import ast
import enum
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cipherfuse.validation
from cipherfuse.errors import ParameterError
from cipherfuse.validation import describe_int, is_strict_int, strict_int


class _Small(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, [1], np.bool_(True)])
def test_bools_and_non_integers_are_refused(value: object) -> None:
    assert not is_strict_int(value)
    assert not is_strict_int(value, numpy=True)
    with pytest.raises(ValueError, match="flag must be an integer, got"):
        strict_int(value, "flag")


def test_ints_pass_through_unchanged() -> None:
    assert strict_int(7, "n") == 7
    assert strict_int(-(2**80), "n") == -(2**80)
    member = strict_int(_Small.ONE, "n")
    assert member is _Small.ONE  # returned as it is


def test_numpy_integers_only_when_asked() -> None:
    for value in (np.int64(3), np.uint8(3), np.int32(3)):
        assert not is_strict_int(value)
        with pytest.raises(ValueError, match="n must be an integer"):
            strict_int(value, "n")
        got = strict_int(value, "n", numpy=True, minimum=3, maximum=3)
        assert got == 3 and type(got) is int
    with pytest.raises(ValueError, match="n must be a positive integer"):
        strict_int(np.int64(0), "n", numpy=True, minimum=1)


def test_exact_refuses_int_subclasses() -> None:
    assert is_strict_int(_Small.ONE)
    assert not is_strict_int(_Small.ONE, exact=True)
    assert is_strict_int(1, exact=True)
    assert is_strict_int(np.int64(1), numpy=True, exact=True)
    with pytest.raises(ValueError, match="n must be an integer"):
        strict_int(_Small.ONE, "n", exact=True)


def test_bounds_are_inclusive() -> None:
    assert [is_strict_int(v, minimum=1, maximum=16) for v in (0, 1, 16, 17)] == [
        False,
        True,
        True,
        False,
    ]
    assert strict_int(1, "b", minimum=1, maximum=16) == 1
    assert strict_int(16, "b", minimum=1, maximum=16) == 16
    with pytest.raises(ValueError, match=r"^b must be an integer in \[1, 16\], got 17$"):
        strict_int(17, "b", minimum=1, maximum=16)
    with pytest.raises(ValueError, match=r"^b must be an integer in \[1, 16\], got 0$"):
        strict_int(0, "b", minimum=1, maximum=16)
    assert is_strict_int(-5, maximum=-5) and not is_strict_int(-4, maximum=-5)


def test_the_error_class_and_name_are_the_callers() -> None:
    with pytest.raises(ParameterError, match=r"^rows must be a positive integer, got -1$") as info:
        strict_int(-1, "rows", minimum=1, error=ParameterError)
    assert type(info.value) is ParameterError


@pytest.mark.parametrize(
    ("minimum", "maximum", "words"),
    [
        (None, None, "an integer"),
        (0, None, "a non-negative integer"),
        (1, None, "a positive integer"),
        (2, None, "an integer >= 2"),
        (None, 9, "an integer <= 9"),
        (0, 2**62, "an integer in [0, 2**62]"),
        (0, 2**256 - 1, "an integer in [0, 2**256 - 1]"),
        (1, 2**20, "an integer in [1, 2**20]"),
        (0, 2**20 - 1, "an integer in [0, 2**20 - 1]"),
        (0, 1000, "an integer in [0, 1000]"),
        (1, 2**15, "an integer in [1, 32768]"),
        (-(2**16), 2**16 + 1, "an integer in [-65536, 65537]"),
    ],
)
def test_describe_int(minimum: int | None, maximum: int | None, words: str) -> None:
    assert describe_int(minimum, maximum) == words


def test_a_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(ValueError, match="n must be an integer, got 'xxx") as info:
        strict_int("x" * 1000, "n")
    assert len(str(info.value)) < 120


def test_the_module_imports_nothing_from_cipherfuse() -> None:
    tree = ast.parse(Path(cipherfuse.validation.__file__).read_text())
    names = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] == "cipherfuse"]


def test_numpy_is_imported_only_for_a_check_that_accepts_numpy_integers() -> None:
    code = (
        "import sys\n"
        "from cipherfuse.validation import is_strict_int, strict_int\n"
        "strict_int(3, 'n', minimum=0)\n"
        "assert not is_strict_int(3.0)\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded by a plain check'\n"
        "assert not is_strict_int(3.0, numpy=True)\n"
        "assert 'numpy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
