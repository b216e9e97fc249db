"""The benchmark floor: the reference life cycle's transactions sent to ``MinimalAnchor``."""

from __future__ import annotations

import hashlib

import rlp  # type: ignore[import-untyped]
from eth_utils import keccak, to_checksum_address

from cipherfuse.chain import Chain
from cipherfuse.chain.artifacts import load_artifact
from cipherfuse.chain.gasreport import (
    ANCHOR_DEPLOY_GAS,
    ANCHOR_GAS,
    anchor_senders,
    run_anchor_lifecycle,
    run_reference_lifecycle,
)


def _created_address(creator: str, nonce: int) -> str:
    """Address of the contract ``creator`` deploys with ``nonce`` (keccak of rlp([a, n]))."""
    return to_checksum_address(keccak(rlp.encode([bytes.fromhex(creator[2:]), nonce]))[12:])


def test_anchor_run_sends_the_reference_transactions(chain: Chain) -> None:
    snap = chain.snapshot()
    reference = run_reference_lifecycle(chain)
    chain.revert(snap)
    anchor = run_anchor_lifecycle(chain)
    assert anchor.transactions == reference.transactions == 50
    senders = anchor_senders(list(chain.accounts), 3, 3)
    assert sum(len(p) for p in senders) == 49
    # The same participants as the reference run: 1 initiator, 3 verifiers, 3 contributors,
    # each sending as many transactions as there.
    counts = {a: sum(p.count(a) for p in senders) for a in chain.accounts[:7]}
    assert counts[chain.accounts[0]] == 1  # publish (plus the deployment)
    assert all(counts[v] == 1 + 3 + 3 + 1 + 1 for v in chain.accounts[1:4])
    assert all(counts[c] == 1 + 1 + 2 + 2 + 1 for c in chain.accounts[4:7])
    gas = anchor.calls["anchor"]
    # A first write of a slot costs 22,100, a rewrite 5,000; both stay under the fixed limit.
    assert max(gas) < ANCHOR_GAS and min(gas) > 21_000
    assert max(gas) - min(gas) >= 17_000
    (deployed,) = anchor.calls["deploy"]
    assert 1.15 * deployed <= ANCHOR_DEPLOY_GAS <= 1.5 * deployed


def test_anchor_stores_each_senders_latest_digest(chain: Chain) -> None:
    initiator = chain.accounts[0]
    nonce = chain.w3.eth.get_transaction_count(initiator)
    run_anchor_lifecycle(chain)
    art = load_artifact("MinimalAnchor")
    address = _created_address(initiator, nonce)
    assert chain.w3.eth.get_code(address) == bytes.fromhex(art.deployed_bytecode[2:])
    contract = chain.w3.eth.contract(address=address, abi=art.abi)
    # The last phase ends with the three contributors' withdrawals: calls 47, 48 and 49.
    for step, account in zip((47, 48, 49), chain.accounts[4:7], strict=True):
        expected = hashlib.sha256(f"anchor{step}".encode()).digest()
        assert bytes(contract.functions.latest(account).call()) == expected
