"""Rebuild (or check) the packaged contract artifacts with the pinned solcjs.

The compiler is the npm package ``solc`` pinned in ``contracts/package.json`` (installed with
``npm ci`` in ``contracts/``); it is driven through ``--standard-json`` so that the EVM version
is explicit. Metadata hashes are left out of the bytecode, so the output depends only on the
sources, the compiler and the settings below.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cipherfuse.chain.artifacts import (
    ARTIFACT_FORMAT,
    ARTIFACT_VERSION,
    artifact_checksum,
)
from cipherfuse.chain.errors import ArtifactError, CompilerError
from cipherfuse.files import atomic_write_bytes

#: The one EVM version for compiler, embedded py-evm and anvil (py-evm stops at prague).
EVM_VERSION = "prague"

#: contract name -> source path relative to the contracts directory.
SOURCES = {
    "CipherfuseTasks": "src/CipherfuseTasks.sol",
    "ReentrancyProbe": "test/ReentrancyProbe.sol",
    "ForceFeeder": "test/ForceFeeder.sol",
    "MinimalAnchor": "test/MinimalAnchor.sol",
}

SETTINGS: dict[str, Any] = {
    "evmVersion": EVM_VERSION,
    "optimizer": {"enabled": True, "runs": 200},
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
}

_DRIVER = "solc-standard-json.js"


@dataclass(frozen=True)
class CompileResult:
    """Outcome of :func:`compile_contracts`."""

    artifacts: dict[str, str]
    compiler: str
    differing: list[str]


def _run_node(contracts_dir: Path, args: list[str], stdin: str) -> str:
    node = shutil.which("node")
    if node is None:
        raise CompilerError("`node` is not on PATH; install Node.js >= 18 to compile contracts")
    if not (contracts_dir / "node_modules" / "solc").is_dir():
        raise CompilerError(
            f"the pinned solc is not installed in {contracts_dir}; run `npm ci` there first"
        )
    proc = subprocess.run(
        [node, _DRIVER, *args],
        cwd=contracts_dir,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CompilerError(f"solcjs failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _standard_input(contracts_dir: Path) -> dict[str, Any]:
    sources = {}
    for rel in SOURCES.values():
        path = contracts_dir / rel
        if not path.is_file():
            raise CompilerError(f"contract source {path} is missing")
        sources[rel] = {"content": path.read_text(encoding="utf-8")}
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            **SETTINGS,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def _render(name: str, rel: str, source: str, compiler: str, out: dict[str, Any]) -> str:
    body: dict[str, Any] = {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "contract": name,
        "source": rel,
        "sourceSha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
        "compiler": f"solcjs {compiler}",
        "settings": SETTINGS,
        "abi": out["abi"],
        "bytecode": "0x" + out["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
    }
    body["checksum"] = artifact_checksum(body)
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def default_artifact_dir(contracts_dir: Path) -> Path:
    """Artifact folder of a source checkout: ``python/cipherfuse/chain/artifacts``."""
    return contracts_dir.parent / "python" / "cipherfuse" / "chain" / "artifacts"


def compile_contracts(
    contracts_dir: Path, artifact_dir: Path | None = None, *, check: bool = False
) -> CompileResult:
    """Compile every contract in :data:`SOURCES`.

    With ``check=False`` the artifacts in ``artifact_dir`` are (re)written atomically; with
    ``check=True`` nothing is written and ``differing`` lists the contracts whose committed
    artifact is missing or differs from the fresh compilation.

    Raises:
        CompilerError: node/solc missing, or the compiler reported an error.
        ArtifactError: the artifact folder does not exist.
    """
    contracts_dir = contracts_dir.resolve()
    artifact_dir = (artifact_dir or default_artifact_dir(contracts_dir)).resolve()
    if not artifact_dir.is_dir():
        raise ArtifactError(f"artifact folder {artifact_dir} does not exist")
    compiler = _run_node(contracts_dir, ["--version"], "").strip()
    std_in = _standard_input(contracts_dir)
    raw = _run_node(contracts_dir, [], json.dumps(std_in))
    try:
        output = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CompilerError(f"solcjs printed non-JSON output: {raw[:200]!r}") from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompilerError("\n".join(e.get("formattedMessage", str(e)) for e in errors))
    rendered: dict[str, str] = {}
    for name, rel in SOURCES.items():
        out = output["contracts"][rel][name]
        rendered[name] = _render(name, rel, std_in["sources"][rel]["content"], compiler, out)
    differing = []
    for name, text in rendered.items():
        path = artifact_dir / f"{name}.json"
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            differing.append(name)
            if not check:
                # Public build output (0644); the file is fsynced, not the folder.
                atomic_write_bytes(
                    path, text.encode("utf-8"), mode=0o644, sync_folder=False, parents=False
                )
    return CompileResult(artifacts=rendered, compiler=compiler, differing=differing)
