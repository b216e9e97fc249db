"""A Strategy II fusion learns on cipherspace features (MNIST subset, paper parameters)."""

from __future__ import annotations

import jax
import numpy as np

from cipherfuse import he
from cipherfuse.data import Dataset
from cipherfuse.fusion.features import quantized_features
from cipherfuse.fusion.head import FusionConfig, fuse
from cipherfuse.he.nn import EncryptedModel, cipherspace_features, encrypt_model
from cipherfuse.nn.config import ConvSpec, FlattenSpec, ModelConfig, PoolSpec
from cipherfuse.nn.model import TrainedModel
from cipherfuse.nn.quantize import quantize_model

from .conftest import random_params, seed


def test_strategy_two_fusion_learns_on_cipherspace_features(mnist: Dataset) -> None:
    x, y = mnist.images[:800], mnist.labels[:800]
    cfg = ModelConfig(
        name="mini",
        input_shape=(28, 28, 1),
        layers=(ConvSpec(6, (5, 5)), PoolSpec("avg", (4, 4)), FlattenSpec()),
    )
    sk = he.keygen(he.PAPER, m=1, seed=seed(7))
    M = he.identity_switch_key(sk, seed=seed(8))
    models = [
        TrainedModel(cfg, random_params(cfg, i), labels)
        for i, labels in enumerate([(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)])
    ]
    encrypted = [EncryptedModel.from_bytes(encrypt_model(m, M).to_bytes()) for m in models]
    extractors = [cipherspace_features(e) for e in encrypted]
    fcfg = FusionConfig(4, 4, batch_size=100, progress=False)
    meta = fuse(extractors, x[:600], y[:600], "II", jax.random.key(0), fcfg)
    acc = meta.accuracy(x[600:], y[600:])
    assert acc > 0.6  # chance is 0.1
    # The features are exactly the quantized plaintext models' features.
    for m, e in zip(models, extractors, strict=True):
        plain = quantized_features(m, quantize_model(m, weight_scale=2**7, input_scale=1000))
        np.testing.assert_array_equal(e(x[600:]), plain(x[600:]))
