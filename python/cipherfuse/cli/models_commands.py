"""``cipherfuse models ...`` commands: fetch MNIST, inspect model files, reproduce case studies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from cipherfuse.data.mnist import DEFAULT_MIRRORS, default_cache_dir, download_mnist, load_mnist


@click.group("models")
def models_group() -> None:
    """Datasets, private models and model fusion."""


@models_group.command("fetch-mnist")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Target directory (default: the cache directory).",
)
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--mirror", "mirrors", multiple=True, help="Mirror base URL (repeatable).")
def fetch_mnist(directory: Path | None, split: str, mirrors: tuple[str, ...]) -> None:
    """Download one MNIST split with md5 verification."""
    dest = directory if directory is not None else default_cache_dir()
    download_mnist(dest, split, mirrors=mirrors or DEFAULT_MIRRORS)  # type: ignore[arg-type]
    click.echo(f"MNIST {split} split verified in {dest}")


@models_group.command("inspect")
@click.argument("path", type=click.Path(path_type=Path))
def inspect_model(path: Path) -> None:
    """Validate a model file and print its architecture, labels and scaling factors."""
    from cipherfuse.nn.serialize import load_model

    model, quant = load_model(path)
    info = {
        "config": model.config.to_dict(),
        "labels": list(model.labels),
        "feature_dim": model.config.feature_dim,
        "quantization": None if quant is None else quant.__dict__,
    }
    click.echo(json.dumps(info, indent=2))


@models_group.command("reproduce")
@click.option("--case", "case", type=click.Choice(["1", "3"]), required=True)
@click.option(
    "--mnist-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory with the MNIST IDX files (default: $CIPHERFUSE_MNIST_DIR, cache).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--max-epochs",
    type=click.IntRange(1, 1000),
    default=None,
    help="Epoch cap for the contributors (default: Case I 20, Case III 100).",
)
@click.option(
    "--fusion-train-size",
    type=int,
    default=1000,
    show_default=True,
    help="All-label samples the fusion layer is trained on.",
)
@click.option(
    "--max-shift",
    type=click.IntRange(0, 8),
    default=None,
    help="Contributors' augmentation: random shifts of up to this many pixels per epoch"
    " (default: Case I 0, Case III 2).",
)
@click.option(
    "--fusion-shift-copies",
    type=click.IntRange(0, 20),
    default=4,
    show_default=True,
    help="Fusing party's augmentation: shifted copies of its fusion training samples.",
)
@click.option("--test-size", type=int, default=1000, show_default=True)
@click.option(
    "--fusion-seeds",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Train the contributors once and repeat every fusion with this many seeds;"
    " report mean and std.",
)
@click.option(
    "--random-blocks",
    is_flag=True,
    help="Strategy II with random blocks W_i instead of the private models' output layers.",
)
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
def reproduce(
    case: str,
    mnist_dir: Path | None,
    seed: int,
    max_epochs: int | None,
    fusion_train_size: int,
    max_shift: int | None,
    fusion_shift_copies: int,
    test_size: int,
    fusion_seeds: int,
    random_blocks: bool,
    json_out: Path | None,
) -> None:
    """Reproduce Case Study I (Figure 12) or III (Table VII) on MNIST."""
    from dataclasses import replace

    from cipherfuse.fusion.reproduce import CASE1_TRAIN, CASE3_TRAIN, run_case1, run_case3

    train_config = CASE1_TRAIN if case == "1" else CASE3_TRAIN
    if max_epochs is not None:
        train_config = replace(train_config, max_epochs=max_epochs)
    if max_shift is not None:
        train_config = replace(train_config, max_shift=max_shift)
    data = load_mnist(path=mnist_dir)
    start = time.perf_counter()
    if case == "1":
        result = run_case1(
            data,
            seed=seed,
            train_config=train_config,
            fusion_train_size=fusion_train_size,
            fusion_shift_copies=fusion_shift_copies,
            test_size=test_size,
            fusion_seeds=fusion_seeds,
            random_blocks=random_blocks,
        )
    else:
        result = run_case3(
            data,
            seed=seed,
            train_config=train_config,
            fusion_train_size=fusion_train_size,
            fusion_shift_copies=fusion_shift_copies,
            test_size=test_size,
            fusion_seeds=fusion_seeds,
            random_blocks=random_blocks,
        )
    for line in result.rows():
        click.echo(line)
    click.echo(f"total wall time {time.perf_counter() - start:.1f} s (data source: {data.source})")
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "accuracy": {f"{v}|{k}": a for (v, k), a in result.accuracy.items()},
                    "accuracy_std": {f"{v}|{k}": a for (v, k), a in result.accuracy_std.items()},
                    "runs": {f"{v}|{k}": a for (v, k), a in result.runs.items()},
                    "fusion_seeds": result.fusion_seeds,
                    "train_seconds": result.train_seconds,
                    "fusion_seconds": {
                        f"{v}|{k}": s for (v, k), s in result.fusion_seconds.items()
                    },
                    "contributor_epochs": result.contributor_epochs,
                },
                indent=2,
            )
        )
