"""Event consumption by block-range polling with a confirmation depth.

:class:`EventPoller` reads the contract's logs with ``eth_getLogs`` in bounded block ranges,
only up to ``head - confirmations``, decodes them into :class:`ChainEvent`, and keeps the
next block to read in a cursor. With a ``cursor_path`` the cursor is persisted (versioned,
checksummed JSON, written atomically) *after* the handler has processed a batch, so a
restarted consumer resumes where it stopped and sees each event at least once; events carry
a unique ``key`` (transaction hash, log index) for de-duplication.

:meth:`ChainEvent.typed` and :meth:`EventPoller.poll_typed` give the same events as the
typed classes of :mod:`cipherfuse.chain.typed_events` (one frozen dataclass per contract
event, checked against the ABI).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from hexbytes import HexBytes

from cipherfuse.chain.errors import ChainParameterError
from cipherfuse.chain.tasks import TasksContract
from cipherfuse.chain.typed_events import ContractEvent, EventDecoder, default_decoder
from cipherfuse.errors import SerializationError
from cipherfuse.files import atomic_write_bytes
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import is_strict_int

CURSOR_FORMAT = "cipherfuse-event-cursor"
CURSOR_VERSION = 1


@dataclass(frozen=True)
class ChainEvent:
    """One decoded contract event."""

    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int

    @property
    def key(self) -> tuple[bytes, int]:
        """Unique identity of the event: (transaction hash, log index)."""
        return (self.tx_hash, self.log_index)

    def typed(self, decoder: EventDecoder | None = None) -> ContractEvent:
        """This event as its typed class (e.g. :class:`~.typed_events.ClaimSettled`).

        ``decoder`` defaults to the packaged ABI's.

        Raises:
            EventDecodeError: the name or arguments do not match the ABI.
        """
        return (decoder or default_decoder()).decode_args(
            self.name,
            self.args,
            block_number=self.block_number,
            block_hash=self.block_hash,
            tx_hash=self.tx_hash,
            log_index=self.log_index,
        )


def _cursor_checksum(body: dict[str, Any]) -> str:
    payload = {k: v for k, v in body.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def load_cursor(path: Path, contract_address: str) -> int | None:
    """Next block stored at ``path`` for ``contract_address``; None if the file is absent.

    Raises:
        SerializationError: corrupt, wrong format/version, bad checksum, or another contract.
    """
    if not path.exists():
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SerializationError(f"event cursor {path} is unreadable: {exc}") from exc
    try:
        body = parse_json(raw, what="its content", max_bytes=1 << 16)
    except SerializationError as exc:
        raise SerializationError(f"event cursor {path} is unreadable: {exc}") from exc
    if (
        not isinstance(body, dict)
        or body.get("format") != CURSOR_FORMAT
        or body.get("version") != CURSOR_VERSION
        or not is_strict_int(body.get("next_block"), exact=True)
        or not isinstance(body.get("contract"), str)
    ):
        raise SerializationError(f"{path} is not a {CURSOR_FORMAT} v{CURSOR_VERSION} file")
    if body.get("checksum") != _cursor_checksum(body):
        raise SerializationError(f"event cursor {path} fails its checksum; delete it to rescan")
    if body["contract"].lower() != contract_address.lower():
        raise SerializationError(
            f"event cursor {path} belongs to contract {body['contract']}, not {contract_address}"
        )
    return int(body["next_block"])


def save_cursor(path: Path, contract_address: str, next_block: int) -> None:
    """Atomically write the cursor (temp file in the same folder, fsync, rename)."""
    body: dict[str, Any] = {
        "format": CURSOR_FORMAT,
        "version": CURSOR_VERSION,
        "contract": contract_address,
        "next_block": next_block,
    }
    body["checksum"] = _cursor_checksum(body)
    # Private (0600); the file is fsynced, not the folder (a lost cursor only costs a rescan).
    atomic_write_bytes(path, json.dumps(body).encode("utf-8"), mode=0o600, sync_folder=False)


class EventPoller:
    """Polls one :class:`TasksContract` for events.

    Args:
        contract: the deployment to watch.
        start_block: first block to read when no cursor is stored.
        confirmations: only blocks with at least this many blocks on top are read
            (0 reads up to the head).
        cursor_path: where to persist the next block to read (optional).
        max_range: most blocks per ``eth_getLogs`` request.
    """

    def __init__(
        self,
        contract: TasksContract,
        *,
        start_block: int = 0,
        confirmations: int = 0,
        cursor_path: Path | None = None,
        max_range: int = 2000,
    ) -> None:
        if start_block < 0:
            raise ChainParameterError(f"start_block must be >= 0, got {start_block}")
        if confirmations < 0:
            raise ChainParameterError(f"confirmations must be >= 0, got {confirmations}")
        if max_range < 1:
            raise ChainParameterError(f"max_range must be >= 1, got {max_range}")
        self._contract = contract
        self._confirmations = confirmations
        self._cursor_path = cursor_path
        self._max_range = max_range
        stored = load_cursor(cursor_path, contract.address) if cursor_path else None
        self.next_block = start_block if stored is None else stored
        self._events_by_topic: dict[bytes, str] = {}
        for entry in contract.artifact.abi:
            if entry.get("type") == "event":
                types = ",".join(str(i["type"]) for i in entry["inputs"])
                self._events_by_topic[keccak(text=f"{entry['name']}({types})")] = entry["name"]

    def _decode(self, log: Any) -> ChainEvent | None:
        topics = log["topics"]
        if not topics:
            return None
        name = self._events_by_topic.get(bytes(topics[0]))
        if name is None:
            return None
        decoded = getattr(self._contract.contract.events, name)().process_log(log)
        return ChainEvent(
            name=name,
            args=dict(decoded["args"]),
            block_number=int(log["blockNumber"]),
            block_hash=bytes(HexBytes(log["blockHash"])),
            tx_hash=bytes(HexBytes(log["transactionHash"])),
            log_index=int(log["logIndex"]),
        )

    def poll(self, handler: Callable[[list[ChainEvent]], None] | None = None) -> list[ChainEvent]:
        """Read every confirmed event since the cursor, in chain order.

        ``handler`` (if given) receives each batch before the cursor advances past it, so a
        crash inside the handler means the batch is delivered again on the next poll.
        """
        head = self._contract.chain.block_number()
        safe = head - self._confirmations
        collected: list[ChainEvent] = []
        while self.next_block <= safe:
            to_block = min(safe, self.next_block + self._max_range - 1)
            logs = self._contract.chain.w3.eth.get_logs(
                {
                    "address": self._contract.address,
                    "fromBlock": self.next_block,
                    "toBlock": to_block,
                }
            )
            batch = [e for e in (self._decode(log) for log in logs) if e is not None]
            batch.sort(key=lambda e: (e.block_number, e.log_index))
            if handler is not None and batch:
                handler(batch)
            collected.extend(batch)
            self.next_block = to_block + 1
            if self._cursor_path is not None:
                save_cursor(self._cursor_path, self._contract.address, self.next_block)
        return collected

    def poll_typed(
        self, handler: Callable[[list[ContractEvent]], None] | None = None
    ) -> list[ContractEvent]:
        """:meth:`poll`, with every event converted to its typed class.

        Each batch is converted (and checked against the contract's ABI) before ``handler``
        sees it and before the cursor advances, so a decoding error leaves the batch to be
        read again.

        Raises:
            EventDecodeError: an event does not match the ABI, or the typed classes do not
                mirror the contract's ABI.
        """
        decoder = EventDecoder(self._contract.artifact.abi)
        collected: list[ContractEvent] = []

        def convert(batch: list[ChainEvent]) -> None:
            typed = [event.typed(decoder) for event in batch]
            if handler is not None:
                handler(typed)
            collected.extend(typed)

        self.poll(convert)
        return collected
