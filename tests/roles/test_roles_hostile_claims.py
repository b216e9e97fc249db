"""Poisoned claims against real verifiers on the embedded chain: every one ends as a reject.

Three hostile claimants, each judged by the three honest verifiers of a real deployment:

* contributor 1 uploads a model file whose JSON config is nested 70,000 levels deep
  (with ``cipherfuse.chain`` imported the recursion limit is 100,000, so an unbounded
  ``json.loads`` overflows the C stack and kills the verifier);
* contributor 2 sends key boxes whose X25519 ephemeral key is the all-zero point;
* contributor 3 claims a CID that is a DAG bomb: its root declares one byte and its links
  repeat one 256 KiB leaf.

The defined outcome: every claim is rejected by three reject votes, no verifier is
slashed, every verifier gets its deposit and its fees back, and each judge's recorded
reason names the typed error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from flax import serialization
from roles_helpers import PARAMS, World

from cipherfuse.chain import ClaimStatus, ParticipantState
from cipherfuse.nn.serialize import FORMAT, MAGIC, VERSION
from cipherfuse.roles.contributor import ContributorAgent
from cipherfuse.roles.manifest import TaskManifest
from cipherfuse.roles.sealing import BOX_MAGIC, KEY_BYTES, NONCE_BYTES
from cipherfuse.roles.verifier import VerifierAgent
from cipherfuse.storage import CID, LocalStore
from cipherfuse.storage.cid import DAG_PB, RAW
from cipherfuse.storage.protobuf import (
    UNIXFS_FILE,
    PBLink,
    PBNode,
    UnixFSData,
    encode_pbnode,
    encode_unixfs,
)

DEPTH = 70_000


def deep_json_model(manifest: TaskManifest, key_blob: bytes) -> bytes:
    """A correctly checksummed model file whose config is ``[[[...]]]`` 70,000 deep."""
    payload = serialization.msgpack_serialize(
        {
            "format": FORMAT,
            "version": VERSION,
            "config": "[" * DEPTH + "]" * DEPTH,
            "labels": [0],
            "quantization": {},
            "params": {},
        }
    )
    return MAGIC + hashlib.sha256(payload).digest() + payload


def dag_bomb(store: LocalStore, levels: int = 3, fanout: int = 174) -> str:
    """A root declaring filesize=1 over ``levels`` nodes repeating one 256 KiB leaf."""
    leaf = bytes(range(256)) * 1024
    child = CID.for_block(leaf, RAW, 1)
    store.blocks.put(child, [leaf])
    size = len(leaf)
    for level in range(levels):
        unixfs = UnixFSData(
            type=UNIXFS_FILE,
            filesize=1 if level == levels - 1 else size * fanout,
            blocksizes=(size,) * fanout,
        )
        links = tuple(PBLink(hash=child.to_bytes(), tsize=size) for _ in range(fanout))
        block = encode_pbnode(PBNode(data=encode_unixfs(unixfs), links=links))
        child = CID.for_block(block, DAG_PB, 0)
        store.blocks.put(child, [block])
        size *= fanout
    return str(child)


class LowOrderBoxContributor(ContributorAgent):
    """Delivers key boxes whose ephemeral X25519 key is the all-zero (low-order) point."""

    def _deliver_boxes(self, claim_id: int) -> bool:
        box = BOX_MAGIC + bytes(32) + bytes(NONCE_BYTES) + bytes(KEY_BYTES + 16)
        boxes = [box for _ in self.tasks.committee_of(claim_id)]
        return self.try_tx(
            "post key boxes", lambda: self.tasks.post_key_boxes(self.account, claim_id, boxes)
        )


class DagBombContributor(ContributorAgent):
    """Claims a DAG bomb's CID instead of its sealed model's."""

    def _prepare(self) -> None:
        super()._prepare()
        assert isinstance(self.ctx.store, LocalStore)
        self.state.update(sealed_cid=dag_bomb(self.ctx.store))


class HostileWorld(World):
    """The roles_helpers deployment with the three hostile contributors above."""

    def contributor(self, i: int) -> ContributorAgent:
        kind = (ContributorAgent, LowOrderBoxContributor, DagBombContributor)[i]
        make = deep_json_model if i == 0 else super().contributor(i).make_payload
        return kind(self.ctx, self.accounts[2 + i], self.root / "state", self.task_id, make)

    def verifier(self, i: int) -> VerifierAgent:
        return VerifierAgent(
            self.ctx,
            self.accounts[5 + i],
            self.root / "state",
            self.task_id,
            self.judges[i],
            max_model_bytes=1 << 20,
        )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> HostileWorld:
    world = HostileWorld(Path(tmp_path_factory.mktemp("hostile")))
    world.run()
    return world


def _claim_id(world: World, i: int) -> int:
    return world.tasks.get_participant(world.task_id, world.accounts[2 + i]).claim_id


def test_every_poisoned_claim_is_rejected_by_every_verifier(hostile: HostileWorld) -> None:
    for i in range(3):
        claim = hostile.tasks.get_claim(_claim_id(hostile, i))
        assert claim.status == ClaimStatus.REJECTED, i
    assert len(hostile.events("VoteRevealed")) == 9
    assert all(not e.accept for e in hostile.events("VoteRevealed"))  # type: ignore[attr-defined]


def test_the_reasons_name_the_typed_errors(hostile: HostileWorld) -> None:
    # The DAG bomb's root declares 1 byte while the claim commits to its sealed blob's
    # size on chain, so the judge refuses it from the root alone, before any leaf.
    expected = (
        "nests 70000 levels deep",
        "low-order X25519 point",
        "holds 1 bytes, not the expected",
    )
    for i, fragment in enumerate(expected):
        for v in range(3):
            decisions = hostile.verifier(v).state.data["decisions"]
            reason = decisions[str(_claim_id(hostile, i))]["reason"]
            assert reason.startswith("unusable model: ") and fragment in reason, reason


def test_honest_verifiers_are_never_slashed_and_are_paid(hostile: HostileWorld) -> None:
    assert hostile.events("VerifierSlashed") == []
    for v in hostile.accounts[5:8]:
        me = hostile.tasks.get_participant(hostile.task_id, v)
        assert me.state != ParticipantState.SLASHED
        assert hostile.withdrawn(v) == PARAMS.verifier_deposit + 3 * PARAMS.verifier_fee
    assert hostile.tasks.balance() == 0


class ExhaustedJudge:
    """A judge whose cipherspace evaluation runs out of memory on the claimant's model."""

    def judge(self, claim_id: int, payload: bytes) -> object:
        raise MemoryError("numpy could not allocate the claimant's feature maps")

    def remember(self, claim_id: int, payload: bytes) -> None:
        raise RecursionError("a dependency recursed on the claimant's data")


def test_an_unexpected_exception_while_judging_is_a_reject_vote(hostile: HostileWorld) -> None:
    """Anything escaping the judge on a claimant's data (not a CipherfuseError) is still a
    reject vote with the reason recorded, never an exception out of the verifier."""
    claim_id = _claim_id(hostile, 0)
    claim = hostile.tasks.get_claim(claim_id)
    agent = VerifierAgent(
        hostile.ctx, hostile.accounts[5], hostile.root / "state", hostile.task_id, ExhaustedJudge()
    )
    decision = agent._decide(claim_id, claim, hostile.chain.timestamp())
    assert decision is not None and decision["accept"] is False
    assert "unexpected MemoryError" in str(decision["reason"])
    # Remembering an accepted model with the true sealing key: the judge's RecursionError
    # is logged, not raised.
    key = hostile.contributor(0).state.data["sealing_key"]
    agent.state.data["decisions"][str(claim_id)]["key"] = key
    before = len(hostile.log_lines)
    agent._remember(claim_id, claim)
    assert any(
        "RecursionError" in line or "recursed" in line for line in hostile.log_lines[before:]
    )
