"""Hypothesis stateful test of the contract's money invariants (embedded py-evm).

Random sequences of joins, leaves, claims, seed reveals, vote commits and reveals, time
moves, settlements, releases, forfeits, reclaims, retirements and withdrawals run against
the real contract. A small independent Python model of the payout rules predicts every
credit; after each step:

- ETH is conserved: contract balance == sum of credits + escrow + reserved + deposits;
- every account's credit equals the model's, and the task escrow equals the model's,
  so nobody is paid twice or paid what the rules do not give;
- votes are unreadable before reveal: the tallies count only revealed votes and a
  committed ballot shows nothing but its salted commitment.

At the end of every run the task is driven to expiry and wound up; the contract must then
hold exactly zero (no funds stuck after settlement).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cipherfuse.chain import (
    BallotState,
    Chain,
    ClaimStatus,
    ContractRevertError,
    ParticipantState,
    TasksContract,
    embedded_chain,
    http_chain,
    vote_commitment,
)

from .conftest import ACCOUNTS
from .helpers import DEFAULT_PARAMS, ClaimHandle, Scenario, det_bytes

N_CONTRIBUTORS = 4
N_VERIFIERS = 5
PARAMS = DEFAULT_PARAMS.__class__(**{**vars(DEFAULT_PARAMS), "max_claims": 3})
# Accepting twice as likely as each other action, so accepted claims are common.
VOTE_ACTIONS = ["accept", "accept", "reject", "hidden", "silent"]
COST = PARAMS.reward_per_model + PARAMS.committee_size * PARAMS.verifier_fee


@dataclass
class Deployment:
    """The chain and contract the machine runs on; every run starts from ``snapshot``."""

    chain: Chain
    tasks: TasksContract
    snapshot: Any


_DEPLOYMENT: list[Deployment] = []
_OUTCOMES: Counter[str] = Counter()


@dataclass
class ClaimModel:
    handle: ClaimHandle
    committee: list[str] = field(default_factory=list)
    votes: dict[str, bool] = field(default_factory=dict)  # committed
    revealed: dict[str, bool] = field(default_factory=dict)
    status: ClaimStatus = ClaimStatus.AWAITING_SEED


class ContractMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        deployment = _DEPLOYMENT[-1]
        deployment.chain.revert(deployment.snapshot)
        deployment.snapshot = deployment.chain.snapshot()  # anvil snapshots are single-use
        self.chain = deployment.chain
        self.tasks = deployment.tasks
        accounts = self.chain.accounts
        self.initiator = accounts[0]
        self.contributors = accounts[1 : 1 + N_CONTRIBUTORS]
        self.verifiers = accounts[1 + N_CONTRIBUTORS : 1 + N_CONTRIBUTORS + N_VERIFIERS]
        self.everyone = [self.initiator, *self.contributors, *self.verifiers]
        self.task_id, _ = self.tasks.publish_task(self.initiator, "ipfs://objective", PARAMS)
        self.scenario = Scenario(
            self.chain, self.tasks, self.task_id, PARAMS, self.initiator, [], []
        )
        self.credit = dict.fromkeys(self.everyone, 0)
        self.escrow = PARAMS.budget
        self.role: dict[str, str] = {}
        self.state: dict[str, ParticipantState] = {}
        self.duties = dict.fromkeys(self.verifiers, 0)
        self.claims: list[ClaimModel] = []
        self.chain_credit = dict.fromkeys(self.everyone, 0)
        self.dirty: set[str] = set()

    # ------------------------------------------------------------ helpers
    def _try(self, fn, *args) -> bool:  # type: ignore[no-untyped-def]
        """Run a transaction; a revert must be a typed contract error and change nothing."""
        self.dirty.update(self.everyone if fn == self.tasks.settle_claim else [])
        self.dirty.update(a for a in args if isinstance(a, str) and a in self.credit)
        self.dirty.add(self.initiator)
        try:
            fn(*args)
        except ContractRevertError:
            return False
        return True

    def _active_verifiers(self) -> int:
        return sum(1 for v in self.verifiers if self.state.get(v) == ParticipantState.ACTIVE)

    # ------------------------------------------------------------ rules
    @initialize(
        verifiers=st.integers(2, N_VERIFIERS),
        contributors=st.integers(1, N_CONTRIBUTORS),
        claimers=st.integers(0, N_CONTRIBUTORS),
        draw=st.booleans(),
        plan=st.none() | st.lists(st.sampled_from(VOTE_ACTIONS), min_size=3, max_size=3),
    )
    def register_some(
        self, verifiers: int, contributors: int, claimers: int, draw: bool, plan: list[str] | None
    ) -> None:
        """Start runs with participants (and often claims), so the random steps reach the
        per-claim life cycle instead of spending the whole run before the claim window."""
        for i in range(verifiers):
            self.join_verifier(i)
        for i in range(contributors):
            self.join_contributor(i)
        if claimers:
            self.scenario.to_claim_window()
            for i in range(claimers):
                self.claim(i)
        if draw:
            for _ in range(len(self.claims)):
                if self._in(ClaimStatus.AWAITING_SEED):
                    self.reveal_seed(0)
        if plan is not None:
            while any(not m.votes for m in self._in(ClaimStatus.VOTING)):
                before = sum(len(m.votes) for m in self.claims)
                self.vote_round(0, plan)
                if sum(len(m.votes) for m in self.claims) == before:
                    break  # every member silent: nothing more to do here

    def join_contributor(self, i: int) -> None:
        c = self.contributors[i]
        if self._try(self.tasks.join_as_contributor, c, self.task_id):
            assert c not in self.role
            self.role[c] = "contributor"
            self.state[c] = ParticipantState.ACTIVE

    def join_verifier(self, i: int) -> None:
        v = self.verifiers[i]
        if self._try(self.tasks.join_as_verifier, v, self.task_id):
            assert v not in self.role
            self.role[v] = "verifier"
            self.state[v] = ParticipantState.ACTIVE

    def leave(self, i: int) -> None:
        c = self.contributors[i]
        if self._try(self.tasks.leave_as_contributor, c, self.task_id):
            assert self.state.get(c) == ParticipantState.ACTIVE
            self.state[c] = ParticipantState.LEFT
            self.credit[c] += PARAMS.contributor_deposit

    @rule(
        action=st.sampled_from(["join_contributor", "join_verifier", "leave", "reclaim", "retire"]),
        i=st.integers(0, min(N_CONTRIBUTORS, N_VERIFIERS) - 1),
    )
    def housekeeping(self, action: str, i: int) -> None:
        """Registration and wind-up calls, folded into one rule so that the claim life cycle
        gets most of the random steps."""
        if action == "reclaim":
            self.reclaim()
        else:
            getattr(self, action)(i)

    @rule(seconds=st.sampled_from([5, 20, 60]))
    def advance(self, seconds: int) -> None:
        self.chain.advance_time(seconds)

    @rule(i=st.integers(0, N_CONTRIBUTORS - 1))
    def claim(self, i: int) -> None:
        c = self.contributors[i]
        try:
            handle = self.scenario.claim(c)
        except ContractRevertError:
            return
        assert self.state.get(c) == ParticipantState.ACTIVE
        self.state[c] = ParticipantState.CLAIMED
        self.escrow -= COST
        self.claims.append(ClaimModel(handle))

    def _in(self, *statuses: ClaimStatus) -> list[ClaimModel]:
        return [m for m in self.claims if m.status in statuses]

    @precondition(lambda self: self._in(ClaimStatus.AWAITING_SEED))
    @rule(k=st.integers(0, 10))
    def reveal_seed(self, k: int) -> None:
        waiting = self._in(ClaimStatus.AWAITING_SEED)
        m = waiting[k % len(waiting)]
        self.chain.mine(2)
        active_before = self._active_verifiers()
        if not self._try(
            self.tasks.reveal_seed, m.handle.claimant, m.handle.claim_id, m.handle.seed
        ):
            return
        assert m.status == ClaimStatus.AWAITING_SEED
        if active_before < PARAMS.committee_size:
            m.status = ClaimStatus.INCONCLUSIVE
            self.escrow += COST
            self.credit[m.handle.claimant] += PARAMS.contributor_deposit
            return
        m.status = ClaimStatus.VOTING
        m.committee = list(self.tasks.committee_of(m.handle.claim_id))
        assert len(set(m.committee)) == PARAMS.committee_size
        for v in m.committee:
            assert self.state[v] == ParticipantState.ACTIVE
            self.duties[v] += 1

    @precondition(lambda self: self._in(ClaimStatus.VOTING))
    @rule(k=st.integers(0, 10), j=st.integers(0, 2), accept=st.booleans())
    def commit(self, k: int, j: int, accept: bool) -> None:
        voting = self._in(ClaimStatus.VOTING)
        self._commit_one(voting[k % len(voting)], j, accept)

    @precondition(lambda self: any(not m.votes for m in self._in(ClaimStatus.VOTING)))
    @rule(
        k=st.integers(0, 10),
        plan=st.lists(st.sampled_from(VOTE_ACTIONS), min_size=3, max_size=3),
    )
    def vote_round(self, k: int, plan: list[str]) -> None:
        """A whole round: members commit (or stay silent), then reveal (or keep it hidden)."""
        fresh = [m for m in self._in(ClaimStatus.VOTING) if not m.votes]
        m = fresh[k % len(fresh)]
        for j, action in enumerate(plan):
            if action != "silent":
                self._commit_one(m, j, accept=action != "reject")
        claim = self.tasks.get_claim(m.handle.claim_id)
        if self.chain.timestamp() <= claim.commit_deadline:
            self.scenario.past(claim.commit_deadline)
        for j, action in enumerate(plan):
            member = m.committee[j]
            if action in ("accept", "reject") and member in m.votes:
                self._reveal_one(m, member)

    def _commit_one(self, m: ClaimModel, j: int, accept: bool) -> None:
        member = m.committee[j]
        salt = det_bytes(f"salt{m.handle.claim_id}{member}{accept}")
        m.handle.salts[member] = salt
        commitment = vote_commitment(m.handle.claim_id, member, accept, salt)
        if self._try(self.tasks.commit_vote, member, m.handle.claim_id, commitment):
            assert member not in m.votes
            m.votes[member] = accept
            self._check_votes_hidden(m)

    def _reveal_one(self, m: ClaimModel, member: str) -> None:
        accept = m.votes[member]
        if self._try(
            self.tasks.reveal_vote, member, m.handle.claim_id, accept, m.handle.salts[member]
        ):
            assert member not in m.revealed
            m.revealed[member] = accept
            self._check_votes_hidden(m)

    @precondition(lambda self: any(m.votes for m in self._in(ClaimStatus.VOTING)))
    @rule(k=st.integers(0, 10), j=st.integers(0, 2))
    def reveal_vote(self, k: int, j: int) -> None:
        voting = [m for m in self._in(ClaimStatus.VOTING) if m.votes]
        m = voting[k % len(voting)]
        self._reveal_one(m, list(m.votes)[j % len(m.votes)])

    @precondition(lambda self: self.claims)
    @rule(k=st.integers(0, 10), wait=st.booleans())
    def settle(self, k: int, wait: bool) -> None:
        """Settle any claim; with ``wait``, first move past the deadline that allows it."""
        m = self.claims[k % len(self.claims)]
        if wait and m.status in (ClaimStatus.AWAITING_SEED, ClaimStatus.VOTING):
            claim = self.tasks.get_claim(m.handle.claim_id)
            if m.status == ClaimStatus.AWAITING_SEED:
                self.scenario.past(claim.claimed_at + PARAMS.draw_window)
            else:
                self.scenario.past(claim.reveal_deadline)
        if self._try(self.tasks.settle_claim, self.initiator, m.handle.claim_id):
            self._apply_settlement(m)

    def _apply_settlement(self, m: ClaimModel) -> None:
        p = PARAMS
        if m.status == ClaimStatus.AWAITING_SEED:
            m.status = ClaimStatus.VOID
            self.escrow += COST + p.contributor_deposit
        else:
            assert m.status == ClaimStatus.VOTING
            accepts = sum(m.revealed.values())
            rejects = len(m.revealed) - accepts
            half = p.committee_size // 2
            if accepts > half:
                m.status = ClaimStatus.ACCEPTED
            elif rejects > half:
                m.status = ClaimStatus.REJECTED
            else:
                m.status = ClaimStatus.INCONCLUSIVE
            for v in m.committee:
                self.duties[v] -= 1
                if v in m.revealed:
                    self.credit[v] += p.verifier_fee
                else:
                    self.escrow += p.verifier_fee
                    if self.state[v] == ParticipantState.ACTIVE:
                        self.state[v] = ParticipantState.SLASHED
                        self.escrow += p.verifier_deposit
            if m.status != ClaimStatus.ACCEPTED:
                self.escrow += p.reward_per_model
            if m.status == ClaimStatus.REJECTED:
                self.escrow += p.contributor_deposit
            if m.status == ClaimStatus.INCONCLUSIVE:
                self.credit[m.handle.claimant] += p.contributor_deposit
        assert self.tasks.get_claim(m.handle.claim_id).status == m.status

    @precondition(lambda self: self._in(ClaimStatus.ACCEPTED))
    @rule(k=st.integers(0, 10))
    def release(self, k: int) -> None:
        accepted = self._in(ClaimStatus.ACCEPTED)
        m = accepted[k % len(accepted)]
        h = m.handle
        if self._try(self.tasks.release_envelope, h.claimant, h.claim_id, h.envelope):
            assert m.status == ClaimStatus.ACCEPTED
            m.status = ClaimStatus.RELEASED
            self.credit[h.claimant] += PARAMS.reward_per_model + PARAMS.contributor_deposit

    @precondition(lambda self: self._in(ClaimStatus.ACCEPTED))
    @rule(k=st.integers(0, 10), wait=st.booleans())
    def forfeit(self, k: int, wait: bool) -> None:
        accepted = self._in(ClaimStatus.ACCEPTED)
        m = accepted[k % len(accepted)]
        if wait:
            self.scenario.past(self.tasks.get_claim(m.handle.claim_id).release_deadline)
        if self._try(self.tasks.forfeit_unreleased, self.verifiers[0], m.handle.claim_id):
            assert m.status == ClaimStatus.ACCEPTED
            m.status = ClaimStatus.FORFEITED
            self.credit[self.initiator] += PARAMS.reward_per_model + PARAMS.contributor_deposit

    def reclaim(self) -> None:
        if self._try(self.tasks.reclaim_budget, self.initiator, self.task_id):
            assert self.escrow > 0
            self.credit[self.initiator] += self.escrow
            self.escrow = 0

    def retire(self, i: int) -> None:
        v = self.verifiers[i]
        if self._try(self.tasks.retire_verifier, v, self.task_id):
            assert self.state.get(v) == ParticipantState.ACTIVE
            assert self.duties[v] == 0
            self.state[v] = ParticipantState.RETIRED
            self.credit[v] += PARAMS.verifier_deposit

    @rule(i=st.integers(0, N_CONTRIBUTORS + N_VERIFIERS))
    def withdraw(self, i: int) -> None:
        a = self.everyone[i]
        before = self.chain.w3.eth.get_balance(self.tasks.address)
        if self._try(self.tasks.withdraw, a):
            assert self.credit[a] > 0
            assert self.chain.w3.eth.get_balance(self.tasks.address) == before - self.credit[a]
            self.credit[a] = 0
        else:
            assert self.credit[a] == 0  # the only reason a withdraw may fail here

    # ------------------------------------------------------------ invariants
    @invariant()
    def eth_conserved_and_credits_match_model(self) -> None:
        """Balance == credits + task holdings; touched credits and the escrow match the model.

        (eth_call is slow on py-evm, so each step re-reads the credits of the accounts the
        step could have touched; teardown re-reads every account.)
        """
        for a in self.dirty:
            self.chain_credit[a] = self.tasks.credit_of(a)
            assert self.chain_credit[a] == self.credit[a], a
        self.dirty.clear()
        task = self.tasks.get_task(self.task_id)
        assert task.escrow == self.escrow
        holdings = task.escrow + task.reserved + task.deposits_held
        assert self.tasks.balance() == sum(self.chain_credit.values()) + holdings

    def _check_votes_hidden(self, m: ClaimModel) -> None:
        """Tallies count only revealed votes; a committed ballot shows only its commitment."""
        raw = self.tasks.contract.functions.getClaim(m.handle.claim_id).call()
        accept_votes, reject_votes = raw[3], raw[4]
        assert accept_votes == sum(m.revealed.values())
        assert reject_votes == len(m.revealed) - sum(m.revealed.values())
        for member in m.votes:
            if member in m.revealed:
                continue
            commitment, state = self.tasks.ballot_of(m.handle.claim_id, member)
            assert state == BallotState.COMMITTED
            for guess in (True, False):  # without the salt no vote reproduces it
                assert commitment != vote_commitment(m.handle.claim_id, member, guess, b"\0" * 32)

    def teardown(self) -> None:
        """Wind the task up after expiry: nothing may stay stuck in the contract."""
        s = self.scenario
        s.to_expiry()
        for m in self.claims:
            if m.status in (ClaimStatus.AWAITING_SEED, ClaimStatus.VOTING):
                self.tasks.settle_claim(self.initiator, m.handle.claim_id)
                self._apply_settlement(m)
            if m.status == ClaimStatus.ACCEPTED:
                self.tasks.forfeit_unreleased(self.initiator, m.handle.claim_id)
                m.status = ClaimStatus.FORFEITED
                self.credit[self.initiator] += PARAMS.reward_per_model + PARAMS.contributor_deposit
        if self.escrow:
            self.reclaim()
        for v in self.verifiers:
            if self.state.get(v) == ParticipantState.ACTIVE:
                self.tasks.retire_verifier(v, self.task_id)
                self.credit[v] += PARAMS.verifier_deposit
        for c in self.contributors:
            if self.state.get(c) == ParticipantState.ACTIVE:
                self.tasks.leave_as_contributor(c, self.task_id)
                self.credit[c] += PARAMS.contributor_deposit
        for m in self.claims:
            _OUTCOMES[m.status.name] += 1
        self.dirty.update(self.everyone)
        self.eth_conserved_and_credits_match_model()
        assert self.tasks.task_holdings(self.task_id) == 0
        for a in self.everyone:
            if self.credit[a]:
                self.tasks.withdraw(a)
        assert self.tasks.balance() == 0


@pytest.mark.parametrize(("backend", "examples"), [("embedded", 3), ("anvil", 12)])
def test_contract_invariants(request: pytest.FixtureRequest, backend: str, examples: int) -> None:
    """Run the machine; anvil is ~4x faster per transaction, so it explores more runs."""
    if backend == "embedded":
        chain = embedded_chain(12)
    else:
        node = request.getfixturevalue("anvil_node")
        chain = http_chain(node.url, kind="anvil", dev_accounts=ACCOUNTS)
    tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
    _DEPLOYMENT.append(Deployment(chain, tasks, chain.snapshot()))
    _OUTCOMES.clear()
    try:
        run_state_machine_as_test(
            ContractMachine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=30,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        _DEPLOYMENT.pop()
    print(f"claim outcomes over all runs ({backend}): {dict(_OUTCOMES)}")
