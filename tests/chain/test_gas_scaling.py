"""Per-participant gas does not grow with the number of participants.

The same claim -> draw -> commit -> reveal -> settle sequence runs in a task with few
participants and in one with ten times as many; each call's gas must match within 1 %.
(Small differences come only from calldata bytes such as zero bytes in hashes.)
"""

from __future__ import annotations

import pytest

from cipherfuse.chain import Chain, ClaimStatus, TasksContract, vote_commitment

from .helpers import Scenario, det_bytes, setup_task


def _measure(
    chain: Chain, tasks: TasksContract, verifiers: int, contributors: int
) -> dict[str, int]:
    s: Scenario = setup_task(chain, tasks, contributors=contributors, verifiers=verifiers)
    s.to_claim_window()
    gas: dict[str, int] = {}
    h = s.claim(s.contributors[0])
    gas["claim"] = h.receipt.gas_used
    chain.mine(2)
    gas["revealSeed"] = tasks.reveal_seed(h.claimant, h.claim_id, h.seed).gas_used
    committee = list(tasks.committee_of(h.claim_id))
    boxes = [det_bytes(f"box{m}") * 3 for m in committee]
    gas["boxes"] = tasks.post_key_boxes(h.claimant, h.claim_id, boxes).gas_used
    commits, reveals = [], []
    for m in committee:
        h.salts[m] = det_bytes(f"salt{m}")
        commitment = vote_commitment(h.claim_id, m, True, h.salts[m])
        commits.append(tasks.commit_vote(m, h.claim_id, commitment).gas_used)
    s.past(tasks.get_claim(h.claim_id).commit_deadline)
    for m in committee:
        reveals.append(tasks.reveal_vote(m, h.claim_id, True, h.salts[m]).gas_used)
    gas["commit"] = max(commits)
    gas["reveal"] = max(reveals)
    gas["settle"] = tasks.settle_claim(h.claimant, h.claim_id).gas_used
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.RELEASE_PENDING
    gas["release"] = tasks.release_envelope(h.claimant, h.claim_id, h.envelope).gas_used
    gas["withdraw"] = tasks.withdraw(h.claimant).gas_used
    return gas


def test_per_participant_gas_is_independent_of_participant_count(chain: Chain) -> None:
    small_tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
    small = _measure(chain, small_tasks, verifiers=3, contributors=2)
    large_tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
    large = _measure(chain, large_tasks, verifiers=30, contributors=8)
    for call in ("claim", "boxes", "commit", "reveal", "settle", "release", "withdraw"):
        assert large[call] == pytest.approx(small[call], rel=0.01), (call, small, large)
    # The draw visits committee_size pool positions (nobody slashed) whatever the pool size.
    assert large["revealSeed"] == pytest.approx(small["revealSeed"], rel=0.01)


def test_reference_lifecycle_meets_gas_targets(chain: Chain) -> None:
    """Every per-participant call within 1.5x of the minimal contract's measured gas."""
    from cipherfuse.chain.gasreport import REFERENCE_GAS, run_reference_lifecycle

    report = run_reference_lifecycle(chain)
    assert report.over_target() == {}, report.table()
    assert set(REFERENCE_GAS) <= set(report.calls)
    assert report.transactions == 50


def test_gas_per_added_claim_within_1_3x_of_minimal_contract(chain: Chain) -> None:
    """Issue 26 item 4: one more claim (join, claim, draw, key boxes, 3 commits, 3 reveals,
    settle, release, withdraw) costs at most 1.3x the minimal contract's 631,000 gas."""
    from cipherfuse.chain.gasreport import (
        MINIMAL_GAS_PER_CLAIM,
        PER_CLAIM_TARGET_FACTOR,
        gas_per_added_claim,
        run_reference_lifecycle,
    )

    snap = chain.snapshot()
    three = run_reference_lifecycle(chain, contributors=3)
    chain.revert(snap)
    four = run_reference_lifecycle(chain, contributors=4)
    per_claim = gas_per_added_claim(three, four)
    assert MINIMAL_GAS_PER_CLAIM == 631_000
    assert per_claim <= PER_CLAIM_TARGET_FACTOR * MINIMAL_GAS_PER_CLAIM, per_claim
    assert four.transactions - three.transactions == 13
