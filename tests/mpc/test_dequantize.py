"""Mapping a judged integer classifier back to a float model, and untrusted layouts.

The reference is the integer model itself: the float model's weights must quantize back
to the judged integers exactly and its logits must be the integer logits over their
scale, up to the float32 rounding of the weights.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from cipherfuse.mpc.encoding import (
    check_dequantizable,
    dequantize_classifier,
    quantize_classifier,
)
from cipherfuse.mpc.errors import EncodingError
from cipherfuse.mpc.sharing import model_layout, skeleton_from_layout
from cipherfuse.nn import ConvSpec, DenseSpec, FlattenSpec, PoolSpec
from cipherfuse.nn.quantize import QuantizedConv, QuantizedDense, QuantizedPool, integer_forward
from tests.mpc.protocol_util import random_classifier, random_images, tiny_config

P, Q = 32, 100


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_the_float_model_quantizes_back_to_the_judged_integers(pool: str) -> None:
    judged = random_classifier(tiny_config(pool=pool), key=3, weight_scale=P, input_scale=Q)
    labels = (1, 4, 7)
    model = dequantize_classifier(judged, labels)
    assert model.labels == labels
    assert model.config == dataclasses.replace(judged.source, layers=judged.source.layers[:-1])
    again = quantize_classifier(model, weight_scale=P, input_scale=Q)
    assert model_layout(again) == model_layout(judged)
    for got, want in zip(again.layers, judged.layers, strict=True):
        if isinstance(want, QuantizedConv | QuantizedDense):
            assert isinstance(got, QuantizedConv | QuantizedDense)
            np.testing.assert_array_equal(got.weight, want.weight)  # |w| < 2^24: exact
            # A bias at scale p * s goes through float32: at most one float32 ulp off.
            ulp = np.spacing(np.abs(want.bias / (P * want.input_scale)).astype(np.float32))
            bound = np.ceil(ulp.astype(np.float64) * P * want.input_scale) + 1
            assert np.all(np.abs(got.bias - want.bias) <= bound)


def test_the_float_logits_are_the_integer_logits_over_their_scale() -> None:
    judged = random_classifier(tiny_config(), key=5, weight_scale=P, input_scale=Q)
    model = dequantize_classifier(judged, tuple(range(judged.source.num_classes)))
    x_int = random_images(judged.source, 16, seed=2, q=Q)
    reference = integer_forward(judged, x_int) / judged.output_scale
    logits = model.logits(x_int.astype(np.float32) / Q)
    scale = float(np.max(np.abs(reference)))
    np.testing.assert_allclose(logits, reference, rtol=0, atol=1e-4 * scale)


def test_a_layout_whose_source_disagrees_with_its_layers_is_refused() -> None:
    judged = random_classifier(tiny_config(), key=7, weight_scale=P, input_scale=Q)
    check_dequantizable(judged)  # the honest layout passes
    layout = model_layout(judged)
    variants = []
    # The integer layers say max pooling, the source says average pooling.
    source = judged.source
    layers = list(source.layers)
    layers[1] = PoolSpec("avg", (2, 2))
    variants.append(dataclasses.replace(source, layers=tuple(layers)))
    # Another activation in the source than in the evaluated layers.
    layers = list(source.layers)
    layers[0] = ConvSpec(4, (3, 3), activation="taylor_sigmoid")
    variants.append(dataclasses.replace(source, layers=tuple(layers)))
    # A source without the output layer the layers end in.
    variants.append(dataclasses.replace(source, layers=source.layers[:-1]))
    # A head with an activation.
    variants.append(
        dataclasses.replace(source, layers=(*source.layers[:-1], DenseSpec(10, "relu")))
    )
    for variant in variants:
        hostile = skeleton_from_layout({**layout, "source": variant.to_dict()})
        with pytest.raises(EncodingError):
            check_dequantizable(hostile)
        with pytest.raises(EncodingError):
            dequantize_classifier(hostile, (0,))
    # Layers that differ from the source in a stride or the pooling kind are refused too.
    pool = judged.layers[1]
    assert isinstance(pool, QuantizedPool)
    relaid = dataclasses.replace(
        judged, layers=(judged.layers[0], dataclasses.replace(pool, pool="sum"), *judged.layers[2:])
    )
    with pytest.raises(EncodingError):
        check_dequantizable(relaid)


def test_a_dense_only_classifier_round_trips() -> None:
    from cipherfuse.nn import ModelConfig, TrainedModel
    from cipherfuse.nn.model import init_params

    config = ModelConfig("dense", (4, 4, 1), (FlattenSpec(), DenseSpec(8)))
    float_model = TrainedModel(config, init_params(config, jax.random.key(0)), (0, 2))
    judged = quantize_classifier(float_model, weight_scale=P, input_scale=Q)
    model = dequantize_classifier(judged, (0, 2))
    for name in ("layer_1", "head"):
        np.testing.assert_allclose(
            np.asarray(model.params[name]["kernel"]),
            np.rint(np.asarray(float_model.params[name]["kernel"]) * P) / P,
            rtol=0,
            atol=1e-7,
        )
