"""The Case V model learns to detect fading on the synthetic link-power data."""

from __future__ import annotations

import jax

from cipherfuse.data import make_fading_sets
from cipherfuse.nn import TrainConfig, accuracy, case5_config, train_classifier


def test_case5_cnn_detects_fading() -> None:
    (data,) = make_fading_sets(n_sets=1, train_size=3000, test_size=1000, seed=1)
    result = train_classifier(
        case5_config(),
        data.train_x,
        data.train_y,
        data.test_x,
        data.test_y,
        jax.random.key(0),
        TrainConfig(learning_rate=1e-3, max_epochs=8, target_accuracy=0.9, progress=False),
    )
    # chance is 50 %; the paper reports about 93 % on its (different) real data
    assert accuracy(result.model, data.test_x, data.test_y) >= 0.9
