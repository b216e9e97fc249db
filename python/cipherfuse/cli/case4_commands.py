"""``cipherfuse reproduce case4``: this paradigm vs Flower FedAvg (paper Figs. 13-14)."""

from __future__ import annotations

from pathlib import Path

import click

from cipherfuse.analysis.case4 import SCENARIOS, run_case4
from cipherfuse.cli.experiment_output import emit
from cipherfuse.cli.options import experiment_options, mnist_dir_option
from cipherfuse.data.mnist import load_mnist


@click.command("case4")
@experiment_options(
    quick_help="A few rounds and epochs (same code paths), for CI.",
    json_help="Print the result as JSON.",
    out_help="Also write <out>/case4.json.",
)
@click.option(
    "--emulate/--no-emulate",
    default=None,
    help="Measure the transfers over emulated links (ip netns + tc; root only). "
    "Default: when possible.",
)
@click.option(
    "--scenario",
    "scenarios",
    type=click.Choice(SCENARIOS),
    multiple=True,
    help="Run only these data splits (repeatable; default: all).",
)
@mnist_dir_option()
def case4_command(
    seed: int,
    quick: bool,
    as_json: bool,
    out: Path | None,
    emulate: bool | None,
    scenarios: tuple[str, ...],
    mnist_dir: Path | None,
) -> None:
    """Case IV: one-shot fusion vs federated averaging (Flower): accuracy, rounds, bytes, time."""
    data = load_mnist(path=mnist_dir)

    def progress(scenario: str, rnd: int, acc: float) -> None:
        if rnd > 0:
            click.echo(f"{scenario}: FedAvg round {rnd}: test accuracy {acc * 100:.2f} %", err=True)

    result = run_case4(
        data,
        seed=seed,
        quick=quick,
        scenarios=scenarios or SCENARIOS,
        emulate_links=emulate,
        on_round=progress,
    )
    emit(result, as_json=as_json, out=out)
