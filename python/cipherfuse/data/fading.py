"""Synthetic link-power data for fading-channel detection (stand-in for Case Study V).

The paper's Case V uses confidential NASA Glenn link-power data. This generator
produces an openly reproducible substitute with the same task shape: windows of
received link power over time, labelled 1 (fading channel) or 0 (non-fading).

Model (complex baseband, one sample every ``1 / sample_rate_hz`` seconds)::

    r(t) = h(t) + n(t),    n ~ CN(0, 1 / SNR),    received power P(t) = |r(t)|^2

* non-fading: ``h(t) = exp(j*theta)`` (a static line-of-sight link);
* Rayleigh fading: ``h(t) = g(t)``;
* Rician fading:   ``h(t) = sqrt(K/(K+1)) exp(j*theta) + sqrt(1/(K+1)) g(t)``,

where ``g(t)`` is Clarke's unit-power sum-of-sinusoids process
``g(t) = M^-1/2 * sum_m exp(j(2 pi f_d cos(alpha_m) t + phi_m))`` with random
arrival angles ``alpha_m`` and phases ``phi_m``, and ``f_d`` the maximum Doppler
shift drawn per window from ``doppler_hz``. Each window also gets a random link
budget offset (``offset_db``) so that the absolute level carries no label
information. The model input is the window's power in dB, centred on its own
mean and divided by 10 (shape ``(window, 1)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cipherfuse.errors import ParameterError


@dataclass(frozen=True)
class FadingConfig:
    """Generator parameters (all documented in the module docstring).

    Attributes:
        window: samples per example.
        sample_rate_hz: sampling rate of the power measurements.
        doppler_hz: (low, high) range of the maximum Doppler shift for fading windows.
        snr_db: mean signal-to-noise ratio of the AWGN.
        rician_fraction: fraction of fading windows that are Rician (others Rayleigh).
        rician_k_db: (low, high) range of the Rician K-factor in dB.
        offset_db: (low, high) range of the per-window link-budget offset.
        n_sinusoids: sinusoids in Clarke's model.
    """

    window: int = 64
    sample_rate_hz: float = 1000.0
    doppler_hz: tuple[float, float] = (1.0, 50.0)
    snr_db: float = 10.0
    rician_fraction: float = 0.5
    rician_k_db: tuple[float, float] = (0.0, 12.0)
    offset_db: tuple[float, float] = (-10.0, 10.0)
    n_sinusoids: int = 16

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first out-of-range field."""
        if self.window < 4:
            raise ParameterError(f"window must be >= 4 samples, got {self.window}")
        if self.sample_rate_hz <= 0:
            raise ParameterError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz}")
        lo, hi = self.doppler_hz
        if not 0 < lo <= hi < self.sample_rate_hz / 2:
            raise ParameterError(
                f"doppler_hz must satisfy 0 < low <= high < sample_rate_hz/2, got {self.doppler_hz}"
            )
        if not 0.0 <= self.rician_fraction <= 1.0:
            raise ParameterError(f"rician_fraction must be in [0, 1], got {self.rician_fraction}")
        if self.rician_k_db[0] > self.rician_k_db[1]:
            raise ParameterError(f"rician_k_db must be (low, high), got {self.rician_k_db}")
        if self.offset_db[0] > self.offset_db[1]:
            raise ParameterError(f"offset_db must be (low, high), got {self.offset_db}")
        if self.n_sinusoids < 1:
            raise ParameterError(f"n_sinusoids must be >= 1, got {self.n_sinusoids}")


@dataclass(frozen=True)
class FadingSet:
    """One set: training and test windows with labels (1 = fading)."""

    train_x: npt.NDArray[np.float32]
    train_y: npt.NDArray[np.int64]
    test_x: npt.NDArray[np.float32]
    test_y: npt.NDArray[np.int64]


def generate_link_power(
    n: int, config: FadingConfig, rng: np.random.Generator, *, chunk: int = 2048
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Generate ``n`` windows (half fading, in random order).

    Returns:
        ``(x, y, power_db)``: model inputs ``(n, window, 1)``, labels ``(n,)`` and the
        raw received power in dB ``(n, window)`` including the link-budget offset.
    """
    config.validate()
    if n < 0:
        raise ParameterError(f"n must be >= 0, got {n}")
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    t = np.arange(config.window) / config.sample_rate_hz
    noise_var = 10.0 ** (-config.snr_db / 10.0)
    power_db = np.empty((n, config.window), dtype=np.float64)
    for start in range(0, n, chunk):
        y = labels[start : start + chunk]
        m = y.shape[0]
        theta = rng.uniform(0, 2 * np.pi, size=(m, 1))
        los = np.exp(1j * theta)
        fd = rng.uniform(*config.doppler_hz, size=(m, 1, 1))
        alpha = rng.uniform(0, 2 * np.pi, size=(m, 1, config.n_sinusoids))
        phi = rng.uniform(0, 2 * np.pi, size=(m, 1, config.n_sinusoids))
        phase = 2 * np.pi * fd * np.cos(alpha) * t[None, :, None] + phi
        g = np.exp(1j * phase).sum(axis=2) / np.sqrt(config.n_sinusoids)
        k_db = rng.uniform(*config.rician_k_db, size=(m, 1))
        k = 10.0 ** (k_db / 10.0)
        rician = rng.uniform(size=(m, 1)) < config.rician_fraction
        k = np.where(rician, k, 0.0)
        fading = np.sqrt(k / (k + 1)) * los + np.sqrt(1 / (k + 1)) * g
        h = np.where(y[:, None] == 1, fading, los)
        noise = np.sqrt(noise_var / 2) * (
            rng.standard_normal((m, config.window)) + 1j * rng.standard_normal((m, config.window))
        )
        p = np.abs(h + noise) ** 2
        offset = rng.uniform(*config.offset_db, size=(m, 1))
        power_db[start : start + m] = 10 * np.log10(np.maximum(p, 1e-12)) + offset
    x = (power_db - power_db.mean(axis=1, keepdims=True)) / 10.0
    return x[..., None].astype(np.float32), labels, power_db


def make_fading_sets(
    *,
    n_sets: int = 4,
    train_size: int = 10_000,
    test_size: int = 1_000,
    seed: int = 0,
    config: FadingConfig | None = None,
) -> list[FadingSet]:
    """The paper's layout: ``n_sets`` independent sets of ``train_size`` + ``test_size`` windows.

    Set ``i`` is drawn from its own child of ``numpy.random.SeedSequence(seed)``,
    so sets are independent and each is reproducible on its own.
    """
    cfg = config if config is not None else FadingConfig()
    if n_sets < 1 or train_size < 1 or test_size < 1:
        raise ParameterError(
            f"n_sets, train_size and test_size must be >= 1, got {n_sets}, {train_size}, "
            f"{test_size}"
        )
    sets = []
    for child in np.random.SeedSequence(seed).spawn(n_sets):
        rng = np.random.default_rng(child)
        x, y, _ = generate_link_power(train_size + test_size, cfg, rng)
        sets.append(
            FadingSet(
                train_x=x[:train_size],
                train_y=y[:train_size],
                test_x=x[train_size:],
                test_y=y[train_size:],
            )
        )
    return sets
