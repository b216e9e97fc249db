"""The `cipherfuse` command: help, HE tools, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cipherfuse import he
from cipherfuse.cli.main import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cipherfuse.cli.main import main; sys.exit(main(sys.argv[1:]))",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_everywhere() -> None:
    for args in ([], ["he"], ["he", "selftest"], ["he", "params"], ["he", "inspect"]):
        res = _run(*args, "--help")
        assert res.returncode == 0, res.stderr
        assert "Usage:" in res.stdout


def test_params_command_warns_about_the_paper_set() -> None:
    res = _run("he", "params", "paper")
    assert res.returncode == 0
    assert "INSECURE" in res.stdout
    data = json.loads(_run("he", "params", "secure", "--json").stdout)
    derived = {"w_log2", "fresh_noise_bound"}  # shown by the text form too
    assert he.HEParams.from_dict({k: v for k, v in data.items() if k not in derived}) == he.SECURE


def test_selftest_json() -> None:
    res = _run("he", "selftest", "--params", "paper", "--m", "8", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] is True
    assert {r["operation"] for r in report["rows"]} >= {"encrypt", "keyswitch", "add"}
    assert all(r["correct"] and r["bit_identical"] for r in report["rows"])


def test_inspect_valid_and_corrupt_files(tmp_path: Path) -> None:
    sk = he.keygen(he.PAPER, 2, seed=bytes(32))
    good = tmp_path / "sk.cfhe"
    he.save(sk, good)
    assert main(["he", "inspect", str(good)]) == 0
    bad = tmp_path / "bad.cfhe"
    bad.write_bytes(good.read_bytes()[:-3])
    res = _run("he", "inspect", str(bad))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "error:" in res.stderr
    assert "Traceback" not in res.stderr
    missing = _run("he", "inspect", str(tmp_path / "nope.cfhe"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
