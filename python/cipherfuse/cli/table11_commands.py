"""``cipherfuse reproduce table11``: the command of :mod:`cipherfuse.analysis.table11`."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from cipherfuse.analysis import table11
from cipherfuse.cli.experiment_output import emit
from cipherfuse.cli.options import experiment_options, mnist_dir_option
from cipherfuse.data import load_mnist, portable_source


@click.command("table11")
@experiment_options(
    quick_help="100 samples, 2 timed rounds (smoke run).",
    json_help="Print the JSON result.",
    out_help="Write <out>/table11.json.",
    out_file_okay=True,
)
@mnist_dir_option(
    file_okay=True,
    help="Directory with the MNIST IDX files (default: $CIPHERFUSE_MNIST_DIR, cache).",
)
def table11_command(
    seed: int, quick: bool, as_json: bool, out: Path | None, mnist_dir: Path | None
) -> None:
    """Table XI: encryption overhead and inference with/without the encryption interface."""
    data = load_mnist("test", path=mnist_dir)
    n = 100 if quick else 1000
    images = np.ascontiguousarray(data.images[:n], dtype=np.float32)
    start = time.perf_counter()
    result = table11.run_table11(images, seed=seed, repeats=2 if quick else 9)
    result.quick = quick
    result.meta["wall_s"] = round(time.perf_counter() - start, 2)
    result.meta["data"] = portable_source(data.source)
    emit(result, as_json=as_json, out=out)
