"""PoW integrity: closed forms against published and independent references, and the simulation."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest

from cipherfuse.analysis.pow import (
    PAPER_COMPROMISED,
    attacker_share,
    catch_up_probability,
    catch_up_probability_exact,
    confirmations_for_risk,
    gamblers_ruin,
    risk_row_name,
    run_pow_experiment,
    simulate_race,
    wilson_interval,
)
from cipherfuse.errors import ParameterError

# Nakamoto, "Bitcoin: A Peer-to-Peer Electronic Cash System" (2008), Sec. 11.
NAKAMOTO_Q10 = {
    0: 1.0,
    1: 0.2045873,
    2: 0.0509779,
    3: 0.0131722,
    4: 0.0034552,
    5: 0.0009137,
    6: 0.0002428,
    7: 0.0000647,
    8: 0.0000173,
    9: 0.0000046,
    10: 0.0000012,
}
NAKAMOTO_Q30 = {
    0: 1.0,
    5: 0.1773523,
    10: 0.0416605,
    15: 0.0101008,
    20: 0.0024804,
    25: 0.0006132,
    30: 0.0001522,
    35: 0.0000379,
    40: 0.0000095,
    45: 0.0000024,
    50: 0.0000006,
}
NAKAMOTO_DEPTH_FOR_0_1_PERCENT = {
    0.10: 5,
    0.15: 8,
    0.20: 11,
    0.25: 15,
    0.30: 24,
    0.35: 41,
    0.40: 89,
    0.45: 340,
}


def nakamoto_c_code(q: float, z: int) -> float:
    """Transliteration of the C function printed in Nakamoto's paper (an independent path)."""
    p = 1.0 - q
    lam = z * (q / p)
    total = 1.0
    for k in range(z + 1):
        poisson = math.exp(-lam)
        for i in range(1, k + 1):
            poisson *= lam / i
        total -= poisson * (1 - (q / p) ** (z - k))
    return total


def rosenfeld_exact(q: Fraction, z: int) -> Fraction:
    """Rosenfeld (2014), exact catch-up probability, in rational arithmetic.

    ``1 - sum_{k=0}^{z} C(k+z-1, k) (p^z q^k - p^k q^z)`` for ``z >= 1``.
    """
    p = 1 - q
    return 1 - sum(math.comb(k + z - 1, k) * (p**z * q**k - p**k * q**z) for k in range(z + 1))


@pytest.mark.parametrize(("q", "table"), [(0.1, NAKAMOTO_Q10), (0.3, NAKAMOTO_Q30)])
def test_eq16_matches_nakamotos_published_table(q: float, table: dict[int, float]) -> None:
    for z, published in table.items():
        assert round(catch_up_probability(q, z), 7) == pytest.approx(published, abs=1e-12)


def test_eq16_depth_for_0_1_percent_matches_nakamotos_table() -> None:
    for q, depth in NAKAMOTO_DEPTH_FOR_0_1_PERCENT.items():
        assert confirmations_for_risk(q, 0.001, model="eq16") == depth


def test_eq16_matches_nakamotos_c_code_over_a_grid() -> None:
    for q in (0.01, 0.05, 0.1, 0.2, 0.3, 0.34, 0.4, 0.45):
        for z in (1, 2, 3, 7, 13, 29, 60):
            ref = nakamoto_c_code(q, z)
            if ref > 1e-9:  # the C code's 1 - sum loses relative precision below that
                assert catch_up_probability(q, z) == pytest.approx(ref, rel=1e-7)


def test_exact_race_matches_rosenfeld_in_rational_arithmetic() -> None:
    for q in (Fraction(1, 20), Fraction(1, 10), Fraction(3, 10), Fraction(34, 100), Fraction(2, 5)):
        for z in (1, 2, 5, 10, 24, 40):
            ref = float(rosenfeld_exact(q, z))
            assert catch_up_probability_exact(float(q), z) == pytest.approx(ref, rel=1e-9)


def test_eq16_underestimates_the_exact_race_at_useful_depths() -> None:
    # The Poisson approximation is the paper's (and Nakamoto's); at the depths one would
    # actually wait for, the exact race is riskier (at z = 1, 2 it can be the other way).
    assert catch_up_probability(0.3, 2) > catch_up_probability_exact(0.3, 2)
    for q in (0.1, 0.2, 0.3, 0.34, 0.4):
        for z in (10, 20, 40):
            assert catch_up_probability(q, z) < catch_up_probability_exact(q, z)
    # So the depth Eq. (16) recommends for a 1 % risk leaves more than 1 % in the real race.
    for q in (0.2, 0.3, 0.34, 0.4):
        depth = confirmations_for_risk(q, 0.01, model="eq16")
        assert catch_up_probability_exact(q, depth) > 0.01


def test_edge_cases_and_eq14() -> None:
    assert catch_up_probability(0.3, 0) == 1.0
    assert catch_up_probability_exact(0.3, 0) == 1.0
    assert catch_up_probability(0.0, 5) == 0.0
    assert catch_up_probability(0.5, 10) == 1.0  # p <= q: Eq. (14) gives 1
    assert catch_up_probability_exact(0.6, 10) == 1.0
    assert gamblers_ruin(0.25, 3) == pytest.approx((1 / 3) ** 3)
    assert gamblers_ruin(0.5, 3) == 1.0
    assert attacker_share(340) == pytest.approx(0.34)


def test_depth_search_equals_a_linear_scan() -> None:
    for q in (0.05, 0.2, 0.34, 0.4):
        for target in (0.05, 0.01, 0.001):
            for model in ("eq16", "exact"):
                z = 0
                while (
                    catch_up_probability(q, z)
                    if model == "eq16"
                    else catch_up_probability_exact(q, z)
                ) >= target:
                    z += 1
                assert confirmations_for_risk(q, target, model=model) == z  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: catch_up_probability(1.5, 3), "q must be a number in"),
        (lambda: catch_up_probability(0.3, -1), "z must be a non-negative integer"),
        (lambda: confirmations_for_risk(0.5, 0.01), "always catches up"),
        (lambda: confirmations_for_risk(0.3, 0.0), "target risk must be in"),
        (lambda: confirmations_for_risk(0.49, 1e-12, z_max=50), "raise z_max"),
        (lambda: attacker_share(1001, 1000), "compromised <= nodes"),
        (lambda: simulate_race(600, z_max=5, trials=10, seed=0, horizon=None), "never ends"),
        (lambda: simulate_race(100, z_max=5, trials=0, seed=0), "trials must be"),
        (lambda: wilson_interval(5, 3), "successes <= trials"),
    ],
)
def test_bad_parameters_raise_typed_errors(call: object, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(("m", "horizon"), [(100, None), (300, 1000), (400, None)])
def test_simulation_agrees_with_the_exact_race_within_its_interval(
    m: int, horizon: int | None
) -> None:
    q = m / 1000
    sim = simulate_race(m, z_max=40, trials=40_000, seed=11 + m, horizon=horizon)
    for z in (0, 1, 2, 5, 10, 20, 40):
        exact = catch_up_probability_exact(q, z)
        low, high = sim.interval(z, z_score=3.9)  # 99.99 %: many comparisons, fixed seed
        assert low - sim.epsilon <= exact <= high, (z, sim.probability(z), exact)


def test_simulation_rejects_eq16_where_the_approximation_is_off() -> None:
    sim = simulate_race(300, z_max=20, trials=40_000, seed=5, horizon=1000)
    low, high = sim.interval(20, z_score=3.9)
    assert not low <= catch_up_probability(0.3, 20) <= high
    assert low <= catch_up_probability_exact(0.3, 20) <= high


def test_finite_horizon_matches_its_own_closed_form() -> None:
    # Within 10 intervals, 5 confirmations can only be caught up at t = 10 with A = H = 5.
    q = 0.3
    expected = math.comb(10, 5) * q**5 * (1 - q) ** 5
    sim = simulate_race(300, z_max=6, trials=40_000, seed=2, horizon=10)
    low, high = sim.interval(5, z_score=3.9)
    assert low <= expected <= high
    assert sim.successes[6] == 0  # 6 confirmations need at least 12 intervals


def test_simulation_is_seeded_and_monotone() -> None:
    a = simulate_race(340, z_max=30, trials=5_000, seed=7)
    b = simulate_race(340, z_max=30, trials=5_000, seed=7)
    c = simulate_race(340, z_max=30, trials=5_000, seed=8)
    assert (a.successes == b.successes).all()
    assert (a.successes != c.successes).any()
    assert a.successes[0] == a.trials
    assert all(a.successes[i] >= a.successes[i + 1] for i in range(a.z_max))


def test_experiment_rows_carry_the_papers_numbers() -> None:
    result = run_pow_experiment(seed=0, quick=True, trials=2_000, compromised=(340,))
    printed = {r.name: r.paper for r in result.rows if r.paper is not None}
    assert printed == {
        "depth risk<1% m=340 [Eq. 16]": 29.0,
        "depth risk<1% m=340 [MC 1000 intervals]": 19.0,
    }
    assert result.row("depth risk<1% m=340 [Eq. 16]").ours == 24.0  # Eq. (16) itself
    assert result.row("depth risk<1% m=340 [exact]").ours == 31.0
    assert result.row(risk_row_name(340, 0, "Eq. 16")).ours == 100.0
    assert PAPER_COMPROMISED == (50, 100, 200, 300, 340, 400)


def test_cli_json_records_the_reproducing_command(capsys: pytest.CaptureFixture[str]) -> None:
    from cipherfuse.analysis.experiment import ExperimentResult
    from cipherfuse.cli.main import main

    assert main(["reproduce", "pow", "--quick", "--trials", "500", "--seed", "4", "--json"]) == 0
    result = ExperimentResult.from_dict(json.loads(capsys.readouterr().out))
    assert result.meta["command"] == "cipherfuse reproduce pow --seed 4 --quick --trials 500"
    assert result.meta["trials"] == 500 and result.seed == 4 and result.quick
    assert main(["reproduce", "pow", "--trials", "5"]) != 0  # below the minimum of 100
