"""The report: tables and plots from experiment JSON files; malformed input rejected."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from PIL import Image

from cipherfuse.analysis.experiment import ExperimentError, ExperimentResult
from cipherfuse.analysis.pow import risk_row_name
from cipherfuse.analysis.report import (
    WHY_THEY_DIFFER,
    load_results,
    render_results_md,
    write_report,
)
from cipherfuse.cli.main import main
from cipherfuse.cli.reproduce_commands import reproduce_group

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _samples(directory: Path) -> dict[str, ExperimentResult]:
    case1 = ExperimentResult("case1", seed=3, quick=False)
    for k, (ours, paper) in enumerate([(91.25, 90.0), (94.5, None), (96.75, 95.8)], start=1):
        models = "{" + ",".join(str(i) for i in range(1, k + 1)) + "}"
        case1.add(
            f"MetaModel accuracy, strategy II, models {models}",
            ours,
            "%",
            paper=paper,
            better="higher",
        )
    case1.add("contributor training time", 12.5, "s")
    pow_result = ExperimentResult("pow", seed=0, quick=True)
    for z, risk in [(0, 100.0), (5, 17.5), (10, 4.25)]:
        pow_result.add(risk_row_name(300, z, "Eq. 16"), risk, "%")
        pow_result.add(risk_row_name(300, z, "MC 1000 intervals"), risk * 1.1, "%")
    pow_result.add("depth risk<1% m=340 [Eq. 16]", 24, "blocks", paper=29)
    table11 = ExperimentResult("table11", seed=1, quick=False)
    table11.add("encryption time, 1000 samples", 0.375, "s", paper=1.5, better="lower")
    table11.add("inference with encryption / without", 1.75, "ratio", paper=2.0, better="lower")
    case4 = ExperimentResult("case4", seed=2, quick=True)
    for r, acc in [(1, 60.0), (2, 80.0), (3, 90.0)]:
        case4.add(f"FedAvg accuracy IID, round {r}", acc, "%")
    case4.add("one-shot fusion accuracy IID", 88.5, "%", better="higher")
    samples = {r.experiment: r for r in (case1, pow_result, table11, case4)}
    for result in samples.values():
        result.save(directory / f"{result.experiment}.json")
    return samples


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size[0] > 200 and image.size[1] > 100


def test_report_tables_contain_every_number_and_the_plots_are_pngs(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    _samples(results_dir)
    written = write_report(load_results(results_dir), tmp_path / "report")
    index = written[0].read_text()
    assert written[0].name == "index.md"
    assert "| MetaModel accuracy, strategy II, models {1,2,3} | 95.8 | 96.75 | 0.95 | % |" in index
    assert "higher (ours better)" in index
    assert (
        "| encryption time, 1000 samples | 1.5 | 0.375 | -1.125 | s | lower (ours better) |"
        in index
    )
    assert "| depth risk<1% m=340 [Eq. 16] | 29 | 24 | -5 | blocks |" in index
    assert "| contributor training time | – | 12.5 | – | s |" in index
    for name in ("case1", "pow", "table11", "case4"):
        assert f"## {name}" in index
        assert WHY_THEY_DIFFER[name] in index
    pngs = sorted(p.name for p in written[1:])
    assert pngs == ["fl_vs_ours.png", "fused_accuracy.png", "overhead.png", "pow_risk.png"]
    for png in written[1:]:
        _assert_png(png)
        assert f"]({png.name})" in index


def test_plots_appear_only_for_present_experiments(tmp_path: Path) -> None:
    only = ExperimentResult("case2", seed=0, quick=True)
    only.add("Models {1} majority positive (measured)", 63.3, "%", paper=70.4, better="higher")
    only.save(tmp_path / "results" / "case2.json")
    written = write_report(load_results(tmp_path / "results"), tmp_path / "report")
    assert [p.name for p in written] == ["index.md"]
    assert not list((tmp_path / "report").glob("*.png"))
    assert "| Models {1} majority positive (measured) | 70.4 | 63.3 | -7.1 | % |" in (
        written[0].read_text()
    )


def test_results_md_names_the_command_and_seed_of_each_table(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    samples["pow"].meta["command"] = "cipherfuse reproduce pow --seed 0 --quick"
    text = render_results_md(list(samples.values()))
    assert "Command: `cipherfuse reproduce pow --seed 0 --quick` (seed 0, quick mode)." in text
    assert "Command: `cipherfuse reproduce case1 --seed 3` (seed 3, full mode)." in text
    assert "| 91.25 |" in text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "cannot read"),
        (json.dumps({"experiment": "x", "seed": 0, "rows": []}), "keys"),
        (
            json.dumps(
                {
                    "experiment": "x",
                    "seed": 0,
                    "quick": False,
                    "rows": [{"name": "a", "paper": None, "ours": "1", "unit": "", "better": None}],
                }
            ),
            "must be a number",
        ),
        (
            json.dumps(
                {
                    "experiment": "x",
                    "seed": 0,
                    "quick": False,
                    "rows": [{"name": "a", "paper": None, "ours": 1, "unit": "", "better": "up"}],
                }
            ),
            "better must be",
        ),
    ],
)
def test_malformed_results_are_rejected_naming_the_file(
    tmp_path: Path, content: str, match: str
) -> None:
    _samples(tmp_path)
    bad = tmp_path / "zz_bad.json"
    bad.write_text(content)
    with pytest.raises(ExperimentError, match=match) as info:
        load_results(tmp_path)
    assert "zz_bad.json" in str(info.value)


def test_empty_missing_and_duplicate_result_sets_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="does not exist"):
        load_results(tmp_path / "nowhere")
    with pytest.raises(ExperimentError, match=r"no <experiment>\.json"):
        load_results(tmp_path)
    samples = _samples(tmp_path)
    samples["pow"].save(tmp_path / "pow-copy.json")
    with pytest.raises(ExperimentError, match="appears in two files"):
        load_results(tmp_path)


def test_report_command_writes_report_and_results_md(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _samples(tmp_path / "res")
    md = tmp_path / "docs" / "results.md"
    code = main(
        [
            "report",
            "--results",
            str(tmp_path / "res"),
            "--out",
            str(tmp_path / "rep"),
            "--results-md",
            str(md),
        ]
    )
    assert code == 0
    assert (tmp_path / "rep" / "index.md").is_file()
    assert "cipherfuse reproduce table11 --seed 1" in md.read_text()
    (tmp_path / "res" / "broken.json").write_text("[]")
    assert main(["report", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "r2")]) == 2
    assert "broken.json" in capsys.readouterr().err


def test_reproduce_all_runs_every_command_then_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    @click.command("broken")
    @click.option("--out", type=click.Path(path_type=Path))
    @click.option("--quick", is_flag=True)
    def broken(out: Path, quick: bool) -> None:
        raise RuntimeError("this experiment fails on purpose")

    commands = {
        "pow": reproduce_group.commands["pow"],
        "broken": broken,
        "all": reproduce_group.commands["all"],
    }
    monkeypatch.setattr(reproduce_group, "commands", commands)
    code = main(
        [
            "reproduce",
            "all",
            "--quick",
            "--out",
            str(tmp_path / "res"),
            "--report",
            str(tmp_path / "rep"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1  # the broken experiment is reported ...
    assert "broken failed: RuntimeError: this experiment fails on purpose" in err
    # ... and the others still ran and were reported.
    result = ExperimentResult.load(tmp_path / "res" / "pow.json")
    assert result.quick and result.meta["command"] == "cipherfuse reproduce pow --seed 0 --quick"
    assert "## pow" in (tmp_path / "rep" / "index.md").read_text()
    _assert_png(tmp_path / "rep" / "pow_risk.png")


def test_long_tables_fold_only_the_curve_points(tmp_path: Path) -> None:
    result = ExperimentResult("pow", seed=0, quick=False)
    result.add("depth risk<1% m=340 [exact]", 31, "blocks")
    for z in range(40):
        result.add(risk_row_name(340, z, "exact"), 100.0 / (z + 1), "%")
    result.save(tmp_path / "pow.json")
    index = write_report(load_results(tmp_path), tmp_path / "rep")[0].read_text()
    head, folded = index.split("<details>")
    assert "| depth risk<1% m=340 [exact] | – | 31 |" in head
    assert "risk m=340 z=0 [exact]" not in head
    assert "40 more rows (points of the plotted curves)" in folded
    assert "| risk m=340 z=39 [exact] | – | 2.5 |" in folded


def test_every_plot_has_a_title_and_honest_scales(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed results: overhead bars on one log axis in ms (a 13,960 ms row is not
    drawn as short as a 2.7 ms one), Case IV bars zoomed, labelled and in a legend."""
    import cipherfuse.analysis.report as report_module

    figures: dict[str, object] = {}
    real_save = report_module._save

    def keep(fig: object, path: Path) -> Path:
        figures[path.name] = fig
        return real_save(fig, path)

    monkeypatch.setattr(report_module, "_save", keep)
    results_dir = Path(__file__).resolve().parents[2] / "results"
    write_report(load_results(results_dir), tmp_path / "report")
    assert set(figures) == {"fl_vs_ours.png", "fused_accuracy.png", "overhead.png", "pow_risk.png"}
    for name, fig in figures.items():
        (ax,) = fig.axes  # type: ignore[attr-defined]
        assert ax.get_title(), name
    (overhead,) = figures["overhead.png"].axes  # type: ignore[attr-defined]
    assert overhead.get_xscale() == "log"
    widths = {round(p.get_width(), 3) for p in overhead.patches}
    rows = next(r for r in load_results(results_dir) if r.experiment == "table11").rows
    matrix = next(r for r in rows if r.name == "inference_encrypted_secure_matrix_ms")
    seeded = next(r for r in rows if r.name == "encryption_overhead_secure_seeded_ms")
    assert round(matrix.ours, 3) in widths and round(seeded.ours, 3) in widths
    (fl,) = figures["fl_vs_ours.png"].axes  # type: ignore[attr-defined]
    legend = fl.get_legend()
    assert legend is not None and len(legend.get_texts()) == 3
    low, high = fl.get_ylim()
    assert low > 80 and high <= 100  # zoomed onto the 95-98 % values
    labels = {t.get_text() for t in fl.texts}
    assert {"98.22", "97.08"} <= labels
