"""``cipherfuse report``: tables and plots from the experiment JSON files."""

from __future__ import annotations

from pathlib import Path

import click

from cipherfuse.analysis.report import load_results, write_report, write_results_md


@click.command("report")
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Directory holding <experiment>.json files.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Directory for index.md and the PNG plots.",
)
@click.option(
    "--results-md",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the tables with their commands and seeds here (docs/results.md).",
)
def report_command(results_dir: Path, out: Path, results_md: Path | None) -> None:
    """Write report/index.md (one table per experiment) and PNG plots."""
    results = load_results(results_dir)
    for path in write_report(results, out):
        click.echo(str(path))
    if results_md is not None:
        click.echo(str(write_results_md(results, results_md)))
