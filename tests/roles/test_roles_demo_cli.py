"""``cipherfuse demo`` as a user runs it: output files, their modes, and write failures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cipherfuse.cli.main import main
from cipherfuse.cli.roles_commands import save_report


def test_an_unusable_report_path_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("x")
    for bad in (tmp_path / "missing" / "r.json", tmp_path / "a-file" / "r.json", tmp_path):
        assert main(["demo", "--quick", "--report", str(bad)]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("error: ") and "--report" in captured.err
        assert captured.err.count("\n") == 1
        assert captured.out == ""  # nothing was started


def test_a_failed_report_write_keeps_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("x")
    report = {"format": "cipherfuse-demo-report", "final_accuracy": 0.9}
    assert save_report(tmp_path / "a-file" / "r.json", report) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the report") and err.count("\n") == 1
    rescue = Path(err.rsplit("saved to ", 1)[1].split()[0])
    try:
        assert json.loads(rescue.read_text()) == report
        assert stat.S_IMODE(rescue.stat().st_mode) == 0o644
    finally:
        rescue.unlink()


@pytest.mark.slow
def test_the_demo_prints_its_summary_then_writes_0644_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--quick", "--max-epochs", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not [line for line in lines if "INSECURE" in line]  # secure judging by default
    assert lines[-1] == "report: cipherfuse-demo-report.json"
    assert "MetaModel accuracy:" in out and "reduced run" in out
    for name in ("cipherfuse-demo-report.json", "cipherfuse-demo-metamodel.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    report = json.loads((tmp_path / "cipherfuse-demo-report.json").read_text())
    assert report["metamodel_file"] == "cipherfuse-demo-metamodel.bin"
    assert '"salt"' not in (tmp_path / "cipherfuse-demo-report.json").read_text()
    # the default work folder was temporary and is gone; a second run is not refused
    assert not list(tmp_path.glob("cipherfuse-demo-*/"))


def test_the_top_level_api_is_lazy_and_documented(tmp_path: Path) -> None:
    import subprocess
    import sys

    import cipherfuse
    from cipherfuse.errors import CipherfuseError

    assert "run_demo" in cipherfuse.__all__ and cipherfuse.run_demo.__doc__
    assert cipherfuse.DemoResult.summary.__doc__
    # importing the package alone does not pull in JAX or web3
    probe = "import sys, cipherfuse; print('jax' in sys.modules, 'web3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "initiator-0x1.json").write_text("{}")
    with pytest.raises(CipherfuseError, match="--fresh"):
        cipherfuse.run_demo(workdir=tmp_path)
