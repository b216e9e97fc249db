"""How every ``cipherfuse reproduce <experiment>`` command prints and saves its result."""

from __future__ import annotations

from pathlib import Path

import click

from cipherfuse.analysis.experiment import ExperimentResult


def emit(result: ExperimentResult, *, as_json: bool, out: Path | None) -> None:
    """Print ``result`` (JSON or a table) and, with ``out``, save ``<out>/<experiment>.json``."""
    if out is not None:
        result.save(out / f"{result.experiment}.json")
    if as_json:
        click.echo(result.to_json())
        return
    click.echo(f"{result.experiment} (seed {result.seed}{', quick' if result.quick else ''})")
    for r in result.rows:
        paper = "-" if r.paper is None else f"{r.paper:g}"
        click.echo(f"  {r.name:<40} ours {r.ours:>12.4g}  paper {paper:>8}  {r.unit}")
