"""Views on the embedded chain: py-evm's message execution against eth-tester's ``call``.

``Chain.call`` runs a view as one message on py-evm; the reference is eth-tester's own
``call`` (a spoofed transaction applied and reverted). Both must return the same bytes at
every stage of a claim's life, and the same typed error where a view reverts.
"""

from __future__ import annotations

import pytest
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]

from cipherfuse.chain import Chain, ContractRevertError, TasksContract, embedded_chain
from tests.chain.helpers import setup_task

ACCOUNTS = 8


def views(
    tasks: TasksContract, task_id: int, claim_id: int
) -> list[tuple[str, tuple[object, ...]]]:
    members = tasks.committee_of(claim_id) if claim_id else []
    calls: list[tuple[str, tuple[object, ...]]] = [
        ("getTask", (task_id,)),
        ("verifierCount", (task_id,)),
        ("activeVerifierCount", (task_id,)),
        ("taskHoldings", (task_id,)),
        ("verifierAt", (task_id, 0)),
    ]
    if claim_id:
        calls += [("getClaim", (claim_id,)), ("committeeOf", (claim_id,))]
        calls += [("ballotOf", (claim_id, m)) for m in members]
    return calls


def same_answers(chain: Chain, tasks: TasksContract, task_id: int, claim_id: int) -> int:
    checked = 0
    for name, args in views(tasks, task_id, claim_id):
        data = tasks.codec.encode(name, args)
        fast = chain.call(tasks.address, data)
        reference = chain._call_through_tester(tasks.address, data)
        assert fast == reference, name
        checked += 1
    return checked


def test_views_equal_eth_testers_call_through_a_claims_life() -> None:
    chain = embedded_chain(ACCOUNTS)
    tasks, _ = TasksContract.deploy(chain, chain.accounts[0])
    s = setup_task(chain, tasks, contributors=2, verifiers=3)
    checked = same_answers(chain, tasks, s.task_id, 0)
    s.to_claim_window()
    handle = s.claim(s.contributors[0])
    checked += same_answers(chain, tasks, s.task_id, handle.claim_id)
    members = s.draw(handle)
    checked += same_answers(chain, tasks, s.task_id, handle.claim_id)
    s.vote_and_settle(handle, dict.fromkeys(members, True))
    checked += same_answers(chain, tasks, s.task_id, handle.claim_id)
    s.release(handle)
    checked += same_answers(chain, tasks, s.task_id, handle.claim_id)
    assert checked > 30
    # A reverting view: the same custom error through both paths.
    data = tasks.codec.encode("getClaim", (999,))
    with pytest.raises(ContractRevertError) as fast:
        tasks._call("getClaim", 999)
    assert fast.value.error_name == "UnknownClaim"
    with pytest.raises(TransactionFailed) as reference:
        chain._call_through_tester(tasks.address, data)
    typed = tasks.translate(reference.value)
    assert isinstance(typed, ContractRevertError) and typed.error_name == "UnknownClaim"
    assert str(typed) == str(fast.value)


#: Runtime code returning ``(block.timestamp, block.number, msg.sender, tx.origin)``:
#: TIMESTAMP 0 MSTORE NUMBER 32 MSTORE CALLER 64 MSTORE ORIGIN 96 MSTORE RETURN(0, 128).
CONTEXT_RUNTIME = bytes.fromhex("42600052436020523360405232606052608060 00f3".replace(" ", ""))


def init_code(runtime: bytes) -> bytes:
    """Init code that returns ``runtime`` (CODECOPY of the bytes after these 12)."""
    n = len(runtime)
    return bytes([0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xF3]) + runtime


def test_a_view_runs_in_the_latest_mined_blocks_context() -> None:
    """Block timestamp and number, sender and origin: the same through both paths, after
    time travel and after mining (the latest mined block, not the pending one)."""
    chain = embedded_chain(ACCOUNTS)
    receipt = chain.signer(chain.accounts[0]).transact(
        None, init_code(CONTEXT_RUNTIME), gas=100_000, label="deploy context probe"
    )
    probe = str(receipt["contractAddress"])
    seen = []
    for move in (lambda: None, lambda: chain.advance_time(100), lambda: chain.mine(3)):
        move()
        fast = chain.call(probe, b"")
        assert fast == chain._call_through_tester(probe, b"")
        seen.append(fast)
        number = int.from_bytes(fast[32:64], "big")
        assert int.from_bytes(fast[:32], "big") == chain.timestamp()
        assert number == chain.w3.eth.block_number
    assert len(set(seen)) == 3  # the context did move
