"""The paper's 1 + 3 + 3 testbed as 7 processes on anvil (secure three-party judging over
loopback channels between the verifier processes), with a contributor process killed
(SIGKILL) after its claim and restarted: the outcome and the money must be as defined."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cipherfuse.chain import NodeError, find_anvil
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.process import run_testbed

REPO = Path(__file__).resolve().parents[2]
PARAMS = demo_task_params()


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    try:
        os.environ.setdefault("CIPHERFUSE_ANVIL", str(find_anvil(REPO)))
    except NodeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide anvil (.ci/setup.d/chain.sh runs npm ci): {exc}")
        pytest.skip(str(exc))
    lines: list[str] = []
    result = run_testbed(
        tmp_path_factory.mktemp("testbed"),
        behaviours=("honest", "honest", "lazy"),
        max_epochs=3,
        timeout=900,
        kill_after_claim=1,
        log=lines.append,
    )
    result["log"] = lines
    return result


def test_seven_processes_reach_the_defined_outcomes(outcome: dict[str, Any]) -> None:
    claims = {c["contributor"]: c for c in outcome["claims"]}
    assert claims[1]["outcome"] == "RELEASED" and claims[2]["outcome"] == "RELEASED"
    assert claims[3]["outcome"] == "REJECTED"
    assert any("killed contributor 1" in line for line in outcome["log"])
    steps = outcome["metamodel_accuracy"]
    # One MetaModel step per released claim, in claim-id order (which contributor claims
    # first depends on the kill and restart).
    released = sorted([claims[1]["claim_id"], claims[2]["claim_id"]])
    assert [s["claim_id"] for s in steps] == released
    assert all(isinstance(s["accuracy"], float) and s["accuracy"] > 0.3 for s in steps)


def test_testbed_money_is_as_defined_and_nothing_is_left(outcome: dict[str, Any]) -> None:
    w = outcome["withdrawn_wei"]
    assert w["contributor 1"] == PARAMS.contributor_deposit + PARAMS.reward_per_model
    assert w["contributor 2"] == PARAMS.contributor_deposit + PARAMS.reward_per_model
    assert w["contributor 3"] == 0
    for i in (1, 2, 3):
        assert w[f"verifier {i}"] == PARAMS.verifier_deposit + 3 * PARAMS.verifier_fee
    paid = 2 * PARAMS.reward_per_model + 9 * PARAMS.verifier_fee
    assert w["initiator"] == PARAMS.budget - paid + PARAMS.contributor_deposit
    assert outcome["contract_balance_wei"] == 0
