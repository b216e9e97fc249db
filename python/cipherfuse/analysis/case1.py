"""Case Study I (Tables II-III, Figs. 11-12): three Table II CNNs, Strategies I and II.

Three contributors with Table II CNNs on the Table III label subsets, trained until
90 % local verification accuracy (or the epoch cap); fused 1, 2, 3 at a time with
Strategies I and II (:func:`run_case1`). As experiment rows
(:func:`reproduce_case1`): each private model's accuracy on its local verification
data (paper: all > 90 %), and the MetaModel's test accuracy as 1, 2, 3 models are
fused. Accuracies are in percent; the fusions are repeated with several fusion seeds
(:mod:`cipherfuse.analysis.fusion_cases`). ``quick`` runs the same code paths with
few epochs.
"""

from __future__ import annotations

from cipherfuse.analysis.experiment import ExperimentResult, models_name, percent
from cipherfuse.analysis.fusion_cases import (
    FUSION,
    FUSION_AUGMENT,
    CaseResult,
    add_fusion_rows,
    fuse_prefixes,
    reproduce_mnist_case,
    train_case,
)
from cipherfuse.data.mnist import Dataset
from cipherfuse.data.partition import TABLE_III_LABELS
from cipherfuse.fusion.augment import FusionAugment
from cipherfuse.fusion.features import PlainFeatures
from cipherfuse.fusion.head import FusionConfig
from cipherfuse.nn.config import table2_config
from cipherfuse.nn.train import TrainConfig

#: Case I contributors: the paper's criterion (90 % local verification accuracy), cap 20 epochs.
CASE1_TRAIN = TrainConfig(max_epochs=20)
#: Fig. 11 (Case I): every contributor's local verification accuracy is above this.
PAPER_CASE1_CRITERION = 90.0


def run_case1(
    data: Dataset,
    *,
    seed: int = 0,
    train_config: TrainConfig | None = None,
    fusion_config: FusionConfig | None = None,
    fusion_train_size: int = 1000,
    test_size: int = 1000,
    fusion_augment: FusionAugment = FUSION_AUGMENT,
    fusion_seeds: int = 1,
    random_blocks: bool = False,
) -> CaseResult:
    """Case Study I: Table II models on Table III data; Strategies I and II.

    ``fusion_augment``: the fusing party adds augmented copies of its fusion
    training samples (:class:`FusionAugment`). ``fusion_seeds``:
    repeat every fusion with this many seeds (contributors trained once).
    ``random_blocks``: Strategy II with random blocks ``W_i`` instead of the
    private models' output layers (for comparison; see docs/models.md).
    """
    split, result, models = train_case(
        data,
        TABLE_III_LABELS,
        [table2_config(i) for i in (1, 2, 3)],
        train_config if train_config is not None else CASE1_TRAIN,
        seed=seed,
        fusion_train_size=fusion_train_size,
        test_size=test_size,
        fusion_seeds=fusion_seeds,
    )
    fcfg = fusion_config if fusion_config is not None else FUSION
    extractors = [PlainFeatures(m) for m in models]
    for strategy in ("I", "II"):
        fuse_prefixes(
            extractors,
            split,
            strategy,
            fcfg,
            seed,
            f"strategy {strategy}",
            result,
            fusion_augment,
            random_blocks,
        )
    return result


def reproduce_case1(
    data: Dataset, *, seed: int = 0, quick: bool = False, fusion_seeds: int | None = None
) -> ExperimentResult:
    """Case Study I (Figs. 11-12) as experiment rows.

    ``fusion_seeds`` defaults to :data:`~cipherfuse.analysis.fusion_cases.FULL_FUSION_SEEDS`
    (``quick``: 1).
    """
    # Table II CNNs are the slow ones: 1 quick epoch.
    out, case = reproduce_mnist_case(
        "case1",
        run_case1,
        data,
        CASE1_TRAIN,
        1,
        seed=seed,
        quick=quick,
        fusion_seeds=fusion_seeds,
        contributor_paper=PAPER_CASE1_CRITERION,
    )
    for strategy in ("I", "II"):
        add_fusion_rows(out, case, f"strategy {strategy}", f"strategy {strategy}", (None,) * 3)
    for k in (2, 3):
        gap = case.accuracy[("strategy II", k)] - case.accuracy[("strategy I", k)]
        out.add(
            f"strategy II minus strategy I, models {models_name(k)}",
            percent(gap),
            "points",
            better="higher",
        )
    out.add("contributor training time", round(case.train_seconds, 1), "s")
    out.add(
        "contributor training + 3-model strategy II fusion time",
        round(case.train_seconds + case.fusion_seconds[("strategy II", 3)], 1),
        "s",
        better="lower",
    )
    return out
