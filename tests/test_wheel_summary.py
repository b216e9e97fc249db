"""tools/summarize_wheel_test.py writes the same results/wheels/*.json for the same wheel.

auditwheel prints Python sets in hash order, which changes with every process; the two
texts below are two real `auditwheel show` runs on one wheel.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]

RUN_A = """
cipherfuse-0.1.0-cp311-cp311-manylinux_2_34_aarch64.whl is consistent
with the following platform tag: "manylinux_2_34_aarch64".

The wheel references external versioned symbols in these
system-provided shared libraries: libgcc_s.so.1 with versions
{'GCC_3.3.1', 'GCC_3.0'}, libstdc++.so.6 with versions
{'CXXABI_1.3.3', 'CXXABI_1.3.9', 'GLIBCXX_3.4.29', 'GLIBCXX_3.4.20',
'GLIBCXX_3.4', 'GLIBCXX_3.4.18', 'GLIBCXX_3.4.15', 'GLIBCXX_3.4.17',
'CXXABI_1.3.13', 'GLIBCXX_3.4.14', 'GLIBCXX_3.4.21', 'GLIBCXX_3.4.11',
'CXXABI_1.3', 'GLIBCXX_3.4.22', 'CXXABI_1.3.2', 'CXXABI_1.3.5'},
libc.so.6 with versions {'GLIBC_2.32', 'GLIBC_2.17', 'GLIBC_2.34'}

This constrains the platform tag to "manylinux_2_34_aarch64". In order
to achieve a more compatible tag, you would need to recompile a new
wheel from source on a system with earlier versions of these
libraries, such as a recent manylinux image.
"""

RUN_B = """
cipherfuse-0.1.0-cp311-cp311-manylinux_2_34_aarch64.whl is consistent
with the following platform tag: "manylinux_2_34_aarch64".

The wheel references external versioned symbols in these
system-provided shared libraries: libgcc_s.so.1 with versions
{'GCC_3.3.1', 'GCC_3.0'}, libstdc++.so.6 with versions
{'GLIBCXX_3.4.21', 'CXXABI_1.3.9', 'GLIBCXX_3.4.18', 'GLIBCXX_3.4.14',
'CXXABI_1.3.13', 'GLIBCXX_3.4.11', 'GLIBCXX_3.4', 'GLIBCXX_3.4.20',
'CXXABI_1.3', 'GLIBCXX_3.4.22', 'GLIBCXX_3.4.29', 'CXXABI_1.3.5',
'GLIBCXX_3.4.17', 'CXXABI_1.3.3', 'GLIBCXX_3.4.15', 'CXXABI_1.3.2'},
libc.so.6 with versions {'GLIBC_2.32', 'GLIBC_2.17', 'GLIBC_2.34'}

This constrains the platform tag to "manylinux_2_34_aarch64". In order
to achieve a more compatible tag, you would need to recompile a new
wheel from source on a system with earlier versions of these
libraries, such as a recent manylinux image.
"""


def _summarizer() -> ModuleType:
    path = REPO / "tools" / "summarize_wheel_test.py"
    spec = importlib.util.spec_from_file_location("summarize_wheel_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _versions_by_library(text: str) -> dict[str, set[str]]:
    flat = " ".join(text.split())
    return {
        lib: set(re.findall(r"'([^']+)'", versions))
        for lib, versions in re.findall(r"(\S+) with versions \{([^}]*)\}", flat)
    }


def test_two_auditwheel_runs_normalize_to_one_text() -> None:
    normalize = _summarizer().normalize_auditwheel_show
    assert RUN_A != RUN_B
    assert normalize(RUN_A) == normalize(RUN_B)
    assert normalize(normalize(RUN_A)) == normalize(RUN_A)


def test_normalized_text_keeps_every_version_and_sorts_them() -> None:
    text = _summarizer().normalize_auditwheel_show(RUN_A)
    assert _versions_by_library(text) == _versions_by_library(RUN_A)
    flat = " ".join(text.split())
    libraries = re.findall(r"(\S+) with versions", flat)
    assert libraries == ["libc.so.6", "libgcc_s.so.1", "libstdc++.so.6"]
    glibcxx = re.findall(r"'GLIBCXX_([0-9.]+)'", flat)
    as_tuples = [tuple(int(p) for p in v.split(".")) for v in glibcxx]
    assert as_tuples == sorted(as_tuples) and as_tuples[-1] == (3, 4, 29)
    assert 'constrains the platform tag to "manylinux_2_34_aarch64"' in flat
    assert max(len(line) for line in text.splitlines()) <= 70


def test_committed_summaries_hold_normalized_auditwheel_text() -> None:
    normalize = _summarizer().normalize_auditwheel_show
    for arch in ("aarch64", "x86_64"):
        summary = json.loads((REPO / "results" / "wheels" / f"{arch}.json").read_text())
        assert summary["tags"] == [summary["wheel"].removesuffix(".whl").split("-", 2)[2]]
        show = summary["auditwheel_show"]
        assert show == normalize(show), arch
        assert f'"{summary["tags"][0].split("-")[-1]}"' in show
