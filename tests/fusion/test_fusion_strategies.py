"""Fusion layer: Eq. 10/11 initialization and the defining gamma properties of Strategy II."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cipherfuse.fusion import (
    FusionConfig,
    FusionError,
    FusionHead,
    FusionLayout,
    gamma_gates,
    initial_params,
    train_fusion_head,
)

LAYOUT = FusionLayout(
    feature_dims=(6, 4, 5), label_sets=((0, 1, 2), (0, 3), (2, 3, 4, 1)), num_classes=5
)


def test_layout_and_eq10_eq11_initialization() -> None:
    assert LAYOUT.feature_dim == 15
    assert LAYOUT.hidden == 9
    params = initial_params(LAYOUT, "II", jax.random.key(0))
    a, b = np.asarray(params["A"]), np.asarray(params["B"])
    mask = LAYOUT.mask_a()
    assert np.all(a[mask == 0] == 0)  # Eq. 10: zero off the diagonal blocks
    assert np.all(a[mask == 1] != 0)  # random blocks W_i
    assert mask[:6, :3].all()
    assert mask[6:10, 3:5].all()
    assert mask[10:, 5:].all()
    assert mask.sum() == 6 * 3 + 4 * 2 + 5 * 4
    # Eq. 11: hidden unit j of block i selects model i's j-th label
    expected_b = np.zeros((9, 5))
    for row, label in enumerate([0, 1, 2, 0, 3, 2, 3, 4, 1]):
        expected_b[row, label] = 1
    np.testing.assert_array_equal(b, expected_b)
    random_init = initial_params(LAYOUT, "I", jax.random.key(0))
    assert np.count_nonzero(np.asarray(random_init["A"])) == 15 * 9
    with pytest.raises(FusionError, match="strategy"):
        initial_params(LAYOUT, "III", jax.random.key(0))  # type: ignore[arg-type]


def _hidden(params: dict[str, jax.Array], fc: jax.Array, gate_a: jax.Array) -> np.ndarray:
    return np.asarray(fc @ (params["A"] * gate_a))


def test_gamma0_blocks_see_only_their_model() -> None:
    params = initial_params(LAYOUT, "I", jax.random.key(1))  # dense A: gating must do the work
    gate_a, _ = gamma_gates(LAYOUT, 0.0)
    fc = jax.random.normal(jax.random.key(2), (8, 15))
    base = _hidden(params, fc, gate_a)
    cols = [slice(0, 3), slice(3, 5), slice(5, 9)]
    rows = [slice(0, 6), slice(6, 10), slice(10, 15)]
    for i, r in enumerate(rows):
        perturbed = fc.at[:, r].add(5.0)
        moved = _hidden(params, perturbed, gate_a)
        for j, c in enumerate(cols):
            changed = not np.allclose(moved[:, c], base[:, c])
            assert changed == (i == j), (i, j)
    # with gamma = 1 every hidden unit depends on every model
    gate_one, _ = gamma_gates(LAYOUT, 1.0)
    base1 = _hidden(params, fc, gate_one)
    moved1 = _hidden(params, fc.at[:, rows[0]].add(5.0), gate_one)
    assert not np.allclose(moved1[:, cols[2]], base1[:, cols[2]])


def _grads(gamma: float) -> dict[str, np.ndarray]:
    head = FusionHead(LAYOUT.feature_dim, LAYOUT.hidden, LAYOUT.num_classes)
    params = initial_params(LAYOUT, "I", jax.random.key(3))
    gates = gamma_gates(LAYOUT, gamma)
    fc = jax.random.normal(jax.random.key(4), (32, 15))
    y = jnp.arange(32) % 5

    def loss(p: dict[str, jax.Array]) -> jax.Array:
        logits = head.apply({"params": p}, fc, *gates)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return {k: np.asarray(v) for k, v in jax.grad(loss)(params).items()}


def test_gamma0_off_block_weights_get_no_gradient_gamma1_all_do() -> None:
    mask_a = LAYOUT.mask_a()
    mask_b = LAYOUT.selection_b()
    g0 = _grads(0.0)
    assert np.all(g0["A"][mask_a == 0] == 0)
    assert np.all(g0["B"][mask_b == 0] == 0)
    assert np.count_nonzero(g0["A"][mask_a == 1]) == mask_a.sum()
    assert np.count_nonzero(g0["B"][mask_b == 1]) == mask_b.sum()
    g1 = _grads(1.0)
    assert np.count_nonzero(g1["A"]) == g1["A"].size
    assert np.count_nonzero(g1["B"]) == g1["B"].size


def _separable_features(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Model 1 sees classes 0-2 clearly, model 2 sees 2-4; each is noise on the others."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    f1 = rng.normal(size=(n, 6)).astype(np.float32)
    f2 = rng.normal(size=(n, 6)).astype(np.float32)
    for k in range(3):
        f1[y == k, k] += 4.0
    for k in range(2, 5):
        f2[y == k, k] += 4.0
    return [f1, f2], y


def test_stage_one_trains_only_blocks_then_stage_two_trains_all() -> None:
    feats, y = _separable_features(400, 0)
    layout_sets = ((0, 1, 2), (2, 3, 4))
    stage1 = train_fusion_head(
        feats, y, layout_sets, "II", jax.random.key(0), FusionConfig(3, 0, progress=False)
    )
    init = initial_params(stage1.layout, "II", jax.random.split(jax.random.key(0), 3)[0])
    mask_a, sel_b = stage1.layout.mask_a(), stage1.layout.selection_b()
    a, b = np.asarray(stage1.params["A"]), np.asarray(stage1.params["B"])
    np.testing.assert_array_equal(a[mask_a == 0], 0.0)
    np.testing.assert_array_equal(b[sel_b == 0], 0.0)
    assert not np.allclose(a[mask_a == 1], np.asarray(init["A"])[mask_a == 1])
    assert not np.allclose(b[sel_b == 1], 1.0)
    both = train_fusion_head(
        feats, y, layout_sets, "II", jax.random.key(0), FusionConfig(3, 2, progress=False)
    )
    a2, b2 = np.asarray(both.params["A"]), np.asarray(both.params["B"])
    assert np.count_nonzero(a2[mask_a == 0]) == (mask_a == 0).sum()
    assert np.count_nonzero(b2[sel_b == 0]) == (sel_b == 0).sum()


@pytest.mark.parametrize("strategy", ["I", "II"])
def test_fusion_combines_partial_views(strategy: str) -> None:
    feats, y = _separable_features(1000, 1)
    test_feats, test_y = _separable_features(500, 2)
    sets = ((0, 1, 2), (2, 3, 4))
    cfg = FusionConfig(20, 20, progress=False)
    fused = train_fusion_head(feats, y, sets, strategy, jax.random.key(1), cfg)  # type: ignore[arg-type]
    acc = np.mean(fused.predict_from_features(test_feats) == test_y)
    single = train_fusion_head(feats[:1], y, sets[:1], strategy, jax.random.key(1), cfg)  # type: ignore[arg-type]
    acc1 = np.mean(single.predict_from_features(test_feats[:1]) == test_y)
    assert acc > 0.95
    assert acc1 < 0.8  # one model alone cannot tell classes 3 and 4 apart
    assert fused.strategy == strategy


def test_fusion_input_errors() -> None:
    feats, y = _separable_features(100, 3)
    with pytest.raises(FusionError, match="shape"):
        train_fusion_head([feats[0], feats[1][:50]], y, ((0,), (1,)), "II", jax.random.key(0))
    with pytest.raises(FusionError, match="one feature size"):
        train_fusion_head(feats, y, ((0, 1),), "II", jax.random.key(0))
    with pytest.raises(FusionError, match="outside"):
        train_fusion_head(feats, y, ((0, 1), (2, 12)), "II", jax.random.key(0))
    with pytest.raises(FusionError, match="y must"):
        train_fusion_head(feats, y[:10], ((0, 1), (2, 3)), "II", jax.random.key(0))
    with pytest.raises(FusionError, match="epoch"):
        train_fusion_head(feats, y, ((0, 1), (2, 3)), "II", jax.random.key(0), FusionConfig(0, 0))
    with pytest.raises(FusionError, match="stage2_learning_rate"):
        train_fusion_head(
            feats,
            y,
            ((0, 1), (2, 3)),
            "II",
            jax.random.key(0),
            FusionConfig(stage2_learning_rate=0),
        )


def test_stage2_learning_rate_applies_to_stage_two_only() -> None:
    feats, y = _separable_features(200, 4)
    sets = ((0, 1, 2), (2, 3, 4))

    def run(stage2: int, lr2: float | None) -> np.ndarray:
        cfg = FusionConfig(2, stage2, learning_rate=1e-3, stage2_learning_rate=lr2, progress=False)
        head = train_fusion_head(feats, y, sets, "II", jax.random.key(0), cfg)
        return np.asarray(head.params["A"])

    np.testing.assert_array_equal(run(0, 1e-1), run(0, None))  # no stage two: no effect
    np.testing.assert_array_equal(run(2, 1e-3), run(2, None))  # None means learning_rate
    small, large = run(2, 1e-5), run(2, 1e-2)
    stage1 = run(0, None)
    assert np.abs(small - stage1).max() < np.abs(large - stage1).max()


def test_weight_decay_shrinks_weights_and_keeps_stage_one_blocks() -> None:
    feats, y = _separable_features(200, 5)
    sets = ((0, 1, 2), (2, 3, 4))

    def run(strategy: str, stage2: int, decay: float) -> tuple[np.ndarray, np.ndarray]:
        cfg = FusionConfig(3, stage2, weight_decay=decay, progress=False)
        head = train_fusion_head(feats, y, sets, strategy, jax.random.key(0), cfg)  # type: ignore[arg-type]
        return np.asarray(head.params["A"]), np.asarray(head.params["B"])

    plain_a, _ = run("I", 0, 0.0)
    decayed_a, _ = run("I", 0, 1.0)
    assert np.linalg.norm(decayed_a) < np.linalg.norm(plain_a)
    # Strategy II stage one with decay: the off-block weights are zero and stay zero
    a, b = run("II", 0, 1.0)
    layout = FusionLayout((6, 6), sets, 10)
    np.testing.assert_array_equal(a[layout.mask_a() == 0], 0.0)
    np.testing.assert_array_equal(b[layout.selection_b() == 0], 0.0)
    assert np.count_nonzero(a[layout.mask_a() == 1]) == (layout.mask_a() == 1).sum()
    with pytest.raises(FusionError, match="weight_decay"):
        train_fusion_head(feats, y, sets, "II", jax.random.key(0), FusionConfig(weight_decay=-1))


@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_final_lr_fraction_is_textbook_adam_with_cosine_step_sizes(fraction: float) -> None:
    """One full batch per epoch, so the head must follow Adam (Kingma & Ba, eps outside
    the root) with step sizes lr * (f + (1 - f) * (1 + cos(pi t / T)) / 2), in numpy."""
    feats, y = _separable_features(8, 6)
    sets = ((0, 1, 2), (2, 3, 4))
    epochs, lr = 5, 1e-2
    cfg = FusionConfig(
        epochs, 0, learning_rate=lr, batch_size=8, final_lr_fraction=fraction, progress=False
    )
    head = train_fusion_head(feats, y, sets, "I", jax.random.key(3), cfg)

    fc = np.concatenate(feats, axis=1)
    x = ((fc - fc.mean(0)) / np.maximum(fc.std(0), 1e-6)).astype(np.float32)
    params = initial_params(head.layout, "I", jax.random.split(jax.random.key(3), 3)[0])
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}

    def loss(q: dict[str, jax.Array]) -> jax.Array:
        logits = (jnp.asarray(x) @ q["A"]) @ q["B"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y)).mean()

    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(epochs):
        g = jax.grad(loss)({k: jnp.asarray(v, jnp.float32) for k, v in p.items()})
        step = lr * (fraction + (1 - fraction) * 0.5 * (1 + np.cos(np.pi * t / epochs)))
        for k in p:
            gk = np.asarray(g[k], np.float64)
            m[k] = 0.9 * m[k] + 0.1 * gk
            v2[k] = 0.999 * v2[k] + 0.001 * gk**2
            mhat, vhat = m[k] / (1 - 0.9 ** (t + 1)), v2[k] / (1 - 0.999 ** (t + 1))
            p[k] = p[k] - step * mhat / (np.sqrt(vhat) + 1e-8)
    for k in p:
        np.testing.assert_allclose(np.asarray(head.params[k]), p[k], rtol=1e-4, atol=1e-5)


def test_final_lr_fraction_decays_only_the_last_stage() -> None:
    feats, y = _separable_features(200, 7)
    sets = ((0, 1, 2), (2, 3, 4))

    def run(stage2: int, fraction: float | None) -> np.ndarray:
        cfg = FusionConfig(2, stage2, final_lr_fraction=fraction, progress=False)
        head = train_fusion_head(feats, y, sets, "II", jax.random.key(0), cfg)
        return np.asarray(head.params["A"])

    np.testing.assert_allclose(run(2, 1.0), run(2, None), rtol=1e-6, atol=1e-7)  # cos * 0
    stage1, decayed, constant = run(0, None), run(2, 0.0), run(2, None)
    assert not np.allclose(decayed, constant)
    # a cosine to zero moves stage two's weights less than a constant step size does
    assert np.abs(decayed - stage1).max() < np.abs(constant - stage1).max()
    # decaying stage one (the last stage when there is no stage two) keeps Eq. 12's zeros
    mask_a = FusionLayout((6, 6), sets, 10).mask_a()
    np.testing.assert_array_equal(run(0, 0.0)[mask_a == 0], 0.0)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(FusionError, match="final_lr_fraction"):
            FusionConfig(final_lr_fraction=bad).validate()
