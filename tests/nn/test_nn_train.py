"""Training: learns, stops at the criterion, is reproducible from the key, validates input."""

from __future__ import annotations

import logging
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cipherfuse.data import Dataset
from cipherfuse.nn import (
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    ModelConfig,
    ModelConfigError,
    PoolSpec,
    TrainConfig,
    accuracy,
    init_params,
    table6_config,
    train_classifier,
)
from cipherfuse.nn.train import make_train_step, precompile_training


def _subset(
    mnist: Dataset, labels: tuple[int, ...], n: int, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(np.isin(mnist.labels, labels))[offset : offset + n]
    return mnist.images[idx], mnist.labels[idx]


def test_training_reaches_criterion_and_stops(mnist: Dataset) -> None:
    labels = (0, 1, 7)
    tx, ty = _subset(mnist, labels, 600, 0)
    vx, vy = _subset(mnist, labels, 300, 600)
    result = train_classifier(
        table6_config(),
        tx,
        ty,
        vx,
        vy,
        jax.random.key(1),
        TrainConfig(max_epochs=15, target_accuracy=0.9, progress=False),
        labels=labels,
    )
    assert result.reached_target
    assert result.epochs < 15
    assert result.verify_accuracy[-1] >= 0.9
    assert len(result.verify_accuracy) == result.epochs
    # the recorded accuracy is what the returned model achieves
    assert accuracy(result.model, vx, vy, restrict_to_labels=True) == result.verify_accuracy[-1]
    assert result.model.labels == labels
    # a held-out check on other samples of the same labels
    hx, hy = _subset(mnist, labels, 300, 900)
    assert accuracy(result.model, hx, hy, restrict_to_labels=True) > 0.8


def test_training_is_reproducible_from_the_key(mnist: Dataset) -> None:
    tx, ty = _subset(mnist, (3, 5), 100, 0)
    cfg = TrainConfig(max_epochs=2, target_accuracy=None, progress=False)
    a = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), cfg)
    b = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), cfg)
    c = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(5), cfg)
    same = jax.tree_util.tree_map(
        lambda x, y: bool(jnp.array_equal(x, y)), a.model.params, b.model.params
    )
    assert all(jax.tree_util.tree_leaves(same))
    assert not np.array_equal(a.model.params["head"]["kernel"], c.model.params["head"]["kernel"])
    assert a.epochs == 2
    assert not a.reached_target


def test_shift_augmentation_is_reproducible_and_changes_training(mnist: Dataset) -> None:
    tx, ty = _subset(mnist, (3, 5), 100, 0)
    plain = TrainConfig(max_epochs=1, target_accuracy=None, progress=False)
    shifted = TrainConfig(max_epochs=1, target_accuracy=None, progress=False, max_shift=2)
    a = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), shifted)
    b = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), shifted)
    c = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), plain)
    k = ("head", "kernel")
    assert np.array_equal(a.model.params[k[0]][k[1]], b.model.params[k[0]][k[1]])
    assert not np.array_equal(a.model.params[k[0]][k[1]], c.model.params[k[0]][k[1]])


def test_affine_augmentation_is_reproducible_and_changes_training(mnist: Dataset) -> None:
    tx, ty = _subset(mnist, (3, 5), 100, 0)
    shifted = TrainConfig(max_epochs=1, target_accuracy=None, progress=False, max_shift=2)
    warped = replace(shifted, max_rotation=10.0, max_scale=0.1)
    a = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), warped)
    b = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), warped)
    c = train_classifier(table6_config(), tx, ty, tx, ty, jax.random.key(4), shifted)
    k = ("head", "kernel")
    assert np.array_equal(a.model.params[k[0]][k[1]], b.model.params[k[0]][k[1]])
    assert not np.array_equal(a.model.params[k[0]][k[1]], c.model.params[k[0]][k[1]])


def test_step_is_pure_and_uses_the_paper_optimizer() -> None:
    config = table6_config()
    params = init_params(config, jax.random.key(0))
    opt = optax.adam(1e-4)
    state = opt.init(params)
    step = make_train_step(config, opt)
    x = jax.random.uniform(jax.random.key(1), (50, 28, 28, 1))
    y = jnp.arange(50) % 10
    p1, _, loss1 = step(params, state, x, y)
    p2, _, loss2 = step(params, state, x, y)
    assert float(loss1) == float(loss2)
    assert bool(jnp.array_equal(p1["head"]["kernel"], p2["head"]["kernel"]))
    # Adam's first step moves every weight by about lr (sign of the gradient)
    delta = np.abs(np.asarray(p1["head"]["kernel"] - params["head"]["kernel"]))
    assert delta.max() <= 1.0001e-4
    assert np.median(delta) == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_epochs": 0}, "min_epochs"),
        ({"target_accuracy": 1.5}, "target_accuracy"),
        ({"max_shift": -1}, "max_shift"),
        ({"max_shift": 9}, "max_shift"),
        ({"max_rotation": -1.0}, "max_rotation"),
        ({"max_rotation": 46.0}, "max_rotation"),
        ({"max_scale": 0.6}, "max_scale"),
    ],
)
def test_bad_train_config(kwargs: dict[str, float], match: str) -> None:
    x = np.zeros((60, 28, 28, 1), np.float32)
    y = np.zeros(60, np.int64)
    with pytest.raises(ModelConfigError, match=match):
        train_classifier(table6_config(), x, y, x, y, jax.random.key(0), TrainConfig(**kwargs))  # type: ignore[arg-type]


def test_bad_data_shapes() -> None:
    x = np.zeros((60, 28, 28), np.float32)
    y = np.zeros(60, np.int64)
    with pytest.raises(ModelConfigError, match="sample shape"):
        train_classifier(table6_config(), x, y, x, y, jax.random.key(0))
    good = np.zeros((10, 28, 28, 1), np.float32)
    with pytest.raises(ModelConfigError, match="batch_size"):
        train_classifier(table6_config(), good, y[:10], good, y[:10], jax.random.key(0))


@pytest.mark.parametrize("seed", [0, 7])
def test_init_params_equals_flax_eager_init(seed: int) -> None:
    """init_params (keys jitted per architecture, bucketed draws) gives Flax's eager ``init``."""
    from cipherfuse.nn import ConfigCNN, table6_config
    from cipherfuse.roles.learning import case1_config

    for config in (table6_config(), case1_config(1), case1_config(3)):
        key = jax.random.key(seed)
        dummy = jnp.zeros((1, *config.input_shape), jnp.float32)
        eager = ConfigCNN(config).init(key, dummy)["params"]
        jitted = init_params(config, key)
        assert jax.tree_util.tree_structure(eager) == jax.tree_util.tree_structure(jitted)
        for a, b in zip(
            jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted), strict=True
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _compiled_names(records: list[logging.LogRecord]) -> list[str]:
    """The jitted functions XLA compiled (or loaded from the persistent cache)."""
    done = (r.getMessage() for r in records)
    return [m.split()[4] for m in done if m.startswith("Finished XLA compilation of ")]


def test_precompiled_training_compiles_nothing_again(caplog: pytest.LogCaptureFixture) -> None:
    # A configuration no other test uses, so its step and forward pass are compiled here.
    config = ModelConfig(
        "precompile-test",
        (6, 6, 1),
        (ConvSpec(3, (3, 3)), PoolSpec("avg", (2, 2)), FlattenSpec(), DenseSpec(5)),
    )
    train = TrainConfig(
        learning_rate=3e-3, batch_size=8, max_epochs=2, target_accuracy=None, progress=False
    )
    rng = np.random.default_rng(0)
    x = rng.random((20, 6, 6, 1), dtype=np.float32)
    y = rng.integers(0, 5, 20)
    caplog.set_level(logging.WARNING)
    with jax.log_compiles():
        precompile_training(config, train, verify_size=7)
        ahead = _compiled_names(caplog.records)
        caplog.clear()
        result = train_classifier(config, x, y, x[:7], y[:7], jax.random.PRNGKey(3), train)
        during = _compiled_names(caplog.records)
    assert {"jit(step)", "jit(run)"} <= set(ahead), ahead
    # The training steps and the accuracy checks ran on the executables compiled ahead.
    assert "jit(step)" not in during and "jit(run)" not in during, during
    assert result.epochs == 2 and len(result.verify_accuracy) == 2
    with pytest.raises(ModelConfigError):
        precompile_training(config, train, verify_size=0)
