"""The demo end to end on embedded defaults (real training, HE encryption, cipherspace
judging, chain and store), with small data so it runs in CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cipherfuse.cli.main import main
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.demo import DemoConfig, run_demo

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
PARAMS = demo_task_params()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cfg = DemoConfig.quick(
        train_size=200,
        verify_size=100,
        fit_size=100,
        check_size=100,
        test_size=200,
        max_epochs=3,
        fusion_epochs=(2, 2),
        threshold=0.5,
        behaviours=("honest", "honest", "lazy"),
        mnist_dir=MNIST if MNIST.is_dir() else None,
    )
    lines: list[str] = []
    result = run_demo(cfg, tmp_path_factory.mktemp("demo"), lines.append)
    result["log"] = lines
    return result


def test_honest_models_are_accepted_released_and_paid(report: dict[str, Any]) -> None:
    claims = {c["contributor"]: c for c in report["claims"]}
    for i in (1, 2):
        assert claims[i]["outcome"] == "RELEASED"
        assert claims[i]["accept_votes"] == 3
        assert report["balances"][f"contributor {i}"]["withdrawn_wei"] == (
            PARAMS.contributor_deposit + PARAMS.reward_per_model
        )


def test_lazy_untrained_model_is_rejected_in_cipherspace(report: dict[str, Any]) -> None:
    lazy = next(c for c in report["claims"] if c["behaviour"] == "lazy")
    assert lazy["outcome"] == "REJECTED" and lazy["reject_votes"] == 3
    assert report["balances"]["contributor 3"]["withdrawn_wei"] == 0
    for decisions in report["judgements"].values():
        verdict = decisions[str(lazy["claim_id"])]
        assert verdict["accept"] is False and verdict["accuracy"] < 0.5


def test_money_adds_up_and_the_contract_is_empty(report: dict[str, Any]) -> None:
    b = report["balances"]
    fee = PARAMS.verifier_fee
    for i in (1, 2, 3):
        assert b[f"verifier {i}"]["withdrawn_wei"] == PARAMS.verifier_deposit + 3 * fee
    paid = 2 * PARAMS.reward_per_model + 9 * fee
    assert b["initiator"]["withdrawn_wei"] == PARAMS.budget - paid + PARAMS.contributor_deposit
    assert report["contract_balance_wei"] == 0 and report["task_holdings_wei"] == 0
    assert all(v["credit_left_wei"] == 0 for v in b.values())


def test_initiator_decrypts_and_fuses_the_accepted_models(report: dict[str, Any]) -> None:
    steps = report["metamodel_accuracy"]
    assert len(steps) == 2 and report["accepted_models"] == 2
    # Two models cover all ten labels: far above one model's ceiling of 50 %.
    assert report["final_accuracy"] > 0.55
    assert any("decrypted table2-contributor" in line for line in report["log"])


def test_secure_params_and_bad_behaviour_give_one_line_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--quick", "--params", "secure"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --params secure") and err.count("\n") == 1
    assert main(["demo", "--quick", "--behaviour", "lazy"]) == 2
    assert "three times" in capsys.readouterr().err


def test_report_is_json(report: dict[str, Any]) -> None:
    text = json.dumps({k: v for k, v in report.items() if k != "log"})
    assert json.loads(text)["format"] == "cipherfuse-demo-report"


@pytest.fixture(scope="module")
def dishonest_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cfg = DemoConfig.quick(
        train_size=200,
        verify_size=100,
        fit_size=100,
        check_size=100,
        test_size=200,
        max_epochs=3,
        fusion_epochs=(2, 2),
        threshold=0.5,
        behaviours=("honest", "dishonest", "honest"),
        mnist_dir=MNIST if MNIST.is_dir() else None,
    )
    return run_demo(cfg, tmp_path_factory.mktemp("demo-dishonest"), lambda _line: None)


def test_dishonest_model_on_permuted_labels_is_rejected(
    dishonest_report: dict[str, Any],
) -> None:
    claims = {c["contributor"]: c for c in dishonest_report["claims"]}
    bad = claims[2]
    assert bad["behaviour"] == "dishonest"
    assert bad["outcome"] == "REJECTED" and bad["reject_votes"] == 3
    assert dishonest_report["balances"]["contributor 2"]["withdrawn_wei"] == 0
    for decisions in dishonest_report["judgements"].values():
        verdict = decisions[str(bad["claim_id"])]
        assert verdict["accept"] is False and verdict["accuracy"] < 0.5
    for i in (1, 3):
        assert claims[i]["outcome"] == "RELEASED" and claims[i]["accept_votes"] == 3
    assert dishonest_report["contract_balance_wei"] == 0
