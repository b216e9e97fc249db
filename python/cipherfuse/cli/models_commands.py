"""``cipherfuse models ...`` commands: fetch MNIST, inspect model files, reproduce case studies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from cipherfuse.cli.options import max_epochs_option, mnist_dir_option
from cipherfuse.cli.params import SEED
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
@mnist_dir_option(file_okay=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@max_epochs_option(
    most=1000, help="Epoch cap for the contributors (default: Case I 20, Case III 100)."
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
    "--max-rotation",
    type=click.FloatRange(0, 45),
    default=None,
    help="Contributors' augmentation: random rotations of up to this many degrees per epoch"
    " (default: Case I 0, Case III 10).",
)
@click.option(
    "--max-scale",
    type=click.FloatRange(0, 0.5),
    default=None,
    help="Contributors' augmentation: random scaling by 1 +- this per epoch"
    " (default: Case I 0, Case III 0.1).",
)
@click.option(
    "--fusion-copies",
    "--fusion-shift-copies",
    "fusion_copies",
    type=click.IntRange(0, 50),
    default=None,
    help="Fusing party's augmentation: augmented copies of its fusion training samples"
    " (default 12).",
)
@click.option(
    "--fusion-max-rotation",
    type=click.FloatRange(0, 45),
    default=None,
    help="Rotation of the fusion copies, up to this many degrees (default 10; 0 with"
    " --fusion-max-scale 0 gives pure shifts).",
)
@click.option(
    "--fusion-max-scale",
    type=click.FloatRange(0, 0.5),
    default=None,
    help="Scaling of the fusion copies by 1 +- this (default 0.1).",
)
@click.option(
    "--fusion-final-lr-fraction",
    type=click.FloatRange(0, 1),
    default=None,
    help="Cosine decay of the last fusion stage's step size to this fraction of it"
    " (default 0.1; 1 keeps it constant).",
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
@click.option(
    "--json-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the accuracies and timings to this JSON file.",
)
def reproduce(
    case: str,
    mnist_dir: Path | None,
    seed: int,
    max_epochs: int | None,
    fusion_train_size: int,
    max_shift: int | None,
    max_rotation: float | None,
    max_scale: float | None,
    fusion_copies: int | None,
    fusion_max_rotation: float | None,
    fusion_max_scale: float | None,
    fusion_final_lr_fraction: float | None,
    test_size: int,
    fusion_seeds: int,
    random_blocks: bool,
    json_out: Path | None,
) -> None:
    """Case Study I or III with every training and fusion setting exposed.

    The same runs as `cipherfuse reproduce case1` / `case3` (which use the documented
    defaults and write the standard result JSON); this command is for tuning them.
    """
    from dataclasses import replace

    from cipherfuse.analysis.case1 import CASE1_TRAIN, run_case1
    from cipherfuse.analysis.case3 import CASE3_TRAIN, run_case3
    from cipherfuse.analysis.fusion_cases import FUSION, FUSION_AUGMENT

    train_config = CASE1_TRAIN if case == "1" else CASE3_TRAIN
    if max_epochs is not None:
        train_config = replace(train_config, max_epochs=max_epochs)
    if max_shift is not None:
        train_config = replace(train_config, max_shift=max_shift)
    if max_rotation is not None:
        train_config = replace(train_config, max_rotation=max_rotation)
    if max_scale is not None:
        train_config = replace(train_config, max_scale=max_scale)
    augment = FUSION_AUGMENT
    if fusion_copies is not None:
        augment = replace(augment, copies=fusion_copies)
    if fusion_max_rotation is not None:
        augment = replace(augment, max_rotation=fusion_max_rotation)
    if fusion_max_scale is not None:
        augment = replace(augment, max_scale=fusion_max_scale)
    fusion_config = FUSION
    if fusion_final_lr_fraction is not None:
        fusion_config = replace(fusion_config, final_lr_fraction=fusion_final_lr_fraction)
    data = load_mnist(path=mnist_dir)
    start = time.perf_counter()
    if case == "1":
        result = run_case1(
            data,
            seed=seed,
            train_config=train_config,
            fusion_train_size=fusion_train_size,
            fusion_augment=augment,
            fusion_config=fusion_config,
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
            fusion_augment=augment,
            fusion_config=fusion_config,
            test_size=test_size,
            fusion_seeds=fusion_seeds,
            random_blocks=random_blocks,
        )
    for line in result.rows():
        click.echo(line)
    click.echo(f"total wall time {time.perf_counter() - start:.1f} s (data source: {data.source})")
    if json_out is not None:
        from cipherfuse.files import atomic_write_bytes

        atomic_write_bytes(
            json_out,
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
                    "contributor_verify_accuracy": result.contributor_verify_accuracy,
                },
                indent=2,
            ).encode(),
            mode=0o644,
        )
