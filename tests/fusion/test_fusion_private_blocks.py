"""Strategy II's blocks W_i from the private models' output layers (Eq. 10, Fig. 7)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cipherfuse.fusion import (
    FusionConfig,
    FusionError,
    FusionLayout,
    PlainFeatures,
    fuse,
    initial_params,
    quantized_features,
    train_fusion_head,
)
from cipherfuse.nn import TrainedModel, init_params, quantize_model, table6_config

LABEL_SETS = ((0, 1, 2, 3, 4, 5, 6), (0, 1, 2, 3, 4, 8, 9))


def _models() -> list[TrainedModel]:
    """Two Table VI models with random weights (the identities below hold for any weights)."""
    config = table6_config()
    return [
        TrainedModel(config=config, params=init_params(config, jax.random.key(10 + i)), labels=s)
        for i, s in enumerate(LABEL_SETS)
    ]


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28, 1), dtype=np.float32)


def test_output_weights_are_the_head_columns_of_the_models_labels() -> None:
    model = _models()[1]
    w = PlainFeatures(model).output_weights()
    kernel = np.asarray(model.params["head"]["kernel"])
    assert w.shape == (model.config.feature_dim, len(LABEL_SETS[1]))
    np.testing.assert_array_equal(w, kernel[:, [0, 1, 2, 3, 4, 8, 9]])
    # the model's own logits for its labels are features @ W + bias
    x = _images(8, 0)
    logits = model.logits(x)[:, list(LABEL_SETS[1])]
    bias = np.asarray(model.params["head"]["bias"])[list(LABEL_SETS[1])]
    np.testing.assert_allclose(model.features(x) @ w + bias, logits, rtol=1e-5, atol=1e-5)
    quantized = quantized_features(
        model, quantize_model(model, weight_scale=2**7, input_scale=1000)
    )
    np.testing.assert_array_equal(quantized.output_weights(), w)


def test_initial_params_place_given_blocks_on_the_diagonal() -> None:
    layout = FusionLayout(feature_dims=(3, 2), label_sets=((0, 2), (1,)), num_classes=3)
    blocks = [np.arange(6, dtype=np.float32).reshape(3, 2) + 1, np.array([[7.0], [8.0]])]
    a = np.asarray(initial_params(layout, "II", jax.random.key(0), blocks)["A"])
    expected = np.zeros((5, 3), np.float32)
    expected[:3, :2] = blocks[0]
    expected[3:, 2:] = blocks[1]
    np.testing.assert_array_equal(a, expected)
    # Strategy I ignores them: its A is dense and random
    dense = np.asarray(initial_params(layout, "I", jax.random.key(0), blocks)["A"])
    assert np.count_nonzero(dense) == dense.size


def test_stage_one_starts_from_the_sum_of_the_models_own_logits() -> None:
    """Untrained (step 1e-12), the head's logit of class c is the sum over the models that
    know c of their own logit for c, less its bias and the constant ``mean @ W_i``."""
    models = _models()
    x, y = _images(100, 1), np.arange(100) % 10
    feats = [m.features(x) for m in models]
    blocks = [PlainFeatures(m).output_weights() for m in models]
    cfg = FusionConfig(stage1_epochs=1, stage2_epochs=0, learning_rate=1e-12, progress=False)
    head = train_fusion_head(
        feats, y, LABEL_SETS, "II", jax.random.key(0), cfg, block_weights=blocks
    )
    expected = np.zeros((100, 10), np.float64)
    for model, f, w, labels in zip(models, feats, blocks, LABEL_SETS, strict=True):
        own = model.logits(x)[:, list(labels)].astype(np.float64)
        bias = np.asarray(model.params["head"]["bias"], np.float64)[list(labels)]
        expected[:, list(labels)] += own - bias - f.mean(axis=0).astype(np.float64) @ w
    got = head.logits_from_features(feats)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale)


def test_fuse_uses_the_extractors_output_weights() -> None:
    models = _models()
    x, y = _images(100, 2), np.arange(100) % 10
    extractors = [PlainFeatures(m) for m in models]
    cfg = FusionConfig(stage1_epochs=1, stage2_epochs=1, progress=False)
    meta = fuse(extractors, x, y, "II", jax.random.key(3), cfg)
    direct = train_fusion_head(
        [e(x) for e in extractors],
        y,
        LABEL_SETS,
        "II",
        jax.random.key(3),
        cfg,
        block_weights=[e.output_weights() for e in extractors],
    )
    random_blocks = train_fusion_head(
        [e(x) for e in extractors], y, LABEL_SETS, "II", jax.random.key(3), cfg
    )
    np.testing.assert_array_equal(np.asarray(meta.head.params["A"]), direct.params["A"])
    assert not np.allclose(np.asarray(meta.head.params["A"]), random_blocks.params["A"])


def test_bad_block_weights_are_rejected_with_the_expected_shape() -> None:
    models = _models()
    x, y = _images(60, 3), np.arange(60) % 10
    feats = [m.features(x) for m in models]
    good = [PlainFeatures(m).output_weights() for m in models]
    cfg = FusionConfig(1, 1, progress=False)
    with pytest.raises(FusionError, match="one array per model"):
        train_fusion_head(
            feats, y, LABEL_SETS, "II", jax.random.key(0), cfg, block_weights=good[:1]
        )
    with pytest.raises(
        FusionError, match=r"block_weights\[1\] must have shape .* = \(784, 7\), got \(7, 784\)"
    ):
        train_fusion_head(
            feats, y, LABEL_SETS, "II", jax.random.key(0), cfg, block_weights=[good[0], good[1].T]
        )
    bad = good[1].copy()
    bad[0, 0] = np.nan
    with pytest.raises(FusionError, match="non-finite"):
        train_fusion_head(
            feats, y, LABEL_SETS, "II", jax.random.key(0), cfg, block_weights=[good[0], bad]
        )
