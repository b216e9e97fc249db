"""PoW integrity (paper Sec. VI-A, Eqs. 14-16, Fig. 8): can an attacker rewrite a confirmed block?

An attacker holding a share ``q`` of the mining power (``m`` of ``n`` equal nodes, ``q = m/n``)
mines a private chain while the honest nodes (share ``p = 1 - q``) add ``z`` confirmation
blocks on top of the block to be rewritten. The attack succeeds if the private chain ever
catches up with the public one.

Three ways to get that probability, all here:

- :func:`catch_up_probability` -- the paper's Eq. (16), which is Nakamoto's formula
  (Bitcoin paper, Sec. 11): the attacker's progress while the honest nodes find ``z``
  blocks is approximated by a Poisson variable of mean ``lambda = z q / p``, then the
  gambler's-ruin probability of Eq. (14) covers the remaining deficit.
- :func:`catch_up_probability_exact` -- the same race without the Poisson approximation:
  the attacker's progress is negative-binomial (Rosenfeld 2014, "Analysis of hashrate-based
  double spending"). This is the probability the block-by-block race actually has.
- :func:`simulate_race` -- a Monte Carlo simulation of that race among ``n`` nodes of which
  ``m`` are compromised, optionally with the paper's budget of a finite number of block
  intervals. It estimates the exact probability (see ``tests/analysis``).

:func:`confirmations_for_risk` gives the confirmation depth needed for a target risk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

from cipherfuse.analysis.experiment import ExperimentResult
from cipherfuse.errors import ParameterError
from cipherfuse.validation import strict_int

Model = Literal["eq16", "exact"]
MODELS: tuple[Model, ...] = ("eq16", "exact")

#: The paper's compromised-node counts out of 1,000 nodes (Sec. VI-A-1).
PAPER_COMPROMISED = (50, 100, 200, 300, 340, 400)
PAPER_NODES = 1000
#: The paper's "practical" attacker budget: 1,000 block intervals.
PAPER_HORIZON = 1000


def _check_share(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= float(q) <= 1.0:
        raise ParameterError(f"attacker share q must be a number in [0, 1], got {q!r}")
    return float(q)


def _check_depth(z: int, name: str = "z") -> int:
    return strict_int(z, name, minimum=0, numpy=True, error=ParameterError)


def attacker_share(compromised: int, nodes: int = PAPER_NODES) -> float:
    """``q = m / n``: block-discovery share of ``compromised`` of ``nodes`` equal nodes."""
    nodes = _check_depth(nodes, "nodes")
    compromised = _check_depth(compromised, "compromised")
    if nodes < 1 or compromised > nodes:
        raise ParameterError(
            f"need 1 <= nodes and 0 <= compromised <= nodes, got {compromised} of {nodes}"
        )
    return compromised / nodes


def gamblers_ruin(q: float, deficit: int) -> float:
    """Eq. (14): probability of ever catching up from ``deficit`` blocks behind."""
    q = _check_share(q)
    deficit = _check_depth(deficit, "deficit")
    p = 1.0 - q
    if p <= q:
        return 1.0
    return (q / p) ** deficit


def catch_up_probability(q: float, z: int) -> float:
    """Eq. (16) (Nakamoto's formula): attack success probability after ``z`` confirmations.

    ``sum_k Poisson(k; z q/p) * (q/p)^(z-k) if k <= z else 1``, evaluated as a sum of
    non-negative terms (no cancellation), so tiny risks keep their relative precision.
    """
    q = _check_share(q)
    z = _check_depth(z)
    p = 1.0 - q
    if z == 0 or p <= q:
        return 1.0
    if q == 0.0:
        return 0.0
    lam = z * q / p
    k = np.arange(z + 1)
    head = stats.poisson.pmf(k, lam) * (q / p) ** (z - k)
    return float(min(1.0, np.sum(head) + stats.poisson.sf(z, lam)))


def catch_up_probability_exact(q: float, z: int) -> float:
    """The block-by-block race without Eq. (16)'s Poisson approximation.

    While the honest nodes find ``z`` blocks the attacker finds ``K`` blocks, ``K`` negative
    binomial (failures before ``z`` successes of probability ``p``); then Eq. (14) applies.
    """
    q = _check_share(q)
    z = _check_depth(z)
    p = 1.0 - q
    if z == 0 or p <= q:
        return 1.0
    if q == 0.0:
        return 0.0
    k = np.arange(z)
    head = stats.nbinom.pmf(k, z, p) * (q / p) ** (z - k)
    return float(min(1.0, np.sum(head) + stats.nbinom.sf(z - 1, z, p)))


def probability(q: float, z: int, model: Model = "eq16") -> float:
    """Catch-up probability under ``model`` (``"eq16"`` or ``"exact"``)."""
    if model == "eq16":
        return catch_up_probability(q, z)
    if model == "exact":
        return catch_up_probability_exact(q, z)
    raise ParameterError(f"model must be one of {MODELS}, got {model!r}")


def _check_target(target: float) -> float:
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise ParameterError(f"target risk must be in (0, 1), e.g. 0.01 for 1 %, got {target!r}")
    return float(target)


def confirmations_for_risk(
    q: float, target: float, *, model: Model = "eq16", z_max: int = 100_000
) -> int:
    """The smallest ``z`` with catch-up probability below ``target``.

    Raises :class:`ParameterError` when ``q >= 0.5`` (no depth is ever safe) or when no
    ``z <= z_max`` reaches the target.
    """
    q = _check_share(q)
    target = _check_target(target)
    if q >= 0.5:
        raise ParameterError(
            f"an attacker with share q={q} >= 0.5 always catches up; no confirmation depth"
            " is safe (reduce the compromised share below one half)"
        )
    # The risk falls roughly geometrically in z: bracket by doubling, then bisect
    # (the closed forms are monotone non-increasing in z for q < 1/2).
    if probability(q, 0, model) < target:
        return 0
    hi = 1
    while probability(q, hi, model) >= target:
        if hi >= z_max:
            raise ParameterError(
                f"no z <= z_max={z_max} gives a risk below {target} at q={q}; raise z_max"
            )
        hi = min(2 * hi, z_max)
    lo = hi // 2  # probability(lo) >= target (lo == 0 handled above)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probability(q, mid, model) < target:
            hi = mid
        else:
            lo = mid
    return hi


def wilson_interval(successes: int, trials: int, z_score: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95 %)."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ParameterError(
            f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}"
        )
    phat = successes / trials
    denom = 1.0 + z_score**2 / trials
    centre = (phat + z_score**2 / (2 * trials)) / denom
    half = z_score * math.sqrt(phat * (1 - phat) / trials + z_score**2 / (4 * trials**2)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class RaceSimulation:
    """Monte Carlo outcome: ``successes[z]`` of ``trials`` races won from ``z`` confirmations."""

    nodes: int
    compromised: int
    trials: int
    horizon: int | None
    epsilon: float
    successes: npt.NDArray[np.int64]

    @property
    def q(self) -> float:
        """The attacker's share ``m / n``."""
        return self.compromised / self.nodes

    @property
    def z_max(self) -> int:
        """The largest depth simulated."""
        return len(self.successes) - 1

    def probability(self, z: int) -> float:
        """Estimated catch-up probability after ``z`` confirmations."""
        return float(self.successes[self._index(z)]) / self.trials

    def interval(self, z: int, z_score: float = 1.959964) -> tuple[float, float]:
        """Wilson interval of :meth:`probability` (default 95 %)."""
        return wilson_interval(int(self.successes[self._index(z)]), self.trials, z_score)

    def confirmations_for_risk(self, target: float) -> int:
        """Smallest simulated ``z`` whose estimated risk is below ``target``."""
        target = _check_target(target)
        below = np.nonzero(self.successes < target * self.trials)[0]
        if below.size == 0:
            raise ParameterError(
                f"no simulated z <= {self.z_max} has risk below {target}; simulate a larger z_max"
            )
        return int(below[0])

    def _index(self, z: int) -> int:
        z = _check_depth(z)
        if z > self.z_max:
            raise ParameterError(f"z={z} was not simulated (z_max={self.z_max})")
        return z


def simulate_race(
    compromised: int,
    nodes: int = PAPER_NODES,
    *,
    z_max: int,
    trials: int,
    seed: int,
    horizon: int | None = PAPER_HORIZON,
    epsilon: float = 1e-9,
    chunk: int = 64,
) -> RaceSimulation:
    """Simulate the mining race block by block, for every depth ``0..z_max`` at once.

    Each block interval one of ``nodes`` equally powerful nodes finds the next block
    (uniformly at random); it extends the attacker's private chain if its index is below
    ``compromised``, else the public chain. With ``H`` honest and ``A`` attacker blocks so
    far, the attack against ``z`` confirmations succeeds iff at some time ``H >= z`` and
    ``A >= H``; so one path answers every ``z``: it succeeds for all ``z <= M`` with
    ``M = max{H : A >= H}`` over the path.

    A path stops when ``M >= z_max``, after ``horizon`` block intervals (the paper's finite
    attacker budget; ``None`` for unlimited), or once the attacker is ``D`` blocks behind
    with ``(q/p)^D <= epsilon``: by Eq. (14) it would catch up again with probability at
    most ``epsilon``, which bounds the bias of counting it as a failure.

    Vectorized over trials with numpy, ``chunk`` blocks per step; seeded and reproducible.
    """
    q = attacker_share(compromised, nodes)
    z_max = _check_depth(z_max, "z_max")
    strict_int(trials, "trials", minimum=1, error=ParameterError)
    if horizon is not None and (not isinstance(horizon, int) or horizon < 1):
        raise ParameterError(
            f"horizon must be a positive number of block intervals or None, got {horizon!r}"
        )
    if not 0 < epsilon < 1:
        raise ParameterError(f"epsilon must be in (0, 1), got {epsilon!r}")
    if q >= 0.5 and horizon is None:
        raise ParameterError(
            f"with q={q} >= 0.5 the attacker always catches up; an unlimited race never ends"
            " (pass a finite horizon)"
        )
    if chunk < 1:
        raise ParameterError(f"chunk must be >= 1, got {chunk}")
    if q == 0:
        deficit_cut: float = 1  # one block behind with no mining power: never catches up
    elif q >= 0.5:
        deficit_cut = math.inf
    else:
        deficit_cut = math.ceil(math.log(epsilon) / math.log(q / (1 - q)))
    rng = np.random.default_rng(seed)
    best = np.zeros(trials, dtype=np.int64)  # M so far (A >= H holds at t = 0 with H = 0)
    honest = np.zeros(trials, dtype=np.int64)
    attacker = np.zeros(trials, dtype=np.int64)
    alive = np.arange(trials)
    elapsed = 0
    steps = np.arange(1, chunk + 1, dtype=np.int64)
    while alive.size and (horizon is None or elapsed < horizon):
        width = chunk if horizon is None else min(chunk, horizon - elapsed)
        winners = rng.integers(0, nodes, size=(alive.size, width), dtype=np.int32)
        cum_attacker = np.cumsum(winners < compromised, axis=1, dtype=np.int64)
        path_attacker = attacker[alive, None] + cum_attacker
        path_honest = honest[alive, None] + (steps[:width] - cum_attacker)
        caught = np.where(path_attacker >= path_honest, path_honest, -1).max(axis=1)
        best[alive] = np.maximum(best[alive], caught)
        attacker[alive] = path_attacker[:, -1]
        honest[alive] = path_honest[:, -1]
        elapsed += width
        finished = (best[alive] >= z_max) | (honest[alive] - attacker[alive] >= deficit_cut)
        alive = alive[~finished]
    capped = np.minimum(best, z_max)
    # successes[z] = #{paths with M >= z}
    counts = np.bincount(capped, minlength=z_max + 1)
    successes = np.cumsum(counts[::-1])[::-1].astype(np.int64)
    return RaceSimulation(nodes, compromised, trials, horizon, epsilon, successes)


#: Figures the paper prints in Sec. VI-A-1 (q = 34 %, risk below 1 %, i.e. "confidence above 99 %").
PAPER_DEPTH_THEORY_34 = 29.0
PAPER_DEPTH_PRACTICAL_34 = 19.0
#: Confirmation depths reported for each risk target, and the depths of the risk curves.
RISK_TARGETS = (0.01, 0.001)
CURVE_DEPTHS = tuple(range(0, 61, 5))
MC_LABEL = f"MC {PAPER_HORIZON} intervals"


def risk_row_name(compromised: int, z: int, label: str) -> str:
    """Row name of one point of a risk curve (parsed back by the report's plot)."""
    return f"risk m={compromised} z={z} [{label}]"


def depth_row_name(compromised: int, target: float, label: str) -> str:
    """Row name of a confirmation depth for a target risk."""
    return f"depth risk<{target * 100:g}% m={compromised} [{label}]"


def run_pow_experiment(
    *,
    seed: int,
    quick: bool,
    trials: int | None = None,
    compromised: tuple[int, ...] = PAPER_COMPROMISED,
) -> ExperimentResult:
    """Fig. 8 and the depths of Sec. VI-A-1: Eq. (16), the exact race and its simulation.

    Rows: for each ``m``, the depth needed for 1 % and 0.1 % risk under Eq. (16), under the
    exact race and from the simulation with the paper's 1,000-interval budget; and the risk
    curves at ``z = 0, 5, ..., 60``. The paper prints two of these numbers (q = 34 %, 99 %
    confidence: 29 theoretical, 19 practical).
    """
    n_trials = trials if trials is not None else (20_000 if quick else 200_000)
    z_max = max(
        confirmations_for_risk(attacker_share(m), min(RISK_TARGETS), model="exact")
        for m in compromised
    )
    z_max = max(z_max + 20, max(CURVE_DEPTHS))
    result = ExperimentResult("pow", seed, quick)
    result.meta.update(
        {
            "nodes": PAPER_NODES,
            "compromised": list(compromised),
            "trials": n_trials,
            "horizon_intervals": PAPER_HORIZON,
            "epsilon": 1e-9,
            "z_max": z_max,
        }
    )
    labels = ("Eq. 16", "exact", MC_LABEL)
    for i, m in enumerate(compromised):
        q = attacker_share(m)
        sim = simulate_race(m, z_max=z_max, trials=n_trials, seed=seed + i, horizon=PAPER_HORIZON)
        for target in RISK_TARGETS:
            depths = (
                confirmations_for_risk(q, target, model="eq16"),
                confirmations_for_risk(q, target, model="exact"),
                sim.confirmations_for_risk(target),
            )
            for label, depth in zip(labels, depths, strict=True):
                paper = None
                if m == 340 and target == 0.01:
                    paper = PAPER_DEPTH_THEORY_34 if label == "Eq. 16" else None
                    paper = PAPER_DEPTH_PRACTICAL_34 if label == MC_LABEL else paper
                result.add(depth_row_name(m, target, label), depth, "blocks", paper=paper)
        for z in CURVE_DEPTHS:
            risks = (
                catch_up_probability(q, z),
                catch_up_probability_exact(q, z),
                sim.probability(z),
            )
            for label, risk in zip(labels, risks, strict=True):
                result.add(risk_row_name(m, z, label), 100.0 * risk, "%")
    return result
