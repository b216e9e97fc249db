"""``cipherfuse reproduce pow | case2``: PoW integrity and Case II.

Registered on the ``reproduce`` group in :mod:`cipherfuse.cli.reproduce_commands`.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from cipherfuse.analysis.experiment import ExperimentResult
from cipherfuse.cli.experiment_output import emit
from cipherfuse.cli.options import experiment_options

_common = experiment_options(
    quick_help="Fewer trials (same code paths), for CI.",
    json_help="Print the JSON rows.",
    out_help="Also save <out>/<experiment>.json.",
    seed_help="Random seed.",
)


def _finish(
    result: ExperimentResult,
    started: float,
    as_json: bool,
    out: Path | None,
    trials: int | None,
) -> None:
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
