"""The opened count equals the plaintext integer forward's count, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cipherfuse.mpc.encoding import (
    plaintext_count,
    predictions,
    quantize_classifier,
    required_sign_bits,
)
from cipherfuse.mpc.evaluate import secure_logits
from cipherfuse.mpc.plan import Relu, evaluation_plan, plaintext_plan_logits
from cipherfuse.mpc.runtime import secure_count_in_process
from cipherfuse.mpc.sharing import share_model
from cipherfuse.nn.config import ConvSpec, DenseSpec, FlattenSpec, ModelConfig, PoolSpec
from cipherfuse.nn.quantize import QuantizedPool, integer_forward
from tests.mpc.protocol_util import random_classifier, random_images, run3, tiny_config

FEW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_plan_moves_relu_after_max_pooling_and_keeps_the_forward():
    qm = random_classifier(tiny_config(), key=0)
    plan = evaluation_plan(qm)
    pool_at = next(i for i, s in enumerate(plan) if isinstance(s, QuantizedPool))
    assert isinstance(plan[pool_at + 1], Relu) and not isinstance(plan[pool_at - 1], Relu)
    x = random_images(tiny_config(), 9, seed=1)
    np.testing.assert_array_equal(plaintext_plan_logits(plan, x), integer_forward(qm, x))


@pytest.mark.slow
@FEW
@given(
    f1=st.integers(1, 4),
    f2=st.integers(1, 3),
    hidden=st.integers(1, 8),
    pool=st.sampled_from(["max", "avg", "sum"]),
    key=st.integers(0, 1000),
    n=st.integers(1, 7),
)
def test_secure_logits_and_count_equal_the_integer_forward(f1, f2, hidden, pool, key, n):
    config = tiny_config(features=(f1, f2), hidden=hidden, pool=pool)
    qm = random_classifier(config, key=key)
    x = random_images(config, n, seed=key)
    labels = predictions(qm, x)  # some correct ...
    labels[::2] = (labels[::2] + 1) % 10  # ... and some wrong
    shared = share_model(qm, seed=b"k")

    def logits(p):
        skeleton, params = shared.bundles[p.index].parameter_shares()
        return p.open(secure_logits(p, skeleton, params, x))

    out = run3(logits)
    for o in out:
        np.testing.assert_array_equal(o.view(np.int64), integer_forward(qm, x))
    results = secure_count_in_process(qm, x, labels, seed=b"k", batch=3)
    want = plaintext_count(qm, x, labels)
    assert [r.count for r in results] == [want] * 3
    earlier = secure_count_in_process(
        qm, x, labels, seed=b"k", batch=3, sign_method="carry_save", linear_kernel="direct"
    )
    assert [r.count for r in earlier] == [want] * 3
    assert want == int(np.count_nonzero(np.argmax(integer_forward(qm, x), axis=1) == labels))


def test_count_of_a_trained_like_model_and_per_label_counts():
    config = tiny_config(features=(6, 4), hidden=12, size=10)
    qm = random_classifier(config, key=7)
    x = random_images(config, 40, seed=3)
    pred = predictions(qm, x)
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(40) < 0.7, pred, rng.integers(0, 10, 40))
    results = secure_count_in_process(qm, x, labels, seed=b"p", per_label=True, batch=16)
    correct = pred == labels
    want = [int(np.count_nonzero(correct & (labels == c))) for c in range(10)]
    for r in results:
        assert r.count == plaintext_count(qm, x, labels)
        assert list(r.per_label or ()) == want


def test_smaller_sign_bit_gives_the_same_count_when_values_fit():
    config = tiny_config()
    qm = random_classifier(config, key=3)
    x = random_images(config, 12, seed=4)
    labels = np.arange(12) % 10
    bits = required_sign_bits(qm, x)
    assert bits < 63
    full = secure_count_in_process(qm, x, labels, seed=b"b")
    small = secure_count_in_process(qm, x, labels, seed=b"b", sign_bit=bits)
    assert full[0].count == small[0].count == plaintext_count(qm, x, labels)
    assert small[0].cost.bytes_sent < full[0].cost.bytes_sent


def test_one_dimensional_taylor_sigmoid_model():
    import jax

    from cipherfuse.nn.model import TrainedModel, init_params

    config = ModelConfig(
        "c1d",
        (12, 2),
        (
            ConvSpec(3, (3,), activation="taylor_sigmoid"),
            PoolSpec("avg", (2,)),
            FlattenSpec(),
            DenseSpec(5, activation="relu"),
        ),
        num_classes=3,
    )
    trained = TrainedModel(config, init_params(config, jax.random.key(2)), (0, 1, 2))
    qm = quantize_classifier(trained, weight_scale=8, input_scale=8)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 9, size=(10, 12, 2)).astype(np.int64)
    labels = rng.integers(0, 3, size=10)
    results = secure_count_in_process(qm, x, labels, seed=b"t")
    assert results[1].count == plaintext_count(qm, x, labels)


def test_count_rejects_mismatched_labels():
    from cipherfuse.mpc.errors import EncodingError

    qm = random_classifier(tiny_config(), key=0)
    x = random_images(tiny_config(), 3, seed=0)
    with pytest.raises(EncodingError):
        plaintext_count(qm, x, [1, 2])


def test_cost_meter_accounts_for_every_byte_sent():
    from cipherfuse.mpc.runtime import run_three_members
    from cipherfuse.mpc.transport import in_memory_network

    config = tiny_config()
    qm = random_classifier(config, key=4)
    x = random_images(config, 5, seed=2)
    transports = in_memory_network(30.0)
    results = run_three_members(share_model(qm).bundles, transports, x, np.arange(5))
    for r, t in zip(results, transports, strict=True):
        assert r.cost.bytes_sent == t.bytes_sent
        assert r.cost.phases["0:conv"].bytes_sent == 0  # public images x secret weights
