"""The seeded first-layer prefix against the plain integer reference of a quantized model."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cipherfuse import he
from cipherfuse.fusion.features import PrefixFeatures
from cipherfuse.he.seeded import seeded_first_layer_prefix
from cipherfuse.nn.config import table6_config
from cipherfuse.nn.model import TrainedModel, init_params
from cipherfuse.nn.quantize import QuantizedConv, integer_forward, quantize_inputs, quantize_model


@pytest.mark.parametrize(("activation", "input_scale"), [("relu", 1000), ("taylor_sigmoid", 100)])
def test_prefix_equals_integer_forward_on_table6(activation: str, input_scale: int) -> None:
    config = table6_config(activation="relu" if activation == "relu" else "taylor_sigmoid")
    model = TrainedModel(config, init_params(config, jax.random.key(3)), tuple(range(10)))
    qm = quantize_model(model, weight_scale=2**7, input_scale=input_scale)
    first = qm.layers[0]
    assert isinstance(first, QuantizedConv)
    sk = he.keygen(he.SECURE, int(first.weight.shape[-1]), seed=bytes([input_scale % 256]) * 32)
    prefix = seeded_first_layer_prefix(qm, sk)
    x = np.random.default_rng(0).random((6, 28, 28, 1), dtype=np.float32)
    ints, scale = prefix(x)
    expect = integer_forward(qm, quantize_inputs(x, qm.input_scale))
    assert scale == qm.output_scale
    assert ints.dtype == np.int64
    np.testing.assert_array_equal(ints, expect)
    # It plugs into the fusion interface unchanged.
    feats = PrefixFeatures(model=model, prefix=prefix, resume_layer=qm.resume_layer)
    assert feats(x).shape == (6, config.feature_dim)


def test_prefix_rejects_inputs_beyond_the_declared_bound() -> None:
    config = table6_config()
    model = TrainedModel(config, init_params(config, jax.random.key(4)), tuple(range(10)))
    qm = quantize_model(model, weight_scale=2**7, input_scale=1000)
    sk = he.keygen(he.SECURE, 32, seed=bytes([7]) * 32)
    prefix = seeded_first_layer_prefix(qm, sk, input_bound=1.0)
    with pytest.raises((he.NoiseBudgetExceeded, he.PlaintextOverflow)):
        prefix(np.full((1, 28, 28, 1), 1e6, np.float32))
