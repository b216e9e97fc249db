"""``cipherfuse reproduce table11``: the command of :mod:`cipherfuse.analysis.table11`."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from cipherfuse.analysis import table11
from cipherfuse.cli.experiment_output import emit
from cipherfuse.data import load_mnist, portable_source


@click.command("table11")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--quick", is_flag=True, help="100 samples, 2 timed rounds (smoke run).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON result.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Write <out>/table11.json."
)
@click.option(
    "--mnist-dir",
    type=click.Path(path_type=Path),
    default=None,
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
