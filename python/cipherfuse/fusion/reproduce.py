"""Reproductions of the paper's Case Studies I and III (used by bench/ and the CLI).

Case I (Tables II-III, Fig. 12): three contributors with Table II CNNs on the
Table III label subsets, trained until 90 % local verification accuracy (or
the epoch cap); fused 1, 2, 3 at a time with Strategies I and II.

Case III (Tables V-VII): three Table VI CNNs on the Table V label subsets;
fused with Strategy II on plaintext features and on features whose first
convolution block is quantized with ``p = 2^7`` and ``p = 2^5`` (``q = 1000``).

Both train the contributors once; with ``fusion_seeds = N`` every fusion is
repeated with ``N`` fusion seeds (initialization, shuffling and the fusing
party's shift augmentation), and :class:`CaseResult` reports the mean and the
standard deviation over them. Fusion seed ``0`` is the single-run default.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import numpy as np
import numpy.typing as npt

from cipherfuse.data.mnist import Dataset
from cipherfuse.data.partition import (
    TABLE_III_LABELS,
    TABLE_V_LABELS,
    CaseSplit,
    Subset,
    split_by_labels,
)
from cipherfuse.fusion.errors import FusionError
from cipherfuse.fusion.features import FeatureExtractor, PlainFeatures, quantized_features
from cipherfuse.fusion.head import FusionConfig, Strategy, train_fusion_head
from cipherfuse.nn.augment import augment_images, augment_range_problem
from cipherfuse.nn.config import ModelConfig, table2_config, table6_config
from cipherfuse.nn.model import TrainedModel
from cipherfuse.nn.quantize import quantize_model
from cipherfuse.nn.train import TrainConfig, TrainResult, train_classifier
from cipherfuse.validation import strict_int

#: Case I contributors: the paper's criterion (90 % local verification accuracy), cap 20 epochs.
CASE1_TRAIN = TrainConfig(max_epochs=20)
#: Case III contributors: Table VI's cap of 100 epochs, each epoch on their 1,000
#: samples randomly shifted (up to 2 pixels), rotated (up to 10 degrees) and scaled
#: (by up to 10 %). See docs/models.md: at Adam 1e-4 the local verification accuracy
#: was still rising at epoch 60 and levels off towards 100; rotation and scaling
#: raised it by 0.35 points on the mean of 4 data seeds x 3 contributors.
CASE3_TRAIN = TrainConfig(
    max_epochs=100, target_accuracy=None, max_shift=2, max_rotation=10.0, max_scale=0.1
)
#: Fusion of the reproductions. Chosen by 5-fold cross-validation on the fusing
#: party's 1,000 samples of Cases I and III (never the test set; docs/models.md), by
#: the mean over the six cells (1, 2, 3 models in each case): with Strategy II's
#: blocks from the private output layers, 3 epochs at 1e-3 with gamma = 0, then 27
#: epochs of everything at 1e-3 (a gentler 3e-4 stage two, the choice for random
#: blocks, now scores 1 point lower); Strategy I trains the same 30 epochs at 1e-3.
#: The last stage's step size decays along a cosine to a tenth (session 8: the same
#: CV with ``FUSION_AUGMENT``, six-cell mean 95.51 % against 95.33 % for constant
#: steps and 95.45 % for a decay to zero; the spread over fusion seeds shrank).
FUSION = FusionConfig(stage1_epochs=3, stage2_epochs=27, final_lr_fraction=0.1)


@dataclass(frozen=True)
class FusionAugment:
    """The fusing party's augmentation: its own samples plus ``copies`` warped copies.

    Each copy is every sample shifted by up to ``max_shift`` whole pixels per axis,
    rotated by up to ``max_rotation`` degrees and scaled by ``1 ± max_scale`` (all
    uniform, :func:`cipherfuse.nn.augment.random_affine`); with no rotation and no
    scaling the copies are pure shifts (:func:`cipherfuse.nn.augment.shift_images`).
    No new data: only the fusing party's samples, transformed.
    """

    copies: int = 0
    max_shift: int = 2
    max_rotation: float = 0.0
    max_scale: float = 0.0

    def validate(self) -> None:
        """Raise :class:`FusionError` naming the first bad field."""
        strict_int(self.copies, "fusion copies", minimum=0, error=FusionError)
        problem = augment_range_problem(self.max_shift, self.max_rotation, self.max_scale)
        if problem is not None:
            raise FusionError(f"fusion {problem}")

    def apply(
        self, data: Subset, seed: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """``data`` followed by its ``copies`` augmented copies, and the matching labels."""
        self.validate()
        rng = np.random.default_rng(seed)
        images = [data.images] + [
            augment_images(rng, data.images, self.max_shift, self.max_rotation, self.max_scale)
            for _ in range(self.copies)
        ]
        return np.concatenate(images), np.tile(data.labels, self.copies + 1)


#: The fusing party's augmentation in Cases I and III: 12 copies, each shifted by up
#: to 2 pixels, rotated by up to 10 degrees and scaled by up to 10 %, so 13 x 1,000
#: inputs per epoch. Chosen with ``FUSION``'s cross-validation protocol (session 7:
#: mean of the six cells 95.28 % against 94.62 % for the previous 4 shifted copies).
FUSION_AUGMENT = FusionAugment(copies=12, max_rotation=10.0, max_scale=0.1)
#: Offset between the base seeds of successive fusion seeds (fusion seed ``s`` uses
#: ``seed + FUSION_SEED_STRIDE * s``; ``s = 0`` is the single-run seed).
FUSION_SEED_STRIDE = 1000


@dataclass
class CaseResult:
    """Accuracies and fusion times keyed by ``(variant, number of fused models)``.

    ``runs`` holds one test accuracy per fusion seed; ``accuracy`` is their mean
    and ``accuracy_std`` their sample standard deviation (0 for a single seed).
    ``train_seconds`` is the wall time of training the contributors (data already
    loaded, JIT compilation included); ``fusion_seconds`` is the mean fusion time.
    """

    runs: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    fusion_seconds: dict[tuple[str, int], float] = field(default_factory=dict)
    contributor_epochs: list[int] = field(default_factory=list)
    contributor_verify_accuracy: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    fusion_seeds: int = 1

    @property
    def accuracy(self) -> dict[tuple[str, int], float]:
        """Mean test accuracy over the fusion seeds."""
        return {k: statistics.fmean(v) for k, v in self.runs.items()}

    @property
    def accuracy_std(self) -> dict[tuple[str, int], float]:
        """Sample standard deviation of the test accuracy over the fusion seeds."""
        return {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in self.runs.items()}

    def rows(self) -> list[str]:
        """Human-readable lines: one per variant, accuracies for 1..n fused models."""
        lines = [
            f"contributors: epochs {self.contributor_epochs}, local verification accuracy "
            + ", ".join(f"{a:.3f}" for a in self.contributor_verify_accuracy)
            + f", training {self.train_seconds:.1f} s"
        ]
        if self.fusion_seeds > 1:
            lines.append(f"fused accuracy: mean +- std over {self.fusion_seeds} fusion seeds")
        mean, std = self.accuracy, self.accuracy_std
        variants = sorted({v for v, _ in self.runs})
        for v in variants:
            ks = sorted(k for vv, k in self.runs if vv == v)
            if self.fusion_seeds > 1:
                accs = [f"{mean[(v, k)] * 100:.1f} +- {std[(v, k)] * 100:.1f}" for k in ks]
            else:
                accs = [f"{mean[(v, k)] * 100:.1f}" for k in ks]
            lines.append(f"{v:>12}: " + " / ".join(accs) + " %")
        return lines


def train_contributors(
    split: CaseSplit,
    configs: Sequence[ModelConfig],
    train_config: TrainConfig,
    seed: int,
) -> list[TrainResult]:
    """Train one model per contributor on its own data (keys derived from ``seed``)."""
    keys = jax.random.split(jax.random.key(seed), len(configs))
    results = []
    for i, (c, config) in enumerate(zip(split.contributors, configs, strict=True)):
        results.append(
            train_classifier(
                config,
                c.train.images,
                c.train.labels,
                c.verify.images,
                c.verify.labels,
                keys[i],
                train_config,
                labels=c.label_set,
                desc=f"contributor {i + 1}",
            )
        )
    return results


def _fuse_prefixes(
    extractors: Sequence[FeatureExtractor],
    split: CaseSplit,
    strategy: Strategy,
    fusion_config: FusionConfig,
    seed: int,
    variant: str,
    result: CaseResult,
    fusion_augment: FusionAugment,
    random_blocks: bool = False,
) -> None:
    """Fuse the first 1..n extractors once per fusion seed; append to ``result.runs``.

    Strategy II's blocks ``W_i`` start from the models' output layers, or are
    random with ``random_blocks``.
    """
    test_feats = [e(split.test.images) for e in extractors]
    blocks = None if random_blocks else [e.output_weights() for e in extractors]
    seconds: dict[int, list[float]] = {}
    for s in range(result.fusion_seeds):
        base = seed + FUSION_SEED_STRIDE * s
        fusion_x, fusion_y = fusion_augment.apply(split.fusion_train, base + 1)
        train_feats = [e(fusion_x) for e in extractors]
        for k in range(1, len(extractors) + 1):
            head = train_fusion_head(
                train_feats[:k],
                fusion_y,
                [e.labels for e in extractors[:k]],
                strategy,
                jax.random.key(base + k),
                fusion_config,
                block_weights=None if blocks is None else blocks[:k],
            )
            pred = head.predict_from_features(test_feats[:k])
            acc = float((pred == split.test.labels).mean())
            result.runs.setdefault((variant, k), []).append(acc)
            seconds.setdefault(k, []).append(head.seconds)
    for k, times in seconds.items():
        result.fusion_seconds[(variant, k)] = statistics.fmean(times)


def _check_fusion_seeds(fusion_seeds: int) -> None:
    strict_int(fusion_seeds, "fusion_seeds", minimum=1, error=FusionError)


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
    _check_fusion_seeds(fusion_seeds)
    split = split_by_labels(
        data,
        TABLE_III_LABELS,
        seed=seed,
        fusion_train_size=fusion_train_size,
        test_size=test_size,
    )
    tcfg = train_config if train_config is not None else CASE1_TRAIN
    fcfg = fusion_config if fusion_config is not None else FUSION
    result = CaseResult(fusion_seeds=fusion_seeds)
    start = time.perf_counter()
    trained = train_contributors(split, [table2_config(i) for i in (1, 2, 3)], tcfg, seed)
    result.train_seconds = time.perf_counter() - start
    models = [r.model for r in trained]
    extractors = [PlainFeatures(m) for m in models]
    for strategy in ("I", "II"):
        _fuse_prefixes(
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
    result.contributor_epochs = [r.epochs for r in trained]
    result.contributor_verify_accuracy = [r.verify_accuracy[-1] for r in trained]
    return result


def run_case3(
    data: Dataset,
    *,
    seed: int = 0,
    train_config: TrainConfig | None = None,
    fusion_config: FusionConfig | None = None,
    weight_scales: Sequence[int] = (2**7, 2**5),
    input_scale: int = 1000,
    fusion_train_size: int = 1000,
    test_size: int = 1000,
    fusion_augment: FusionAugment = FUSION_AUGMENT,
    fusion_seeds: int = 1,
    random_blocks: bool = False,
) -> CaseResult:
    """Case Study III: Table VI models on Table V data; plain and quantized first layer.

    ``fusion_augment``, ``fusion_seeds`` and ``random_blocks`` as in :func:`run_case1`.
    """
    _check_fusion_seeds(fusion_seeds)
    split = split_by_labels(
        data,
        TABLE_V_LABELS,
        seed=seed,
        fusion_train_size=fusion_train_size,
        test_size=test_size,
    )
    tcfg = train_config if train_config is not None else CASE3_TRAIN
    fcfg = fusion_config if fusion_config is not None else FUSION
    result = CaseResult(fusion_seeds=fusion_seeds)
    start = time.perf_counter()
    trained = train_contributors(split, [table6_config()] * 3, tcfg, seed)
    result.train_seconds = time.perf_counter() - start
    models: list[TrainedModel] = [r.model for r in trained]
    result.contributor_epochs = [r.epochs for r in trained]
    result.contributor_verify_accuracy = [r.verify_accuracy[-1] for r in trained]
    plain: list[FeatureExtractor] = [PlainFeatures(m) for m in models]
    augment = fusion_augment
    _fuse_prefixes(plain, split, "II", fcfg, seed, "plain", result, augment, random_blocks)
    _fuse_prefixes(plain, split, "I", fcfg, seed, "plain (I)", result, augment)
    for p in weight_scales:
        quantized: list[FeatureExtractor] = [
            quantized_features(m, quantize_model(m, weight_scale=p, input_scale=input_scale))
            for m in models
        ]
        _fuse_prefixes(quantized, split, "II", fcfg, seed, f"p={p}", result, augment, random_blocks)
    return result
