"""Hypothesis stateful test of the contract's money and fairness invariants.

Random sequences of joins (honest, aborting, lazy and Sybil verifiers), leaves, honest and junk
claims, copied claims, seed reveals and withheld seeds, key boxes (and forged ones), votes and
abort ballots (committed, revealed, or kept hidden), block
floods past the blockhash horizon, settlements, locked and delayed releases, forfeits,
reclaims, retirements and withdrawals run against the real contract. A small independent
Python model of the payout rules predicts every credit; after each step:

- ETH is conserved: contract balance == sum of credits + escrow + reserved + deposits +
  burned;
- every account's credit, the escrow, the open claim slots and the pool epoch equal the
  model's, so nobody is paid twice or paid what the rules do not give;
- votes are unreadable before reveal (tallies count only revealed accepts and rejects; a
  committed ballot shows nothing but its salted commitment, whether vote or abort);
- the committee is the independent reference draw over the pool fixed at claim time.

Economic invariants, checked where they apply:

- an honest contributor whose model meets an honest majority (every honest member
  revealed) is accepted, and once it locks and releases it is paid reward + deposit;
  a junk claim meeting an honest majority is rejected;
- an honest verifier who reveals in time is never slashed (every slashed verifier on chain
  sat on a committee and did not reveal);
- an abort ballot (a member whose three-party computation aborted) counts in neither tally:
  a member that revealed an abort is never slashed for that claim, is paid its fee exactly
  when the claim ends Inconclusive, and a claim where at least two of the three members
  revealed aborts is never Accepted or Rejected; once every member revealed (accepts,
  rejects or aborts) the claim settles before the reveal deadline;
- no party profits from another's failure it caused: a block flood by the initiator voids
  nothing and moves no wei; an initiator delaying a locked release cannot forfeit it; a
  copied claim is refused; a forged key box is refused; a lapsed release is burned, not paid.

At the end of every run the task is driven to expiry and wound up; the contract must then
hold exactly the burned wei (no funds stuck after settlement).
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
    ChainError,
    ClaimStatus,
    ContractRevertError,
    ParticipantState,
    TasksContract,
    abort_commitment,
    embedded_chain,
    envelope_commitment,
    http_chain,
    vote_commitment,
)

from .conftest import ACCOUNTS
from .helpers import (
    DEFAULT_PARAMS,
    MODEL_SIZE,
    ClaimHandle,
    Scenario,
    box_key_of,
    det_bytes,
    reference_committee,
)

N_CONTRIBUTORS = 4
N_VERIFIERS = 5
PARAMS = DEFAULT_PARAMS.__class__(**{**vars(DEFAULT_PARAMS), "max_claims": 3})
#: What a verifier does when drawn: honest judges truthfully and reveals; an aborting one is
#: honest but its three-party computation aborted, so it commits and reveals an abort; a Sybil
#: (of the initiator, say) votes against the truth and reveals; a lazy one follows the random
#: plan (a vote or an abort, revealed, committed but hidden, or nothing at all).
KINDS = ["honest", "honest", "aborting", "sybil", "lazy"]
LAZY_ACTIONS = ["accept", "reject", "abort", "hidden", "hidden_abort", "silent"]
#: The ballot a plan's action commits: True accept, False reject, None abort.
BALLOT_OF_ACTION: dict[str, bool | None] = {
    "accept": True,
    "hidden": True,
    "reject": False,
    "abort": None,
    "hidden_abort": None,
}
REVEALED_ACTIONS = ("accept", "reject", "abort")
COST = PARAMS.reward_per_model + PARAMS.committee_size * PARAMS.verifier_fee
HALF = PARAMS.committee_size // 2


@dataclass
class Deployment:
    """The chain and contract the machine runs on; every run starts from ``snapshot``."""

    chain: Chain
    tasks: TasksContract
    snapshot: Any


_DEPLOYMENT: list[Deployment] = []
_OUTCOMES: Counter[str] = Counter()
_BALLOTS: Counter[str] = Counter()


@dataclass
class ClaimModel:
    handle: ClaimHandle
    honest_model: bool
    epoch: int
    committee: list[str] = field(default_factory=list)
    votes: dict[str, bool | None] = field(default_factory=dict)  # committed (None: abort)
    revealed: dict[str, bool | None] = field(default_factory=dict)
    boxes: bool = False
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
        self.burned = self.tasks.burned()  # other runs on this deployment may have burned
        self.role: dict[str, str] = {}
        self.state: dict[str, ParticipantState] = {}
        self.kind: dict[str, str] = {}
        self.pool: list[str] = []
        self.slash_seq: dict[str, int] = {}
        self.claims: list[ClaimModel] = []
        self.chain_credit = dict.fromkeys(self.everyone, 0)
        self.dirty: set[str] = set()

    # ------------------------------------------------------------ helpers
    def _try(self, fn, *args) -> str | None:  # type: ignore[no-untyped-def]
        """Run a transaction: None if it went through, else the contract error's name (a
        revert must be a typed contract error)."""
        self.dirty.update(self.everyone)
        for attempt in range(2):
            try:
                fn(*args)
            except ContractRevertError as exc:
                return exc.error_name
            except ChainError:
                # Estimated against the latest block, reverted in the next one: on anvil the
                # clock runs, so a deadline can pass in between. Sent again, the estimate
                # sees the new state and the revert is typed.
                if attempt == 1:
                    raise
                continue
            return None
        raise AssertionError("unreachable")

    def _in(self, *statuses: ClaimStatus) -> list[ClaimModel]:
        return [m for m in self.claims if m.status in statuses]

    def _pick(self, k: int, *statuses: ClaimStatus) -> ClaimModel:
        found = self._in(*statuses)
        return found[k % len(found)]

    def _eligible_at(self, epoch: int) -> set[str]:
        return {v for v in self.pool if self.slash_seq.get(v, epoch + 1) > epoch}

    def _open_claims(self) -> int:
        open_statuses = (
            ClaimStatus.AWAITING_SEED,
            ClaimStatus.VOTING,
            ClaimStatus.ACCEPTED,
            ClaimStatus.RELEASE_PENDING,
            ClaimStatus.RELEASED,
        )
        return len(self._in(*open_statuses))

    # ------------------------------------------------------------ registration
    @initialize(
        kinds=st.lists(st.sampled_from(KINDS), min_size=2, max_size=N_VERIFIERS),
        contributors=st.integers(1, N_CONTRIBUTORS),
        claimers=st.lists(st.booleans(), max_size=N_CONTRIBUTORS),
        draw=st.booleans(),
        vote=st.booleans(),
    )
    def register_some(
        self, kinds: list[str], contributors: int, claimers: list[bool], draw: bool, vote: bool
    ) -> None:
        """Start runs with participants (and often claims), so the random steps reach the
        per-claim life cycle instead of spending the whole run before the claim window."""
        for i, kind in enumerate(kinds):
            self.join_verifier(i, kind)
        for i in range(contributors):
            self.join_contributor(i)
        if claimers:
            self.scenario.to_claim_window()
            for i, junk in enumerate(claimers):
                self.claim(i, junk)
        if draw:
            for k in range(len(self.claims)):
                if self._in(ClaimStatus.AWAITING_SEED):
                    self.reveal_seed(k)
        if vote:
            while any(not m.votes and m.committee for m in self._in(ClaimStatus.VOTING)):
                before = sum(len(m.votes) for m in self.claims)
                self.vote_round(0, ["silent"] * 3, True)
                if sum(len(m.votes) for m in self.claims) == before:
                    break

    def join_contributor(self, i: int) -> None:
        c = self.contributors[i]
        if self._try(self.tasks.join_as_contributor, c, self.task_id) is None:
            assert c not in self.role
            self.role[c] = "contributor"
            self.state[c] = ParticipantState.ACTIVE

    def join_verifier(self, i: int, kind: str) -> None:
        """Register verifier ``i``; a "sybil" is one more address of a single party."""
        v = self.verifiers[i]
        key = box_key_of(v)
        if self._try(self.tasks.join_as_verifier, v, self.task_id, key, b"10.0.0.1:7400") is None:
            assert v not in self.role
            self.role[v] = "verifier"
            self.state[v] = ParticipantState.ACTIVE
            self.kind[v] = kind
            self.pool.append(v)
            assert self.tasks.verifier_key_of(self.task_id, v) == (key, b"10.0.0.1:7400")

    def leave(self, i: int) -> None:
        c = self.contributors[i]
        if self._try(self.tasks.leave_as_contributor, c, self.task_id) is None:
            assert self.state.get(c) == ParticipantState.ACTIVE
            self.state[c] = ParticipantState.LEFT
            self.credit[c] += PARAMS.contributor_deposit

    @rule(
        action=st.sampled_from(["join_contributor", "join_verifier", "leave", "reclaim", "retire"]),
        i=st.integers(0, min(N_CONTRIBUTORS, N_VERIFIERS) - 1),
        kind=st.sampled_from(KINDS),
    )
    def housekeeping(self, action: str, i: int, kind: str) -> None:
        """Registration (Sybil ones included) and wind-up calls, folded into one rule so
        that the claim life cycle gets most of the random steps."""
        if action == "reclaim":
            self.reclaim()
        elif action == "join_verifier":
            self.join_verifier(i, kind)
        else:
            getattr(self, action)(i)

    @rule(seconds=st.sampled_from([5, 20, 60]))
    def advance(self, seconds: int) -> None:
        self.chain.advance_time(seconds)

    # ------------------------------------------------------------ claims
    @rule(i=st.integers(0, N_CONTRIBUTORS - 1), junk=st.booleans())
    def claim(self, i: int, junk: bool) -> None:
        """An honest claim, or a junk one (a model no honest judge accepts)."""
        c = self.contributors[i]
        open_before = self._open_claims()
        try:
            handle = self.scenario.claim(c)
        except ContractRevertError as exc:
            if exc.error_name == "BudgetExhausted":
                assert open_before >= PARAMS.max_claims
            if exc.error_name == "NotEnoughVerifiers":
                assert len(self._eligible_at(len(self.slash_seq))) < PARAMS.committee_size
            return
        # maxClaims counts only claims that can still be paid (finding 6).
        assert open_before < PARAMS.max_claims
        assert self.state.get(c) == ParticipantState.ACTIVE
        self.state[c] = ParticipantState.CLAIMED
        self.escrow -= COST
        self.claims.append(ClaimModel(handle, not junk, len(self.slash_seq)))

    @precondition(lambda self: self.claims)
    @rule(i=st.integers(0, N_CONTRIBUTORS - 1), k=st.integers(0, 10), fresh_hash=st.booleans())
    def copy_claim(self, i: int, k: int, fresh_hash: bool) -> None:
        """Re-submit someone else's claim (finding 4): the same model hash is refused; with a
        fresh hash the copied envelope commitment cannot match the copier's own."""
        m = self.claims[k % len(self.claims)]
        copier = self.contributors[i]
        original = self.tasks.get_claim(m.handle.claim_id)
        model_hash = det_bytes(f"copy{copier}{k}") if fresh_hash else original.model_hash
        error = self._try(
            self.tasks.submit_claim,
            copier,
            self.task_id,
            original.model_cid,
            model_hash,
            MODEL_SIZE,
            original.seed_commitment,
            original.envelope_commitment,
        )
        if not fresh_hash:
            assert error is not None
            if self.state.get(copier) == ParticipantState.ACTIVE and error not in (
                "ClaimWindowNotOpen",
                "BudgetExhausted",
                "NotEnoughVerifiers",
            ):
                assert error == "ModelAlreadyClaimed", error
            return
        # What judges check: the commitment recomputed for the copier never matches.
        own = envelope_commitment(self.task_id, copier, m.handle.envelope)
        assert own != original.envelope_commitment or copier == m.handle.claimant
        if error is None:  # accepted on chain as a claim of its own: a junk claim
            self.state[copier] = ParticipantState.CLAIMED
            self.escrow -= COST
            handle = ClaimHandle(
                self.tasks.get_participant(self.task_id, copier).claim_id,
                copier,
                det_bytes("unknown seed"),
                m.handle.envelope,
                model_hash,
                m.handle.receipt,
            )
            self.claims.append(ClaimModel(handle, False, len(self.slash_seq)))

    @precondition(lambda self: self._in(ClaimStatus.AWAITING_SEED))
    @rule(k=st.integers(0, 10))
    def reveal_seed(self, k: int) -> None:
        m = self._pick(k, ClaimStatus.AWAITING_SEED)
        self.chain.mine(2)
        error = self._try(
            self.tasks.reveal_seed, m.handle.claimant, m.handle.claim_id, m.handle.seed
        )
        if error == "DrawBlockExpired":
            assert self._try(self.tasks.reanchor_draw, self.initiator, m.handle.claim_id) is None
            return
        if error is not None:
            return
        claim = self.tasks.get_claim(m.handle.claim_id)
        expected = reference_committee(
            self.pool, self._eligible_at(m.epoch), claim.entropy, PARAMS.committee_size
        )
        assert expected, "a pool of at most 5 always completes the draw"
        m.status = ClaimStatus.VOTING
        m.committee = list(self.tasks.committee_of(m.handle.claim_id))
        assert m.committee == expected  # the pool fixed at claim time, no neighbour bias
        assert claim.pool_epoch == m.epoch

    @precondition(lambda self: self._in(ClaimStatus.AWAITING_SEED))
    @rule(k=st.integers(0, 10), capture=st.booleans())
    def flood_blocks(self, k: int, capture: bool) -> None:
        """The initiator floods the chain past the 256-block horizon (finding 9): no void, no
        wei moves; the draw is re-anchored unless someone captured the hash in time."""
        m = self._pick(k, ClaimStatus.AWAITING_SEED)
        claim = self.tasks.get_claim(m.handle.claim_id)
        if capture and self.chain.block_number() < claim.draw_block + 200:
            self.chain.mine(2)
            self._try(self.tasks.capture_draw_hash, self.initiator, m.handle.claim_id)
        escrow = self.tasks.get_task(self.task_id).escrow
        initiator_credit = self.tasks.credit_of(self.initiator)
        self.chain.mine(260)
        within_window = self.chain.timestamp() + 1 <= claim.claimed_at + PARAMS.draw_window
        error = self._try(self.tasks.settle_claim, self.initiator, m.handle.claim_id)
        if within_window:
            assert error == "SettlementTooEarly"
        elif error is None:
            self._apply_settlement(m, self.initiator)
            return
        if self.tasks.get_claim(m.handle.claim_id).entropy == b"\0" * 32 and within_window:
            assert self._try(self.tasks.reanchor_draw, self.initiator, m.handle.claim_id) is None
        assert self.tasks.get_task(self.task_id).escrow == escrow
        assert self.tasks.credit_of(self.initiator) == initiator_credit

    @precondition(lambda self: self._in(ClaimStatus.VOTING))
    @rule(k=st.integers(0, 10), forger=st.integers(0, N_VERIFIERS - 1))
    def forge_key_boxes(self, k: int, forger: int) -> None:
        """Someone other than the claimant posts boxes (finding 3): refused."""
        m = self._pick(k, ClaimStatus.VOTING)
        attacker = (self.verifiers + self.contributors + [self.initiator])[forger]
        if attacker == m.handle.claimant:
            return
        boxes = [b"\x01" * 98] * PARAMS.committee_size
        assert self._try(self.tasks.post_key_boxes, attacker, m.handle.claim_id, boxes) == (
            "NotClaimant"
        )

    def _post_boxes(self, m: ClaimModel) -> None:
        boxes = [det_bytes(f"box{m.handle.claim_id}{v}") * 3 for v in m.committee]
        error = self._try(self.tasks.post_key_boxes, m.handle.claimant, m.handle.claim_id, boxes)
        if error is None:
            assert not m.boxes
            m.boxes = True
            assert self.tasks.key_boxes_of(m.handle.claim_id) == dict(
                zip(m.committee, boxes, strict=True)
            )
        elif m.boxes:
            assert error == "KeyBoxesAlreadyPosted"

    def _vote_of(self, m: ClaimModel, member: str, lazy_action: str) -> str:
        truth = m.honest_model and m.boxes  # an honest judge rejects without a key box
        kind = self.kind[member]
        if kind == "honest":
            return "accept" if truth else "reject"
        if kind == "sybil":
            return "reject" if truth else "accept"
        if kind == "aborting":
            return "abort"
        return lazy_action

    @precondition(lambda self: any(not m.votes for m in self._in(ClaimStatus.VOTING)))
    @rule(
        k=st.integers(0, 10),
        plan=st.lists(st.sampled_from(LAZY_ACTIONS), min_size=3, max_size=3),
        boxes=st.booleans(),
    )
    def vote_round(self, k: int, plan: list[str], boxes: bool) -> None:
        """A whole round: the claimant posts its key boxes (or withholds them), members commit
        (or stay silent), then reveal (or keep it hidden), each by its kind."""
        fresh = [m for m in self._in(ClaimStatus.VOTING) if not m.votes]
        m = fresh[k % len(fresh)]
        if boxes and not m.boxes:
            self._post_boxes(m)
        actions = [self._vote_of(m, v, plan[j]) for j, v in enumerate(m.committee)]
        for j, action in enumerate(actions):
            if action != "silent":
                self._commit_one(m, j, BALLOT_OF_ACTION[action])
        claim = self.tasks.get_claim(m.handle.claim_id)
        if self.chain.timestamp() <= claim.commit_deadline:
            self.scenario.past(claim.commit_deadline)
        for j, action in enumerate(actions):
            member = m.committee[j]
            if action in REVEALED_ACTIONS and member in m.votes:
                self._reveal_one(m, member)

    def _commit_one(self, m: ClaimModel, j: int, ballot: bool | None) -> None:
        """Commit a vote (``ballot`` True accept, False reject) or an abort (None)."""
        member = m.committee[j]
        claim_id = m.handle.claim_id
        salt = det_bytes(f"salt{claim_id}{member}{ballot}")
        m.handle.salts[member] = salt
        commitment = (
            abort_commitment(claim_id, member, salt)
            if ballot is None
            else vote_commitment(claim_id, member, ballot, salt)
        )
        if self._try(self.tasks.commit_vote, member, claim_id, commitment) is None:
            assert member not in m.votes
            m.votes[member] = ballot
            self._check_votes_hidden(m)

    def _reveal_one(self, m: ClaimModel, member: str) -> None:
        ballot = m.votes[member]
        claim_id, salt = m.handle.claim_id, m.handle.salts[member]
        if ballot is None:
            error = self._try(self.tasks.reveal_abort, member, claim_id, salt)
        else:
            error = self._try(self.tasks.reveal_vote, member, claim_id, ballot, salt)
        if error is None:
            assert member not in m.revealed
            m.revealed[member] = ballot
            self._check_votes_hidden(m)
        elif member in m.revealed:  # a ballot is revealed once
            assert error in ("NothingToReveal", "RevealWindowNotOpen"), error

    @precondition(lambda self: any(m.votes for m in self._in(ClaimStatus.VOTING)))
    @rule(k=st.integers(0, 10), j=st.integers(0, 2), switch=st.booleans())
    def reveal_vote(self, k: int, j: int, switch: bool) -> None:
        """A late reveal of a committed vote or abort (hidden ones included); with ``switch``
        the member first tries to reveal another ballot than it committed (an abort as a vote,
        a vote as an abort or as the opposite vote): always refused."""
        voting = [m for m in self._in(ClaimStatus.VOTING) if m.votes]
        m = voting[k % len(voting)]
        member = list(m.votes)[j % len(m.votes)]
        if switch:
            ballot, claim_id, salt = m.votes[member], m.handle.claim_id, m.handle.salts[member]
            if ballot is None or j % 2:
                error = self._try(
                    self.tasks.reveal_vote, member, claim_id, ballot is not True, salt
                )
            else:
                error = self._try(self.tasks.reveal_abort, member, claim_id, salt)
            assert error is not None
        self._reveal_one(m, member)

    # ------------------------------------------------------------ settlement
    @precondition(lambda self: self.claims)
    @rule(k=st.integers(0, 10), wait=st.booleans(), by_claimant=st.booleans())
    def settle(self, k: int, wait: bool, by_claimant: bool) -> None:
        """Settle any claim; with ``wait``, first move past the deadline that allows it (a
        withheld seed ends void)."""
        m = self.claims[k % len(self.claims)]
        if wait and m.status in (ClaimStatus.AWAITING_SEED, ClaimStatus.VOTING):
            claim = self.tasks.get_claim(m.handle.claim_id)
            if m.status == ClaimStatus.AWAITING_SEED:
                self.scenario.past(claim.claimed_at + PARAMS.draw_window)
            else:
                self.scenario.past(claim.reveal_deadline)
        settler = m.handle.claimant if by_claimant else self.initiator
        if self._try(self.tasks.settle_claim, settler, m.handle.claim_id) is None:
            if m.status == ClaimStatus.VOTING:
                # Before the reveal deadline only a full house of reveals (accepts, rejects
                # and aborts) settles.
                claim = self.tasks.get_claim(m.handle.claim_id)
                if self.chain.timestamp() <= claim.reveal_deadline:
                    assert len(m.revealed) == PARAMS.committee_size
            self._apply_settlement(m, settler)

    def _apply_settlement(self, m: ClaimModel, settler: str) -> None:
        p = PARAMS
        if m.status == ClaimStatus.AWAITING_SEED:
            m.status = ClaimStatus.VOID
            self.escrow += COST + p.contributor_deposit
        else:
            assert m.status == ClaimStatus.VOTING
            ballots = list(m.revealed.values())
            accepts, rejects = ballots.count(True), ballots.count(False)
            if accepts > HALF:
                outcome = ClaimStatus.ACCEPTED
            elif rejects > HALF:
                outcome = ClaimStatus.REJECTED
            else:
                outcome = ClaimStatus.INCONCLUSIVE
            self._check_fairness(m, outcome)
            self._check_aborts(m, outcome)
            winning = {ClaimStatus.ACCEPTED: True, ClaimStatus.REJECTED: False}.get(outcome)
            for v in m.committee:
                if v in m.revealed:
                    if winning is None or m.revealed[v] is winning:
                        self.credit[v] += p.verifier_fee
                    else:
                        self.escrow += p.verifier_fee  # minority: unpaid, not slashed
                else:
                    self.escrow += p.verifier_fee
                    if self.state[v] == ParticipantState.ACTIVE:
                        self.state[v] = ParticipantState.SLASHED
                        self.slash_seq[v] = len(self.slash_seq) + 1
                        self.escrow += p.verifier_deposit
            if outcome != ClaimStatus.ACCEPTED:
                self.escrow += p.reward_per_model
            if outcome == ClaimStatus.REJECTED:
                self.escrow += p.contributor_deposit
            if outcome == ClaimStatus.INCONCLUSIVE:
                self.credit[m.handle.claimant] += p.contributor_deposit
            m.status = outcome
            if outcome == ClaimStatus.ACCEPTED and settler == m.handle.claimant:
                m.status = ClaimStatus.RELEASE_PENDING
        assert self.tasks.get_claim(m.handle.claim_id).status == m.status

    def _check_aborts(self, m: ClaimModel, outcome: ClaimStatus) -> None:
        """Against the chain, just after the claim settled (before the model credits it): a
        revealed abort is not slashed and is paid its fee iff the claim ended Inconclusive;
        two revealed aborts out of three leave no majority."""
        aborted = [v for v, ballot in m.revealed.items() if ballot is None]
        _BALLOTS[f"settled with {len(aborted)} revealed aborts"] += 1
        status = self.tasks.get_claim(m.handle.claim_id).status
        if 2 * len(aborted) >= PARAMS.committee_size:
            assert status == ClaimStatus.INCONCLUSIVE
        fee = PARAMS.verifier_fee if status == ClaimStatus.INCONCLUSIVE else 0
        for v in aborted:
            assert self.tasks.credit_of(v) == self.credit[v] + fee
            if self.state[v] == ParticipantState.ACTIVE:  # not slashed on an earlier claim
                assert self.tasks.get_participant(self.task_id, v).state == (
                    ParticipantState.ACTIVE
                )

    def _check_fairness(self, m: ClaimModel, outcome: ClaimStatus) -> None:
        """Honest majority (all honest members revealed) decides by the truth; a member who
        revealed on every committee it sat on so far is never slashed (an honest verifier
        whose round never ran before the deadline did not reveal in time, and may be)."""
        honest = [v for v in m.committee if self.kind[v] == "honest"]
        for v in m.committee:
            seats = [c for c in self.claims if v in c.committee and c.status != ClaimStatus.VOTING]
            if all(v in c.revealed for c in [*seats, m]):
                assert self.state[v] != ParticipantState.SLASHED
        if len(honest) > HALF and all(v in m.revealed for v in honest):
            truth = m.honest_model and m.boxes
            assert outcome == (ClaimStatus.ACCEPTED if truth else ClaimStatus.REJECTED)

    # ------------------------------------------------------------ release
    @precondition(lambda self: self._in(ClaimStatus.ACCEPTED))
    @rule(k=st.integers(0, 10), delay=st.booleans())
    def lock_and_release(self, k: int, delay: bool) -> None:
        """The claimant locks its release; with ``delay``, the initiator then holds the
        envelope back past the release deadline (finding 8) and tries to forfeit: refused, and
        the late release still pays."""
        m = self._pick(k, ClaimStatus.ACCEPTED)
        h = m.handle
        if self._try(self.tasks.commit_release, h.claimant, h.claim_id) is not None:
            return
        m.status = ClaimStatus.RELEASE_PENDING
        if delay:
            deadline = self.tasks.get_claim(h.claim_id).release_deadline
            self.scenario.past(deadline)
            assert self._try(self.tasks.forfeit_unreleased, self.initiator, h.claim_id) == (
                "ReleaseWindowOpen"
            )
        self._release(m)

    def _release(self, m: ClaimModel) -> None:
        h = m.handle
        if self._try(self.tasks.release_envelope, h.claimant, h.claim_id, h.envelope) is None:
            assert m.status == ClaimStatus.RELEASE_PENDING
            m.status = ClaimStatus.RELEASED
            # An honest contributor accepted by the committee is paid reward + deposit.
            self.credit[h.claimant] += PARAMS.reward_per_model + PARAMS.contributor_deposit
            assert self.tasks.envelope_of(h.claim_id) == h.envelope

    @precondition(lambda self: self._in(ClaimStatus.RELEASE_PENDING))
    @rule(k=st.integers(0, 10))
    def release(self, k: int) -> None:
        self._release(self._pick(k, ClaimStatus.RELEASE_PENDING))

    @precondition(lambda self: self._in(ClaimStatus.ACCEPTED, ClaimStatus.RELEASE_PENDING))
    @rule(k=st.integers(0, 10), wait=st.booleans())
    def forfeit(self, k: int, wait: bool) -> None:
        """Forfeit an unlocked release after its deadline (to the escrow, the model stays
        sealed) or a locked one after its lapse (reward to the escrow, deposit burned)."""
        m = self._pick(k, ClaimStatus.ACCEPTED, ClaimStatus.RELEASE_PENDING)
        deadline = self.tasks.get_claim(m.handle.claim_id).release_deadline
        if m.status == ClaimStatus.RELEASE_PENDING:
            deadline += PARAMS.release_window
        if wait:
            self.scenario.past(deadline)
        if self._try(self.tasks.forfeit_unreleased, self.verifiers[0], m.handle.claim_id) is None:
            self._apply_forfeit(m)

    def _apply_forfeit(self, m: ClaimModel) -> None:
        p = PARAMS
        if m.status == ClaimStatus.ACCEPTED:
            self.escrow += p.reward_per_model + p.contributor_deposit
        else:
            assert m.status == ClaimStatus.RELEASE_PENDING
            self.escrow += p.reward_per_model
            self.burned += p.contributor_deposit
        m.status = ClaimStatus.FORFEITED
        assert self.tasks.envelope_of(m.handle.claim_id) == b""  # no model handed over

    # ------------------------------------------------------------ wind-up
    def reclaim(self) -> None:
        if self._try(self.tasks.reclaim_budget, self.initiator, self.task_id) is None:
            assert self.escrow > 0
            self.credit[self.initiator] += self.escrow
            self.escrow = 0

    def retire(self, i: int) -> None:
        v = self.verifiers[i]
        if self._try(self.tasks.retire_verifier, v, self.task_id) is None:
            assert self.state.get(v) == ParticipantState.ACTIVE
            assert not self._in(ClaimStatus.AWAITING_SEED, ClaimStatus.VOTING)
            self.state[v] = ParticipantState.RETIRED
            self.credit[v] += PARAMS.verifier_deposit

    @rule(i=st.integers(0, N_CONTRIBUTORS + N_VERIFIERS))
    def withdraw(self, i: int) -> None:
        a = self.everyone[i]
        before = self.chain.w3.eth.get_balance(self.tasks.address)
        if self._try(self.tasks.withdraw, a) is None:
            assert self.credit[a] > 0
            assert self.chain.w3.eth.get_balance(self.tasks.address) == before - self.credit[a]
            self.credit[a] = 0
        else:
            assert self.credit[a] == 0  # the only reason a withdraw may fail here

    # ------------------------------------------------------------ invariants
    @invariant()
    def eth_conserved_and_credits_match_model(self) -> None:
        """Balance == credits + task holdings + burned; credits, escrow, open claim slots and
        the pool epoch match the model; every slashed verifier missed a reveal."""
        for a in self.dirty:
            self.chain_credit[a] = self.tasks.credit_of(a)
            assert self.chain_credit[a] == self.credit[a], a
        self.dirty.clear()
        task = self.tasks.get_task(self.task_id)
        assert task.escrow == self.escrow
        assert task.open_claims == self._open_claims()
        assert task.slash_count == len(self.slash_seq)
        assert self.tasks.burned() == self.burned
        holdings = task.escrow + task.reserved + task.deposits_held
        assert self.tasks.balance() == sum(self.chain_credit.values()) + holdings + self.burned
        for v in self.slash_seq:
            assert any(v in m.committee and v not in m.revealed for m in self.claims)

    def _check_votes_hidden(self, m: ClaimModel) -> None:
        """Tallies count only revealed votes; a committed ballot shows only its commitment."""
        claim_id = m.handle.claim_id
        raw = self.tasks.contract.functions.getClaim(claim_id).call()
        accept_votes, reject_votes = raw[3], raw[4]
        ballots = list(m.revealed.values())
        assert accept_votes == ballots.count(True)  # an abort counts in neither tally
        assert reject_votes == ballots.count(False)
        for member in m.votes:
            if m.revealed.get(member, False) is None:
                assert self.tasks.ballot_of(claim_id, member) == (b"\0" * 32, BallotState.ABORT)
            if member in m.revealed:
                continue
            commitment, state = self.tasks.ballot_of(claim_id, member)
            assert state == BallotState.COMMITTED
            # Without the salt no vote or abort reproduces it.
            unsalted = b"\0" * 32
            assert commitment != abort_commitment(claim_id, member, unsalted)
            for guess in (True, False):
                assert commitment != vote_commitment(claim_id, member, guess, unsalted)

    def teardown(self) -> None:
        """Wind the task up after expiry: nothing but burned wei may stay in the contract."""
        s = self.scenario
        s.to_expiry()
        for m in self.claims:
            if m.status in (ClaimStatus.AWAITING_SEED, ClaimStatus.VOTING):
                self.tasks.settle_claim(self.initiator, m.handle.claim_id)
                self._apply_settlement(m, self.initiator)
            if m.status == ClaimStatus.ACCEPTED:
                self.tasks.forfeit_unreleased(self.initiator, m.handle.claim_id)
                self._apply_forfeit(m)
            if m.status == ClaimStatus.RELEASE_PENDING:
                self._release(m)
        self.dirty.update(self.everyone)
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
        assert self.tasks.balance() == self.burned


@pytest.mark.slow
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
    _BALLOTS.clear()
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
    print(f"ballots at settlement ({backend}): {dict(_BALLOTS)}")
