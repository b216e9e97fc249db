"""The hand-written stub ``_core.pyi`` matches the built extension, parameter by parameter.

mypy's ``stubtest`` (run in ``.ci/run``) checks that the stub and the module define the
same names, but it cannot read the parameters of a pybind11 function (they have no
``__text_signature__``). pybind11 writes each function's signature as the first line of
its docstring; this test reads it as a Python ``def`` and compares the names, kinds
(positional or keyword-only) and default values with the stub's, so a keyword renamed
or made positional in ``cpp/bindings/`` and not in the stub (or the reverse) fails here.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import cipherfuse
import cipherfuse._core as _core

STUB = Path(cipherfuse.__file__).resolve().parent / "_core.pyi"

Parameter = tuple[str, str, Any]  # (name, "positional" | "keyword", default or NO_DEFAULT)
NO_DEFAULT = object()


def _parameters(fn: ast.FunctionDef) -> list[Parameter]:
    args = fn.args
    assert not args.posonlyargs and args.vararg is None and args.kwarg is None, fn.name
    positional: list[Parameter] = []
    first_default = len(args.args) - len(args.defaults)
    for i, a in enumerate(args.args):
        default = (
            ast.literal_eval(args.defaults[i - first_default]) if i >= first_default else NO_DEFAULT
        )
        positional.append((a.arg, "positional", default))
    keyword: list[Parameter] = [
        (a.arg, "keyword", NO_DEFAULT if d is None else ast.literal_eval(d))
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    return positional + keyword


def _stub_functions() -> dict[str, list[Parameter]]:
    tree = ast.parse(STUB.read_text())
    return {n.name: _parameters(n) for n in tree.body if isinstance(n, ast.FunctionDef)}


def _runtime_parameters(name: str) -> list[Parameter]:
    doc = getattr(_core, name).__doc__
    assert doc, f"_core.{name} has no docstring"
    signature = doc.splitlines()[0]
    assert signature.startswith(f"{name}("), signature
    fn = ast.parse(f"def {signature}: ...").body[0]
    assert isinstance(fn, ast.FunctionDef)
    return _parameters(fn)


STUB_FUNCTIONS = _stub_functions()
RUNTIME_FUNCTIONS = sorted(
    n for n, v in vars(_core).items() if not n.startswith("_") and inspect.isroutine(v)
)


def test_stub_and_module_define_the_same_functions() -> None:
    assert sorted(STUB_FUNCTIONS) == RUNTIME_FUNCTIONS
    assert len(RUNTIME_FUNCTIONS) > 20  # the reader found the module's functions


@pytest.mark.parametrize("name", RUNTIME_FUNCTIONS)
def test_stub_parameters_match_the_binding(name: str) -> None:
    assert STUB_FUNCTIONS[name] == _runtime_parameters(name)


def test_option_parameters_are_keyword_only() -> None:
    # isa, threads and the geometry are options: never passed by position.
    options = {"isa", "threads", "stride_h", "pad_top", "pool_h", "activation", "variant"}
    for name in RUNTIME_FUNCTIONS:
        for param, kind, _ in _runtime_parameters(name):
            if param in options:
                assert kind == "keyword", f"_core.{name}({param}) is positional"


def test_the_reader_sees_a_positional_default_and_keyword_only_parameters() -> None:
    # seeded_conv(x, kern, bias=None, *, stride_h=1, ...): a known shape of the binding.
    params = _runtime_parameters("seeded_conv")
    assert params[:3] == [
        ("x", "positional", NO_DEFAULT),
        ("kern", "positional", NO_DEFAULT),
        ("bias", "positional", None),
    ]
    assert params[3] == ("stride_h", "keyword", 1)
    assert ("isa", "keyword", "auto") in params
