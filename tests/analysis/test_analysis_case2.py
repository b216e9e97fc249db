"""Case II: majority-vote closed form, and claims settled by the real contract."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from cipherfuse.analysis.case2 import (
    TABLE_IV,
    VoteScenario,
    majority_probability,
    resolve_backend,
    run_on_chain,
)
from cipherfuse.analysis.pow import wilson_interval
from cipherfuse.errors import ParameterError
from cipherfuse.storage import LocalStore


def brute_force_majority(probabilities: list[float]) -> float:
    """Sum over all 2^n vote patterns (independent reference)."""
    total = 0.0
    n = len(probabilities)
    for pattern in itertools.product((False, True), repeat=n):
        weight = 1.0
        for vote, p in zip(pattern, probabilities, strict=True):
            weight *= p if vote else 1.0 - p
        if sum(pattern) > n // 2:
            total += weight
    return total


def test_closed_form_matches_hand_computed_table_iv_values() -> None:
    # P(>= 2 of 3) = p1 p2 + p1 p3 + p2 p3 - 2 p1 p2 p3
    assert majority_probability([0.8, 0.8, 0.2]) == pytest.approx(0.64 + 0.16 + 0.16 - 2 * 0.128)
    assert majority_probability([0.8, 0.8, 0.2]) == pytest.approx(0.704)
    assert majority_probability([0.1, 0.1, 0.1]) == pytest.approx(0.028)
    assert majority_probability([0.8, 0.8, 0.8]) == pytest.approx(0.896)
    assert majority_probability([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    for scenario in TABLE_IV:
        computed = 100 * majority_probability(scenario.vote_probabilities)
        assert round(computed, 1) == scenario.paper_majority_percent


def test_closed_form_matches_enumeration_for_other_committees() -> None:
    rng = random.Random(4)
    for n in (1, 2, 4, 5, 7):
        probs = [rng.random() for _ in range(n)]
        assert majority_probability(probs) == pytest.approx(brute_force_majority(probs), abs=1e-12)
    assert majority_probability([0.9, 0.9]) == pytest.approx(0.81)  # a tie is no majority


@pytest.mark.parametrize("bad", [[], [0.5, 1.2], [-0.1]])
def test_bad_probabilities_are_rejected(bad: list[float]) -> None:
    with pytest.raises(ParameterError):
        majority_probability(bad)


def test_bad_scenarios_and_trials_are_rejected() -> None:
    with pytest.raises(ParameterError, match="in \\[0, 1\\]"):
        VoteScenario("x", (0.5, 2.0, 0.5), False, 0.0)
    with pytest.raises(ParameterError, match="trials must be"):
        run_on_chain(TABLE_IV[:1], 0, seed=0)
    with pytest.raises(ParameterError, match="same committee size"):
        run_on_chain([TABLE_IV[0], VoteScenario("two", (0.5, 0.5), False, 25.0)], 1, seed=0)


@pytest.mark.slow
def test_claims_settled_by_the_contract_follow_the_closed_form(tmp_path: Path) -> None:
    trials = 15
    honest, lazy = TABLE_IV[0], TABLE_IV[3]  # 80/80/20 % and 10/10/10 %
    store_dir = tmp_path / "store"
    outcomes = run_on_chain([honest, lazy], trials, seed=21, store_dir=store_dir)
    for outcome in outcomes:
        assert outcome.trials == trials
        # The contract's settlement equals the majority of the votes the verifiers cast.
        assert all(on_chain == cast for on_chain, cast in outcome.decisions)
        assert outcome.accepted == sum(on_chain for on_chain, _ in outcome.decisions)
        # Measured acceptance is consistent with the closed form (99.9 % Wilson interval).
        low, high = wilson_interval(outcome.accepted, trials, z_score=3.29)
        assert low <= majority_probability(outcome.scenario.vote_probabilities) <= high
        for i, p in enumerate(outcome.scenario.vote_probabilities):
            low, high = wilson_interval(outcome.positive_votes[i], trials, z_score=3.29)
            assert low <= p <= high
    # Lazy contributors are rejected far more often than honest ones.
    assert outcomes[1].accepted_rate < outcomes[0].accepted_rate
    assert outcomes[1].accepted_rate <= 0.2
    # Every claimed model was really uploaded: one pinned object per claim.
    assert len(LocalStore(store_dir).pins()) == 2 * trials


def test_the_trials_run_on_a_real_anvil_node_too() -> None:
    """``backend="anvil"``: same contract, same checks, a real node on 127.0.0.1."""
    from tests.chain.conftest import anvil_binary_or_skip

    anvil_binary_or_skip()
    sure = VoteScenario("all positive", (1.0, 1.0, 1.0), False, 100.0)
    never = VoteScenario("all negative", (0.0, 0.0, 0.0), True, 0.0)
    split = TABLE_IV[0]
    outcomes = run_on_chain([sure, never, split], 4, seed=5, backend="anvil")
    assert [o.accepted for o in outcomes[:2]] == [4, 0]
    for outcome in outcomes:
        assert outcome.trials == 4
        assert all(on_chain == cast for on_chain, cast in outcome.decisions)
    assert resolve_backend("anvil") == "anvil" and resolve_backend("embedded") == "embedded"
    assert resolve_backend("auto") == "anvil"  # found, as the check above required
    with pytest.raises(ParameterError, match="backend must be"):
        resolve_backend("ganache")  # type: ignore[arg-type]
