"""End to end on MNIST: private models -> plaintext and quantized features -> MetaModel."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cipherfuse.data import Dataset, split_by_labels
from cipherfuse.fusion import (
    FeatureExtractor,
    FusionConfig,
    FusionError,
    PlainFeatures,
    PrefixFeatures,
    fuse,
    quantized_features,
)
from cipherfuse.nn import (
    TrainConfig,
    TrainedModel,
    quantize_model,
    table2_config,
    table6_config,
    train_classifier,
)


@pytest.fixture(scope="module")
def trained(mnist: Dataset) -> tuple[list[TrainedModel], object]:
    split = split_by_labels(
        mnist,
        [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)],
        train_per_contributor=600,
        verify_per_contributor=200,
        fusion_train_size=600,
        test_size=500,
        seed=11,
    )
    models = []
    for i, c in enumerate(split.contributors):
        result = train_classifier(
            table6_config(),
            c.train.images,
            c.train.labels,
            c.verify.images,
            c.verify.labels,
            jax.random.key(i),
            TrainConfig(max_epochs=4, target_accuracy=0.9, progress=False),
            labels=c.label_set,
        )
        models.append(result.model)
    return models, split


def test_fusing_partial_views_beats_each_model(
    trained: tuple[list[TrainedModel], object],
) -> None:
    models, split = trained
    cfg = FusionConfig(10, 10, progress=False)
    x, y = split.fusion_train.images, split.fusion_train.labels  # type: ignore[attr-defined]
    tx, ty = split.test.images, split.test.labels  # type: ignore[attr-defined]
    singles = [
        fuse([PlainFeatures(m)], x, y, "II", jax.random.key(0), cfg).accuracy(tx, ty)
        for m in models
    ]
    both = fuse([PlainFeatures(m) for m in models], x, y, "II", jax.random.key(0), cfg)
    acc = both.accuracy(tx, ty)
    assert acc > max(singles)
    assert acc > 0.85
    # each private model only knows half the classes: alone it cannot do much better than half
    assert all(0.4 < s < 0.85 for s in singles)


def test_quantized_prefix_goes_through_the_same_interface(
    trained: tuple[list[TrainedModel], object],
) -> None:
    models, split = trained
    x = split.test.images[:100]  # type: ignore[attr-defined]
    for model in models:
        qm = quantize_model(model, weight_scale=2**7, input_scale=1000)
        extractor = quantized_features(model, qm)
        assert isinstance(extractor, FeatureExtractor)
        plain = PlainFeatures(model)(x)
        quant = extractor(x)
        assert quant.shape == plain.shape == (100, 784)
        # the first-block error bound, propagated by the float remainder, stays small
        assert np.max(np.abs(quant - plain)) < 0.05 * np.max(np.abs(plain))
    cfg = FusionConfig(10, 10, progress=False)
    fx, fy = split.fusion_train.images, split.fusion_train.labels  # type: ignore[attr-defined]
    tx, ty = split.test.images, split.test.labels  # type: ignore[attr-defined]
    extractors = [
        quantized_features(m, quantize_model(m, weight_scale=2**7, input_scale=1000))
        for m in models
    ]
    plain_meta = fuse([PlainFeatures(m) for m in models], fx, fy, "II", jax.random.key(0), cfg)
    quant_meta = fuse(extractors, fx, fy, "II", jax.random.key(0), cfg)
    assert abs(quant_meta.accuracy(tx, ty) - plain_meta.accuracy(tx, ty)) <= 0.02


def test_prefix_features_validation(trained: tuple[list[TrainedModel], object]) -> None:
    models, _ = trained
    model = models[0]

    def prefix(x: np.ndarray) -> tuple[np.ndarray, int]:
        return np.zeros((x.shape[0], 14, 14, 32), np.int64), 0

    with pytest.raises(FusionError, match="resume_layer"):
        PrefixFeatures(model, prefix, resume_layer=0)
    bad_scale = PrefixFeatures(model, prefix, resume_layer=2)
    with pytest.raises(FusionError, match="scale"):
        bad_scale(np.zeros((1, 28, 28, 1), np.float32))
    other = TrainedModel(table2_config(1), model.params, model.labels)
    with pytest.raises(FusionError, match="config"):
        quantized_features(other, quantize_model(model, weight_scale=32, input_scale=1000))
    with pytest.raises(FusionError, match="at least one"):
        fuse([], np.zeros((1, 28, 28, 1), np.float32), np.zeros(1), "II", jax.random.key(0))


def test_shifted_copies_augment_only_the_fusing_partys_samples() -> None:
    from cipherfuse.data.partition import Subset
    from cipherfuse.fusion import FusionError
    from cipherfuse.fusion.augment import FusionAugment

    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28, 1), np.float32)
    images[:, 4:24, 4:24] = rng.random((40, 20, 20, 1))  # MNIST-like empty border
    subset = Subset(images, rng.integers(0, 10, 40), np.arange(40))
    x, y = FusionAugment(copies=3).apply(subset, seed=1)
    assert x.shape == (160, 28, 28, 1)
    np.testing.assert_array_equal(x[:40], images)
    np.testing.assert_array_equal(y, np.tile(subset.labels, 4))
    # every copy is a translation of its original (nothing lost, nothing new)
    np.testing.assert_allclose(
        x.reshape(4, 40, -1).sum(-1), np.tile(images.reshape(40, -1).sum(-1), (4, 1)), rtol=1e-5
    )
    assert not np.array_equal(x[40:80], images)
    with pytest.raises(FusionError, match="copies"):
        FusionAugment(copies=-1).apply(subset, seed=1)


def test_warped_copies_are_the_seeded_affine_warps_of_the_samples() -> None:
    from cipherfuse.analysis.fusion_cases import FUSION_AUGMENT
    from cipherfuse.data.partition import Subset
    from cipherfuse.fusion import FusionError
    from cipherfuse.fusion.augment import FusionAugment
    from cipherfuse.nn.augment import random_affine

    rng = np.random.default_rng(5)
    images = rng.random((30, 28, 28, 1)).astype(np.float32)
    subset = Subset(images, rng.integers(0, 10, 30), np.arange(30))
    augment = FusionAugment(copies=2, max_shift=1, max_rotation=10.0, max_scale=0.1)
    x, y = augment.apply(subset, seed=3)
    # the reference: the same generator drawn copy after copy
    ref_rng = np.random.default_rng(3)
    expected = [images] + [random_affine(ref_rng, images, 1, 10.0, 0.1) for _ in range(2)]
    np.testing.assert_array_equal(x, np.concatenate(expected))
    np.testing.assert_array_equal(y, np.tile(subset.labels, 3))
    assert FUSION_AUGMENT.copies == 12 and FUSION_AUGMENT.max_rotation == 10.0
    for bad, match in (
        ({"max_rotation": 50.0}, "max_rotation"),
        ({"max_scale": 0.7}, "max_scale"),
        ({"max_shift": 9}, "max_shift"),
        ({"copies": True}, "copies"),
    ):
        with pytest.raises(FusionError, match=match):
            FusionAugment(**bad).apply(subset, seed=0)  # type: ignore[arg-type]
