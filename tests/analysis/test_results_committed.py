"""docs/results.md is generated from the committed results/*.json, never edited by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from cipherfuse.analysis.report import load_results, render_results_md

REPO = Path(__file__).resolve().parents[2]


def test_committed_results_md_is_what_the_committed_json_renders_to() -> None:
    results_dir = REPO / "results"
    md = REPO / "docs" / "results.md"
    if not results_dir.is_dir() or not md.is_file():
        pytest.fail("results/ and docs/results.md are part of the repository")
    rendered = render_results_md(load_results(results_dir))
    assert md.read_text(encoding="utf-8") == rendered, (
        "docs/results.md is stale: run `cipherfuse report --results-md docs/results.md`"
    )
