"""Every revert path of the contract, on both backends, mapped to typed exceptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError

from cipherfuse.chain import (
    Chain,
    ChainParameterError,
    ClaimStatus,
    CommitmentError,
    ContractRevertError,
    PaymentError,
    RoleError,
    StateError,
    TasksContract,
    WindowError,
    seed_commitment,
    vote_commitment,
)
from cipherfuse.chain.errors import ERROR_TABLE, TaskParameterError

from .helpers import (
    DEFAULT_PARAMS,
    MODEL_SIZE,
    ClaimHandle,
    Scenario,
    box_key_of,
    det_bytes,
    setup_task,
)


def expect(name: str, cls: type[ContractRevertError], fn: Callable[[], Any]) -> None:
    with pytest.raises(cls) as info:
        fn()
    assert info.value.error_name == name
    assert name in str(info.value)


def voting_claim(s: Scenario) -> tuple[ClaimHandle, list[str]]:
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    return h, s.draw(h)


def test_error_table_covers_every_abi_error(tasks: TasksContract) -> None:
    assert tasks.errors.error_names == set(ERROR_TABLE)


@pytest.mark.parametrize(
    ("field", "value", "solidity_name"),
    [
        ("committee_size", 0, "committeeSize"),
        ("committee_size", 16, "committeeSize"),
        ("max_claims", 0, "maxClaims"),
        ("min_accuracy_bps", 10_001, "minAccuracyBps"),
        ("reward_per_model", 0, "rewardPerModel"),
        ("join_window", 0, "joinWindow"),
        ("claim_window", 0, "claimWindow"),
        ("draw_window", 0, "drawWindow"),
        ("commit_window", 0, "commitWindow"),
        ("reveal_window", 0, "revealWindow"),
        ("release_window", 0, "releaseWindow"),
        ("contributor_deposit", 2**80, "contributorDeposit"),
        ("verifier_deposit", 2**80, "verifierDeposit"),
    ],
)
def test_publish_rejects_bad_parameters(
    chain: Chain, tasks: TasksContract, field: str, value: int, solidity_name: str
) -> None:
    params = replace(DEFAULT_PARAMS, **{field: value})
    with pytest.raises(TaskParameterError) as info:
        tasks.publish_task(chain.accounts[0], "ipfs://x", params)
    assert info.value.error_args["name"] == solidity_name
    assert isinstance(info.value, ValueError)


def test_publish_rejects_budget_above_uint88(chain: Chain, tasks: TasksContract) -> None:
    params = replace(DEFAULT_PARAMS, reward_per_model=2**95, max_claims=2)
    expect(
        "InvalidParameter",
        TaskParameterError,
        lambda: tasks.publish_task(chain.accounts[0], "ipfs://x", params, value=0),
    )


def test_publish_and_join_require_exact_payment(chain: Chain, tasks: TasksContract) -> None:
    a = chain.accounts
    budget = DEFAULT_PARAMS.budget
    expect(
        "WrongPayment",
        PaymentError,
        lambda: tasks.publish_task(a[0], "ipfs://x", DEFAULT_PARAMS, value=budget - 1),
    )
    s = setup_task(chain, tasks, contributors=0, verifiers=0)
    expect("WrongPayment", PaymentError, lambda: tasks.join_as_contributor(a[1], s.task_id, 1))
    expect(
        "WrongPayment",
        PaymentError,
        lambda: tasks.join_as_verifier(a[1], s.task_id, box_key_of(a[1]), deposit=0),
    )


def test_client_rejects_out_of_range_params_before_sending() -> None:
    with pytest.raises(ChainParameterError, match="committee_size"):
        replace(DEFAULT_PARAMS, committee_size=256)
    with pytest.raises(ChainParameterError, match="reward_per_model"):
        replace(DEFAULT_PARAMS, reward_per_model=-1)


def test_unknown_task_and_claim(chain: Chain, tasks: TasksContract) -> None:
    a = chain.accounts
    expect("UnknownTask", StateError, lambda: tasks.join_as_contributor(a[1], 7, 0))
    expect("UnknownTask", StateError, lambda: tasks.get_task(7))
    expect("UnknownClaim", StateError, lambda: tasks.settle_claim(a[1], 3))
    expect("UnknownClaim", StateError, lambda: tasks.commit_vote(a[1], 3, b"\1" * 32))


def test_join_window_closes(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=0, verifiers=3)
    s.to_claim_window()
    late = chain.accounts[20]
    expect("JoinWindowClosed", WindowError, lambda: tasks.join_as_contributor(late, s.task_id))
    expect(
        "JoinWindowClosed",
        WindowError,
        lambda: tasks.join_as_verifier(late, s.task_id, box_key_of(late)),
    )


def test_registration_roles_are_exclusive(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=1)
    c, v = s.contributors[0], s.verifiers[0]
    expect("AlreadyRegistered", RoleError, lambda: tasks.join_as_contributor(c, s.task_id))
    key = box_key_of(c)
    expect("AlreadyRegistered", RoleError, lambda: tasks.join_as_verifier(c, s.task_id, key))
    expect("AlreadyRegistered", RoleError, lambda: tasks.join_as_contributor(v, s.task_id))
    expect(
        "AlreadyRegistered", RoleError, lambda: tasks.join_as_verifier(s.initiator, s.task_id, key)
    )


def test_claim_window_and_claim_preconditions(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=3, verifiers=3, max_claims=1)
    c0, c1, c2 = s.contributors
    expect("ClaimWindowNotOpen", WindowError, lambda: s.claim(c0))  # still joining
    s.to_claim_window()
    outsider = chain.accounts[30]
    expect("NotActiveContributor", RoleError, lambda: s.claim(outsider))
    expect("NotActiveContributor", RoleError, lambda: s.claim(s.verifiers[0]))
    zero = b"\0" * 32
    expect(
        "ZeroCommitment",
        CommitmentError,
        lambda: tasks.submit_claim(
            c0, s.task_id, "cid", zero, MODEL_SIZE, det_bytes("a"), det_bytes("b")
        ),
    )
    s.claim(c0)
    expect("NotActiveContributor", RoleError, lambda: s.claim(c0))  # one claim each
    expect("NotActiveContributor", RoleError, lambda: tasks.leave_as_contributor(c0, s.task_id))
    expect("BudgetExhausted", StateError, lambda: s.claim(c1))
    s.past(tasks.get_task(s.task_id).claim_end)
    expect("ClaimWindowNotOpen", WindowError, lambda: s.claim(c2))


def test_claim_needs_enough_verifiers(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=2)
    s.to_claim_window()
    expect("NotEnoughVerifiers", StateError, lambda: s.claim(s.contributors[0]))


def test_leave_twice(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=0)
    c = s.contributors[0]
    tasks.leave_as_contributor(c, s.task_id)
    expect("NotActiveContributor", RoleError, lambda: tasks.leave_as_contributor(c, s.task_id))


def test_seed_reveal_paths(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    expect(
        "SeedRevealTooEarly", WindowError, lambda: tasks.reveal_seed(h.claimant, h.claim_id, h.seed)
    )
    chain.mine(2)
    expect("NotClaimant", RoleError, lambda: tasks.reveal_seed(s.verifiers[0], h.claim_id, h.seed))
    expect(
        "CommitmentMismatch",
        CommitmentError,
        lambda: tasks.reveal_seed(h.claimant, h.claim_id, det_bytes("wrong")),
    )
    expect(
        "WrongClaimStatus",
        StateError,
        lambda: tasks.commit_vote(s.verifiers[0], h.claim_id, det_bytes("c")),
    )
    expect("SettlementTooEarly", WindowError, lambda: tasks.settle_claim(s.initiator, h.claim_id))
    s.past(tasks.get_claim(h.claim_id).claimed_at + s.params.draw_window)
    expect(
        "SeedRevealTooLate", WindowError, lambda: tasks.reveal_seed(h.claimant, h.claim_id, h.seed)
    )


def test_seed_reveal_twice(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1)
    h, _ = voting_claim(s)
    expect(
        "WrongClaimStatus", StateError, lambda: tasks.reveal_seed(h.claimant, h.claim_id, h.seed)
    )


def test_vote_commit_paths(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=4)
    h, committee = voting_claim(s)
    outsider = next(v for v in s.verifiers if v not in committee)
    member = committee[0]
    good = vote_commitment(h.claim_id, member, True, det_bytes("salt"))
    expect("NotCommitteeMember", RoleError, lambda: tasks.commit_vote(outsider, h.claim_id, good))
    for marker in (0, 1, 2, 3):  # zero and the ballot markers are no commitments
        bad = marker.to_bytes(32, "big")
        expect(
            "ZeroCommitment",
            CommitmentError,
            lambda bad=bad: tasks.commit_vote(member, h.claim_id, bad),  # type: ignore[misc]
        )
    tasks.commit_vote(member, h.claim_id, good)
    expect("AlreadyCommitted", StateError, lambda: tasks.commit_vote(member, h.claim_id, good))
    expect(
        "RevealWindowNotOpen",
        WindowError,
        lambda: tasks.reveal_vote(member, h.claim_id, True, det_bytes("salt")),
    )
    s.past(tasks.get_claim(h.claim_id).commit_deadline)
    expect(
        "CommitWindowClosed", WindowError, lambda: tasks.commit_vote(committee[1], h.claim_id, good)
    )


def test_vote_reveal_paths(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=4)
    h, committee = voting_claim(s)
    outsider = next(v for v in s.verifiers if v not in committee)
    s.commit(h, {committee[0]: True, committee[1]: False})
    claim = tasks.get_claim(h.claim_id)
    s.past(claim.commit_deadline)
    m0, m1, m2 = committee
    expect(
        "CommitmentMismatch",
        CommitmentError,
        lambda: tasks.reveal_vote(m0, h.claim_id, False, h.salts[m0]),
    )  # flipped vote
    expect(
        "CommitmentMismatch",
        CommitmentError,
        lambda: tasks.reveal_vote(m1, h.claim_id, False, det_bytes("other salt")),
    )
    expect(
        "NothingToReveal", StateError, lambda: tasks.reveal_vote(m2, h.claim_id, True, h.salts[m0])
    )
    expect(
        "NotCommitteeMember",
        RoleError,
        lambda: tasks.reveal_vote(outsider, h.claim_id, True, h.salts[m0]),
    )
    tasks.reveal_vote(m0, h.claim_id, True, h.salts[m0])
    expect(
        "NothingToReveal", StateError, lambda: tasks.reveal_vote(m0, h.claim_id, True, h.salts[m0])
    )
    expect("SettlementTooEarly", WindowError, lambda: tasks.settle_claim(s.initiator, h.claim_id))
    s.past(claim.reveal_deadline)
    expect(
        "RevealWindowNotOpen",
        WindowError,
        lambda: tasks.reveal_vote(m1, h.claim_id, False, h.salts[m1]),
    )
    tasks.settle_claim(s.initiator, h.claim_id)
    expect("WrongClaimStatus", StateError, lambda: tasks.settle_claim(s.initiator, h.claim_id))


def test_release_and_forfeit_paths(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=2, verifiers=3)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    unlocked = {"require_lock": False}
    expect(
        "WrongClaimStatus",
        StateError,
        lambda: tasks.release_envelope(h.claimant, h.claim_id, h.envelope, **unlocked),
    )
    expect(
        "WrongClaimStatus", StateError, lambda: tasks.forfeit_unreleased(s.initiator, h.claim_id)
    )
    with pytest.raises(ChainParameterError, match="commit_release first"):
        tasks.release_envelope(h.claimant, h.claim_id, h.envelope)  # refused before sending
    committee = s.draw(h)
    s.vote_and_settle(h, dict.fromkeys(committee, True))
    # Accepted but not locked: the contract refuses the envelope too.
    expect(
        "WrongClaimStatus",
        StateError,
        lambda: tasks.release_envelope(h.claimant, h.claim_id, h.envelope, **unlocked),
    )
    expect("NotClaimant", RoleError, lambda: tasks.commit_release(s.initiator, h.claim_id))
    expect(
        "ReleaseWindowOpen", WindowError, lambda: tasks.forfeit_unreleased(s.initiator, h.claim_id)
    )
    tasks.commit_release(h.claimant, h.claim_id)
    expect("WrongClaimStatus", StateError, lambda: tasks.commit_release(h.claimant, h.claim_id))
    expect(
        "NotClaimant",
        RoleError,
        lambda: tasks.release_envelope(s.initiator, h.claim_id, h.envelope),
    )
    expect(
        "CommitmentMismatch",
        CommitmentError,
        lambda: tasks.release_envelope(h.claimant, h.claim_id, h.envelope + b"x"),
    )
    lapse = tasks.get_claim(h.claim_id).release_deadline + s.params.release_window
    expect(
        "ReleaseWindowOpen", WindowError, lambda: tasks.forfeit_unreleased(s.initiator, h.claim_id)
    )
    s.past(tasks.get_claim(h.claim_id).release_deadline)
    # Locked: a release after the deadline still works (no forfeit race).
    snap = chain.snapshot()
    tasks.release_envelope(h.claimant, h.claim_id, h.envelope)
    chain.revert(snap)
    tasks.get_claim(h.claim_id)
    s.past(lapse)
    tasks.forfeit_unreleased(s.initiator, h.claim_id)  # lapsed: reward back, deposit burned
    assert tasks.burned() == s.params.contributor_deposit
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.FORFEITED


def test_reclaim_retire_and_withdraw_paths(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=3, max_claims=1)
    v = s.verifiers[0]
    expect("NotInitiator", RoleError, lambda: tasks.reclaim_budget(v, s.task_id))
    expect("TaskNotExpired", WindowError, lambda: tasks.reclaim_budget(s.initiator, s.task_id))
    expect("TaskNotExpired", WindowError, lambda: tasks.retire_verifier(v, s.task_id))
    expect(
        "NotActiveVerifier", RoleError, lambda: tasks.retire_verifier(s.contributors[0], s.task_id)
    )
    expect("NothingToWithdraw", PaymentError, lambda: tasks.withdraw(v))
    h, committee = voting_claim(s)
    s.to_expiry()
    expect("VerifierHasDuties", StateError, lambda: tasks.retire_verifier(committee[0], s.task_id))
    # The single claim reserved the whole budget: nothing to reclaim before it settles.
    expect("NothingToReclaim", PaymentError, lambda: tasks.reclaim_budget(s.initiator, s.task_id))
    tasks.settle_claim(s.initiator, h.claim_id)  # no reveals: inconclusive, all slashed
    tasks.reclaim_budget(s.initiator, s.task_id)  # late settlement returned funds
    p = s.params
    # Budget (no fee paid) plus the three slashed verifier deposits.
    assert tasks.credit_of(s.initiator) == p.budget + 3 * p.verifier_deposit
    assert tasks.credit_of(h.claimant) == p.contributor_deposit  # inconclusive: refunded
    expect("NotActiveVerifier", RoleError, lambda: tasks.retire_verifier(committee[0], s.task_id))


def _probe(chain: Chain, tasks: TasksContract) -> Any:
    from cipherfuse.chain.artifacts import load_artifact

    art = load_artifact("ReentrancyProbe")
    factory = chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    init_code = HexBytes(factory.constructor(tasks.address).data_in_transaction)
    receipt = chain.signer(chain.accounts[0]).transact(None, bytes(init_code))
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)


def _signed_call(
    chain: Chain, sender: str, contract: Any, fn: str, *args: Any, value: int = 0
) -> Any:
    """Call ``fn`` on a probe contract as ``sender`` through its local signer."""
    data = bytes(HexBytes(contract.encode_abi(fn, args=list(args))))
    receipt = chain.signer(sender).transact(contract.address, data, value=value, label=fn)
    assert receipt["status"] == 1
    return receipt


def test_withdraw_is_reentrancy_safe(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=0, verifiers=0)
    probe = _probe(chain, tasks)
    attacker = chain.accounts[35]
    deposit = s.params.contributor_deposit
    _signed_call(chain, attacker, probe, "joinAndLeave", s.task_id, value=deposit)
    assert tasks.credit_of(probe.address) == deposit
    balance_before = tasks.balance()
    _signed_call(chain, attacker, probe, "attack")
    assert probe.functions.reentryAttempts().call() == 1
    assert probe.functions.reentrySucceeded().call() is False
    reentrancy_selector = next(
        sel for sel, (name, _, _) in tasks.errors._by_selector.items() if name == "Reentrancy"
    )
    assert bytes(probe.functions.reentryError().call()) == reentrancy_selector
    assert probe.functions.received().call() == deposit  # paid exactly once
    assert tasks.balance() == balance_before - deposit
    assert tasks.credit_of(probe.address) == 0


def test_withdraw_to_rejecting_payee_reverts_and_keeps_credit(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=0, verifiers=0)
    probe = _probe(chain, tasks)
    attacker = chain.accounts[35]
    deposit = s.params.contributor_deposit
    _signed_call(chain, attacker, probe, "joinAndLeave", s.task_id, value=deposit)
    _signed_call(chain, attacker, probe, "setRejectPayments", True)
    # The probe, not our client, sends this one: the gas estimate (web3 on anvil, or
    # eth-tester) raises before anything is signed.
    with pytest.raises((ContractLogicError, TransactionFailed)) as info:
        _signed_call(chain, attacker, probe, "attack")
    typed = tasks.translate(info.value)
    assert isinstance(typed, PaymentError)
    assert typed.error_name == "TransferFailed"
    assert tasks.credit_of(probe.address) == deposit


def test_seed_commitment_binds_task_and_claimant(chain: Chain) -> None:
    a = chain.accounts
    seed = det_bytes("s")
    assert seed_commitment(1, a[1], seed) != seed_commitment(2, a[1], seed)
    assert seed_commitment(1, a[1], seed) != seed_commitment(1, a[2], seed)
    with pytest.raises(ChainParameterError):
        seed_commitment(1, a[1], b"short")


def test_seed_reveal_past_blockhash_horizon_needs_a_reanchor(
    chain: Chain, tasks: TasksContract
) -> None:
    """blockhash() only sees 256 blocks: past that the seed cannot be revealed (it would draw
    from a zero hash); the draw is re-anchored to a fresh block instead of voided."""
    s = setup_task(chain, tasks, contributors=1, max_claims=1, draw_window=10_000)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    draw_block = tasks.get_claim(h.claim_id).draw_block
    chain.mine(draw_block + 255 - chain.block_number())
    snap = chain.snapshot()
    receipt = tasks.reveal_seed(h.claimant, h.claim_id, h.seed)
    assert receipt.block_number == draw_block + 256  # the last block that may reveal
    chain.revert(snap)
    chain.mine(2)  # latest is now past the horizon on both backends
    expect(
        "DrawBlockExpired",
        WindowError,
        lambda: tasks.reveal_seed(h.claimant, h.claim_id, h.seed),
    )
    expect("SettlementTooEarly", WindowError, lambda: tasks.settle_claim(s.initiator, h.claim_id))
    expect(
        "DrawBlockExpired", WindowError, lambda: tasks.capture_draw_hash(s.initiator, h.claim_id)
    )
    tasks.reanchor_draw(s.initiator, h.claim_id)
    assert tasks.get_claim(h.claim_id).draw_block > draw_block + 256
    expect("DrawBlockNotExpired", StateError, lambda: tasks.reanchor_draw(s.initiator, h.claim_id))
    s.draw(h)
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.VOTING
