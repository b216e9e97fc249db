"""The small Python API behind ``cipherfuse demo`` (re-exported as ``cipherfuse.run_demo``)."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from cipherfuse.roles.demo import DemoConfig
from cipherfuse.roles.demo import run_demo as _run_demo
from cipherfuse.roles.demo_summary import DemoResult


def run_demo(
    *,
    quick: bool = False,
    seed: int = 0,
    behaviours: Sequence[str] | None = None,
    vote_probability: float = 1.0,
    max_epochs: int | None = None,
    mnist_dir: str | Path | None = None,
    workdir: str | Path | None = None,
    fresh: bool = False,
    metamodel_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the whole paradigm in this process (what ``cipherfuse demo`` does).

    One initiator, three computing contributors on the paper's Case I label subsets,
    three verifiers, an embedded chain and a local store, MNIST's test set shipped with
    the package (no network). The paper's parameters are used: INSECURE, for
    reproduction only.

    Args:
        quick: smaller data and fewer epochs.
        seed: data split and training seed (0..2**32-1).
        behaviours: Case II behaviours of contributors 1-3 (``honest``, ``lazy``,
            ``dishonest``, ``never-release``); default all honest.
        vote_probability: chance that a verifier's vote follows its judgement.
        max_epochs: cap on each contributor's training epochs.
        mnist_dir: a folder with the MNIST IDX files (default: the shipped test set).
        workdir: where store and state go (default: a temporary folder,
            removed afterwards). A folder used by an earlier run is refused unless
            ``fresh``.
        fresh: clear an earlier run's state in ``workdir``.
        metamodel_path: write the final MetaModel there (load it with
            :func:`cipherfuse.fusion.serialize.load_metamodel`).
        log: called with each progress line (default: silent).

    Returns:
        A :class:`~cipherfuse.roles.demo_summary.DemoResult` (``final_accuracy``,
        ``accepted_models``, ``report``, ``summary()``).

    Raises:
        cipherfuse.CipherfuseError: a bad setting, a used work folder, unreadable data.
    """
    overrides: dict[str, object] = {"seed": seed, "vote_probability": vote_probability}
    if mnist_dir is not None:
        overrides["mnist_dir"] = Path(mnist_dir)
    if behaviours is not None:
        overrides["behaviours"] = tuple(behaviours)
    if max_epochs is not None:
        overrides["max_epochs"] = max_epochs
    cfg = DemoConfig.quick() if quick else DemoConfig()
    cfg = dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]
    sink = log if log is not None else (lambda _line: None)
    model_path = Path(metamodel_path) if metamodel_path is not None else None
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="cipherfuse-demo-") as tmp:
            report = _run_demo(cfg, Path(tmp), sink, metamodel_path=model_path)
    else:
        report = _run_demo(cfg, Path(workdir), sink, fresh=fresh, metamodel_path=model_path)
    written = report.get("metamodel_file")
    return DemoResult(report=report, metamodel_path=Path(written) if written else None)
