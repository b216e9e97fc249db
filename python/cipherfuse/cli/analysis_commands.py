"""``cipherfuse reproduce pow | case2 | all``: PoW integrity, Case II, and every experiment.

Registered on the ``reproduce`` group in :mod:`cipherfuse.cli.reproduce_commands`
(which this module imports lazily, so either can be imported first).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from cipherfuse.analysis.experiment import ExperimentResult
from cipherfuse.cli.params import SEED


def _common(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Also save <out>/<experiment>.json.",
    )(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print the JSON rows.")(fn)
    fn = click.option("--quick", is_flag=True, help="Fewer trials (same code paths), for CI.")(fn)
    fn = click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")(fn)
    return fn


def _finish(
    result: ExperimentResult,
    started: float,
    as_json: bool,
    out: Path | None,
    trials: int | None,
) -> None:
    from cipherfuse.cli.reproduce_commands import emit

    args = [result.experiment, "--seed", str(result.seed)]
    args += ["--quick"] if result.quick else []
    args += ["--trials", str(trials)] if trials is not None else []
    result.meta["command"] = "cipherfuse reproduce " + " ".join(shlex.quote(a) for a in args)
    result.meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    emit(result, as_json=as_json, out=out)


@click.command("pow")
@click.option(
    "--trials",
    type=click.IntRange(min=100),
    default=None,
    help="Monte Carlo races per m (default 20,000 quick, 200,000 full).",
)
@_common
def pow_command(
    seed: int, quick: bool, as_json: bool, out: Path | None, trials: int | None
) -> None:
    """PoW integrity (Sec. VI-A, Fig. 8): Eq. (16), the exact race, and its simulation."""
    from cipherfuse.analysis.pow import run_pow_experiment

    started = time.perf_counter()
    _finish(
        run_pow_experiment(seed=seed, quick=quick, trials=trials), started, as_json, out, trials
    )


@click.command("case2")
@click.option(
    "--trials",
    type=click.IntRange(1, 900),
    default=None,
    help="Claims per Table IV column (default 30 quick, 300 full).",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "embedded", "anvil"]),
    default="auto",
    show_default=True,
    help="Chain for the trials: embedded py-evm, a fresh anvil on 127.0.0.1, or anvil when "
    "installed (else embedded). The statistics do not depend on it; the run time does.",
)
@_common
def case2_command(
    seed: int, quick: bool, as_json: bool, out: Path | None, trials: int | None, backend: str
) -> None:
    """Case II (Table IV): majority votes, closed form and measured on the contract."""
    from cipherfuse.analysis.case2 import run_case2_experiment

    started = time.perf_counter()
    result = run_case2_experiment(
        seed=seed,
        quick=quick,
        trials=trials,
        backend=backend,  # type: ignore[arg-type]
    )
    _finish(result, started, as_json, out, trials)


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
    from cipherfuse.cli.reproduce_commands import reproduce_group

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
