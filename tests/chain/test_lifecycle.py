"""Every lifecycle path of a task, on both backends, with exact ETH accounting."""

from __future__ import annotations

import pytest

from cipherfuse.chain import (
    ClaimStatus,
    ParticipantState,
    StateError,
    TasksContract,
    envelope_commitment,
)
from cipherfuse.chain.backends import Chain

from .helpers import (
    MODEL_SIZE,
    ClaimHandle,
    Scenario,
    all_credits,
    reference_committee,
    setup_task,
)


def _assert_conserved(s: Scenario) -> None:
    everyone = [s.initiator, *s.contributors, *s.verifiers]
    held = s.tasks.task_holdings(s.task_id)
    assert s.tasks.balance() == all_credits(s.tasks, everyone) + held


def _finish(s: Scenario) -> None:
    """Expire, reclaim, retire every active verifier, withdraw all; contract ends empty."""
    s.to_expiry()
    if s.tasks.get_task(s.task_id).escrow > 0:
        s.tasks.reclaim_budget(s.initiator, s.task_id)
    for v in s.verifiers:
        if s.tasks.get_participant(s.task_id, v).state == ParticipantState.ACTIVE:
            s.tasks.retire_verifier(v, s.task_id)
    for c in s.contributors:
        if s.tasks.get_participant(s.task_id, c).state == ParticipantState.ACTIVE:
            s.tasks.leave_as_contributor(c, s.task_id)
    _assert_conserved(s)
    assert s.tasks.task_holdings(s.task_id) == 0
    for account in [s.initiator, *s.contributors, *s.verifiers]:
        if s.tasks.credit_of(account) > 0:
            s.tasks.withdraw(account)
    assert s.tasks.balance() == 0


def test_accepted_claim_pays_reward_fees_and_releases_envelope(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=1)
    p = s.params
    assert tasks.balance() == p.budget + p.contributor_deposit + 3 * p.verifier_deposit
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    claim = tasks.get_claim(h.claim_id)
    assert claim.status == ClaimStatus.AWAITING_SEED
    assert claim.model_hash == h.model_hash
    assert claim.envelope_commitment == envelope_commitment(s.task_id, h.claimant, h.envelope)
    assert claim.model_size == MODEL_SIZE
    committee = s.draw(h)
    assert sorted(committee) == sorted(s.verifiers)  # 3 of 3: everyone sits
    outcome = s.vote_and_settle(h, dict.fromkeys(committee, True))
    assert outcome == ClaimStatus.ACCEPTED
    for v in committee:
        assert tasks.credit_of(v) == p.verifier_fee
    before = chain.w3.eth.get_balance(s.contributors[0])
    s.release(h)
    assert tasks.envelope_of(h.claim_id) == h.envelope
    released = tasks.envelope_of(h.claim_id)
    assert envelope_commitment(s.task_id, h.claimant, released) == claim.envelope_commitment
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.RELEASED
    assert tasks.credit_of(s.contributors[0]) == p.reward_per_model + p.contributor_deposit
    receipt = tasks.withdraw(s.contributors[0])
    gas_price = chain.w3.eth.get_transaction(receipt.tx_hash)["gasPrice"]
    after = chain.w3.eth.get_balance(s.contributors[0])
    # The contributor paid gas for release and withdraw; the withdraw gas is exact here.
    assert after > before
    assert (
        after + receipt.gas_used * gas_price - before <= p.reward_per_model + p.contributor_deposit
    )
    _assert_conserved(s)
    _finish(s)
    # Initiator gets the unused second claim's budget back.
    assert tasks.credit_of(s.initiator) == 0


def test_rejected_claim_slashes_contributor_into_escrow(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, max_claims=1)
    p = s.params
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    committee = s.draw(h)
    votes = {committee[0]: True, committee[1]: False, committee[2]: False}
    assert s.vote_and_settle(h, votes) == ClaimStatus.REJECTED
    info = tasks.get_task(s.task_id)
    # Escrow regains the reward and the minority's fee and gains the deposit (Case II).
    assert info.escrow == p.reward_per_model + p.contributor_deposit + p.verifier_fee
    assert tasks.credit_of(s.contributors[0]) == 0
    # Fees follow the majority: the accept vote in the minority is not paid, nor slashed.
    assert tasks.credit_of(committee[0]) == 0
    assert tasks.get_participant(s.task_id, committee[0]).state == ParticipantState.ACTIVE
    for v in committee[1:]:
        assert tasks.credit_of(v) == p.verifier_fee
    s.to_expiry()
    tasks.reclaim_budget(s.initiator, s.task_id)
    assert tasks.credit_of(s.initiator) == (
        p.reward_per_model + p.contributor_deposit + p.verifier_fee
    )
    _finish(s)


def test_missing_reveal_slashes_verifier_and_tie_is_inconclusive(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=4, max_claims=1)
    p = s.params
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    committee = s.draw(h)
    assert len(set(committee)) == 3
    assert set(committee) <= set(s.verifiers)
    lazy = committee[2]
    votes = {committee[0]: True, committee[1]: False, lazy: True}
    outcome = s.vote_and_settle(h, votes, reveal={committee[0], committee[1]})
    assert outcome == ClaimStatus.INCONCLUSIVE
    # Not proven lazy: the contributor's deposit comes back, no reward.
    assert tasks.credit_of(s.contributors[0]) == p.contributor_deposit
    assert tasks.credit_of(committee[0]) == p.verifier_fee
    assert tasks.credit_of(committee[1]) == p.verifier_fee
    assert tasks.credit_of(lazy) == 0
    assert tasks.get_participant(s.task_id, lazy).state == ParticipantState.SLASHED
    assert tasks.active_verifier_count(s.task_id) == 3
    info = tasks.get_task(s.task_id)
    assert info.escrow == p.reward_per_model + p.verifier_fee + p.verifier_deposit
    _finish(s)
    assert tasks.credit_of(lazy) == 0


def test_majority_of_committee_needed_to_accept(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, max_claims=1)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    committee = s.draw(h)
    # One accept revealed, two never revealed: 1 of 3 is not a majority.
    votes = dict.fromkeys(committee, True)
    assert s.vote_and_settle(h, votes, reveal={committee[0]}) == ClaimStatus.INCONCLUSIVE
    for v in committee[1:]:
        assert tasks.get_participant(s.task_id, v).state == ParticipantState.SLASHED
    _finish(s)


def test_unrevealed_seed_voids_claim_and_slashes_deposit(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=1, max_claims=1)
    p = s.params
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    claim = tasks.get_claim(h.claim_id)
    s.past(claim.claimed_at + p.draw_window)
    tasks.settle_claim(s.verifiers[0], h.claim_id)
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.VOID
    assert tasks.get_task(s.task_id).escrow == p.budget + p.contributor_deposit
    assert tasks.committee_of(h.claim_id) == []
    _finish(s)


def test_unreleased_envelope_forfeits_reward_and_deposit_to_escrow(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=1, max_claims=1)
    p = s.params
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    committee = s.draw(h)
    assert s.vote_and_settle(h, dict.fromkeys(committee, True)) == ClaimStatus.ACCEPTED
    s.past(tasks.get_claim(h.claim_id).release_deadline)
    tasks.forfeit_unreleased(s.verifiers[0], h.claim_id)
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.FORFEITED
    info = tasks.get_task(s.task_id)
    assert info.escrow == p.reward_per_model + p.contributor_deposit
    assert info.open_claims == 0  # the forfeited claim's slot is free again
    assert tasks.credit_of(s.contributors[0]) == 0
    assert tasks.envelope_of(h.claim_id) == b""
    _finish(s)


def test_contributor_leaves_before_claiming(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=2)
    p = s.params
    leaver = s.contributors[1]
    tasks.leave_as_contributor(leaver, s.task_id)
    assert tasks.credit_of(leaver) == p.contributor_deposit
    assert tasks.get_participant(s.task_id, leaver).state == ParticipantState.LEFT
    _assert_conserved(s)
    _finish(s)


def test_two_claims_settle_independently(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=2, verifiers=5)
    p = s.params
    s.to_claim_window()
    h1 = s.claim(s.contributors[0])
    h2 = s.claim(s.contributors[1])
    c1 = s.draw(h1)
    c2 = s.draw(h2)
    s.commit(h1, dict.fromkeys(c1, True))
    s.commit(h2, dict.fromkeys(c2, False))
    s.reveal(h1, dict.fromkeys(c1, True))
    s.reveal(h2, dict.fromkeys(c2, False))
    tasks.settle_claim(s.initiator, h1.claim_id)
    tasks.settle_claim(s.initiator, h2.claim_id)
    assert tasks.get_claim(h1.claim_id).status == ClaimStatus.ACCEPTED
    assert tasks.get_claim(h2.claim_id).status == ClaimStatus.REJECTED
    s.release(h1)
    assert tasks.credit_of(s.contributors[0]) == p.reward_per_model + p.contributor_deposit
    assert tasks.credit_of(s.contributors[1]) == 0
    fees = {v: 0 for v in s.verifiers}
    for v in [*c1, *c2]:
        fees[v] += p.verifier_fee
    for v, fee in fees.items():
        assert tasks.credit_of(v) == fee
    _finish(s)


def test_draw_uses_the_pool_fixed_at_claim_time(chain: Chain, tasks: TasksContract) -> None:
    """A verifier slashed after a claim still counts for that claim's draw: a slash elsewhere
    gives the claimant no re-draw (issue 22, finding 5)."""
    s = setup_task(
        chain,
        tasks,
        contributors=3,
        verifiers=3,
        max_claims=3,
        draw_window=2_000,
        claim_window=2_000,
    )
    s.to_claim_window()
    h1 = s.claim(s.contributors[0])
    h2 = s.claim(s.contributors[1])  # claimed while all 3 verifiers were eligible
    c1 = s.draw(h1)
    s.vote_and_settle(h1, dict.fromkeys(c1, True), reveal=set(c1[:2]))
    slashed = c1[2]
    assert tasks.get_participant(s.task_id, slashed).state == ParticipantState.SLASHED
    assert tasks.active_verifier_count(s.task_id) == 2
    assert tasks.get_claim(h2.claim_id).pool_epoch == 0
    c2 = s.draw(h2)
    assert tasks.get_claim(h2.claim_id).status == ClaimStatus.VOTING
    assert sorted(c2) == sorted(s.verifiers)  # the pool of claim time, slashed member included
    # A claim after the slash sees the smaller pool: too few for a committee of 3.
    with pytest.raises(StateError, match="NotEnoughVerifiers"):
        s.claim(s.contributors[2])
    s.release(h1)
    _finish_votes(s, h2, c2)
    _finish(s)


def _finish_votes(s: Scenario, h: ClaimHandle, committee: list[str]) -> None:
    s.vote_and_settle(h, dict.fromkeys(committee, False))


def test_committee_draw_is_reproducible_from_public_data(
    chain: Chain, tasks: TasksContract
) -> None:
    """Anyone can recompute the committee from the revealed seed and the draw block hash."""
    from eth_abi import encode
    from eth_utils import keccak

    s = setup_task(chain, tasks, contributors=1, verifiers=9, max_claims=1)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    committee = s.draw(h)
    claim = tasks.get_claim(h.claim_id)
    block_hash = bytes(chain.w3.eth.get_block(claim.draw_block)["hash"])
    randomness = keccak(encode(["bytes32", "bytes32", "uint256"], [h.seed, block_hash, h.claim_id]))
    pool = list(s.verifiers)  # join order; nobody slashed yet
    expected = reference_committee(pool, set(pool), randomness, 3)
    assert committee == expected
    (event,) = tasks.contract.events.CommitteeDrawn().get_logs(
        argument_filters={"claimId": h.claim_id}, from_block=0
    )
    assert bytes(event["args"]["randomness"]) == randomness
    assert bytes(event["args"]["seed"]) == h.seed


def test_draw_committee_returns_the_members_the_contract_stored(
    chain: Chain, tasks: TasksContract
) -> None:
    """The members ``draw_committee`` reads from its receipt are the stored committee, in
    draw order, for every claim of a task (a subset of a 9-verifier pool)."""
    s = setup_task(chain, tasks, contributors=2, verifiers=9, max_claims=2)
    s.to_claim_window()
    handles = [s.claim(c) for c in s.contributors]
    chain.mine(2)
    for h in handles:
        members, receipt = tasks.draw_committee(h.claimant, h.claim_id, h.seed)
        assert receipt.block_number == chain.block_number()
        assert members == tasks.committee_of(h.claim_id)
        assert len(members) == 3 and set(members) <= set(s.verifiers)
        assert tasks.get_claim(h.claim_id).status == ClaimStatus.VOTING
