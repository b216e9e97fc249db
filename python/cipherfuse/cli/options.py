"""Click option groups shared by several commands.

:func:`experiment_options` declares ``--seed``, ``--quick``, ``--json`` and ``--out`` once
for every ``cipherfuse reproduce <experiment>`` command; each command keeps its own help
texts (what "quick" means differs per experiment).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from click.decorators import FC

from cipherfuse.cli.params import SEED


def experiment_options(
    *,
    quick_help: str,
    json_help: str,
    out_help: str,
    seed_help: str | None = None,
    out_file_okay: bool = False,
) -> Callable[[FC], FC]:
    """Add the options every experiment command takes, in the order shown by ``--help``:

    - ``--seed`` (:data:`~cipherfuse.cli.params.SEED`, default 0) -> parameter ``seed``;
    - ``--quick`` (flag) -> ``quick``: the experiment's short mode, same code paths;
    - ``--json`` (flag) -> ``as_json``: print the JSON result instead of a table;
    - ``--out DIR`` (default none) -> ``out``: also save ``<DIR>/<experiment>.json``
      (see :func:`cipherfuse.cli.experiment_output.emit`).

    ``out_file_okay`` keeps a command whose ``--out`` was declared as a plain path (shown
    as ``PATH`` rather than ``DIRECTORY``) as it was.
    """

    def decorate(fn: FC) -> FC:
        fn = click.option(
            "--out",
            type=click.Path(file_okay=out_file_okay, path_type=Path),
            default=None,
            help=out_help,
        )(fn)
        fn = click.option("--json", "as_json", is_flag=True, help=json_help)(fn)
        fn = click.option("--quick", is_flag=True, help=quick_help)(fn)
        fn = click.option("--seed", type=SEED, default=0, show_default=True, help=seed_help)(fn)
        return fn

    return decorate
