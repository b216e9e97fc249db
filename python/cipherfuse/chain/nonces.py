"""The nonce journal: every signed, not yet confirmed transaction of one account.

A :class:`~cipherfuse.chain.signer.LocalSigner` writes a transaction here *before* it
broadcasts it and removes it once it is confirmed, so a process that crashes or is killed
in between finds, on restart, exactly the transactions it may have sent: it rebroadcasts
them (a dropped one comes back; one the node still has is a no-op) and waits for them
before it signs anything new, and no nonce is used twice. With ``path=None`` the journal
lives in memory only (tests, the embedded chain).

The file is versioned JSON with a SHA-256 checksum, written atomically (mode 0600).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cipherfuse.chain.errors import ChainError
from cipherfuse.errors import SerializationError
from cipherfuse.files import atomic_write_bytes

JOURNAL_FORMAT = "cipherfuse-nonce-journal"
JOURNAL_VERSION = 1
#: Largest journal file read (a few kB per pending transaction; far more than ever pending).
MAX_JOURNAL_BYTES = 4 * 1024 * 1024


class NonceJournalError(ChainError, SerializationError):
    """The journal file is corrupt, of another version, or of another account or chain."""


@dataclass
class JournalEntry:
    """One nonce's signed transactions: the first and each fee-bumped replacement.

    Attributes:
        nonce: the account nonce they all use (at most one of them can be mined).
        raw: the signed transactions, hex, in the order sent (the last one is current).
        hashes: their hashes, hex, same order.
        max_fee_per_gas, max_priority_fee_per_gas, gas_price: fees of the current one.
        to, value, data, gas: the unsigned fields every replacement repeats.
        label: what the transaction does (for messages), e.g. ``"submitClaim"``.
    """

    nonce: int
    raw: list[str]
    hashes: list[str]
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_price: int | None = None
    to: str | None = None
    value: int = 0
    data: str = "0x"
    gas: int = 0
    label: str = ""
    resends: int = 0
    replacements: int = 0
    reorgs: int = 0

    def add(self, raw: str, tx_hash: str) -> None:
        """Record a replacement (same nonce, higher fees)."""
        self.raw.append(raw)
        self.hashes.append(tx_hash)


@dataclass
class NonceJournal:
    """Pending transactions of ``address`` on chain ``chain_id``, optionally on disk."""

    address: str
    chain_id: int
    path: Path | None = None
    entries: dict[int, JournalEntry] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path | None, address: str, chain_id: int) -> NonceJournal:
        """Load ``path`` (a missing file is an empty journal) or make an in-memory one.

        Raises:
            NonceJournalError: the file is corrupt or belongs to another account or chain.
        """
        journal = cls(address, chain_id, path)
        if path is None or not path.exists():
            return journal
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_JOURNAL_BYTES + 1)
            if len(raw) > MAX_JOURNAL_BYTES:
                raise NonceJournalError(f"nonce journal {path} is larger than allowed")
            body = json.loads(raw)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NonceJournalError(f"cannot read nonce journal {path}: {exc}") from exc
        if not isinstance(body, dict) or body.get("format") != JOURNAL_FORMAT:
            raise NonceJournalError(f"{path} is not a cipherfuse nonce journal")
        if body.get("version") != JOURNAL_VERSION:
            raise NonceJournalError(f"{path}: unsupported journal version {body.get('version')}")
        if body.get("checksum") != _checksum(body):
            raise NonceJournalError(f"{path}: checksum mismatch (the file was damaged)")
        if str(body.get("address", "")).lower() != address.lower():
            raise NonceJournalError(
                f"{path} is the journal of {body.get('address')}, not of {address}"
            )
        if body.get("chain_id") != chain_id:
            raise NonceJournalError(
                f"{path} is the journal for chain {body.get('chain_id')}, not chain {chain_id}"
            )
        try:
            for item in body["entries"]:
                entry = JournalEntry(**item)
                if len(entry.raw) != len(entry.hashes) or not entry.raw:
                    raise ValueError("raw and hashes differ in length")
                journal.entries[int(entry.nonce)] = entry
        except (KeyError, TypeError, ValueError) as exc:
            raise NonceJournalError(f"{path}: malformed entry ({exc})") from exc
        return journal

    def save(self) -> None:
        """Write the journal (no-op in memory)."""
        if self.path is None:
            return
        body: dict[str, Any] = {
            "format": JOURNAL_FORMAT,
            "version": JOURNAL_VERSION,
            "address": self.address,
            "chain_id": self.chain_id,
            "entries": [asdict(e) for _, e in sorted(self.entries.items())],
        }
        body["checksum"] = _checksum(body)
        atomic_write_bytes(self.path, json.dumps(body, indent=1).encode(), mode=0o600)

    def put(self, entry: JournalEntry) -> None:
        """Record (or update) a nonce's transactions, durably."""
        self.entries[entry.nonce] = entry
        self.save()

    def remove(self, nonce: int) -> None:
        """Forget a confirmed (or definitely dropped) nonce, durably."""
        if self.entries.pop(nonce, None) is not None:
            self.save()

    def next_nonce(self, node_pending: int) -> int:
        """The nonce for a new transaction: after the node's pending count and the journal."""
        top = max(self.entries, default=-1) + 1
        return max(node_pending, top)


def _checksum(body: dict[str, Any]) -> str:
    payload = {k: v for k, v in body.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
