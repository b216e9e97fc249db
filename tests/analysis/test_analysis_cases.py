"""Case Studies I, III and V in --quick mode: the JSON shape and the qualitative results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cipherfuse.analysis.case1 import reproduce_case1
from cipherfuse.analysis.case3 import PAPER_TABLE7, reproduce_case3
from cipherfuse.analysis.case5 import PAPER_TABLE9, reproduce_case5
from cipherfuse.analysis.experiment import ExperimentError, ExperimentResult
from cipherfuse.cli.main import cli
from cipherfuse.data import Dataset

MODELS = ("{1}", "{1,2}", "{1,2,3}")


def _fused(result: ExperimentResult, label: str) -> list[float]:
    return [result.row(f"MetaModel accuracy, {label}, models {m}").ours for m in MODELS]


def _check_shape(result: ExperimentResult, experiment: str) -> None:
    data = json.loads(result.to_json())
    assert set(data) == {"experiment", "seed", "quick", "rows", "meta"}
    assert (data["experiment"], data["quick"]) == (experiment, True)
    assert ExperimentResult.from_dict(data).to_dict() == data  # validates every row
    for row in data["rows"]:
        if row["unit"] == "%":
            assert 0.0 <= row["ours"] <= 100.0, row


@pytest.mark.slow
def test_case1_quick_cli(tmp_path: Path, mnist_dir: Path) -> None:
    args = ["reproduce", "case1", "--quick", "--json", "--seed", "1", "--fusion-seeds", "2"]
    args += ["--mnist-dir", str(mnist_dir), "--out", str(tmp_path)]
    run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    result = ExperimentResult.from_dict(json.loads(run.output))
    assert ExperimentResult.load(tmp_path / "case1.json").to_dict() == result.to_dict()
    _check_shape(result, "case1")
    assert result.seed == 1 and result.meta["fusion_seeds"] == 2
    # the data are named, the machine's directory is not
    assert str(mnist_dir) not in run.output
    assert str(result.meta["data_source"]).startswith("MNIST")
    for i in (1, 2, 3):
        row = result.row(f"contributor {i} local verification accuracy")
        assert row.paper == 90.0 and row.better == "higher"
        assert row.ours > 50.0  # one epoch; chance over 5 labels is 20 %
    by_strategy = {s: _fused(result, f"strategy {s}") for s in ("I", "II")}
    for accs in by_strategy.values():
        assert accs[2] > accs[0]  # three partial views beat one
    mean = [sum(a[k] for a in by_strategy.values()) / 2 for k in range(3)]
    assert mean[0] < mean[1] and mean[0] < mean[2]
    # two fusion seeds give two different heads: some spread is reported
    stds = [
        result.row(f"MetaModel accuracy std over fusion seeds, strategy {s}, models {m}").ours
        for s in ("I", "II")
        for m in MODELS
    ]
    assert all(s >= 0 for s in stds) and any(s > 0 for s in stds)
    gap = result.row("strategy II minus strategy I, models {1,2,3}").ours
    assert gap == pytest.approx(by_strategy["II"][2] - by_strategy["I"][2], abs=0.02)


@pytest.mark.slow
def test_case3_quick_table7(mnist: Dataset) -> None:
    result = reproduce_case3(mnist, seed=0, quick=True)
    _check_shape(result, "case3")
    plain = _fused(result, "strategy II, original")
    p7 = _fused(result, "strategy II, first layer p=2^7 q=1000")
    p5 = _fused(result, "strategy II, first layer p=2^5 q=1000")
    assert [
        result.row(f"MetaModel accuracy, strategy II, original, models {m}").paper for m in MODELS
    ] == list(PAPER_TABLE7["plain"])
    assert plain[2] > plain[0] and plain[1] > plain[0]
    assert _fused(result, "strategy I, original")[2] > _fused(result, "strategy I, original")[0]
    for k in range(3):
        # the p = 2^7 integer first block is within a point of float; 2^5 stays close too
        assert abs(p7[k] - plain[k]) <= 1.0
        assert abs(p5[k] - plain[k]) <= 5.0
        assert result.row(f"p=2^7 minus original, models {MODELS[k]}").ours == pytest.approx(
            p7[k] - plain[k], abs=0.02
        )


def test_case5_quick_fading() -> None:
    result = reproduce_case5(seed=0, quick=True)
    _check_shape(result, "case5")
    assert result.meta["he_parameters"] == "paper"
    for i in (1, 2, 3):
        plain = result.row(f"contributor {i} accuracy, without encryption")
        quant = result.row(f"contributor {i} accuracy, first layer p=2^7 q=1000")
        assert plain.paper == PAPER_TABLE9["without encryption"][i - 1]
        assert plain.ours > 75.0  # chance is 50 %
        assert abs(quant.ours - plain.ours) <= 1.0
    plain_fused = _fused(result, "without encryption")
    assert min(plain_fused) > 75.0
    # more fused models: at least as good on average as one alone
    assert (plain_fused[1] + plain_fused[2]) / 2 >= plain_fused[0] - 1.0
    assert result.row("MetaModel accuracy, without encryption, models {1}").paper is None
    for strategy in ("element-wise", "matrix-pair-wise"):
        # paper parameters: the verifiers' keyless features are the quantized ones, exactly
        row = result.row(f"max |{strategy} cipherspace features - p=2^7 quantized features|")
        assert row.ours == 0.0
        label = f"{strategy} encryption"
        for i in (1, 2, 3):
            enc = result.row(f"contributor {i} accuracy, {label}")
            assert enc.paper == PAPER_TABLE9[label][i - 1]
            assert (
                enc.ours == result.row(f"contributor {i} accuracy, first layer p=2^7 q=1000").ours
            )
        fused = _fused(result, label)
        assert fused == _fused(result, "first layer p=2^7 q=1000")
        assert result.row(f"MetaModel accuracy, {label}, models {{1,2,3}}").paper is not None


def test_bad_fusion_seeds_are_rejected(mnist: Dataset) -> None:
    with pytest.raises(ExperimentError, match="fusion_seeds"):
        reproduce_case1(mnist, quick=True, fusion_seeds=0)
    run = CliRunner().invoke(cli, ["reproduce", "case3", "--quick", "--fusion-seeds", "0"])
    assert run.exit_code != 0 and "fusion-seeds" in run.output
