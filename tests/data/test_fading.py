"""Synthetic fading-channel data: layout, determinism and the channel statistics."""

from __future__ import annotations

import numpy as np
import pytest

from cipherfuse.data import FadingConfig, generate_link_power, make_fading_sets
from cipherfuse.errors import ParameterError


def test_paper_layout_and_determinism() -> None:
    sets = make_fading_sets(n_sets=4, train_size=1000, test_size=100, seed=5)
    assert len(sets) == 4
    for s in sets:
        assert s.train_x.shape == (1000, 64, 1)
        assert s.test_x.shape == (100, 64, 1)
        assert s.train_x.dtype == np.float32
        assert s.train_y.sum() in range(450, 551)
        assert set(np.unique(s.test_y).tolist()) == {0, 1}
    again = make_fading_sets(n_sets=4, train_size=1000, test_size=100, seed=5)
    np.testing.assert_array_equal(sets[2].train_x, again[2].train_x)
    assert not np.array_equal(sets[0].train_x, sets[1].train_x)


def _linear_power(n: int, config: FadingConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    _, y, power_db = generate_link_power(n, config, np.random.default_rng(seed))
    return 10 ** (power_db / 10), y


def test_rayleigh_power_is_exponential_and_static_link_is_flat() -> None:
    # Noise-free, no offset, Rayleigh only: |h|^2 of a unit-power complex Gaussian
    # process is Exp(1): mean 1, variance 1, P(|h|^2 < ln 2) = 1/2.
    cfg = FadingConfig(snr_db=80.0, offset_db=(0.0, 0.0), rician_fraction=0.0, n_sinusoids=64)
    power, y = _linear_power(4000, cfg, 1)
    fading = power[y == 1]
    assert abs(fading.mean() - 1.0) < 0.05
    assert abs(fading.var() - 1.0) < 0.15
    assert abs(np.mean(fading < np.log(2)) - 0.5) < 0.03
    static = power[y == 0]
    np.testing.assert_allclose(static, 1.0, atol=1e-3)


def test_rician_is_less_deep_than_rayleigh_and_noise_sets_floor() -> None:
    base = {"snr_db": 80.0, "offset_db": (0.0, 0.0)}
    rayleigh, y1 = _linear_power(3000, FadingConfig(rician_fraction=0.0, **base), 2)
    rician, y2 = _linear_power(
        3000, FadingConfig(rician_fraction=1.0, rician_k_db=(10.0, 10.0), **base), 2
    )
    assert rician[y2 == 1].var() < 0.5 * rayleigh[y1 == 1].var()
    # static link under AWGN at 10 dB SNR: mean power 1 + 1/SNR
    noisy, y3 = _linear_power(3000, FadingConfig(snr_db=10.0, offset_db=(0.0, 0.0)), 3)
    assert abs(noisy[y3 == 0].mean() - 1.1) < 0.02


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 2},
        {"doppler_hz": (0.0, 10.0)},
        {"doppler_hz": (10.0, 600.0)},
        {"rician_fraction": 1.5},
        {"n_sinusoids": 0},
        {"offset_db": (3.0, -3.0)},
    ],
)
def test_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        generate_link_power(10, FadingConfig(**kwargs), np.random.default_rng(0))  # type: ignore[arg-type]
