"""``cipherfuse reproduce <experiment>``: one command per experiment of the paper.

Each experiment module registers one click command on :data:`reproduce_group`
(one ``reproduce_group.add_command(...)`` line below). Every command takes
``--seed``, ``--quick`` and ``--json`` / ``--out DIR`` (see :func:`emit`), and
prints the documented JSON shape of :mod:`cipherfuse.analysis.experiment`.
"""

from __future__ import annotations

from pathlib import Path

import click

from cipherfuse.analysis.experiment import ExperimentResult


@click.group("reproduce")
def reproduce_group() -> None:
    """Reproduce the paper's experiments (JSON rows: paper vs ours)."""


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


from cipherfuse.analysis.table11 import table11_command  # noqa: E402
from cipherfuse.cli import analysis_commands as _analysis  # noqa: E402
from cipherfuse.cli import cases_commands as _cases  # noqa: E402
from cipherfuse.cli.case4_commands import case4_command  # noqa: E402

reproduce_group.add_command(table11_command)
reproduce_group.add_command(case4_command)
reproduce_group.add_command(_analysis.pow_command)
reproduce_group.add_command(_analysis.case2_command)
reproduce_group.add_command(_cases.case1)
reproduce_group.add_command(_cases.case3)
reproduce_group.add_command(_cases.case5)
reproduce_group.add_command(_analysis.all_command)
