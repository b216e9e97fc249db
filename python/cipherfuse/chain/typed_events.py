"""Typed events of ``CipherfuseTasks``: one frozen dataclass per contract event.

Each class mirrors one ``event`` of the contract: its fields are the event's arguments in
ABI order (camelCase names turned into snake_case) with Python types that follow the ABI
type (``uintN`` → ``int``, ``address`` → checksummed ``str``, ``bytes32``/``bytes`` →
``bytes``, ``string`` → ``str``, ``bool`` → ``bool``, ``address[]`` → ``tuple`` of
checksummed addresses, ``bytes[]`` → ``tuple`` of ``bytes``,
``enum ClaimStatus`` → :class:`~cipherfuse.chain.tasks.ClaimStatus`),
followed by the log position (``block_number``, ``block_hash``, ``tx_hash``, ``log_index``).

:class:`EventDecoder` builds them from a :class:`~cipherfuse.chain.events.ChainEvent`'s
name and argument dict (:meth:`EventDecoder.decode_args`) or straight from a raw
``eth_getLogs`` entry (:meth:`EventDecoder.decode_log`, decoded with eth-abi, independent of
web3's contract machinery). Every name, argument and value is checked against the ABI; any
mismatch raises :class:`~cipherfuse.chain.errors.EventDecodeError`. Constructing a decoder
also checks that the classes here mirror the ABI exactly, so they cannot drift silently.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, cast

from eth_abi.abi import decode as abi_decode
from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from cipherfuse.chain.artifacts import load_artifact
from cipherfuse.chain.errors import EventDecodeError
from cipherfuse.chain.tasks import ClaimStatus, TasksContract
from cipherfuse.validation import is_strict_int, strict_int

POSITION_FIELDS = ("block_number", "block_hash", "tx_hash", "log_index")

#: Solidity enum types (the ABI's ``internalType``) and their Python mirrors.
ENUM_TYPES: dict[str, type[IntEnum]] = {"enum CipherfuseTasks.ClaimStatus": ClaimStatus}


@dataclass(frozen=True, kw_only=True)
class ContractEvent:
    """Base of the typed events: where the log sits on chain."""

    EVENT_NAME: ClassVar[str] = ""

    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int

    @property
    def key(self) -> tuple[bytes, int]:
        """Unique identity of the event: (transaction hash, log index)."""
        return (self.tx_hash, self.log_index)


@dataclass(frozen=True, kw_only=True)
class TaskPublished(ContractEvent):
    """A task was published and its budget escrowed."""

    EVENT_NAME: ClassVar[str] = "TaskPublished"
    task_id: int
    initiator: ChecksumAddress
    objective_uri: str
    objective_hash: bytes
    budget: int


@dataclass(frozen=True, kw_only=True)
class ContributorJoined(ContractEvent):
    """A contributor registered with its deposit."""

    EVENT_NAME: ClassVar[str] = "ContributorJoined"
    task_id: int
    contributor: ChecksumAddress
    deposit: int


@dataclass(frozen=True, kw_only=True)
class ContributorLeft(ContractEvent):
    """A contributor left before claiming; its deposit was credited back."""

    EVENT_NAME: ClassVar[str] = "ContributorLeft"
    task_id: int
    contributor: ChecksumAddress
    refund: int


@dataclass(frozen=True, kw_only=True)
class VerifierJoined(ContractEvent):
    """A verifier registered with its deposit, X25519 box key and committee endpoint."""

    EVENT_NAME: ClassVar[str] = "VerifierJoined"
    task_id: int
    verifier: ChecksumAddress
    deposit: int
    box_key: bytes
    endpoint: bytes


@dataclass(frozen=True, kw_only=True)
class VerifierRetired(ContractEvent):
    """A verifier with no pending duty left after expiry; its deposit was credited back."""

    EVENT_NAME: ClassVar[str] = "VerifierRetired"
    task_id: int
    verifier: ChecksumAddress
    refund: int


@dataclass(frozen=True, kw_only=True)
class VerifierSlashed(ContractEvent):
    """A verifier missed a reveal and lost its deposit to the task escrow."""

    EVENT_NAME: ClassVar[str] = "VerifierSlashed"
    task_id: int
    verifier: ChecksumAddress
    amount: int


@dataclass(frozen=True, kw_only=True)
class ClaimSubmitted(ContractEvent):
    """A contributor claimed with the CID, content hash and byte size of its encrypted model."""

    EVENT_NAME: ClassVar[str] = "ClaimSubmitted"
    task_id: int
    claim_id: int
    claimant: ChecksumAddress
    model_cid: str
    model_hash: bytes
    model_size: int
    seed_commitment: bytes
    envelope_commitment: bytes
    draw_block: int


@dataclass(frozen=True, kw_only=True)
class DrawHashCaptured(ContractEvent):
    """Someone stored the draw block's hash while it was within the blockhash horizon."""

    EVENT_NAME: ClassVar[str] = "DrawHashCaptured"
    claim_id: int
    draw_block: int
    draw_hash: bytes


@dataclass(frozen=True, kw_only=True)
class DrawReanchored(ContractEvent):
    """An uncaptured draw block left the horizon; the draw moved to a fresh block."""

    EVENT_NAME: ClassVar[str] = "DrawReanchored"
    claim_id: int
    draw_block: int


@dataclass(frozen=True, kw_only=True)
class CommitteeDrawn(ContractEvent):
    """The claimant revealed its seed and the committee was drawn."""

    EVENT_NAME: ClassVar[str] = "CommitteeDrawn"
    claim_id: int
    seed: bytes
    randomness: bytes
    members: tuple[ChecksumAddress, ...]


@dataclass(frozen=True, kw_only=True)
class KeyBoxesPosted(ContractEvent):
    """The claimant posted one key box per committee member, in draw order."""

    EVENT_NAME: ClassVar[str] = "KeyBoxesPosted"
    claim_id: int
    claimant: ChecksumAddress
    boxes: tuple[bytes, ...]


@dataclass(frozen=True, kw_only=True)
class VoteCommitted(ContractEvent):
    """A committee member committed to a hidden vote."""

    EVENT_NAME: ClassVar[str] = "VoteCommitted"
    claim_id: int
    verifier: ChecksumAddress
    commitment: bytes


@dataclass(frozen=True, kw_only=True)
class VoteRevealed(ContractEvent):
    """A committee member revealed its vote."""

    EVENT_NAME: ClassVar[str] = "VoteRevealed"
    claim_id: int
    verifier: ChecksumAddress
    accept: bool


@dataclass(frozen=True, kw_only=True)
class AbortRevealed(ContractEvent):
    """A committee member revealed an abort (it could not judge the claim)."""

    EVENT_NAME: ClassVar[str] = "AbortRevealed"
    claim_id: int
    verifier: ChecksumAddress


@dataclass(frozen=True, kw_only=True)
class ClaimSettled(ContractEvent):
    """A claim was settled with the given outcome."""

    EVENT_NAME: ClassVar[str] = "ClaimSettled"
    claim_id: int
    outcome: ClaimStatus
    accept_votes: int
    reject_votes: int


@dataclass(frozen=True, kw_only=True)
class ReleaseCommitted(ContractEvent):
    """The accepted claimant locked its release before the deadline (no forfeit any more)."""

    EVENT_NAME: ClassVar[str] = "ReleaseCommitted"
    claim_id: int
    contributor: ChecksumAddress


@dataclass(frozen=True, kw_only=True)
class EnvelopeReleased(ContractEvent):
    """The accepted contributor released the model-decryption envelope."""

    EVENT_NAME: ClassVar[str] = "EnvelopeReleased"
    claim_id: int
    contributor: ChecksumAddress
    envelope: bytes


@dataclass(frozen=True, kw_only=True)
class ClaimForfeited(ContractEvent):
    """A release did not happen: ``to_escrow`` wei went back to the task escrow, ``burnt`` wei
    were burned (a locked release whose envelope never followed)."""

    EVENT_NAME: ClassVar[str] = "ClaimForfeited"
    claim_id: int
    to_escrow: int
    burnt: int


@dataclass(frozen=True, kw_only=True)
class BudgetReclaimed(ContractEvent):
    """The initiator reclaimed unspent escrow after expiry."""

    EVENT_NAME: ClassVar[str] = "BudgetReclaimed"
    task_id: int
    initiator: ChecksumAddress
    amount: int


@dataclass(frozen=True, kw_only=True)
class Credited(ContractEvent):
    """An account's withdrawable balance grew."""

    EVENT_NAME: ClassVar[str] = "Credited"
    account: ChecksumAddress
    amount: int


@dataclass(frozen=True, kw_only=True)
class Withdrawn(ContractEvent):
    """An account withdrew its balance."""

    EVENT_NAME: ClassVar[str] = "Withdrawn"
    account: ChecksumAddress
    amount: int


#: Every typed event class, by contract event name.
EVENT_CLASSES: dict[str, type[ContractEvent]] = {
    cls.EVENT_NAME: cls
    for cls in (
        TaskPublished,
        ContributorJoined,
        ContributorLeft,
        VerifierJoined,
        VerifierRetired,
        VerifierSlashed,
        ClaimSubmitted,
        DrawHashCaptured,
        DrawReanchored,
        CommitteeDrawn,
        KeyBoxesPosted,
        VoteCommitted,
        VoteRevealed,
        AbortRevealed,
        ClaimSettled,
        ReleaseCommitted,
        EnvelopeReleased,
        ClaimForfeited,
        BudgetReclaimed,
        Credited,
        Withdrawn,
    )
}


def snake_case(name: str) -> str:
    """``objectiveUri`` → ``objective_uri`` (the field name of an ABI argument)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def argument_fields(cls: type[ContractEvent]) -> tuple[str, ...]:
    """The fields of ``cls`` that mirror event arguments (in declaration order)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in POSITION_FIELDS)


@dataclass(frozen=True)
class _Argument:
    name: str
    field: str
    abi_type: str
    internal_type: str
    indexed: bool


@dataclass(frozen=True)
class _EventSchema:
    name: str
    cls: type[ContractEvent]
    arguments: tuple[_Argument, ...]
    topic: bytes


def _mirror_problems(abi_events: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    for name in sorted(set(abi_events) - set(EVENT_CLASSES)):
        problems.append(f"ABI event {name} has no typed class")
    for name in sorted(set(EVENT_CLASSES) - set(abi_events)):
        problems.append(f"typed class {name} has no ABI event")
    for name in sorted(set(abi_events) & set(EVENT_CLASSES)):
        wanted = tuple(snake_case(str(i["name"])) for i in abi_events[name]["inputs"])
        have = argument_fields(EVENT_CLASSES[name])
        if wanted != have:
            problems.append(f"{name}: ABI arguments {wanted} but class fields {have}")
        for entry in abi_events[name]["inputs"]:
            internal = str(entry.get("internalType", ""))
            if internal.startswith("enum ") and internal not in ENUM_TYPES:
                problems.append(f"{name}.{entry['name']}: no Python mirror of {internal}")
    return problems


class EventDecoder:
    """Decodes ``CipherfuseTasks`` events into their typed classes, checked against ``abi``.

    Raises:
        EventDecodeError: at construction if the typed classes do not mirror ``abi``'s
            events (a class or argument missing on either side).
    """

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        abi_events = {str(e["name"]): e for e in abi if e.get("type") == "event"}
        problems = _mirror_problems(abi_events)
        if problems:
            raise EventDecodeError(
                "the typed event classes do not mirror the contract ABI ("
                + "; ".join(problems)
                + "); update cipherfuse/chain/typed_events.py together with the contract"
            )
        self._schemas: dict[str, _EventSchema] = {}
        self._by_topic: dict[bytes, _EventSchema] = {}
        for name, entry in abi_events.items():
            arguments = tuple(
                _Argument(
                    name=str(i["name"]),
                    field=snake_case(str(i["name"])),
                    abi_type=str(i["type"]),
                    internal_type=str(i.get("internalType", i["type"])),
                    indexed=bool(i.get("indexed", False)),
                )
                for i in entry["inputs"]
            )
            signature = f"{name}({','.join(a.abi_type for a in arguments)})"
            schema = _EventSchema(name, EVENT_CLASSES[name], arguments, keccak(text=signature))
            self._schemas[name] = schema
            self._by_topic[schema.topic] = schema

    @property
    def event_names(self) -> frozenset[str]:
        """Names of the events this decoder knows."""
        return frozenset(self._schemas)

    def decode_args(
        self,
        name: str,
        args: Mapping[str, Any],
        *,
        block_number: int,
        block_hash: bytes,
        tx_hash: bytes,
        log_index: int,
    ) -> ContractEvent:
        """Typed event from an event name and its ABI-named argument dict.

        Raises:
            EventDecodeError: unknown event, missing or extra argument, or a value that does
                not fit its ABI type.
        """
        schema = self._schemas.get(name)
        if schema is None:
            raise EventDecodeError(
                f"unknown event {name!r}; the contract emits {', '.join(sorted(self._schemas))}"
            )
        expected = {a.name for a in schema.arguments}
        missing = sorted(expected - set(args))
        extra = sorted(set(args) - expected)
        if missing or extra:
            raise EventDecodeError(
                f"{name} arguments do not match the ABI: missing {missing}, unexpected {extra}"
            )
        values = {a.field: _convert(name, a, args[a.name]) for a in schema.arguments}
        return schema.cls(
            **values,
            block_number=_position_int("block_number", block_number),
            block_hash=_position_hash("block_hash", block_hash),
            tx_hash=_position_hash("tx_hash", tx_hash),
            log_index=_position_int("log_index", log_index),
        )

    def decode_log(self, log: Mapping[str, Any]) -> ContractEvent:
        """Typed event from a raw ``eth_getLogs``/receipt log entry (decoded with eth-abi).

        Raises:
            EventDecodeError: no or unknown topic, wrong topic count, undecodable data.
        """
        try:
            topics = [bytes(HexBytes(t)) for t in log["topics"]]
            data = bytes(HexBytes(log["data"]))
            block_number = int(log["blockNumber"])
            block_hash = bytes(HexBytes(log["blockHash"]))
            tx_hash = bytes(HexBytes(log["transactionHash"]))
            log_index = int(log["logIndex"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EventDecodeError(f"not a log entry (topics, data, position): {exc}") from exc
        if not topics:
            raise EventDecodeError("log has no topics; CipherfuseTasks emits no anonymous events")
        schema = self._by_topic.get(topics[0])
        if schema is None:
            raise EventDecodeError(
                f"log topic 0x{topics[0].hex()} is no CipherfuseTasks event; "
                "filter logs by the contract's address"
            )
        indexed = [a for a in schema.arguments if a.indexed]
        plain = [a for a in schema.arguments if not a.indexed]
        if len(topics) != 1 + len(indexed):
            raise EventDecodeError(
                f"{schema.name} log has {len(topics)} topics, the ABI needs {1 + len(indexed)}"
            )
        args: dict[str, Any] = {}
        try:
            for arg, topic in zip(indexed, topics[1:], strict=True):
                (args[arg.name],) = abi_decode([arg.abi_type], topic)
            decoded = abi_decode([a.abi_type for a in plain], data)
        except Exception as exc:  # eth-abi raises several unrelated decoding errors
            raise EventDecodeError(f"{schema.name} log data does not decode: {exc}") from exc
        args.update({a.name: v for a, v in zip(plain, decoded, strict=True)})
        return self.decode_args(
            schema.name,
            args,
            block_number=block_number,
            block_hash=block_hash,
            tx_hash=tx_hash,
            log_index=log_index,
        )


@functools.cache
def default_decoder() -> EventDecoder:
    """Decoder for the packaged ``CipherfuseTasks`` ABI."""
    return EventDecoder(load_artifact(TasksContract.ARTIFACT).abi)


def _position_int(name: str, value: object) -> int:
    return strict_int(value, name, minimum=0, error=EventDecodeError)


def _position_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise EventDecodeError(f"{name} must be 32 bytes, got {value!r}")
    return bytes(value)


def _convert(event: str, arg: _Argument, value: object) -> Any:
    where = f"{event}.{arg.name} ({arg.internal_type})"
    enum = ENUM_TYPES.get(arg.internal_type)
    if enum is not None:
        number = _uint(where, arg.abi_type, value)
        try:
            return enum(number)
        except ValueError:
            raise EventDecodeError(f"{where}: {number} is no {enum.__name__} value") from None
    if arg.abi_type.startswith("uint"):
        return _uint(where, arg.abi_type, value)
    if arg.abi_type == "address":
        return _address(where, value)
    if arg.abi_type == "address[]":
        if not isinstance(value, list | tuple):
            raise EventDecodeError(f"{where} must be a list of addresses, got {value!r}")
        return tuple(_address(where, v) for v in value)
    if arg.abi_type == "bytes[]":
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, bytes | bytearray) for v in value
        ):
            raise EventDecodeError(f"{where} must be a list of bytes, got {value!r}")
        return tuple(bytes(v) for v in value)
    if arg.abi_type == "bool":
        if not isinstance(value, bool):
            raise EventDecodeError(f"{where} must be a bool, got {value!r}")
        return value
    if arg.abi_type == "string":
        if not isinstance(value, str):
            raise EventDecodeError(f"{where} must be a str, got {value!r}")
        return value
    if arg.abi_type == "bytes" or re.fullmatch(r"bytes([1-9]|[12][0-9]|3[0-2])", arg.abi_type):
        if not isinstance(value, bytes | bytearray):
            raise EventDecodeError(f"{where} must be bytes, got {value!r}")
        if arg.abi_type != "bytes" and len(value) != int(arg.abi_type[5:]):
            raise EventDecodeError(f"{where} must be {arg.abi_type[5:]} bytes, got {len(value)}")
        return bytes(value)
    raise EventDecodeError(f"{where}: ABI type {arg.abi_type} has no typed mirror")


def _uint(where: str, abi_type: str, value: object) -> int:
    bits = int(abi_type[4:] or "256")
    if not is_strict_int(value, minimum=0, maximum=2**bits - 1):
        raise EventDecodeError(f"{where} must be an int in [0, 2**{bits}), got {value!r}")
    return cast(int, value)


def _address(where: str, value: object) -> ChecksumAddress:
    if not isinstance(value, str) or not is_address(value):
        raise EventDecodeError(f"{where} must be a 20-byte hex address, got {value!r}")
    return to_checksum_address(value)
