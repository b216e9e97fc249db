"""``cipherfuse reproduce table11``: the JSON shape, the rows and their meaning (tiny workload)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cipherfuse.analysis.experiment import ExperimentResult
from cipherfuse.analysis.table11 import run_table11
from cipherfuse.cli.main import cli


def test_rows_have_the_documented_meaning() -> None:
    images = np.random.default_rng(0).random((6, 28, 28, 1)).astype(np.float32)
    result = run_table11(images, seed=1, repeats=3, secure=True)
    rows = {r.name: r for r in result.rows}
    assert rows["ratio_paper"].paper == 2.1 and rows["ratio_paper"].better == "lower"
    assert rows["ratio_secure"].paper is None and rows["ratio_secure"].better == "lower"
    for name in (
        "inference_plain_ms",
        "inference_encrypted_paper_ms",
        "encryption_overhead_paper_ms",
    ):
        assert rows[name].better is None and rows[name].ours > 0
    for ratio in ("ratio_paper", "ratio_paper_dense", "ratio_secure"):
        # the median of per-round ratios lies within their range
        assert rows[f"{ratio}_low"].ours <= rows[ratio].ours <= rows[f"{ratio}_high"].ours
        assert rows[ratio].ours > 0
    for name in ("inference_plain_dense_ms", "inference_encrypted_paper_dense_ms"):
        assert rows[name].ours > 0
    assert rows["relu_not_guaranteed_paper"].ours == 0.0
    assert rows["relu_not_guaranteed_secure"].ours == 1.0
    assert result.quick and result.meta["samples"] == 6
    assert ExperimentResult.from_dict(json.loads(result.to_json())).to_dict() == result.to_dict()


def test_cli_quick_json_and_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_dir: Path
) -> None:
    import cipherfuse.analysis.table11 as t11

    seen: dict[str, int] = {}
    real = t11.run_table11

    def small(images, **kwargs):  # type: ignore[no-untyped-def]
        seen["n"] = images.shape[0]
        return real(images[:4], **{**kwargs, "secure": False})

    monkeypatch.setattr(t11, "run_table11", small)
    out = CliRunner().invoke(
        cli,
        [
            "reproduce",
            "table11",
            "--quick",
            "--json",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--mnist-dir",
            str(mnist_dir),
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert seen["n"] == 100 and data["experiment"] == "table11" and data["seed"] == 3
    assert data["quick"] is True and "ratio_paper" in {r["name"] for r in data["rows"]}
    assert json.loads((tmp_path / "table11.json").read_text()) == data
