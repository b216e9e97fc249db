"""The ``cipherfuse models`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import jax
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
