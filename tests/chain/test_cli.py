"""The ``cipherfuse chain`` commands, run as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from cipherfuse.chain.devkeys import dev_accounts
from cipherfuse.cli.main import main

from .conftest import REPO_ROOT, anvil_binary_or_skip


def test_info_lists_packaged_contracts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chain", "info"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {d["contract"] for d in lines} == {
        "CipherfuseTasks",
        "ReentrancyProbe",
        "ForceFeeder",
        "MinimalAnchor",
    }
    tasks = next(d for d in lines if d["contract"] == "CipherfuseTasks")
    assert tasks["evmVersion"] == "prague"
    assert 0 < tasks["runtimeBytes"] <= 24_576  # EIP-170 limit


def test_compile_check_passes_on_committed_artifacts(capsys: pytest.CaptureFixture[str]) -> None:
    contracts = REPO_ROOT / "contracts"
    if not (contracts / "node_modules" / "solc").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must run `npm ci` in contracts/")
        pytest.skip("pinned solc not installed (npm ci in contracts/)")
    assert main(["chain", "compile", "--check", "--contracts-dir", str(contracts)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_compile_check_fails_on_stale_artifacts(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    contracts = REPO_ROOT / "contracts"
    if not (contracts / "node_modules" / "solc").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must run `npm ci` in contracts/")
        pytest.skip("pinned solc not installed (npm ci in contracts/)")
    stale = tmp_path / "artifacts"
    stale.mkdir()
    (stale / "CipherfuseTasks.json").write_text("{}")
    code = main(
        [
            "chain",
            "compile",
            "--check",
            "--contracts-dir",
            str(contracts),
            "--artifact-dir",
            str(stale),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "CipherfuseTasks" in err
    assert "ReentrancyProbe" in err
    assert (stale / "CipherfuseTasks.json").read_text() == "{}"  # --check never writes


def test_compile_without_solc_gives_actionable_error(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    code = main(
        ["chain", "compile", "--contracts-dir", str(tmp_path), "--artifact-dir", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "npm ci" in err or "node" in err


def test_node_command_serves_rpc_and_stops_on_sigterm() -> None:
    binary = anvil_binary_or_skip()
    env = {**os.environ, "CIPHERFUSE_ANVIL": str(binary)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cipherfuse.cli.main", "chain", "node", "--accounts", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, first
        url = first.split("listening on ")[1].split()[0]

        def ask(method: str, params: list[str]) -> object:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            request = urllib.request.Request(
                url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())["result"]

        # No node-managed accounts; the two development keys are funded instead.
        assert ask("eth_accounts", []) == []
        for account in dev_accounts(2):
            assert int(str(ask("eth_getBalance", [account.address, "latest"])), 16) == 10**22
        assert int(str(ask("eth_getBalance", [dev_accounts(3)[2].address, "latest"])), 16) == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopping anvil" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
