"""Local signing against a real anvil node with no accounts of its own: node-account
methods unavailable, dropped and replaced transactions, restarts, reorgs, chain ids."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import TransactionNotFound

from cipherfuse.chain import AnvilNode, NodeError, http_chain
from cipherfuse.chain.backends import Chain
from cipherfuse.chain.errors import (
    ChainIdMismatchError,
    NodeUnreachableError,
    TransactionTimeoutError,
)
from cipherfuse.chain.gasreport import run_reference_lifecycle
from cipherfuse.chain.signer import SendPolicy

from .conftest import anvil_binary_or_skip


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    """A private anvil for this module (its tests switch automining off and on)."""
    with AnvilNode(accounts=8, binary=anvil_binary_or_skip()) as started:
        yield started


@pytest.fixture
def chain(node: AnvilNode) -> Iterator[Chain]:
    """A connection with 8 development keys; the node state is restored afterwards."""
    connected = http_chain(node.url, kind="anvil", dev_accounts=8)
    snap = connected.snapshot()
    yield connected
    connected._rpc("evm_setAutomine", [True])
    connected.revert(snap)


@contextmanager
def mining(node: AnvilNode, start: threading.Event | None = None) -> Iterator[None]:
    """Mine a block every 20 ms on a separate connection (once ``start`` is set)."""
    miner = http_chain(node.url, kind="anvil")
    stop = threading.Event()

    def run() -> None:
        if start is not None:
            start.wait(120)
        while not stop.wait(0.02):
            miner.mine(1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if start is not None:
            start.set()
        thread.join(30)


def _fresh_account(chain: Chain, seed: int) -> LocalAccount:
    account: LocalAccount = Account.from_key(bytes([seed]) * 32)
    chain._rpc("anvil_setBalance", [account.address, hex(10**20)])
    return account


def test_whole_lifecycle_is_signed_locally_and_anvil_has_no_accounts(chain: Chain) -> None:
    assert chain._rpc("eth_accounts", []) == []
    # Nothing can be sent unsigned: the node has no key for any address.
    with pytest.raises(NodeError, match="eth_sendTransaction failed"):
        chain._rpc(
            "eth_sendTransaction",
            [{"from": chain.accounts[0], "to": chain.accounts[1], "value": "0x1"}],
        )
    first = chain.block_number() + 1
    report = run_reference_lifecycle(chain, verifiers=3, contributors=3)
    for name in (
        "publishTask",
        "joinAsContributor",
        "submitClaim",
        "revealSeed",
        "commitVote",
        "revealVote",
        "settleClaim",
        "releaseEnvelope",
        "withdraw",
    ):
        assert report.calls[name], name
    seen = 0
    for number in range(first, chain.block_number() + 1):
        for tx in chain.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            assert not isinstance(tx, bytes)
            assert tx["from"] in chain.accounts
            assert tx["type"] == 2 and tx["chainId"] == 31337
            seen += 1
    assert seen == report.transactions


def test_a_dropped_transaction_is_rebroadcast(node: AnvilNode, chain: Chain) -> None:
    logs: list[str] = []
    signer = chain.add_account(_fresh_account(chain, 7), log=logs.append)
    target = chain.accounts[1]
    before = chain.w3.eth.get_balance(target)
    chain._rpc("evm_setAutomine", [False])
    sent = signer.send(target, value=111, gas=21_000, label="transfer")
    chain._rpc("anvil_dropTransaction", ["0x" + sent.tx_hash.hex()])
    with pytest.raises(TransactionNotFound):
        chain.w3.eth.get_transaction(sent.tx_hash)
    with mining(node):
        receipt = signer.wait(sent)
    assert receipt["status"] == 1 and bytes(receipt["transactionHash"]) == sent.tx_hash
    assert any("no longer has it" in line for line in logs)
    assert chain.w3.eth.get_balance(target) == before + 111
    assert signer.journal.entries == {}


def test_a_restart_resends_and_confirms_the_journal_before_a_new_nonce(
    node: AnvilNode, chain: Chain, tmp_path: Path
) -> None:
    journal = tmp_path / "state" / "nonces.json"
    account = _fresh_account(chain, 8)
    target = chain.accounts[2]
    before = chain.w3.eth.get_balance(target)
    chain._rpc("evm_setAutomine", [False])
    sent = chain.add_account(account, journal_path=journal).send(target, value=100, gas=21_000)
    # The process dies here, and the node loses the transaction as well.
    chain._rpc("anvil_dropTransaction", ["0x" + sent.tx_hash.hex()])
    assert journal.exists()
    # A new process: a new connection, the same keystore and journal.
    logs: list[str] = []
    restarted = http_chain(node.url, kind="anvil")
    signer = restarted.add_account(account, journal_path=journal, log=logs.append)
    assert set(signer.journal.entries) == {sent.nonce}
    with mining(node):
        second = restarted.transfer(account.address, target, 200)
    first = chain.w3.eth.get_transaction_receipt(sent.tx_hash)
    assert first["status"] == 1
    assert chain.w3.eth.get_transaction(second["transactionHash"])["nonce"] == sent.nonce + 1
    assert chain.w3.eth.get_balance(target) == before + 300  # each sent exactly once
    assert any("resuming" in line for line in logs)
    assert '"entries": []' in journal.read_text()


def test_a_stuck_transaction_is_replaced_with_higher_fees(node: AnvilNode, chain: Chain) -> None:
    replaced = threading.Event()
    logs: list[str] = []

    def log(line: str) -> None:
        logs.append(line)
        if "replacing it" in line:
            replaced.set()

    policy = SendPolicy(resend_after_s=0.2, fee_bump_percent=20)
    signer = chain.add_account(_fresh_account(chain, 9), policy=policy, log=log)
    target = chain.accounts[3]
    before = chain.w3.eth.get_balance(target)
    chain._rpc("evm_setAutomine", [False])
    sent = signer.send(target, value=5, gas=21_000)
    with mining(node, start=replaced):  # blocks come only once the signer has replaced it
        receipt = signer.wait(sent)
    mined = chain.w3.eth.get_transaction(receipt["transactionHash"])
    assert bytes(receipt["transactionHash"]) != sent.tx_hash
    assert mined["nonce"] == sent.nonce
    assert mined["maxFeePerGas"] >= -(-sent.fees.max_fee_per_gas * 120 // 100)
    assert mined["maxPriorityFeePerGas"] >= -(-sent.fees.max_priority_fee_per_gas * 120 // 100)
    with pytest.raises(TransactionNotFound):
        chain.w3.eth.get_transaction_receipt(sent.tx_hash)
    assert chain.w3.eth.get_balance(target) == before + 5  # paid once


def test_a_reorg_that_removes_the_block_is_survived(node: AnvilNode, chain: Chain) -> None:
    logs: list[str] = []
    signer = chain.add_account(_fresh_account(chain, 10), log=logs.append)
    target = chain.accounts[4]
    before = chain.w3.eth.get_balance(target)
    sent = signer.send(target, value=777, gas=21_000)  # automine: in a block at once
    mined = chain.wait_for_receipt(sent.tx_hash)
    chain._rpc("anvil_reorg", [1, []])  # that block is replaced by an empty one
    assert chain.w3.eth.get_block(mined["blockNumber"])["hash"] != mined["blockHash"]
    with pytest.raises(TransactionNotFound):
        chain.w3.eth.get_transaction_receipt(sent.tx_hash)
    with mining(node):
        receipt = signer.wait(sent, confirmations=3)
    assert any("no longer has it" in line for line in logs)
    canonical = chain.w3.eth.get_block(receipt["blockNumber"])["hash"]
    assert receipt["blockHash"] == canonical != mined["blockHash"]
    assert chain.block_number() >= receipt["blockNumber"] + 3
    assert chain.w3.eth.get_balance(target) == before + 777


def test_the_node_chain_id_is_checked_before_signing(node: AnvilNode) -> None:
    with pytest.raises(ChainIdMismatchError, match="serves chain id 31337, not the configured 1"):
        http_chain(node.url, chain_id=1)
    assert http_chain(node.url, chain_id=31337).chain_id == 31337


def test_a_node_that_goes_away_gives_one_line_errors_and_a_bounded_wait() -> None:
    node = AnvilNode(accounts=1, binary=anvil_binary_or_skip()).start()
    try:
        chain = http_chain(node.url, kind="anvil", timeout=2)
        signer = chain.add_account(_fresh_account(chain, 11), policy=SendPolicy(timeout_s=0.5))
        chain._rpc("evm_setAutomine", [False])
        sent = signer.send(signer.address, value=1, gas=21_000)
    finally:
        node.stop()
    with pytest.raises(NodeUnreachableError, match="stopped answering"):
        chain.block_number()
    # Waiting retries the lost node until the deadline, then says what happened.
    with pytest.raises(TransactionTimeoutError, match="stays journaled"):
        signer.wait(sent)
    assert set(signer.journal.entries) == {sent.nonce}
