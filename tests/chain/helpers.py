"""Shared scenario builder for the chain tests (no mocks: real contract, real chain)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from cipherfuse.chain import (
    Chain,
    ClaimStatus,
    Receipt,
    TaskParams,
    TasksContract,
    envelope_commitment,
    seed_commitment,
    vote_commitment,
)

ETHER = 10**18
WINDOW = 100
MODEL_SIZE = 4096

DEFAULT_PARAMS = TaskParams(
    min_accuracy_bps=9_000,
    committee_size=3,
    max_claims=2,
    reward_per_model=ETHER,
    verifier_fee=ETHER // 100,
    contributor_deposit=ETHER,
    verifier_deposit=ETHER // 5,
    join_window=WINDOW,
    claim_window=WINDOW,
    draw_window=WINDOW,
    commit_window=WINDOW,
    reveal_window=WINDOW,
    release_window=WINDOW,
)


def det_bytes(label: str) -> bytes:
    """Deterministic 32 bytes for a label (fixed seeds, reproducible tests)."""
    return hashlib.sha256(label.encode()).digest()


@dataclass
class ClaimHandle:
    """Everything a claimant keeps off chain about its claim."""

    claim_id: int
    claimant: str
    seed: bytes
    envelope: bytes
    model_hash: bytes
    receipt: Receipt
    salts: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Scenario:
    """One published task plus its participants on a real chain."""

    chain: Chain
    tasks: TasksContract
    task_id: int
    params: TaskParams
    initiator: str
    contributors: list[str]
    verifiers: list[str]

    # ------------------------------------------------------------ time
    def to_claim_window(self) -> None:
        """Move past the join window (claims open)."""
        info = self.tasks.get_task(self.task_id)
        self.chain.advance_time(max(1, info.join_end - self.chain.timestamp()))

    def past(self, deadline: int) -> None:
        """Move so that the latest block (and every later one) is strictly after ``deadline``.

        (anvil estimates gas against the latest block, so the latest block must already be
        past the deadline, not only the next one.)
        """
        self.chain.advance_time(max(1, deadline + 1 - self.chain.timestamp()))

    def to_expiry(self) -> None:
        """Move past the task's expiry."""
        self.past(self.tasks.get_task(self.task_id).expiry)

    # ------------------------------------------------------------ steps
    def claim(self, contributor: str, label: str = "") -> ClaimHandle:
        """Submit a claim with deterministic model hash, seed and envelope."""
        tag = f"{contributor}{label}"
        seed = det_bytes(f"seed{tag}")
        envelope = b"envelope:" + det_bytes(f"env{tag}")
        model_hash = det_bytes(f"model{tag}")
        claim_id, receipt = self.tasks.submit_claim(
            contributor,
            self.task_id,
            f"bafy-{tag[-8:]}",
            model_hash,
            MODEL_SIZE,
            seed_commitment(self.task_id, contributor, seed),
            envelope_commitment(self.task_id, contributor, envelope),
        )
        return ClaimHandle(claim_id, contributor, seed, envelope, model_hash, receipt)

    def draw(self, handle: ClaimHandle) -> list[str]:
        """Mine past the draw block, reveal the seed; return the committee."""
        self.chain.mine(2)
        self.tasks.reveal_seed(handle.claimant, handle.claim_id, handle.seed)
        return list(self.tasks.committee_of(handle.claim_id))

    def release(self, handle: ClaimHandle) -> None:
        """Lock the release of an accepted claim, then release its envelope."""
        self.tasks.commit_release(handle.claimant, handle.claim_id)
        self.tasks.release_envelope(handle.claimant, handle.claim_id, handle.envelope)

    def commit(self, handle: ClaimHandle, votes: dict[str, bool]) -> None:
        """Commit the given votes (member -> accept)."""
        for member, accept in votes.items():
            salt = det_bytes(f"salt{handle.claim_id}{member}")
            handle.salts[member] = salt
            self.tasks.commit_vote(
                member, handle.claim_id, vote_commitment(handle.claim_id, member, accept, salt)
            )

    def reveal(self, handle: ClaimHandle, votes: dict[str, bool]) -> None:
        """Move into the reveal window (if needed) and reveal the given votes."""
        claim = self.tasks.get_claim(handle.claim_id)
        if self.chain.timestamp() <= claim.commit_deadline:
            self.past(claim.commit_deadline)
        for member, accept in votes.items():
            self.tasks.reveal_vote(member, handle.claim_id, accept, handle.salts[member])

    def vote_and_settle(
        self, handle: ClaimHandle, votes: dict[str, bool], reveal: set[str] | None = None
    ) -> ClaimStatus:
        """Commit ``votes``, reveal those in ``reveal`` (default all), settle; return outcome."""
        self.commit(handle, votes)
        shown = set(votes) if reveal is None else reveal
        self.reveal(handle, {m: v for m, v in votes.items() if m in shown})
        claim = self.tasks.get_claim(handle.claim_id)
        if len(shown) < self.params.committee_size:
            self.past(claim.reveal_deadline)
        self.tasks.settle_claim(self.initiator, handle.claim_id)
        return self.tasks.get_claim(handle.claim_id).status


def setup_task(
    chain: Chain,
    tasks: TasksContract,
    *,
    contributors: int = 2,
    verifiers: int = 3,
    params: TaskParams = DEFAULT_PARAMS,
    **overrides: int,
) -> Scenario:
    """Publish a task from account 0 and register participants (joins stay open)."""
    if overrides:
        params = replace(params, **overrides)
    accounts = chain.accounts
    initiator = accounts[0]
    task_id, _ = tasks.publish_task(initiator, "ipfs://objective", params)
    cons = accounts[1 : 1 + contributors]
    vers = accounts[1 + contributors : 1 + contributors + verifiers]
    for v in vers:
        tasks.join_as_verifier(v, task_id, box_key_of(v), b"127.0.0.1:7400")
    for c in cons:
        tasks.join_as_contributor(c, task_id)
    return Scenario(chain, tasks, task_id, params, initiator, list(cons), list(vers))


def box_key_of(account: str) -> bytes:
    """A deterministic non-zero 32-byte box key for an account."""
    return det_bytes(f"box-key{account}")


def all_credits(tasks: TasksContract, accounts: list[str]) -> int:
    """Sum of withdrawable credits over ``accounts``."""
    return sum(tasks.credit_of(a) for a in accounts)


def reference_committee(
    pool: list[str], eligible: set[str], randomness: bytes, size: int, max_steps: int = 64
) -> list[str]:
    """The contract's draw, written independently: a partial Fisher-Yates shuffle of a real
    list of pool positions; step s swaps position s with ``s + keccak(randomness, s) % (n - s)``
    and keeps the verifier that lands at s if it is eligible. Empty if incomplete."""
    from eth_abi import encode
    from eth_utils import keccak

    order = list(range(len(pool)))
    members: list[str] = []
    for s in range(min(len(pool), max_steps)):
        if len(members) == size:
            break
        r = int.from_bytes(keccak(encode(["bytes32", "uint256"], [randomness, s])), "big")
        j = s + r % (len(pool) - s)
        order[s], order[j] = order[j], order[s]
        if pool[order[s]] in eligible:
            members.append(pool[order[s]])
    return members if len(members) == size else []
