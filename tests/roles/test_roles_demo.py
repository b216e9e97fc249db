"""The demo end to end on embedded defaults (real training, three-party judging, chain and
store) and with the paper's parameters (HE encryption, cipherspace judging), with small
data so it runs in CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cipherfuse.cli.main import main
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.demo import DemoConfig, run_demo

PARAMS = demo_task_params()


def party(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The balance entry of ``"contributor 1"`` etc. (keys also carry the address)."""
    (entry,) = [v for k, v in report["balances"].items() if k.startswith(name + " ")]
    return entry


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def report(workdir: Path) -> dict[str, Any]:
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
    )
    lines: list[str] = []
    result = run_demo(cfg, workdir, lines.append, metamodel_path=workdir / "meta.bin")
    result["log"] = lines
    return result


@pytest.mark.slow
def test_honest_models_are_accepted_released_and_paid(report: dict[str, Any]) -> None:
    claims = {c["contributor"]: c for c in report["claims"]}
    for i in (1, 2):
        assert claims[i]["outcome"] == "RELEASED"
        assert claims[i]["accept_votes"] == 3
        assert party(report, f"contributor {i}")["withdrawn_wei"] == (
            PARAMS.contributor_deposit + PARAMS.reward_per_model
        )


def test_lazy_untrained_model_is_rejected_in_three_party_judging(report: dict[str, Any]) -> None:
    lazy = next(c for c in report["claims"] if c["behaviour"] == "lazy")
    assert lazy["outcome"] == "REJECTED" and lazy["reject_votes"] == 3
    assert party(report, "contributor 3")["withdrawn_wei"] == 0
    for decisions in report["judgements"].values():
        verdict = decisions[str(lazy["claim_id"])]
        assert verdict["accept"] is False and verdict["accuracy"] < 0.5


def test_money_adds_up_and_the_contract_is_empty(report: dict[str, Any]) -> None:
    b = report["balances"]
    fee = PARAMS.verifier_fee
    for i in (1, 2, 3):
        assert party(report, f"verifier {i}")["withdrawn_wei"] == PARAMS.verifier_deposit + 3 * fee
    paid = 2 * PARAMS.reward_per_model + 9 * fee
    assert (
        party(report, "initiator")["withdrawn_wei"]
        == PARAMS.budget - paid + PARAMS.contributor_deposit
    )
    assert report["contract_balance_wei"] == 0 and report["task_holdings_wei"] == 0
    assert all(v["credit_left_wei"] == 0 for v in b.values())


def test_initiator_decrypts_and_fuses_the_accepted_models(report: dict[str, Any]) -> None:
    steps = report["metamodel_accuracy"]
    assert len(steps) == 2 and report["accepted_models"] == 2
    # Two models cover all ten labels: far above one model's ceiling of 50 %.
    assert report["final_accuracy"] > 0.55
    assert any("received table2-contributor" in line for line in report["log"])
    assert report["judging"] == "mpc" and not report["insecure_params"]


def test_a_bad_behaviour_count_gives_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
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
        he_params="paper",
    )
    lines: list[str] = []
    result = run_demo(cfg, tmp_path_factory.mktemp("demo-dishonest"), lines.append)
    result["log"] = lines
    return result


@pytest.mark.slow
def test_dishonest_model_on_permuted_labels_is_rejected_in_cipherspace(
    dishonest_report: dict[str, Any],
) -> None:
    # The paper's parameters say at once that the committee can read the models.
    assert dishonest_report["log"][0].startswith("WARNING: --params paper is the paper's")
    assert "every committee member can read the models" in dishonest_report["log"][0]
    assert dishonest_report["judging"] == "cipherspace" and dishonest_report["insecure_params"]
    from cipherfuse.roles.demo_summary import format_summary

    assert "INSECURE" in format_summary(dishonest_report)
    claims = {c["contributor"]: c for c in dishonest_report["claims"]}
    bad = claims[2]
    assert bad["behaviour"] == "dishonest"
    assert bad["outcome"] == "REJECTED" and bad["reject_votes"] == 3
    assert party(dishonest_report, "contributor 2")["withdrawn_wei"] == 0
    for decisions in dishonest_report["judgements"].values():
        verdict = decisions[str(bad["claim_id"])]
        assert verdict["accept"] is False and verdict["accuracy"] < 0.5
    for i in (1, 3):
        assert claims[i]["outcome"] == "RELEASED" and claims[i]["accept_votes"] == 3
    assert dishonest_report["contract_balance_wei"] == 0


def test_the_report_holds_no_sealing_key_or_vote_salt(
    report: dict[str, Any], workdir: Path
) -> None:
    text = json.dumps({k: v for k, v in report.items() if k != "log"})
    secrets: list[str] = []
    for state in (workdir / "state").glob("*.json"):
        data = json.loads(state.read_text(encoding="utf-8"))["data"]
        secrets += data.get("box_secrets", [])
        for decision in data.get("decisions", {}).values():
            secrets.append(decision["salt"])
            if decision.get("key"):
                secrets.append(decision["key"])
    assert len(secrets) >= 9 + 9  # 3 x 3 members' share secrets, 9 votes' salts
    assert all(len(s) >= 64 for s in secrets)
    assert not [s for s in secrets if s in text]
    for decisions in report["judgements"].values():
        for d in decisions.values():
            assert "salt" not in d and "key" not in d


def test_the_metamodel_file_is_the_initiators_final_model(
    report: dict[str, Any], workdir: Path
) -> None:
    from cipherfuse.data.mnist import load_bundled_mnist
    from cipherfuse.fusion.serialize import load_metamodel
    from cipherfuse.roles.demo import demo_split

    assert report["metamodel_file"] == str(workdir / "meta.bin")
    meta = load_metamodel(workdir / "meta.bin")
    assert len(meta.extractors) == report["accepted_models"] == 2
    cfg = DemoConfig.quick(
        **{
            k: report["config"][k]
            for k in ("train_size", "verify_size", "fit_size", "check_size", "test_size")
        }
    )
    test = demo_split(load_bundled_mnist(), cfg).test
    assert meta.accuracy(test.images, test.labels) == pytest.approx(report["final_accuracy"])


def test_a_used_workdir_is_refused_with_the_fix(report: dict[str, Any], workdir: Path) -> None:
    from cipherfuse.roles.errors import StaleWorkdirError

    with pytest.raises(StaleWorkdirError, match="new --workdir or add --fresh"):
        run_demo(DemoConfig.quick(), workdir, lambda _line: None)


def test_fresh_clears_only_the_demos_own_parts(tmp_path: Path) -> None:
    from cipherfuse.roles.demo import WORKDIR_MARKER, prepare_workdir
    from cipherfuse.roles.errors import StaleWorkdirError

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "initiator-0x1.json").write_text("{}")
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(StaleWorkdirError):
        prepare_workdir(tmp_path)
    prepare_workdir(tmp_path, fresh=True)
    assert not (tmp_path / "state").exists()
    assert (tmp_path / "mine.txt").read_text() == "keep"
    assert (tmp_path / WORKDIR_MARKER).is_file()
    with pytest.raises(StaleWorkdirError):  # the marker alone marks it as used
        prepare_workdir(tmp_path)


def test_the_summary_explains_the_accuracies(report: dict[str, Any]) -> None:
    from cipherfuse.roles.demo_summary import format_summary

    text = format_summary(report)
    for phrase in (
        "own-label acc:",
        "judged acc:",
        "MetaModel accuracy:",
        "reduced run",
        "three-party computation",
    ):
        assert phrase in text
    assert "INSECURE" not in text  # secure judging by default
    names = [c["name"] for c in report["claims"]]
    assert all(n in text for n in names)
    # one naming of a party: the log uses the same names as the summary
    assert any(line.startswith(f"[{names[0]}]") for line in report["log"])
    assert not any("reclaim: not done" in line for line in report["log"])
