"""The ``cipherfuse models`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import pytest
from click.testing import CliRunner

from cipherfuse.cli.main import cli, main
from cipherfuse.nn import QuantizationSpec, TrainedModel, init_params, save_model, table6_config


def test_inspect_prints_validated_metadata(tmp_path: Path) -> None:
    config = table6_config()
    path = tmp_path / "m.cfm"
    save_model(
        path,
        TrainedModel(config, init_params(config, jax.random.key(0)), (1, 2)),
        QuantizationSpec(32, 1000, 2),
    )
    result = CliRunner().invoke(cli, ["models", "inspect", str(path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["labels"] == [1, 2]
    assert info["feature_dim"] == 784
    assert info["quantization"] == {"weight_scale": 32, "input_scale": 1000, "n_layers": 2}


def test_inspect_corrupt_file_is_a_one_line_error(tmp_path: Path, capsys: object) -> None:
    path = tmp_path / "bad.cfm"
    path.write_bytes(b"CFMODEL\x00" + b"\x00" * 40)
    assert main(["models", "inspect", str(path)]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.startswith("error:")
    assert "checksum" in err


@pytest.mark.slow
def test_models_reproduce_writes_the_case_json(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "sub" / "case3.json"
    args = ["models", "reproduce", "--case", "3", "--mnist-dir", str(mnist_dir)]
    args += ["--max-epochs", "1", "--max-rotation", "10", "--max-scale", "0.1"]
    args += ["--fusion-train-size", "200", "--test-size", "200", "--fusion-copies", "0"]
    args += ["--fusion-seeds", "2", "--fusion-final-lr-fraction", "1", "--json-out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    assert body["fusion_seeds"] == 2
    assert body["contributor_epochs"] == [1, 1, 1]
    assert len(body["contributor_verify_accuracy"]) == 3
    assert all(0.0 <= a <= 1.0 for a in body["contributor_verify_accuracy"])
    variants = {"plain", "plain (I)", "p=128", "p=32"}
    assert set(body["runs"]) == {f"{v}|{k}" for v in variants for k in (1, 2, 3)}
    for key, runs in body["runs"].items():
        assert len(runs) == 2
        assert body["accuracy"][key] == sum(runs) / 2
    assert not list(out.parent.glob(".*.tmp"))  # written atomically, no temp left


@pytest.mark.parametrize(
    ("option", "value"), [("--max-rotation", "90"), ("--fusion-final-lr-fraction", "1.5")]
)
def test_models_reproduce_rejects_out_of_range_options(option: str, value: str) -> None:
    result = CliRunner().invoke(cli, ["models", "reproduce", "--case", "3", option, value])
    assert result.exit_code == 2
    assert option in result.output
