"""Typed events: the classes mirror the ABI exactly, and real logs decode into them."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3

from cipherfuse.chain import (
    EVENT_CLASSES,
    AbortRevealed,
    BudgetReclaimed,
    Chain,
    ChainEvent,
    ClaimForfeited,
    ClaimSettled,
    ClaimStatus,
    ClaimSubmitted,
    CommitteeDrawn,
    ContractEvent,
    ContributorJoined,
    ContributorLeft,
    Credited,
    DrawHashCaptured,
    DrawReanchored,
    EnvelopeReleased,
    EventDecodeError,
    EventDecoder,
    EventPoller,
    KeyBoxesPosted,
    ParticipantState,
    ReleaseCommitted,
    TaskPublished,
    TasksContract,
    VerifierJoined,
    VerifierRetired,
    VerifierSlashed,
    VoteCommitted,
    VoteRevealed,
    Withdrawn,
    abort_commitment,
    envelope_commitment,
    seed_commitment,
    vote_commitment,
)
from cipherfuse.chain.artifacts import load_artifact
from cipherfuse.chain.events import load_cursor
from cipherfuse.chain.typed_events import POSITION_FIELDS, argument_fields

from .conftest import REPO_ROOT
from .helpers import MODEL_SIZE, box_key_of, det_bytes, setup_task

ABI = load_artifact("CipherfuseTasks").abi


def _abi_events(abi: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in abi if e["type"] == "event"}


def _expected_python_type(entry: dict[str, Any]) -> object:
    """The Python type an ABI argument must have in its typed class (independent table)."""
    if entry.get("internalType") == "enum CipherfuseTasks.ClaimStatus":
        return ClaimStatus
    table: dict[str, object] = {
        "address": ChecksumAddress,
        "address[]": tuple[ChecksumAddress, ...],
        "bytes[]": tuple[bytes, ...],
        "bool": bool,
        "string": str,
        "bytes": bytes,
        "bytes32": bytes,
    }
    if re.fullmatch(r"uint\d+", entry["type"]):
        return int
    return table[entry["type"]]


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


# ------------------------------------------------------------------ drift


def test_classes_mirror_every_abi_event_and_argument() -> None:
    events = _abi_events(ABI)
    assert set(EVENT_CLASSES) == set(events)
    for name, entry in events.items():
        cls = EVENT_CLASSES[name]
        assert cls.__name__ == name
        fields = argument_fields(cls)
        assert [_camel(f) for f in fields] == [i["name"] for i in entry["inputs"]], name
        hints = typing.get_type_hints(cls)
        for field, arg in zip(fields, entry["inputs"], strict=True):
            assert hints[field] == _expected_python_type(arg), f"{name}.{field}"
        for position in POSITION_FIELDS:
            assert position in hints
    EventDecoder(ABI)  # constructing checks the same mirror and must accept the real ABI


def test_classes_cover_every_event_declared_in_the_solidity_source() -> None:
    source = (REPO_ROOT / "contracts" / "src" / "CipherfuseTasks.sol").read_text()
    declared = set(re.findall(r"^\s*event\s+(\w+)\s*\(", source, flags=re.MULTILINE))
    assert len(declared) == 21
    assert declared == set(EVENT_CLASSES)


def _mutated(change: str) -> list[dict[str, Any]]:
    abi = copy.deepcopy(ABI)
    events = _abi_events(abi)
    if change == "new event":
        abi.append({"type": "event", "name": "Paused", "anonymous": False, "inputs": []})
    elif change == "lost event":
        abi.remove(events["Withdrawn"])
    elif change == "new argument":
        events["Credited"]["inputs"].append(
            {"name": "reason", "type": "uint8", "internalType": "uint8", "indexed": False}
        )
    elif change == "lost argument":
        events["VoteRevealed"]["inputs"].pop()
    elif change == "renamed argument":
        events["ClaimSubmitted"]["inputs"][3]["name"] = "modelUri"
    elif change == "new enum":
        events["ClaimSettled"]["inputs"][1]["internalType"] = "enum CipherfuseTasks.Verdict"
    return abi


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("new event", "ABI event Paused has no typed class"),
        ("lost event", "typed class Withdrawn has no ABI event"),
        ("new argument", r"Credited: ABI arguments \('account', 'amount', 'reason'\)"),
        ("lost argument", r"VoteRevealed: ABI arguments \('claim_id', 'verifier'\)"),
        ("renamed argument", "ClaimSubmitted: ABI arguments .*'model_uri'"),
        ("new enum", "no Python mirror of enum CipherfuseTasks.Verdict"),
    ],
)
def test_decoder_refuses_an_abi_the_classes_do_not_mirror(change: str, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        EventDecoder(_mutated(change))


# ------------------------------------------------------------------ bad input

_POSITION = {
    "block_number": 7,
    "block_hash": b"\x01" * 32,
    "tx_hash": b"\x02" * 32,
    "log_index": 0,
}
_ALICE = Web3.to_checksum_address("0x" + "ab" * 20)


def _vote_revealed(**overrides: Any) -> dict[str, Any]:
    args = {"claimId": 3, "verifier": _ALICE.lower(), "accept": True}
    args.update(overrides)
    return args


def test_valid_args_decode_with_checksummed_address() -> None:
    event = EventDecoder(ABI).decode_args("VoteRevealed", _vote_revealed(), **_POSITION)
    assert event == VoteRevealed(claim_id=3, verifier=_ALICE, accept=True, **_POSITION)
    assert event.verifier == _ALICE != _ALICE.lower()
    assert event.key == (b"\x02" * 32, 0)


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("VoteRevaled", _vote_revealed(), "unknown event 'VoteRevaled'"),
        ("VoteRevealed", {"claimId": 3, "verifier": _ALICE}, r"missing \['accept'\]"),
        ("VoteRevealed", _vote_revealed(extra=1), r"unexpected \['extra'\]"),
        ("VoteRevealed", _vote_revealed(accept=1), "VoteRevealed.accept .* must be a bool"),
        ("VoteRevealed", _vote_revealed(claimId=-1), r"claimId .* in \[0, 2\*\*256\)"),
        ("VoteRevealed", _vote_revealed(claimId=True), "claimId"),
        ("VoteRevealed", _vote_revealed(claimId="3"), "claimId"),
        ("VoteRevealed", _vote_revealed(verifier="0x1234"), "20-byte hex address"),
        ("VoteCommitted", {"claimId": 1, "verifier": _ALICE, "commitment": b"x"}, "32 bytes"),
        (
            "ClaimSettled",
            {"claimId": 1, "outcome": 10, "acceptVotes": 0, "rejectVotes": 0},
            "10 is no ClaimStatus value",
        ),
        (
            "ClaimSettled",
            {"claimId": 1, "outcome": 3, "acceptVotes": 256, "rejectVotes": 0},
            r"acceptVotes .* 2\*\*8",
        ),
        (
            "CommitteeDrawn",
            {"claimId": 1, "seed": b"\0" * 32, "randomness": b"\0" * 32, "members": _ALICE},
            "list of addresses",
        ),
        (
            "TaskPublished",
            {
                "taskId": 1,
                "initiator": _ALICE,
                "objectiveUri": b"ipfs://",
                "objectiveHash": b"\0" * 32,
                "budget": 1,
            },
            "must be a str",
        ),
    ],
)
def test_mismatching_args_raise_clear_errors(name: str, args: dict[str, Any], message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        EventDecoder(ABI).decode_args(name, args, **_POSITION)


def test_bad_position_fields_raise() -> None:
    decoder = EventDecoder(ABI)
    with pytest.raises(EventDecodeError, match="block_hash must be 32 bytes"):
        decoder.decode_args("VoteRevealed", _vote_revealed(), **{**_POSITION, "block_hash": b""})
    with pytest.raises(EventDecodeError, match="log_index must be a non-negative int"):
        decoder.decode_args("VoteRevealed", _vote_revealed(), **{**_POSITION, "log_index": -1})
    bad = ChainEvent("Nope", {}, 1, b"\0" * 32, b"\0" * 32, 0)
    with pytest.raises(EventDecodeError, match="unknown event 'Nope'"):
        bad.typed()


# ------------------------------------------------------------------ real lifecycle


def _of(events: list[ContractEvent], cls: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


@pytest.mark.slow
def test_full_lifecycle_decodes_every_event_into_its_class(
    chain: Chain, tasks: TasksContract
) -> None:
    start = chain.block_number() + 1
    s = setup_task(chain, tasks, contributors=3, verifiers=5, draw_window=10_000)
    p = s.params
    leaver = s.contributors[2]
    tasks.leave_as_contributor(leaver, s.task_id)
    s.to_claim_window()
    h1 = s.claim(s.contributors[0])
    h2 = s.claim(s.contributors[1])
    chain.mine(2)
    tasks.capture_draw_hash(s.initiator, h1.claim_id)
    first_draw_block = tasks.get_claim(h1.claim_id).draw_block
    captured = bytes(chain.w3.eth.get_block(first_draw_block)["hash"])
    chain.mine(260)  # both draw blocks leave the blockhash horizon; only h1's was captured
    tasks.reanchor_draw(s.initiator, h2.claim_id)
    reanchored_to = tasks.get_claim(h2.claim_id).draw_block
    c1 = s.draw(h1)  # still drawn from the captured hash
    boxes = [det_bytes(f"box{m}") * 3 for m in c1]
    tasks.post_key_boxes(h1.claimant, h1.claim_id, boxes)
    c2 = s.draw(h2)
    lazy = c1[2]
    s.commit(h1, dict.fromkeys(c1, True))
    s.commit(h2, dict.fromkeys(c2[:2], True))
    abort_salt = det_bytes("abort-salt")
    tasks.commit_vote(c2[2], h2.claim_id, abort_commitment(h2.claim_id, c2[2], abort_salt))
    s.reveal(h1, dict.fromkeys(c1[:2], True))
    s.reveal(h2, dict.fromkeys(c2[:2], True))
    tasks.reveal_abort(c2[2], h2.claim_id, abort_salt)
    s.past(tasks.get_claim(h1.claim_id).reveal_deadline)
    tasks.settle_claim(s.initiator, h1.claim_id)
    s.past(tasks.get_claim(h2.claim_id).reveal_deadline)  # an abort: no early settlement
    tasks.settle_claim(s.initiator, h2.claim_id)
    s.release(h1)
    s.past(tasks.get_claim(h2.claim_id).release_deadline)
    tasks.forfeit_unreleased(s.verifiers[0], h2.claim_id)
    s.to_expiry()
    unspent = tasks.get_task(s.task_id).escrow
    assert unspent > 0
    tasks.reclaim_budget(s.initiator, s.task_id)
    retired = [
        v
        for v in s.verifiers
        if tasks.get_participant(s.task_id, v).state == ParticipantState.ACTIVE
    ]
    for v in retired:
        tasks.retire_verifier(v, s.task_id)
    paid = {}
    for account in [s.initiator, *s.contributors, *s.verifiers]:
        if (credit := tasks.credit_of(account)) > 0:
            paid[account] = credit
            tasks.withdraw(account)
    assert tasks.balance() == 0

    raw = EventPoller(tasks, start_block=start).poll()
    typed = [e.typed() for e in raw]
    # The three decoding paths agree: ChainEvent.typed, poll_typed, raw logs through eth-abi.
    assert EventPoller(tasks, start_block=start).poll_typed() == typed
    logs = chain.w3.eth.get_logs(
        {"address": tasks.address, "fromBlock": start, "toBlock": chain.block_number()}
    )
    from_logs = [EventDecoder(ABI).decode_log(log) for log in logs]
    assert sorted(from_logs, key=lambda e: (e.block_number, e.log_index)) == typed
    assert {type(e) for e in typed} == set(EVENT_CLASSES.values())  # all 21 occurred
    for chain_event, event in zip(raw, typed, strict=True):
        assert type(event) is EVENT_CLASSES[chain_event.name]
        assert event.key == chain_event.key
        assert event.block_number == chain_event.block_number
        assert event.block_hash == chain_event.block_hash

    (published,) = _of(typed, TaskPublished)
    assert published.task_id == s.task_id
    assert published.initiator == s.initiator == Web3.to_checksum_address(s.initiator)
    assert published.objective_uri == "ipfs://objective"
    assert published.objective_hash == tasks.get_task(s.task_id).objective_hash
    assert published.budget == p.budget
    assert [(e.task_id, e.contributor, e.deposit) for e in _of(typed, ContributorJoined)] == [
        (s.task_id, c, p.contributor_deposit) for c in s.contributors
    ]
    assert [(e.verifier, e.deposit, e.box_key, e.endpoint) for e in _of(typed, VerifierJoined)] == [
        (v, p.verifier_deposit, box_key_of(v), b"127.0.0.1:7400") for v in s.verifiers
    ]
    assert [(e.claim_id, e.draw_block, e.draw_hash) for e in _of(typed, DrawHashCaptured)] == [
        (h1.claim_id, first_draw_block, captured)
    ]
    assert [(e.claim_id, e.draw_block) for e in _of(typed, DrawReanchored)] == [
        (h2.claim_id, reanchored_to)
    ]
    assert [(e.claim_id, e.claimant, e.boxes) for e in _of(typed, KeyBoxesPosted)] == [
        (h1.claim_id, h1.claimant, tuple(boxes))
    ]
    assert [(e.claim_id, e.contributor) for e in _of(typed, ReleaseCommitted)] == [
        (h1.claim_id, h1.claimant)
    ]
    assert [(e.contributor, e.refund) for e in _of(typed, ContributorLeft)] == [
        (leaver, p.contributor_deposit)
    ]

    submitted = _of(typed, ClaimSubmitted)
    assert [e.claim_id for e in submitted] == [h1.claim_id, h2.claim_id]
    for event, h in zip(submitted, (h1, h2), strict=True):
        assert (event.task_id, event.claimant) == (s.task_id, h.claimant)
        assert event.model_cid == f"bafy-{h.claimant[-8:]}"
        assert event.model_hash == h.model_hash
        assert event.seed_commitment == seed_commitment(s.task_id, h.claimant, h.seed)
        assert event.envelope_commitment == envelope_commitment(s.task_id, h.claimant, h.envelope)
        assert event.model_size == MODEL_SIZE
        assert event.draw_block == h.receipt.block_number + 1
        assert (event.block_number, event.tx_hash) == (h.receipt.block_number, h.receipt.tx_hash)

    drawn = _of(typed, CommitteeDrawn)
    assert [(e.claim_id, e.seed, e.members) for e in drawn] == [
        (h1.claim_id, h1.seed, tuple(c1)),
        (h2.claim_id, h2.seed, tuple(c2)),
    ]
    assert all(isinstance(e.randomness, bytes) and len(e.randomness) == 32 for e in drawn)
    assert {(e.claim_id, e.verifier, e.commitment) for e in _of(typed, VoteCommitted)} == {
        (h.claim_id, m, vote_commitment(h.claim_id, m, True, h.salts[m]))
        for h, committee in ((h1, c1), (h2, c2[:2]))
        for m in committee
    } | {(h2.claim_id, c2[2], abort_commitment(h2.claim_id, c2[2], abort_salt))}
    assert {(e.claim_id, e.verifier, e.accept) for e in _of(typed, VoteRevealed)} == {
        (h1.claim_id, m, True) for m in c1[:2]
    } | {(h2.claim_id, m, True) for m in c2[:2]}
    assert [(e.claim_id, e.verifier) for e in _of(typed, AbortRevealed)] == [(h2.claim_id, c2[2])]
    settled = _of(typed, ClaimSettled)
    assert [(e.claim_id, e.outcome, e.accept_votes, e.reject_votes) for e in settled] == [
        (h1.claim_id, ClaimStatus.ACCEPTED, 2, 0),
        (h2.claim_id, ClaimStatus.ACCEPTED, 2, 0),
    ]
    assert all(type(e.outcome) is ClaimStatus for e in settled)
    assert [(e.task_id, e.verifier, e.amount) for e in _of(typed, VerifierSlashed)] == [
        (s.task_id, lazy, p.verifier_deposit)
    ]
    assert [(e.claim_id, e.contributor, e.envelope) for e in _of(typed, EnvelopeReleased)] == [
        (h1.claim_id, h1.claimant, h1.envelope)
    ]
    assert [(e.claim_id, e.to_escrow, e.burnt) for e in _of(typed, ClaimForfeited)] == [
        (h2.claim_id, p.reward_per_model + p.contributor_deposit, 0)
    ]
    assert [(e.task_id, e.initiator, e.amount) for e in _of(typed, BudgetReclaimed)] == [
        (s.task_id, s.initiator, unspent)
    ]
    assert [(e.verifier, e.refund) for e in _of(typed, VerifierRetired)] == [
        (v, p.verifier_deposit) for v in retired
    ]
    assert lazy not in retired
    assert {e.account: e.amount for e in _of(typed, Withdrawn)} == paid
    credited: dict[str, int] = {}
    for e in _of(typed, Credited):
        credited[e.account] = credited.get(e.account, 0) + e.amount
    assert credited == paid  # everything credited was withdrawn, to the same accounts


def test_raw_log_mismatches_raise(chain: Chain, tasks: TasksContract) -> None:
    start = chain.block_number() + 1
    setup_task(chain, tasks, contributors=1, verifiers=0)
    logs = chain.w3.eth.get_logs(
        {"address": tasks.address, "fromBlock": start, "toBlock": chain.block_number()}
    )
    decoder = EventDecoder(ABI)
    log = dict(logs[0])
    assert isinstance(decoder.decode_log(log), TaskPublished)
    with pytest.raises(EventDecodeError, match="no topics"):
        decoder.decode_log({**log, "topics": []})
    with pytest.raises(EventDecodeError, match="is no CipherfuseTasks event"):
        decoder.decode_log({**log, "topics": [HexBytes(b"\x07" * 32), *log["topics"][1:]]})
    with pytest.raises(EventDecodeError, match="TaskPublished log has 2 topics, the ABI needs 3"):
        decoder.decode_log({**log, "topics": log["topics"][:2]})
    with pytest.raises(EventDecodeError, match="TaskPublished log data does not decode"):
        decoder.decode_log({**log, "data": HexBytes(b"\x00" * 5)})
    with pytest.raises(EventDecodeError, match="not a log entry"):
        decoder.decode_log({"topics": log["topics"]})


def test_poll_typed_keeps_the_cursor_until_the_handler_succeeds(
    chain: Chain, tasks: TasksContract, tmp_path: Path
) -> None:
    cursor = tmp_path / "cursor.json"
    start = chain.block_number() + 1
    s = setup_task(chain, tasks, contributors=1, verifiers=1)

    def crash(batch: list[ContractEvent]) -> None:
        raise RuntimeError("consumer died")

    with pytest.raises(RuntimeError):
        EventPoller(tasks, start_block=start, cursor_path=cursor).poll_typed(crash)
    assert not cursor.exists() or load_cursor(cursor, tasks.address) == start
    delivered: list[ContractEvent] = []
    again = EventPoller(tasks, start_block=start, cursor_path=cursor)
    assert again.poll_typed(delivered.extend) == delivered
    assert [type(e) for e in delivered] == [TaskPublished, VerifierJoined, ContributorJoined]
    assert isinstance(delivered[2], ContributorJoined)
    assert delivered[2].contributor == s.contributors[0]
    assert load_cursor(cursor, tasks.address) == chain.block_number() + 1
