"""The abort ballot: a committee member whose three-party computation aborted reveals an
abort, which is paid only without a majority, never slashed, and never part of one."""

from __future__ import annotations

import pytest

from cipherfuse.chain import (
    AbortRevealed,
    ClaimStatus,
    EventPoller,
    ParticipantState,
    TasksContract,
    abort_commitment,
    vote_commitment,
)
from cipherfuse.chain.backends import Chain
from cipherfuse.chain.errors import ContractRevertError
from cipherfuse.chain.tasks import BallotState

from .helpers import ClaimHandle, Scenario, det_bytes, setup_task


def _voting(chain: Chain, tasks: TasksContract) -> tuple[Scenario, ClaimHandle, list[str]]:
    s = setup_task(chain, tasks, contributors=1, verifiers=3, max_claims=1)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    return s, h, s.draw(h)


def _commit(s: Scenario, h: ClaimHandle, member: str, vote: bool | None) -> bytes:
    salt = det_bytes(f"salt{h.claim_id}{member}")
    commitment = (
        abort_commitment(h.claim_id, member, salt)
        if vote is None
        else vote_commitment(h.claim_id, member, vote, salt)
    )
    s.tasks.commit_vote(member, h.claim_id, commitment)
    return salt


def _reveal(s: Scenario, h: ClaimHandle, member: str, vote: bool | None, salt: bytes) -> None:
    if vote is None:
        s.tasks.reveal_abort(member, h.claim_id, salt)
    else:
        s.tasks.reveal_vote(member, h.claim_id, vote, salt)


def _run(
    s: Scenario, h: ClaimHandle, votes: dict[str, bool | None], silent: set[str] = frozenset()
) -> ClaimStatus:
    salts = {m: _commit(s, h, m, v) for m, v in votes.items() if m not in silent}
    s.past(s.tasks.get_claim(h.claim_id).commit_deadline)
    for m, salt in salts.items():
        _reveal(s, h, m, votes[m], salt)
    s.past(s.tasks.get_claim(h.claim_id).reveal_deadline)
    s.tasks.settle_claim(s.initiator, h.claim_id)
    return s.tasks.get_claim(h.claim_id).status


def test_two_aborts_and_a_silent_member_leave_the_claim_inconclusive(
    chain: Chain, tasks: TasksContract
) -> None:
    s, h, committee = _voting(chain, tasks)
    p = s.params
    silent = committee[2]
    votes: dict[str, bool | None] = {committee[0]: None, committee[1]: None, silent: None}
    assert _run(s, h, votes, silent={silent}) == ClaimStatus.INCONCLUSIVE
    # No honest party loses: the contributor's deposit comes back, the aborting members are
    # paid their fee and keep their deposit; the silent member is slashed.
    assert tasks.credit_of(s.contributors[0]) == p.contributor_deposit
    for m in committee[:2]:
        assert tasks.credit_of(m) == p.verifier_fee
        assert tasks.ballot_of(h.claim_id, m)[1] == BallotState.ABORT
        assert tasks.get_participant(s.task_id, m).state == ParticipantState.ACTIVE
    assert tasks.get_participant(s.task_id, silent).state == ParticipantState.SLASHED
    events = [e for e in EventPoller(tasks).poll_typed() if isinstance(e, AbortRevealed)]
    assert sorted(e.verifier for e in events) == sorted(committee[:2])


@pytest.mark.parametrize("deviator_vote", [True, False])
def test_a_deviator_and_two_aborts_never_make_a_majority(
    chain: Chain, tasks: TasksContract, deviator_vote: bool
) -> None:
    s, h, committee = _voting(chain, tasks)
    votes: dict[str, bool | None] = {committee[0]: None, committee[1]: None}
    votes[committee[2]] = deviator_vote
    assert _run(s, h, votes) == ClaimStatus.INCONCLUSIVE
    claim = tasks.get_claim(h.claim_id)
    assert (claim.accept_votes, claim.reject_votes) == (int(deviator_vote), int(not deviator_vote))


def test_an_abort_in_a_decided_claim_is_neither_paid_nor_slashed(
    chain: Chain, tasks: TasksContract
) -> None:
    s, h, committee = _voting(chain, tasks)
    votes: dict[str, bool | None] = {committee[0]: False, committee[1]: False, committee[2]: None}
    assert _run(s, h, votes) == ClaimStatus.REJECTED
    assert tasks.credit_of(committee[2]) == 0
    assert tasks.get_participant(s.task_id, committee[2]).state == ParticipantState.ACTIVE
    for m in committee[:2]:
        assert tasks.credit_of(m) == s.params.verifier_fee


def test_an_abort_reveal_must_match_its_commitment(chain: Chain, tasks: TasksContract) -> None:
    s, h, committee = _voting(chain, tasks)
    member = committee[0]
    salt = _commit(s, h, member, True)  # committed an accept
    s.past(tasks.get_claim(h.claim_id).commit_deadline)
    with pytest.raises(ContractRevertError) as info:
        tasks.reveal_abort(member, h.claim_id, salt)
    assert info.value.error_name == "CommitmentMismatch"
    other = committee[1]
    abort_salt = det_bytes("late")
    with pytest.raises(ContractRevertError) as info:  # not committed: nothing to reveal
        tasks.reveal_abort(other, h.claim_id, abort_salt)
    assert info.value.error_name == "NothingToReveal"
    tasks.reveal_vote(member, h.claim_id, True, salt)
    with pytest.raises(ContractRevertError) as info:  # revealed once
        tasks.reveal_abort(member, h.claim_id, salt)
    assert info.value.error_name == "NothingToReveal"


def test_a_full_house_of_reveals_with_aborts_settles_before_the_deadline(
    chain: Chain, tasks: TasksContract
) -> None:
    """Once every member revealed, aborts included, nothing can change the outcome: the
    claim settles at once; one member short, it waits for the reveal deadline."""
    s, h, committee = _voting(chain, tasks)
    votes: dict[str, bool | None] = {committee[0]: None, committee[1]: None, committee[2]: True}
    salts = {m: _commit(s, h, m, v) for m, v in votes.items()}
    s.past(tasks.get_claim(h.claim_id).commit_deadline)
    for m in committee[:2]:
        _reveal(s, h, m, votes[m], salts[m])
    assert tasks.get_claim(h.claim_id).abort_votes == 2
    with pytest.raises(ContractRevertError) as early:
        tasks.settle_claim(s.initiator, h.claim_id)
    assert early.value.error_name == "SettlementTooEarly"
    _reveal(s, h, committee[2], True, salts[committee[2]])
    claim = tasks.get_claim(h.claim_id)
    assert chain.timestamp() <= claim.reveal_deadline
    tasks.settle_claim(s.initiator, h.claim_id)
    claim = tasks.get_claim(h.claim_id)
    assert claim.status == ClaimStatus.INCONCLUSIVE
    assert (claim.accept_votes, claim.reject_votes, claim.abort_votes) == (1, 0, 2)
