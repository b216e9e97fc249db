"""``cipherfuse reproduce <experiment>``: one command per experiment of the paper.

Each experiment's command lives in its own module under :mod:`cipherfuse.cli` and is
registered on :data:`reproduce_group` below (one ``reproduce_group.add_command(...)``
line each). Every command takes ``--seed``, ``--quick`` and ``--json`` / ``--out DIR``
(see :func:`cipherfuse.cli.experiment_output.emit`), and prints the documented JSON
shape of :mod:`cipherfuse.analysis.experiment`. ``reproduce all`` runs them all.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from cipherfuse.cli import analysis_commands as _analysis
from cipherfuse.cli import cases_commands as _cases
from cipherfuse.cli.case4_commands import case4_command
from cipherfuse.cli.table11_commands import table11_command


@click.group("reproduce")
def reproduce_group() -> None:
    """Reproduce the paper's experiments (JSON rows: paper vs ours)."""


@click.command("all")
@click.option("--quick", is_flag=True, help="Run every experiment in quick mode.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Directory for the <experiment>.json files.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Directory for index.md and the plots.",
)
def all_command(quick: bool, out: Path, report_dir: Path) -> None:
    """Run every registered experiment in turn, then write the report.

    An experiment that fails is reported and the others still run; the command then
    exits with an error naming the failures (the report covers what succeeded).
    """
    from cipherfuse.analysis.report import load_results, write_report

    failed: list[str] = []
    for name, command in sorted(reproduce_group.commands.items()):
        if name == "all":
            continue
        click.echo(f"== reproduce {name}", err=True)
        args = ["--out", str(out)] + (["--quick"] if quick else [])
        started = time.perf_counter()
        try:
            command.main(args=args, prog_name=f"cipherfuse reproduce {name}", standalone_mode=False)
        except Exception as exc:  # one broken experiment must not hide the others
            failed.append(name)
            click.echo(f"   {name} failed: {type(exc).__name__}: {exc}", err=True)
            continue
        click.echo(f"   {name}: {time.perf_counter() - started:.1f} s", err=True)
    if out.is_dir() and any(out.glob("*.json")):
        written = write_report(load_results(out), report_dir)
        click.echo(f"report: {written[0]}", err=True)
    if failed:
        raise click.ClickException(f"failed experiments: {', '.join(failed)}")


reproduce_group.add_command(table11_command)
reproduce_group.add_command(case4_command)
reproduce_group.add_command(_analysis.pow_command)
reproduce_group.add_command(_analysis.case2_command)
reproduce_group.add_command(_cases.case1)
reproduce_group.add_command(_cases.case3)
reproduce_group.add_command(_cases.case5)
reproduce_group.add_command(all_command)
