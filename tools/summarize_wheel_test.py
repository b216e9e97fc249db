"""Summarise a wheel (and, if given, its emulated test run) as a small JSON file.

    python3 tools/summarize_wheel_test.py --wheel W.whl [--out-dir DIR] --summary OUT.json

The JSON holds the wheel's file name and tags (from its WHEEL metadata), the
`auditwheel show` text saved next to the wheel by tools/wheel-tools.sh, and, with
--out-dir (the output folder of tools/test-aarch64-wheel.sh), the machine and libc seen
by the emulated Python, the ISA the dispatcher chose, the selftest verdict and the
pytest counts. No paths or dates are written. The file is replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any


def wheel_tags(wheel: Path) -> list[str]:
    """The Tag: lines of the wheel's .dist-info/WHEEL file."""
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/WHEEL")]
        text = zf.read(name).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


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
    """The ids (file::name) of the tests that failed or errored."""
    failed = []
    for case in ET.parse(xml_file).getroot().iter("testcase"):
        if any(child.tag in ("failure", "error") for child in case):
            path = case.get("classname", "").replace(".", "/")
            failed.append(f"{path}.py::{case.get('name', '')}")
    return failed


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
    return step


def summarize(wheel: Path, out_dir: Path | None) -> dict[str, Any]:
    report: dict[str, Any] = {"wheel": wheel.name, "tags": wheel_tags(wheel)}
    show = wheel.with_suffix(".auditwheel.txt")
    if show.exists():
        report["auditwheel_show"] = show.read_text().strip()
    if out_dir is not None:
        selftest = (out_dir / "selftest.txt").read_text().strip().splitlines()
        report["emulated_run"] = {
            "emulator": "qemu-aarch64-static under proot, arm64 Debian bookworm root",
            "platform": (out_dir / "platform.txt").read_text().strip(),
            "best_isa": (out_dir / "best_isa.txt").read_text().strip(),
            "selftest": selftest[-1] if selftest else "",
            "selftest_header": selftest[0] if selftest else "",
            "jax": (out_dir / "jax.txt").read_text().strip()
            if (out_dir / "jax.txt").exists()
            else "not run",
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
