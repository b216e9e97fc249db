"""Attacker-style tests: each hostile sequence of issue 22 (contract findings 3-9 and 12) and
its defined outcome, a refused transaction or funds where they belong. Each would pass
against the previous contract only by the attack succeeding."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_abi import encode
from eth_utils import keccak
from hexbytes import HexBytes

from cipherfuse.chain import (
    Chain,
    ClaimStatus,
    ContractRevertError,
    ParticipantState,
    TasksContract,
    envelope_commitment,
)
from cipherfuse.chain.artifacts import load_artifact
from cipherfuse.chain.errors import TaskParameterError

from .helpers import (
    DEFAULT_PARAMS,
    Scenario,
    box_key_of,
    det_bytes,
    reference_committee,
    setup_task,
)
from .test_reverts import expect


def _accepted(s: Scenario, contributor: int = 0):  # type: ignore[no-untyped-def]
    h = s.claim(s.contributors[contributor])
    committee = s.draw(h)
    assert s.vote_and_settle(h, dict.fromkeys(committee, True)) == ClaimStatus.ACCEPTED
    return h


# ---------------------------------------------------------------- finding 3: key boxes


def test_key_boxes_only_from_the_claimant_once_and_bounded(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=2, verifiers=3)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    good = [det_bytes(f"box{i}") * 3 for i in range(3)]  # 96 bytes each
    expect(
        "WrongClaimStatus",
        ContractRevertError,
        lambda: tasks.post_key_boxes(h.claimant, h.claim_id, good),
    )
    committee = s.draw(h)
    planter = s.contributors[1]  # a rival planting boxes before the claimant
    expect(
        "NotClaimant", ContractRevertError, lambda: tasks.post_key_boxes(planter, h.claim_id, good)
    )
    expect(
        "NotClaimant",
        ContractRevertError,
        lambda: tasks.post_key_boxes(committee[0], h.claim_id, good),
    )
    expect(
        "WrongKeyBoxCount",
        ContractRevertError,
        lambda: tasks.post_key_boxes(h.claimant, h.claim_id, good[:2]),
    )
    oversize = [*good[:2], b"\x01" * 257]
    # The client refuses before sending; the contract refuses too (sent raw).
    with pytest.raises(ValueError, match=r"1\.\.256"):
        tasks.post_key_boxes(h.claimant, h.claim_id, oversize)
    expect(
        "BadKeyBoxLength",
        ContractRevertError,
        lambda: tasks._send("postKeyBoxes", h.claimant, h.claim_id, oversize),
    )
    tasks.post_key_boxes(h.claimant, h.claim_id, good)
    assert tasks.key_boxes_of(h.claim_id) == dict(zip(committee, good, strict=True))
    expect(
        "KeyBoxesAlreadyPosted",
        ContractRevertError,
        lambda: tasks.post_key_boxes(h.claimant, h.claim_id, good[::-1]),
    )
    assert tasks.get_claim(h.claim_id).boxes_posted


def test_box_keys_are_registered_by_their_owner_only(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=0, verifiers=2)
    v = s.verifiers[0]
    assert tasks.verifier_key_of(s.task_id, v) == (box_key_of(v), b"127.0.0.1:7400")
    outsider = chain.accounts[30]
    # Nobody can post a card in v's name: registering binds the key to msg.sender.
    expect(
        "AlreadyRegistered",
        ContractRevertError,
        lambda: tasks.join_as_verifier(v, s.task_id, det_bytes("attacker key")),
    )
    assert tasks.verifier_key_of(s.task_id, v)[0] == box_key_of(v)
    expect(
        "ZeroBoxKey",
        TaskParameterError,
        lambda: tasks.join_as_verifier(outsider, s.task_id, b"\0" * 32),
    )
    with pytest.raises(ValueError, match="at most 128"):
        tasks.join_as_verifier(outsider, s.task_id, det_bytes("k"), b"x" * 129)
    expect(
        "EndpointTooLong",
        TaskParameterError,
        lambda: tasks._send(
            "joinAsVerifier",
            outsider,
            s.task_id,
            det_bytes("k"),
            b"x" * 129,
            value=s.params.verifier_deposit,
        ),
    )
    tasks.join_as_verifier(outsider, s.task_id, det_bytes("k"))  # empty endpoint: allowed
    assert tasks.verifier_key_of(s.task_id, outsider) == (det_bytes("k"), b"")


# ---------------------------------------------------------------- finding 4: copied claims


def test_copied_claim_is_refused_and_a_copied_commitment_never_verifies(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=2, verifiers=3)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    original = tasks.get_claim(h.claim_id)
    copier = s.contributors[1]
    expect(
        "ModelAlreadyClaimed",
        ContractRevertError,
        lambda: tasks.submit_claim(
            copier,
            s.task_id,
            original.model_cid,
            original.model_hash,
            original.model_size,
            original.seed_commitment,
            original.envelope_commitment,
        ),
    )
    assert tasks.claim_of_model(s.task_id, original.model_hash) == h.claim_id
    # Same blob under a different hash, same envelope commitment: accepted on chain, but the
    # judges' check (task id + claimant of *this* claim) and the release both fail for it.
    copy_id, _ = tasks.submit_claim(
        copier,
        s.task_id,
        original.model_cid,
        det_bytes("other hash"),
        original.model_size,
        original.seed_commitment,
        original.envelope_commitment,
    )
    copy = tasks.get_claim(copy_id)
    assert envelope_commitment(s.task_id, copier, h.envelope) != copy.envelope_commitment
    assert envelope_commitment(s.task_id, h.claimant, h.envelope) == copy.envelope_commitment
    # Its seed commitment is bound to the original claimant: the copier cannot even draw.
    s.chain.mine(2)
    expect(
        "CommitmentMismatch",
        ContractRevertError,
        lambda: tasks.reveal_seed(copier, copy_id, h.seed),
    )


# ---------------------------------------------------------------- finding 5: the draw


def test_withholding_the_seed_costs_at_least_the_reward(chain: Chain, tasks: TasksContract) -> None:
    cheap = replace(DEFAULT_PARAMS, contributor_deposit=DEFAULT_PARAMS.reward_per_model - 1)
    expect(
        "InvalidParameter",
        TaskParameterError,
        lambda: tasks.publish_task(chain.accounts[0], "ipfs://x", cheap),
    )
    zero = replace(DEFAULT_PARAMS, contributor_deposit=0)
    expect(
        "InvalidParameter",
        TaskParameterError,
        lambda: tasks.publish_task(chain.accounts[0], "ipfs://x", zero),
    )
    s = setup_task(chain, tasks, contributors=1, max_claims=1)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    s.chain.mine(2)  # the claimant sees the draw block and does not like it: it withholds
    s.past(tasks.get_claim(h.claim_id).claimed_at + s.params.draw_window)
    tasks.settle_claim(s.initiator, h.claim_id)
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.VOID
    assert tasks.credit_of(h.claimant) == 0
    info = tasks.get_task(s.task_id)
    assert info.escrow == s.params.budget + s.params.contributor_deposit
    assert s.params.contributor_deposit >= s.params.reward_per_model


def _linear_probe(n: int, randomness: bytes, size: int) -> list[int]:
    """The previous contract's draw (modulo, then probing forward past drawn members)."""
    drawn: list[int] = []
    for i in range(size):
        idx = int.from_bytes(keccak(encode(["bytes32", "uint256"], [randomness, i])), "big") % n
        while idx in drawn:
            idx = (idx + 1) % n
        drawn.append(idx)
    return drawn


def test_draw_has_no_neighbour_bias() -> None:
    """Three neighbouring pool positions (registered one after another) sit together with
    probability 10/120 under a uniform draw of 3 of 10; linear probing favoured them."""
    n, samples = 10, 12_000
    pool = [f"v{i}" for i in range(n)]
    neighbours = {frozenset({i % n, (i + 1) % n, (i + 2) % n}) for i in range(n)}
    fisher_yates = probing = 0
    for t in range(samples):
        r = keccak(t.to_bytes(32, "big"))
        members = reference_committee(pool, set(pool), r, 3)
        fisher_yates += frozenset(pool.index(m) for m in members) in neighbours
        probing += frozenset(_linear_probe(n, r, 3)) in neighbours
    uniform = len(neighbours) / 120
    sigma = (uniform * (1 - uniform) / samples) ** 0.5
    assert abs(fisher_yates / samples - uniform) < 4 * sigma
    assert probing / samples > uniform + 4 * sigma  # the old draw fails this test


def test_draw_skips_members_slashed_before_the_claim_and_matches_the_reference(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=2, verifiers=6, max_claims=2, claim_window=2_000)
    s.to_claim_window()
    h1 = s.claim(s.contributors[0])
    c1 = s.draw(h1)
    s.vote_and_settle(h1, dict.fromkeys(c1, True), reveal=set(c1[:2]))
    slashed = c1[2]
    h2 = s.claim(s.contributors[1])  # after the slash: pool epoch 1
    assert tasks.get_claim(h2.claim_id).pool_epoch == 1
    c2 = s.draw(h2)
    assert slashed not in c2
    eligible = set(s.verifiers) - {slashed}
    randomness = tasks.get_claim(h2.claim_id).entropy
    assert c2 == reference_committee(list(s.verifiers), eligible, randomness, 3)


# ---------------------------------------------------------------- finding 6: maxClaims


def test_failed_claims_give_their_slot_back(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=4, verifiers=3, max_claims=1, claim_window=5_000)
    s.to_claim_window()
    for junk in s.contributors[:3]:  # three junk claims in a row, each rejected
        h = s.claim(junk)
        committee = s.draw(h)
        assert s.vote_and_settle(h, dict.fromkeys(committee, False)) == ClaimStatus.REJECTED
        assert tasks.get_task(s.task_id).open_claims == 0
    honest = s.claim(s.contributors[3])  # the honest contributor is not locked out
    committee = s.draw(honest)
    assert s.vote_and_settle(honest, dict.fromkeys(committee, True)) == ClaimStatus.ACCEPTED
    s.release(honest)
    assert (
        tasks.credit_of(honest.claimant) == s.params.reward_per_model + s.params.contributor_deposit
    )
    assert tasks.get_task(s.task_id).open_claims == 1


# ---------------------------------------------------------------- finding 7: vote fees


def test_fees_follow_the_majority(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=3, max_claims=1)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    committee = s.draw(h)
    random_voter = committee[2]
    votes = {committee[0]: True, committee[1]: True, random_voter: False}
    assert s.vote_and_settle(h, votes) == ClaimStatus.ACCEPTED
    assert tasks.credit_of(committee[0]) == tasks.credit_of(committee[1]) == s.params.verifier_fee
    assert tasks.credit_of(random_voter) == 0  # minority: unpaid (not slashed: it revealed)
    assert tasks.get_participant(s.task_id, random_voter).state == ParticipantState.ACTIVE
    assert tasks.get_task(s.task_id).escrow == s.params.verifier_fee


# ---------------------------------------------------------------- finding 8: release


def test_locked_release_cannot_be_delayed_into_a_forfeit(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=3, max_claims=1)
    s.to_claim_window()
    h = _accepted(s)
    tasks.commit_release(h.claimant, h.claim_id)  # carries no secret
    s.past(tasks.get_claim(h.claim_id).release_deadline)  # the envelope tx was held back
    expect(
        "ReleaseWindowOpen",
        ContractRevertError,
        lambda: tasks.forfeit_unreleased(s.initiator, h.claim_id),
    )
    tasks.release_envelope(h.claimant, h.claim_id, h.envelope)
    p = s.params
    assert tasks.credit_of(h.claimant) == p.reward_per_model + p.contributor_deposit
    assert tasks.credit_of(s.initiator) == 0


def test_forfeit_before_the_lock_hands_over_nothing(chain: Chain, tasks: TasksContract) -> None:
    """The lock was delayed past the deadline: the claim is forfeited, but the envelope was
    never sent (the client refuses to send it unlocked), so the model stays sealed."""
    s = setup_task(chain, tasks, contributors=1, verifiers=3, max_claims=1)
    s.to_claim_window()
    h = _accepted(s)
    with pytest.raises(ValueError, match="commit_release first"):
        tasks.release_envelope(h.claimant, h.claim_id, h.envelope)
    s.past(tasks.get_claim(h.claim_id).release_deadline)
    tasks.forfeit_unreleased(s.initiator, h.claim_id)
    expect(
        "WrongClaimStatus",
        ContractRevertError,
        lambda: tasks.commit_release(h.claimant, h.claim_id),
    )
    assert tasks.envelope_of(h.claim_id) == b""
    assert tasks.get_task(s.task_id).escrow == (
        s.params.reward_per_model + s.params.contributor_deposit
    )


# ---------------------------------------------------------------- finding 9: horizon


def test_block_flood_voids_nothing_and_pays_nobody(chain: Chain, tasks: TasksContract) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=3, max_claims=1, draw_window=10_000)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    escrow = tasks.get_task(s.task_id).escrow
    chain.mine(258)  # 258 cheap blocks: the draw block leaves the blockhash horizon
    expect(
        "SettlementTooEarly",
        ContractRevertError,
        lambda: tasks.settle_claim(s.initiator, h.claim_id),
    )
    tasks.reanchor_draw(s.initiator, h.claim_id)
    committee = s.draw(h)
    assert tasks.get_task(s.task_id).escrow == escrow
    assert tasks.credit_of(s.initiator) == 0
    assert s.vote_and_settle(h, dict.fromkeys(committee, True)) == ClaimStatus.ACCEPTED


def test_captured_draw_hash_gives_a_late_claimant_no_redraw(
    chain: Chain, tasks: TasksContract
) -> None:
    s = setup_task(chain, tasks, contributors=1, verifiers=5, max_claims=1, draw_window=10_000)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    chain.mine(2)
    tasks.capture_draw_hash(s.verifiers[0], h.claim_id)  # a verifier keeps the hash
    claim = tasks.get_claim(h.claim_id)
    captured = bytes(chain.w3.eth.get_block(claim.draw_block)["hash"])
    assert claim.entropy == captured
    chain.mine(300)  # the claimant sits on its seed past the horizon
    expect(
        "DrawBlockNotExpired",
        ContractRevertError,
        lambda: tasks.reanchor_draw(h.claimant, h.claim_id),
    )
    committee = s.draw(h)
    randomness = keccak(encode(["bytes32", "bytes32", "uint256"], [h.seed, captured, h.claim_id]))
    assert committee == reference_committee(list(s.verifiers), set(s.verifiers), randomness, 3)


# ---------------------------------------------------------------- finding 12: forced ETH


# The feeder forces ETH in with SELFDESTRUCT on purpose: that is the attack under test.
# py-evm warns on every SELFDESTRUCT it executes.
@pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode present:DeprecationWarning")
def test_forced_eth_is_untracked_dust_and_breaks_no_accounting(
    chain: Chain, tasks: TasksContract
) -> None:
    art = load_artifact("ForceFeeder")
    factory = chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    forced = 10**15
    init_code = bytes(HexBytes(factory.constructor(tasks.address).data_in_transaction))
    receipt = chain.signer(chain.accounts[39]).transact(
        None, init_code, value=forced, label="deploy ForceFeeder"
    )
    assert receipt["status"] == 1
    assert tasks.balance() == forced  # arrived without calling the contract
    s = setup_task(chain, tasks, contributors=1, verifiers=3, max_claims=1)
    s.to_claim_window()
    h = _accepted(s)
    s.release(h)
    s.to_expiry()
    assert tasks.get_task(s.task_id).escrow == 0  # the one claim spent the budget
    for v in s.verifiers:
        tasks.retire_verifier(v, s.task_id)
    for account in [h.claimant, *s.verifiers]:
        tasks.withdraw(account)
    assert tasks.task_holdings(s.task_id) == 0
    assert tasks.balance() == forced  # owned by nobody, paid to nobody (documented)
    assert tasks.burned() == 0
