"""Crash-safe persisted role state: versioned, checksummed JSON written atomically.

Each agent keeps one JSON document (:class:`StateFile`). Every write goes to a temporary
file in the same folder, is fsynced, renamed over the old file and the folder is fsynced,
so after a crash the file holds either the old or the new document, never half of one.
Secrets that a later transaction depends on (claim seed, vote salt, sealing key) are
written *before* the transaction is sent; on restart the agents reconcile with the chain,
which is the source of truth for what already happened.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cipherfuse.files import atomic_write_bytes
from cipherfuse.roles.errors import RoleStateError
from cipherfuse.untrusted import parse_json

STATE_FORMAT = "cipherfuse-role-state"
STATE_VERSION = 1
#: A state file holds a few keys per claim; anything larger is not one of ours.
MAX_STATE_BYTES = 64 << 20


def _checksum(body: dict[str, Any]) -> str:
    payload = {k: v for k, v in body.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class StateFile:
    """The persisted state of one agent (a JSON object under ``data``).

    Args:
        path: the state file.
        role: the role name stored in the file; loading another role's file is refused.
        identity: e.g. the account address; loading another identity's file is refused.
    """

    def __init__(self, path: Path, role: str, identity: str) -> None:
        self.path = Path(path)
        self.role = role
        self.identity = identity
        self.data: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise RoleStateError(f"state file {self.path} is unreadable: {exc}") from exc
        try:
            body = parse_json(raw, what="it", max_bytes=MAX_STATE_BYTES, error=RoleStateError)
        except RoleStateError as exc:
            raise RoleStateError(f"state file {self.path} is unreadable: {exc}") from None
        if (
            not isinstance(body, dict)
            or body.get("format") != STATE_FORMAT
            or body.get("version") != STATE_VERSION
            or not isinstance(body.get("data"), dict)
        ):
            raise RoleStateError(f"{self.path} is not a {STATE_FORMAT} v{STATE_VERSION} file")
        if body.get("checksum") != _checksum(body):
            raise RoleStateError(f"state file {self.path} fails its checksum (edited or corrupt)")
        if body.get("role") != self.role or str(body.get("identity")).lower() != (
            self.identity.lower()
        ):
            raise RoleStateError(
                f"state file {self.path} belongs to {body.get('role')} {body.get('identity')}, "
                f"not {self.role} {self.identity}; use another --state-dir"
            )
        data: dict[str, Any] = body["data"]
        return data

    def save(self) -> None:
        """Persist :attr:`data` atomically."""
        body: dict[str, Any] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "role": self.role,
            "identity": self.identity,
            "data": self.data,
        }
        body["checksum"] = _checksum(body)
        atomic_write_bytes(self.path, json.dumps(body, sort_keys=True, indent=1).encode())

    def update(self, **values: Any) -> None:
        """Set keys of :attr:`data` and persist."""
        self.data.update(values)
        self.save()
