"""``cipherfuse reproduce case1|case3|case5``: the paper's Case Studies I, III and V."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cipherfuse.cli.experiment_output import emit
from cipherfuse.cli.options import experiment_options, mnist_dir_option

_common = experiment_options(
    quick_help="Few epochs, same code paths.",
    json_help="Print the JSON result.",
    out_help="Also write <DIR>/<experiment>.json.",
)


def _mnist_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--fusion-seeds",
        type=click.IntRange(1, 100),
        default=None,
        help="Repeat every fusion with this many seeds (contributors trained once); rows"
        " report the mean and std. Default 5 (--quick: 1).",
    )(f)
    f = mnist_dir_option()(f)
    return f


def _run_mnist_case(
    reproduce: Callable[..., Any],
    seed: int,
    quick: bool,
    as_json: bool,
    out: Path | None,
    mnist_dir: Path | None,
    fusion_seeds: int | None,
) -> None:
    """Load MNIST, run a Case I/III reproduction and emit its rows."""
    from cipherfuse.data.mnist import load_mnist

    result = reproduce(
        load_mnist(path=mnist_dir), seed=seed, quick=quick, fusion_seeds=fusion_seeds
    )
    emit(result, as_json=as_json, out=out)


@click.command("case1")
@_common
@_mnist_options
def case1(
    seed: int,
    quick: bool,
    as_json: bool,
    out: Path | None,
    mnist_dir: Path | None,
    fusion_seeds: int | None,
) -> None:
    """Case Study I (Figs. 11-12): local accuracies, MetaModel with Strategies I and II."""
    from cipherfuse.analysis.case1 import reproduce_case1

    _run_mnist_case(reproduce_case1, seed, quick, as_json, out, mnist_dir, fusion_seeds)


@click.command("case3")
@_common
@_mnist_options
def case3(
    seed: int,
    quick: bool,
    as_json: bool,
    out: Path | None,
    mnist_dir: Path | None,
    fusion_seeds: int | None,
) -> None:
    """Case Study III (Table VII): MetaModel plain vs first layer at p = 2^7 and 2^5."""
    from cipherfuse.analysis.case3 import reproduce_case3

    _run_mnist_case(reproduce_case3, seed, quick, as_json, out, mnist_dir, fusion_seeds)


@click.command("case5")
@_common
def case5(seed: int, quick: bool, as_json: bool, out: Path | None) -> None:
    """Case Study V (Tables IX-X) on synthetic fading-channel data."""
    from cipherfuse.analysis.case5 import reproduce_case5

    emit(reproduce_case5(seed=seed, quick=quick), as_json=as_json, out=out)
