"""The client's memory of ``ClaimSubmitted`` arguments never outlives the claim it is for."""

from __future__ import annotations

from cipherfuse.chain import Chain, TasksContract
from tests.chain.helpers import setup_task


def test_a_claim_replaced_after_a_revert_is_read_afresh(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=2, verifiers=3)
    s.to_claim_window()
    snap = chain.snapshot()
    first = s.claim(s.contributors[0], "first")
    seen = tasks.get_claim(first.claim_id)
    assert seen.model_hash == first.model_hash
    assert tasks.get_claim(first.claim_id) == seen  # read again: the same claim
    chain.revert(snap)
    # Another claimant's claim now sits behind the same id, with other commitments.
    second = s.claim(s.contributors[1], "second")
    assert second.claim_id == first.claim_id
    again = tasks.get_claim(second.claim_id)
    assert again.claimant == second.claimant
    assert again.model_hash == second.model_hash != first.model_hash
    assert again.seed_commitment != seen.seed_commitment
    assert again.model_cid != seen.model_cid


def test_the_same_claimant_resubmitting_after_a_revert_is_read_afresh(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=3)
    s.to_claim_window()
    snap = chain.snapshot()
    first = s.claim(s.contributors[0], "a")
    assert tasks.get_claim(first.claim_id).model_hash == first.model_hash
    chain.revert(snap)
    second = s.claim(s.contributors[0], "b")
    assert tasks.get_claim(second.claim_id).model_hash == second.model_hash
