"""Compiled contract artifacts shipped inside the package.

An artifact is a JSON document (format ``cipherfuse-contract-artifact``, version 1) holding
the ABI, creation and runtime bytecode, the compiler version and settings, the SHA-256 of
the Solidity source, and a SHA-256 checksum over all of that. Loading checks the schema and
the checksum, so a truncated or hand-edited artifact is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cipherfuse.chain.errors import ArtifactError

ARTIFACT_FORMAT = "cipherfuse-contract-artifact"
ARTIFACT_VERSION = 1

#: Contracts whose artifacts ship in the package.
CONTRACT_NAMES = ("CipherfuseTasks", "ReentrancyProbe", "ForceFeeder", "MinimalAnchor")

_REQUIRED: dict[str, type] = {
    "format": str,
    "version": int,
    "contract": str,
    "source": str,
    "sourceSha256": str,
    "compiler": str,
    "settings": dict,
    "abi": list,
    "bytecode": str,
    "deployedBytecode": str,
    "checksum": str,
}


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified contract artifact."""

    contract: str
    source: str
    source_sha256: str
    compiler: str
    settings: dict[str, Any]
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str

    @property
    def evm_version(self) -> str:
        """The EVM version the bytecode targets."""
        return str(self.settings["evmVersion"])


def artifact_checksum(body: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an artifact without its ``checksum`` field."""
    payload = {k: v for k, v in body.items() if k != "checksum"}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_artifact(text: str, *, expected_contract: str | None = None) -> Artifact:
    """Parse and verify an artifact document.

    Raises:
        ArtifactError: not JSON, wrong format/version, missing or mistyped field, bad hex,
            or checksum mismatch.
    """
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ArtifactError("artifact must be a JSON object")
    for key, typ in _REQUIRED.items():
        if not isinstance(body.get(key), typ):
            raise ArtifactError(f"artifact field {key!r} is missing or not a {typ.__name__}")
    if body["format"] != ARTIFACT_FORMAT or body["version"] != ARTIFACT_VERSION:
        raise ArtifactError(
            f"unsupported artifact {body['format']!r} v{body['version']}; "
            f"this cipherfuse reads {ARTIFACT_FORMAT!r} v{ARTIFACT_VERSION}"
        )
    if expected_contract is not None and body["contract"] != expected_contract:
        raise ArtifactError(f"artifact is for {body['contract']!r}, not {expected_contract!r}")
    for key in ("bytecode", "deployedBytecode"):
        code = body[key]
        try:
            if not code.startswith("0x") or len(code) < 4:
                raise ValueError(code[:10])
            bytes.fromhex(code[2:])
        except ValueError as exc:
            raise ArtifactError(f"artifact field {key!r} is not 0x-prefixed hex") from exc
    if "evmVersion" not in body["settings"]:
        raise ArtifactError("artifact settings lack 'evmVersion'")
    if artifact_checksum(body) != body["checksum"]:
        raise ArtifactError(
            f"artifact {body['contract']!r} fails its checksum (corrupt or edited); "
            "regenerate it with `cipherfuse chain compile`"
        )
    return Artifact(
        contract=body["contract"],
        source=body["source"],
        source_sha256=body["sourceSha256"],
        compiler=body["compiler"],
        settings=body["settings"],
        abi=body["abi"],
        bytecode=body["bytecode"],
        deployed_bytecode=body["deployedBytecode"],
    )


def load_artifact(name: str) -> Artifact:
    """Load the packaged artifact of contract ``name`` (one of :data:`CONTRACT_NAMES`)."""
    if name not in CONTRACT_NAMES:
        raise ArtifactError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    resource = resources.files("cipherfuse.chain") / "artifacts" / f"{name}.json"
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"packaged artifact for {name!r} is missing; reinstall cipherfuse"
        ) from exc
    return parse_artifact(text, expected_contract=name)
