"""Model configs: the paper's architectures, shapes, parameter counts, validation."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cipherfuse.nn import (
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    ModelConfig,
    ModelConfigError,
    PoolSpec,
    case5_config,
    table2_config,
    table6_config,
    taylor_sigmoid,
)
from cipherfuse.nn.model import param_shapes


def _n_params(config: ModelConfig) -> int:
    shapes = param_shapes(config)
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes))


def _conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


@pytest.mark.parametrize(
    ("contributor", "flat", "expected"),
    [
        (1, 392, _conv(5, 1, 32) + _conv(5, 32, 16) + _conv(2, 16, 8)),
        (2, 784, _conv(5, 1, 64) + _conv(5, 64, 32) + _conv(2, 32, 16)),
        (3, 784, _conv(5, 1, 32) + _conv(10, 32, 32) + _conv(4, 32, 16)),
    ],
)
def test_table2_shapes_and_parameter_counts(contributor: int, flat: int, expected: int) -> None:
    config = table2_config(contributor)
    shapes = config.shapes()
    assert shapes[-2] == (flat,)  # Table II "reshaped vector"
    assert config.feature_dim == 500  # fully connected hidden layer
    head = 500 * 10 + 10
    assert _n_params(config) == expected + flat * 500 + 500 + head
    assert all(s.pool == "max" for s in config.layers if isinstance(s, PoolSpec))


def test_table6_and_case5() -> None:
    t6 = table6_config()
    assert t6.shapes()[-2] == (7, 7, 16)
    assert t6.feature_dim == 784
    assert all(s.pool != "max" for s in t6.layers if isinstance(s, PoolSpec))
    with pytest.raises(ModelConfigError, match="cipherspace"):
        table6_config(pool="max")
    c5 = case5_config()
    assert c5.input_shape == (64, 1)
    assert c5.num_classes == 2
    assert sum(isinstance(s, ConvSpec) for s in c5.layers) == 2
    assert c5.feature_dim == 16 * 32


@pytest.mark.parametrize("config", [table2_config(3), table6_config("sum"), case5_config(32)])
def test_dict_roundtrip(config: ModelConfig) -> None:
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ((DenseSpec(4),), "flatten"),
        ((ConvSpec(4, (3,)), FlattenSpec()), "entries"),
        ((ConvSpec(4, (3, 3)),), "flat feature vector"),
        ((PoolSpec("max", (40, 40)), FlattenSpec()), "empty"),
        ((ConvSpec(0, (3, 3)), FlattenSpec()), "features"),
    ],
)
def test_invalid_configs(layers: tuple[object, ...], match: str) -> None:
    with pytest.raises(ModelConfigError, match=match):
        ModelConfig("bad", (28, 28, 1), layers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(extra=1),
        lambda d: d["layers"][0].update(kind="lstm"),
        lambda d: d["layers"][0].update(activation="tanh"),
        lambda d: d.update(num_classes="10"),
        lambda d: d.update(input_shape=[28, 28, True]),
    ],
)
def test_from_dict_rejects(mutate: object) -> None:
    d = table6_config().to_dict()
    mutate(d)  # type: ignore[operator]
    with pytest.raises(ModelConfigError):
        ModelConfig.from_dict(d)


def test_taylor_sigmoid_is_the_degree3_expansion() -> None:
    x = np.linspace(-0.5, 0.5, 101)
    sigmoid = 1 / (1 + np.exp(-x))
    approx = np.asarray(taylor_sigmoid(jax.numpy.asarray(x)))
    # next Taylor term is x^5/480: the error must be below it (with margin)
    assert np.max(np.abs(approx - sigmoid)) <= np.max(np.abs(x) ** 5) / 480 * 1.01
    # the paper's printed 1/348 would be visibly worse
    printed = 0.5 + x / 4 - x**3 / 348
    assert np.max(np.abs(printed - sigmoid)) > 10 * np.max(np.abs(approx - sigmoid))
