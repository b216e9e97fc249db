"""The roles' protocol on a real embedded chain and store: outcomes, money, faults, restarts.

Two runs, each shared by several tests (module-scoped, to keep the suite fast):

* ``mixed``: contributor 1 is lazy (claims a bad model), contributor 2 never releases its
  envelope, contributor 3 is honest; verifier 1 dies after committing its votes; and every
  agent is rebuilt from its state file after every round (a crash and restart each time).
* ``faults``: contributor 1's sealed blob is corrupted in storage, contributor 2's claim
  window passes before it is ready, contributor 3 crashes between its claim transaction
  and its state write.
"""

from __future__ import annotations

import pytest
from roles_helpers import PARAMS, World

from cipherfuse.chain import ClaimStatus, ParticipantState
from cipherfuse.roles.clock import next_wakeup, run_agents
from cipherfuse.roles.sealing import open_with_envelope

FEE = PARAMS.verifier_fee
REWARD = PARAMS.reward_per_model
C_DEP = PARAMS.contributor_deposit
V_DEP = PARAMS.verifier_deposit


def outcome(world: World, i: int) -> ClaimStatus:
    claim_id = world.tasks.get_participant(world.task_id, world.accounts[2 + i]).claim_id
    return world.tasks.get_claim(claim_id).status


def run_restarting_every_round(world: World) -> None:
    """Like run_agents, but every agent is a fresh object (state from disk) each round."""
    for _ in range(300):
        agents = world.agents()
        if any([a.step() for a in agents]):
            continue
        if all(a.done for a in agents):
            return
        now = world.chain.timestamp()
        target = next_wakeup(agents, now)
        assert target is not None, "stalled"
        world.chain.advance_time(target - now)
    pytest.fail("the run did not finish")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = World(
        tmp_path_factory.mktemp("mixed"),
        behaviours=("lazy", "never-release", "honest"),
        good=(False, True, True),
        stop_after_commit=(True, False, False),
    )
    run_restarting_every_round(world)
    return world


def test_outcomes_follow_behaviour(mixed: World) -> None:
    assert [outcome(mixed, i) for i in range(3)] == [
        ClaimStatus.REJECTED,
        ClaimStatus.FORFEITED,
        ClaimStatus.RELEASED,
    ]


def test_money_is_conserved_and_paid_as_the_contract_defines(mixed: World) -> None:
    acc = mixed.accounts
    assert mixed.withdrawn(acc[2]) == 0  # lazy: deposit slashed into the escrow
    assert mixed.withdrawn(acc[3]) == 0  # never released: reward and deposit forfeited
    assert mixed.withdrawn(acc[4]) == C_DEP + REWARD
    # Verifier 1 committed but never revealed: slashed, no fees.
    assert mixed.tasks.get_participant(mixed.task_id, acc[5]).state == ParticipantState.SLASHED
    assert mixed.withdrawn(acc[5]) == 0
    for v in acc[6:8]:
        assert mixed.withdrawn(v) == V_DEP + 3 * FEE
    # Initiator: the budget less one paid model and the fees of the two revealing
    # verifiers, plus the lazy deposit, the forfeited reward + deposit, the slashed deposit
    # and the dead verifier's unpaid fees.
    spent = REWARD + 2 * 3 * FEE
    gained = C_DEP + (REWARD + C_DEP) + V_DEP
    assert mixed.withdrawn(acc[1]) == PARAMS.budget - spent + gained - REWARD
    assert mixed.tasks.balance() == 0


def test_restarts_never_repeat_an_action(mixed: World) -> None:
    assert len(mixed.events("TaskPublished")) == 1
    assert len(mixed.events("ClaimSubmitted")) == 3
    assert len(mixed.events("CommitteeDrawn")) == 3
    assert len(mixed.events("VoteCommitted")) == 9
    assert len(mixed.events("VoteRevealed")) == 6
    assert len(mixed.events("EnvelopeReleased")) == 1
    assert len(mixed.events("BudgetReclaimed")) == 1


def test_the_initiator_gets_only_the_released_model_and_it_opens(mixed: World) -> None:
    processed = mixed.initiator().state.data["processed"]
    released = [int(k) for k in processed]
    assert len(released) == 1
    claim_id = released[0]
    assert 0.0 <= processed[str(claim_id)]["accuracy"] <= 1.0
    claim = mixed.tasks.get_claim(claim_id)
    blob = mixed.store.get(claim.model_cid)
    assert b"CFMODEL" not in blob  # sealed in storage
    assert open_with_envelope(blob, mixed.tasks.envelope_of(claim_id)).startswith(b"CFMODEL")
    # The withheld model stays sealed: no envelope on chain.
    forfeited = mixed.tasks.get_participant(mixed.task_id, mixed.accounts[3]).claim_id
    assert mixed.tasks.envelope_of(forfeited) == b""


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("faults")
    world = World(root)
    agents = world.agents()
    initiator, verifiers, contributors = agents[0], agents[1:4], agents[4:7]
    for a in [initiator, *verifiers, contributors[0], contributors[2]]:
        a.step()  # join
    contributors[1].step()  # joins, then is too slow
    while not all("sealed_cid" in c.state.data for c in (contributors[0], contributors[2])):
        for c in (contributors[0], contributors[2]):
            c.step()
    # Corrupt contributor 1's sealed blob inside the blockstore.
    blob = world.store.get(contributors[0].state.data["sealed_cid"])
    hits = 0
    for path in (root / "store").rglob("*"):
        if path.is_file() and blob[100:140] in path.read_bytes():
            data = bytearray(path.read_bytes())
            data[bytes(data).index(blob[100:140])] ^= 0xFF
            path.write_bytes(bytes(data))
            hits += 1
    assert hits == 1
    # Contributor 3 claims, then "crashes" before writing the claim id.
    task = world.tasks.get_task(world.task_id)
    world.chain.advance_time(task.join_end - world.chain.timestamp())
    contributors[2].step()
    assert "claim_id" in contributors[2].state.data
    contributors[2].state.data.pop("claim_id")
    contributors[2].state.save()
    # Contributor 2 only comes back after the claim window.
    others = [initiator, *verifiers, contributors[0], world.contributor(2)]
    while world.chain.timestamp() <= task.claim_end:
        if not any([a.step() for a in others]):
            now = world.chain.timestamp()
            world.chain.advance_time(
                min(next_wakeup(others, now) or 10**12, task.claim_end + 1) - now
            )
    run_agents([*others, world.contributor(1)], world.chain)
    return world


def test_corrupted_blob_is_rejected_by_every_verifier(faults: World) -> None:
    assert outcome(faults, 0) == ClaimStatus.REJECTED
    claim_id = faults.tasks.get_participant(faults.task_id, faults.accounts[2]).claim_id
    for i in range(3):
        reason = faults.verifier(i).state.data["decisions"][str(claim_id)]["reason"]
        assert "unusable model" in reason


def test_late_contributor_leaves_with_its_deposit(faults: World) -> None:
    me = faults.tasks.get_participant(faults.task_id, faults.accounts[3])
    assert me.state == ParticipantState.LEFT
    assert faults.withdrawn(faults.accounts[3]) == C_DEP


def test_crash_after_claim_neither_double_claims_nor_loses_the_seed(faults: World) -> None:
    assert len(faults.events("ClaimSubmitted")) == 2
    assert outcome(faults, 2) == ClaimStatus.RELEASED
    assert faults.withdrawn(faults.accounts[4]) == C_DEP + REWARD
    assert faults.tasks.balance() == 0
