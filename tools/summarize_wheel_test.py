"""Summarise a wheel (and, if given, its emulated test run) as a small JSON file.

    python3 tools/summarize_wheel_test.py --wheel W.whl [--out-dir DIR] --summary OUT.json

The JSON holds the wheel's file name and tags (from its WHEEL metadata), the
`auditwheel show` text saved next to the wheel by tools/wheel-tools.sh, and, with
--out-dir (the output folder of tools/test-aarch64-wheel.sh), the machine and libc seen
by the emulated Python, the ISA the dispatcher chose, the selftest verdict per operation
and the pytest counts, failures and skip reasons. No paths, dates, timings or core
counts are written, and `auditwheel show`'s sets (printed by auditwheel in hash order)
are sorted, so two runs of the same source give the same file. It is replaced
atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import textwrap
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

# One "libfoo.so.N with versions {'A', 'B'}" clause of auditwheel's symbol paragraph.
_LIB_CLAUSE = re.compile(r"(\S+) with versions \{([^}]*)\}")
_SET = re.compile(r"\{([^{}]*)\}")


def _natural_key(text: str) -> list[Any]:
    """GLIBCXX_3.4.9 before GLIBCXX_3.4.11: digit runs compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]


def _sorted_set(items: str) -> str:
    members = sorted((m.strip() for m in items.split(",") if m.strip()), key=_natural_key)
    return "{" + ", ".join(members) + "}"


def normalize_auditwheel_show(text: str) -> str:
    """`auditwheel show` text with its sets and its library list in sorted order.

    auditwheel prints Python sets, whose order follows string hashes and so changes from
    run to run. Each paragraph is unwrapped, the members of every ``{...}`` set are sorted
    (numerically within version numbers), the ``lib with versions {...}`` clauses are
    sorted by library name, and the paragraph is wrapped again the way auditwheel wraps
    it (``textwrap.wrap`` at 70 columns, no broken words or hyphens).
    """
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    out = []
    for para in paragraphs:
        clauses = _LIB_CLAUSE.findall(para)
        if clauses:
            start = _LIB_CLAUSE.search(para)
            assert start is not None
            head = para[: start.start()]
            rendered = sorted(
                (f"{lib} with versions {_sorted_set(vs)}" for lib, vs in clauses),
                key=_natural_key,
            )
            tail = para[[m.end() for m in _LIB_CLAUSE.finditer(para)][-1] :]
            para = head + ", ".join(rendered) + tail
        else:
            para = _SET.sub(lambda m: _sorted_set(m.group(1)), para)
        out.append(
            "\n".join(textwrap.wrap(para, break_long_words=False, break_on_hyphens=False))
        )
    return "\n\n".join(out)


def wheel_tags(wheel: Path) -> list[str]:
    """The Tag: lines of the wheel's .dist-info/WHEEL file."""
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/WHEEL")]
        text = zf.read(name).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def _case_id(case: ET.Element) -> str:
    path = case.get("classname", "").replace(".", "/")
    return f"{path}.py::{case.get('name', '')}"


def junit_counts(xml_file: Path) -> dict[str, int]:
    """Totals over every <testsuite> of a pytest --junitxml file."""
    root = ET.parse(xml_file).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    totals["passed"] = totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"]
    return totals


def junit_failed(xml_file: Path) -> list[str]:
    """The ids (file::name) of the tests that failed or errored, sorted."""
    failed = []
    for case in ET.parse(xml_file).getroot().iter("testcase"):
        if any(child.tag in ("failure", "error") for child in case):
            failed.append(_case_id(case))
    return sorted(failed)


def junit_skipped(xml_file: Path) -> dict[str, str]:
    """Each skipped test's id and the reason pytest gave, sorted by id."""
    skipped = {}
    for case in ET.parse(xml_file).getroot().iter("testcase"):
        for child in case:
            if child.tag == "skipped":
                skipped[_case_id(case)] = child.get("message", "").strip()
    return dict(sorted(skipped.items()))


def pytest_step(out_dir: Path, name: str) -> dict[str, Any]:
    """The arguments (out_dir/NAME.args) and the result (out_dir/NAME.xml) of one pytest step."""
    args = (out_dir / f"{name}.args").read_text().split()
    step: dict[str, Any] = {"command": "pytest " + " ".join(args)}
    xml_file = out_dir / f"{name}.xml"
    if not xml_file.exists():
        step["result"] = "not run"
        return step
    step["result"] = junit_counts(xml_file)
    failed = junit_failed(xml_file)
    if failed:
        step["failed_tests"] = failed
    skipped = junit_skipped(xml_file)
    if skipped:
        step["skipped_tests"] = skipped
    return step


def selftest_summary(report_file: Path) -> dict[str, Any]:
    """`cipherfuse he selftest --json`'s verdict, ISA and per-operation checks (no timings)."""
    if not report_file.exists():
        return {"result": "not run"}
    report = json.loads(report_file.read_text())
    return {
        "result": "OK" if report["ok"] else "FAILED",
        "isa": report["isa"],
        "operations": [
            f"{row['params']} {row['operation']}: correct={row['correct']} "
            f"bit_identical={row['bit_identical']}"
            for row in report["rows"]
        ],
    }


def _read(path: Path) -> str:
    return path.read_text().strip() if path.exists() else "not run"


def summarize(wheel: Path, out_dir: Path | None) -> dict[str, Any]:
    report: dict[str, Any] = {"wheel": wheel.name, "tags": wheel_tags(wheel)}
    show = wheel.with_suffix(".auditwheel.txt")
    if show.exists():
        report["auditwheel_show"] = normalize_auditwheel_show(show.read_text())
    if out_dir is not None:
        report["emulated_run"] = {
            "emulator": "qemu-aarch64-static under proot, arm64 Debian bookworm root",
            "install": _read(out_dir / "install.txt"),
            "platform": _read(out_dir / "platform.txt"),
            "best_isa": _read(out_dir / "best_isa.txt"),
            "selftest": selftest_summary(out_dir / "selftest.json"),
            "jax": _read(out_dir / "jax.txt"),
            "pytest": pytest_step(out_dir, "tests"),
            "bench_smoke": pytest_step(out_dir, "bench"),
        }
    return report


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path)
    parser.add_argument("--summary", type=Path, required=True)
    args = parser.parse_args()
    report = summarize(args.wheel, args.out_dir)
    write_atomically(args.summary, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
