"""Case Studies I, III and V as :class:`ExperimentResult` rows (paper value vs ours).

* Case I (Tables II-III, Figs. 11-12): each private model's accuracy on its local
  verification data (paper: all > 90 %), and the MetaModel's test accuracy as
  1, 2, 3 models are fused with Strategies I and II.
* Case III (Tables V-VII): MetaModel accuracy with 1, 2, 3 models, plain and with
  the first block quantized at ``p = 2^7`` and ``2^5`` (``q = 1000``).
* Case V (Tables IX-X): three Case V CNNs on the synthetic fading-channel sets
  (:mod:`cipherfuse.data.fading`; the paper's NASA data are confidential), each
  contributor's accuracy on its local test data and the MetaModel's accuracy on
  the verifiers' set: plain, with the first block quantized (p = 2^7, q = 1000),
  and with the first layer encrypted (:mod:`cipherfuse.he.nn`, the paper's
  parameters, element-wise and matrix-pair-wise) and evaluated in cipherspace
  by the verifiers without any secret key.

Accuracies are in percent. The Case I/III fusions are repeated with several
fusion seeds (contributors trained once); rows report the mean and, separately,
the standard deviation. ``quick`` runs the same code paths with few epochs.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import jax
import numpy as np
import numpy.typing as npt

from cipherfuse import he
from cipherfuse.analysis.experiment import ExperimentError, ExperimentResult
from cipherfuse.data.fading import FadingSet, make_fading_sets
from cipherfuse.data.mnist import Dataset, portable_source
from cipherfuse.fusion.features import FeatureExtractor, PlainFeatures, quantized_features
from cipherfuse.fusion.head import FusionConfig, train_fusion_head
from cipherfuse.fusion.reproduce import (
    CASE1_TRAIN,
    CASE3_TRAIN,
    FUSION,
    FUSION_AUGMENT,
    CaseResult,
    FusionAugment,
    run_case1,
    run_case3,
)
from cipherfuse.he.nn import (
    EncryptedModel,
    EncryptionStrategy,
    cipherspace_features,
    encrypt_model,
)
from cipherfuse.nn.config import ConvSpec, case5_config
from cipherfuse.nn.model import TrainedModel
from cipherfuse.nn.quantize import quantize_model
from cipherfuse.nn.train import TrainConfig, train_classifier
from cipherfuse.validation import strict_int

#: Table VII (Case III), MetaModel accuracy in % for models {1}, {1,2}, {1,2,3}.
PAPER_TABLE7: dict[str, tuple[float, float, float]] = {
    "plain": (91.5, 94.8, 95.8),
    "p=128": (91.5, 94.7, 95.8),
    "p=32": (89.6, 93.0, 93.8),
}
#: Fig. 11 (Case I): every contributor's local verification accuracy is above this.
PAPER_CASE1_CRITERION = 90.0
#: Table IX (Case V), per-contributor detection accuracy in %.
PAPER_TABLE9: dict[str, tuple[float, float, float]] = {
    "without encryption": (93.0, 93.1, 93.2),
    "element-wise encryption": (91.6, 92.4, 92.3),
    "matrix-pair-wise encryption": (91.7, 92.0, 92.1),
}
#: Table X (Case V), MetaModel detection accuracy in % for models {1,2}, {1,2,3}.
PAPER_TABLE10: dict[str, tuple[float, float]] = {
    "element-wise encryption": (94.5, 95.5),
    "matrix-pair-wise encryption": (94.5, 95.0),
}
#: Default number of fusion seeds of the full Case I/III runs.
FULL_FUSION_SEEDS = 5
#: Case I/III ``--quick``: 1 (Case III: 2) contributor epochs at Adam 1e-3 (instead of the
#: paper's 1e-4), 2 + 3 fusion epochs, 500 fusion and 500 test samples, one seed.
QUICK_TRAIN: dict[str, Any] = {"learning_rate": 1e-3}
#: ``--quick`` fusion training and test samples (full runs: 1,000 each).
QUICK_SAMPLES = 500
QUICK_FUSION = FusionConfig(stage1_epochs=2, stage2_epochs=3, stage2_learning_rate=3e-4)
#: Case V contributors: Adam 1e-3 (the paper gives no Case V hyper-parameters), 12 epochs.
CASE5_TRAIN = TrainConfig(learning_rate=1e-3, max_epochs=12, target_accuracy=None)
#: Case V fusion (Strategy II, as in the paper) on the verifiers' 10,000 windows.
CASE5_FUSION = FusionConfig(stage1_epochs=3, stage2_epochs=6, stage2_learning_rate=3e-4)
#: Case V model input: the generator's centred dB/10 values ``x`` split into two
#: channels, ``max(x, 0)`` and ``max(-x, 0)``. The paper's ReLU on ciphertext
#: components is exact only for non-negative inputs (docs/he-nn.md); the split keeps
#: all the information (a convolution on ``x`` is one on the two parts with ``W, -W``).
CASE5_CHANNELS = 2
#: The two encryption strategies of Tables IX-X.
ENCRYPTION_STRATEGIES: tuple[EncryptionStrategy, ...] = ("element-wise", "matrix-pair-wise")
#: Case V scaling factors of the quantized / encrypted first layer.
CASE5_WEIGHT_SCALE = 2**7
CASE5_INPUT_SCALE = 1000


def _models_name(k: int) -> str:
    return "{" + ",".join(str(i) for i in range(1, k + 1)) + "}"


def _percent(fraction: float) -> float:
    return round(100.0 * fraction, 2)


def _check_seeds(fusion_seeds: int) -> None:
    strict_int(fusion_seeds, "fusion_seeds", minimum=1, error=ExperimentError)


def _add_fusion_rows(
    out: ExperimentResult,
    case: CaseResult,
    variant: str,
    label: str,
    paper: Sequence[float | None],
) -> None:
    mean, std = case.accuracy, case.accuracy_std
    for k in (1, 2, 3):
        name = f"MetaModel accuracy, {label}, models {_models_name(k)}"
        out.add(name, _percent(mean[(variant, k)]), "%", paper=paper[k - 1], better="higher")
    for k in (1, 2, 3):
        out.add(
            f"MetaModel accuracy std over fusion seeds, {label}, models {_models_name(k)}",
            _percent(std[(variant, k)]),
            "points",
        )


def _add_contributor_rows(out: ExperimentResult, case: CaseResult, paper: float | None) -> None:
    for i, (acc, epochs) in enumerate(
        zip(case.contributor_verify_accuracy, case.contributor_epochs, strict=True), start=1
    ):
        out.add(
            f"contributor {i} local verification accuracy",
            _percent(acc),
            "%",
            paper=paper,
            better="higher",
        )
        out.add(f"contributor {i} training epochs", epochs, "epochs")


def _mnist_settings(
    base_train: TrainConfig, quick: bool, quick_epochs: int, fusion_seeds: int | None
) -> tuple[int, TrainConfig, FusionConfig, FusionAugment]:
    """Fusion seeds, training and fusion settings and augmentation of a Case I/III run."""
    n_seeds = fusion_seeds if fusion_seeds is not None else (1 if quick else FULL_FUSION_SEEDS)
    _check_seeds(n_seeds)
    if quick:
        train = replace(base_train, **QUICK_TRAIN, max_epochs=quick_epochs, progress=False)
        return n_seeds, train, replace(QUICK_FUSION, progress=False), FusionAugment()
    train = replace(base_train, progress=False)
    return n_seeds, train, replace(FUSION, progress=False), FUSION_AUGMENT


def reproduce_case1(
    data: Dataset, *, seed: int = 0, quick: bool = False, fusion_seeds: int | None = None
) -> ExperimentResult:
    """Case Study I (Figs. 11-12) as experiment rows.

    ``fusion_seeds`` defaults to :data:`FULL_FUSION_SEEDS` (``quick``: 1).
    """
    # Table II CNNs are the slow ones: 1 quick epoch.
    n_seeds, train, fusion, augment = _mnist_settings(CASE1_TRAIN, quick, 1, fusion_seeds)
    start = time.perf_counter()
    case = run_case1(
        data,
        seed=seed,
        fusion_train_size=QUICK_SAMPLES if quick else 1000,
        test_size=QUICK_SAMPLES if quick else 1000,
        train_config=train,
        fusion_config=fusion,
        fusion_augment=augment,
        fusion_seeds=n_seeds,
    )
    out = ExperimentResult("case1", seed=seed, quick=quick)
    _add_contributor_rows(out, case, PAPER_CASE1_CRITERION)
    for strategy in ("I", "II"):
        _add_fusion_rows(out, case, f"strategy {strategy}", f"strategy {strategy}", (None,) * 3)
    for k in (2, 3):
        gap = case.accuracy[("strategy II", k)] - case.accuracy[("strategy I", k)]
        out.add(
            f"strategy II minus strategy I, models {_models_name(k)}",
            _percent(gap),
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
    size = QUICK_SAMPLES if quick else 1000
    out.meta = _meta(start, data.source, size, size, n_seeds, train, fusion, augment)
    return out


def reproduce_case3(
    data: Dataset, *, seed: int = 0, quick: bool = False, fusion_seeds: int | None = None
) -> ExperimentResult:
    """Case Study III (Table VII) as experiment rows (Strategy II; Strategy I for comparison)."""
    n_seeds, train, fusion, augment = _mnist_settings(CASE3_TRAIN, quick, 2, fusion_seeds)
    start = time.perf_counter()
    case = run_case3(
        data,
        seed=seed,
        fusion_train_size=QUICK_SAMPLES if quick else 1000,
        test_size=QUICK_SAMPLES if quick else 1000,
        train_config=train,
        fusion_config=fusion,
        fusion_augment=augment,
        fusion_seeds=n_seeds,
        input_scale=1000,
        weight_scales=(2**7, 2**5),
    )
    out = ExperimentResult("case3", seed=seed, quick=quick)
    _add_contributor_rows(out, case, None)
    labels = {
        "plain": "strategy II, original",
        "p=128": "strategy II, first layer p=2^7 q=1000",
        "p=32": "strategy II, first layer p=2^5 q=1000",
    }
    for variant, label in labels.items():
        _add_fusion_rows(out, case, variant, label, PAPER_TABLE7[variant])
    _add_fusion_rows(out, case, "plain (I)", "strategy I, original", (None,) * 3)
    for k in (1, 2, 3):
        gap = case.accuracy[("p=128", k)] - case.accuracy[("plain", k)]
        out.add(
            f"p=2^7 minus original, models {_models_name(k)}",
            _percent(gap),
            "points",
            paper=round(PAPER_TABLE7["p=128"][k - 1] - PAPER_TABLE7["plain"][k - 1], 2),
            better="higher",
        )
    out.add("contributor training time", round(case.train_seconds, 1), "s")
    size = QUICK_SAMPLES if quick else 1000
    out.meta = _meta(start, data.source, size, size, n_seeds, train, fusion, augment)
    return out


def _meta(
    start: float,
    source: str,
    fusion_train_size: int,
    test_size: int,
    fusion_seeds: int,
    train: TrainConfig,
    fusion: FusionConfig,
    augment: FusionAugment,
) -> dict[str, object]:
    return {
        "wall_seconds": round(time.perf_counter() - start, 1),
        "data_source": portable_source(source),
        "fusion_seeds": fusion_seeds,
        "contributor_max_epochs": train.max_epochs,
        "contributor_max_shift": train.max_shift,
        "contributor_max_rotation": train.max_rotation,
        "contributor_max_scale": train.max_scale,
        "fusion_epochs": [fusion.stage1_epochs, fusion.stage2_epochs],
        "fusion_learning_rates": [
            fusion.learning_rate,
            fusion.learning_rate
            if fusion.stage2_learning_rate is None
            else fusion.stage2_learning_rate,
        ],
        "fusion_weight_decay": fusion.weight_decay,
        "fusion_final_lr_fraction": fusion.final_lr_fraction,
        "fusion_copies": augment.copies,
        "fusion_copies_max_shift": augment.max_shift,
        "fusion_copies_max_rotation": augment.max_rotation,
        "fusion_copies_max_scale": augment.max_scale,
        "fusion_train_size": fusion_train_size,
        "test_size": test_size,
    }


# --------------------------------------------------------------------------- Case V


@dataclass(frozen=True)
class Case5Settings:
    """Sizes and training settings of a Case V run (the paper's sizes by default)."""

    train_size: int = 10_000
    test_size: int = 1_000
    train: TrainConfig = CASE5_TRAIN
    fusion: FusionConfig = CASE5_FUSION

    @classmethod
    def quick(cls) -> Case5Settings:
        """Small sets and few epochs; the same code paths."""
        return cls(
            train_size=2_000,
            test_size=1_000,
            train=replace(CASE5_TRAIN, max_epochs=3),
            fusion=FusionConfig(stage1_epochs=2, stage2_epochs=3, stage2_learning_rate=3e-4),
        )


def _head_accuracy(
    model: TrainedModel, features: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
) -> float:
    """Accuracy of the model's own output layer applied to (possibly quantized) features."""
    head = model.params["head"]
    logits = features @ np.asarray(head["kernel"]) + np.asarray(head["bias"])
    return float(np.mean(np.argmax(logits, axis=1) == y))


def _fused_accuracy(
    extractors: Sequence[FeatureExtractor],
    verifier: FadingSet,
    fusion: FusionConfig,
    seed: int,
    k: int,
) -> float:
    head = train_fusion_head(
        [e(verifier.train_x) for e in extractors[:k]],
        verifier.train_y,
        [e.labels for e in extractors[:k]],
        "II",
        jax.random.key(seed + k),
        fusion,
        num_classes=2,
        block_weights=[e.output_weights() for e in extractors[:k]],
    )
    pred = head.predict_from_features([e(verifier.test_x) for e in extractors[:k]])
    return float(np.mean(pred == verifier.test_y))


def case5_inputs(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Non-negative model inputs ``(n, window, 2)``: ``max(x, 0)`` and ``max(-x, 0)``."""
    split: npt.NDArray[np.float32] = np.concatenate(
        [np.maximum(x, 0.0), np.maximum(-x, 0.0)], axis=-1
    ).astype(np.float32)
    return split


def _seed_bytes(seed: int, what: str) -> bytes:
    return hashlib.sha256(f"cipherfuse case5 {seed} {what}".encode()).digest()


def encrypted_extractors(
    models: Sequence[TrainedModel], strategy: EncryptionStrategy, seed: int
) -> list[FeatureExtractor]:
    """Each model's first layer encrypted under the initiator's key (paper parameters).

    The initiator's secret key and its published ``M`` are derived from ``seed``;
    every encrypted model goes through its byte format (as shipped to the
    verifiers), and the verifiers' features come from
    :func:`cipherfuse.he.nn.cipherspace_features` (no secret key).
    """
    out: list[FeatureExtractor] = []
    for i, model in enumerate(models):
        first = model.config.layers[0]
        if not isinstance(first, ConvSpec):
            raise ExperimentError("Case V models must start with a convolution")
        length = 1 if strategy == "element-wise" else first.features
        sk = he.keygen(he.PAPER, m=length, seed=_seed_bytes(seed, f"{strategy} sk"))
        switch = he.identity_switch_key(sk, seed=_seed_bytes(seed, f"{strategy} M"))
        enc = encrypt_model(
            model,
            switch,
            weight_scale=CASE5_WEIGHT_SCALE,
            input_scale=CASE5_INPUT_SCALE,
            strategy=strategy,
            seed=_seed_bytes(seed, f"{strategy} encrypt {i}"),
        )
        out.append(cipherspace_features(EncryptedModel.from_bytes(enc.to_bytes())))
    return out


def reproduce_case5(
    *,
    seed: int = 0,
    quick: bool = False,
    settings: Case5Settings | None = None,
) -> ExperimentResult:
    """Case Study V (Tables IX-X) on the synthetic fading-channel data.

    Four independent sets (``make_fading_sets(seed=seed)``): sets 1-3 are the
    contributors' local data (train on its training windows, accuracy on its test
    windows), set 4 is the verifiers': the MetaModel (Strategy II) is trained on
    its training windows and tested on its test windows.

    Model inputs are :func:`case5_inputs` of the generator's windows. The
    encrypted rows use :func:`encrypted_extractors` (paper parameters; their
    features equal the ``p = 2^7`` quantized ones bit for bit, reported as a row).
    """
    default = Case5Settings.quick() if quick else Case5Settings()
    cfg = settings if settings is not None else default
    start = time.perf_counter()
    raw = make_fading_sets(n_sets=4, train_size=cfg.train_size, test_size=cfg.test_size, seed=seed)
    sets = [
        FadingSet(case5_inputs(r.train_x), r.train_y, case5_inputs(r.test_x), r.test_y) for r in raw
    ]
    train = replace(cfg.train, progress=False)
    fusion = replace(cfg.fusion, progress=False)
    keys = jax.random.split(jax.random.key(seed), 3)
    models: list[TrainedModel] = []
    t0 = time.perf_counter()
    for i in range(3):
        s = sets[i]
        result = train_classifier(
            case5_config(window=s.train_x.shape[1], channels=CASE5_CHANNELS),
            s.train_x,
            s.train_y,
            s.test_x,
            s.test_y,
            keys[i],
            train,
            labels=(0, 1),
            desc=f"contributor {i + 1}",
        )
        models.append(result.model)
    train_seconds = time.perf_counter() - t0

    variants: dict[str, list[FeatureExtractor]] = {
        "without encryption": [PlainFeatures(m) for m in models],
        "first layer p=2^7 q=1000": [
            quantized_features(
                m,
                quantize_model(m, weight_scale=CASE5_WEIGHT_SCALE, input_scale=CASE5_INPUT_SCALE),
            )
            for m in models
        ],
    }
    for strategy in ENCRYPTION_STRATEGIES:
        variants[f"{strategy} encryption"] = encrypted_extractors(models, strategy, seed)

    out = ExperimentResult("case5", seed=seed, quick=quick)
    for label, extractors in variants.items():
        paper9 = PAPER_TABLE9.get(label)
        for i, (m, e) in enumerate(zip(models, extractors, strict=True)):
            acc = _head_accuracy(m, e(sets[i].test_x), sets[i].test_y)
            out.add(
                f"contributor {i + 1} accuracy, {label}",
                _percent(acc),
                "%",
                paper=None if paper9 is None else paper9[i],
                better="higher",
            )
    for label, extractors in variants.items():
        paper10 = PAPER_TABLE10.get(label)
        for k in (1, 2, 3):
            acc = _fused_accuracy(extractors, sets[3], fusion, seed, k)
            out.add(
                f"MetaModel accuracy, {label}, models {_models_name(k)}",
                _percent(acc),
                "%",
                paper=None if paper10 is None or k == 1 else paper10[k - 2],
                better="higher",
            )
    quantized = variants["first layer p=2^7 q=1000"]
    for strategy in ENCRYPTION_STRATEGIES:
        encrypted = variants[f"{strategy} encryption"]
        drift = max(
            float(np.max(np.abs(e(sets[i].test_x) - q(sets[i].test_x))))
            for i, (e, q) in enumerate(zip(encrypted, quantized, strict=True))
        )
        out.add(
            f"max |{strategy} cipherspace features - p=2^7 quantized features|",
            drift,
            "abs",
            better="lower",
        )
    out.add("contributor training time", round(train_seconds, 1), "s")
    out.meta = {
        "wall_seconds": round(time.perf_counter() - start, 1),
        "data": "synthetic fading-channel link power (cipherfuse.data.fading), not NASA's",
        "train_size": cfg.train_size,
        "test_size": cfg.test_size,
        "contributor_epochs": train.max_epochs,
        "fusion_epochs": [fusion.stage1_epochs, fusion.stage2_epochs],
        "input": "centred dB / 10, split into max(x, 0) and max(-x, 0) channels",
        "he_parameters": "paper",
    }
    return out
