"""Packaged artifacts: schema and checksum checks, and reproducibility from the sources."""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources

import pytest

from cipherfuse.chain import ArtifactError, Chain, ChainError, TasksContract
from cipherfuse.chain.artifacts import CONTRACT_NAMES, load_artifact, parse_artifact
from cipherfuse.chain.compiler import EVM_VERSION, compile_contracts

from .conftest import REPO_ROOT


def _packaged_text(name: str) -> str:
    return (resources.files("cipherfuse.chain") / "artifacts" / f"{name}.json").read_text()


def test_packaged_artifacts_load_and_target_pinned_evm() -> None:
    for name in CONTRACT_NAMES:
        art = load_artifact(name)
        assert art.evm_version == EVM_VERSION == "prague"
        assert art.compiler.startswith("solcjs 0.8.30+")
        assert art.bytecode.startswith("0x")
        assert len(art.bytecode) > 100


def test_deployed_code_matches_artifact(chain: Chain, tasks: TasksContract) -> None:
    code = chain.w3.eth.get_code(tasks.address)
    assert bytes(code).hex() == load_artifact("CipherfuseTasks").deployed_bytecode[2:]
    with pytest.raises(ChainError, match="not the packaged"):
        TasksContract(chain, chain.accounts[1])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(bytecode=b["bytecode"][:-2] + "00"), "checksum"),
        (lambda b: b.update(version=2), "unsupported"),
        (lambda b: b.pop("abi"), "'abi'"),
        (lambda b: b.update(bytecode="zz"), "hex"),
    ],
)
def test_tampered_artifact_is_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    body = json.loads(_packaged_text("CipherfuseTasks"))
    mutate(body)
    with pytest.raises(ArtifactError, match=message):
        parse_artifact(json.dumps(body))


def test_non_json_and_wrong_contract_are_refused() -> None:
    with pytest.raises(ArtifactError, match="JSON"):
        parse_artifact("{")
    with pytest.raises(ArtifactError, match="not 'CipherfuseTasks'"):
        parse_artifact(_packaged_text("ReentrancyProbe"), expected_contract="CipherfuseTasks")
    with pytest.raises(ArtifactError, match="unknown contract"):
        load_artifact("Nope")


def test_committed_artifacts_match_a_fresh_compilation() -> None:
    """Recompile with the pinned solcjs; any difference from the committed JSON fails."""
    contracts = REPO_ROOT / "contracts"
    if shutil.which("node") is None or not (contracts / "node_modules" / "solc").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must run `npm ci` in contracts/ (.ci/setup.d/chain.sh)")
        pytest.skip("node or the pinned solc is not installed (npm ci in contracts/)")
    result = compile_contracts(contracts, check=True)
    assert result.compiler.startswith("0.8.30+")
    assert result.differing == [], (
        f"stale artifacts: {result.differing}; run cipherfuse chain compile"
    )
    for name, text in result.artifacts.items():
        assert (
            text == (REPO_ROOT / "python/cipherfuse/chain/artifacts" / f"{name}.json").read_text()
        )
        assert text == _packaged_text(name), "installed package is stale: reinstall"
