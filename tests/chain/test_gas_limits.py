"""Fixed per-function gas limits (issue 26 item 3): every limit the client sends stays above
the gas the call measurably used, with margin, and the embedded chain no longer estimates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from cipherfuse.chain import (
    AnvilNode,
    Chain,
    ClaimStatus,
    ContractRevertError,
    TasksContract,
    embedded_chain,
    http_chain,
)
from cipherfuse.chain.devkeys import dev_accounts
from cipherfuse.chain.gaslimits import GAS_LIMITS, MEASURED, SAFETY_MARGIN, gas_limit
from cipherfuse.chain.gasreport import run_reference_lifecycle

from .helpers import det_bytes, setup_task

#: Smallest ratio limit / gas used accepted: the margin less the refund headroom a call may
#: need above its final gas used (storage refunds return at most a fifth of it).
MIN_RATIO = 1.15
#: A limit far above what a call uses would make a node reserve (and a wallet show) too much.
MAX_RATIO = 2.6


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None, int]]:
    calls: list[tuple[str, int | None, int]] = []
    original = TasksContract._transact  # every transaction of the client goes through it

    def transact(self: TasksContract, fn_name: str, sender: str, *args: Any, **kw: Any) -> Any:
        receipt, raw = original(self, fn_name, sender, *args, **kw)
        calls.append((fn_name, kw.get("gas"), receipt.gas_used))
        return receipt, raw

    monkeypatch.setattr(TasksContract, "_transact", transact)
    return calls


def _check(calls: list[tuple[str, int | None, int]]) -> dict[str, int]:
    most: dict[str, int] = defaultdict(int)
    for name, limit, used in calls:
        assert limit is not None, f"{name} was estimated"
        assert limit >= MIN_RATIO * used, (name, limit, used)
        assert limit <= MAX_RATIO * used, (name, limit, used)
        most[name] = max(most[name], used)
    return most


def test_limits_cover_the_reference_lifecycle_with_margin(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _record(monkeypatch)
    report = run_reference_lifecycle(chain)
    most = _check(calls)
    assert len(calls) == 49  # every transaction but the deployment
    # The deployment's gas depends on the packaged bytecode only: a fixed limit too.
    (deployed,) = report.calls["deploy"]
    assert MIN_RATIO * deployed <= gas_limit("deploy") <= MAX_RATIO * deployed
    assert MEASURED["deploy"].base >= deployed
    # Every function of the life cycle has a fixed limit, and its measured-maximum table
    # entry (before the margin) is not below what it used here.
    for name, used in most.items():
        assert name in GAS_LIMITS
        assert MEASURED[name].limit(3, 294) * SAFETY_MARGIN >= used


def test_limits_scale_with_committee_size(
    chain: Chain, tasks: TasksContract, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A committee of 7: draw, key boxes and settlement grow per member; the limits follow."""
    calls = _record(monkeypatch)
    s = setup_task(chain, tasks, contributors=1, verifiers=7, committee_size=7, max_claims=1)
    s.to_claim_window()
    h = s.claim(s.contributors[0])
    committee = s.draw(h)
    tasks.post_key_boxes(h.claimant, h.claim_id, [det_bytes(m) * 3 for m in committee])
    votes = dict.fromkeys(committee, True)
    s.commit(h, votes)
    s.reveal(h, votes)
    tasks.settle_claim(h.claimant, h.claim_id)
    assert tasks.get_claim(h.claim_id).status == ClaimStatus.RELEASE_PENDING
    tasks.release_envelope(h.claimant, h.claim_id, h.envelope)
    for m in committee:
        tasks.withdraw(m)
    _check(calls)
    assert gas_limit("revealSeed", committee_size=7) > gas_limit("revealSeed", committee_size=3)


def test_embedded_chain_sends_without_estimating(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = embedded_chain(8)
    estimates = []
    original = chain.w3.eth.estimate_gas

    def counting(*args: Any, **kw: Any) -> Any:
        estimates.append(args)
        return original(*args, **kw)

    monkeypatch.setattr(chain.w3.eth, "estimate_gas", counting)
    report = run_reference_lifecycle(chain)
    assert report.transactions == 50
    assert estimates == []  # not even the deployment


@pytest.mark.parametrize("preflight", [True, False])
def test_a_revert_comes_back_typed_with_fixed_limits(
    chain: Chain, tasks: TasksContract, preflight: bool
) -> None:
    """With a fixed limit nothing estimates: the preflight call finds the revert before
    signing (nothing sent), or the mined revert is replayed; the caller sees the same error."""
    tasks.preflight = preflight
    sender = chain.accounts[5]
    nonce = chain.w3.eth.get_transaction_count(sender)
    with pytest.raises(ContractRevertError) as info:
        tasks.withdraw(sender)
    assert info.value.error_name == "NothingToWithdraw"
    sent = chain.w3.eth.get_transaction_count(sender) - nonce
    assert sent == (0 if preflight else 1)


def test_preflight_is_on_for_real_networks_only(anvil_node: AnvilNode) -> None:
    dev = http_chain(anvil_node.url, kind="anvil", dev_accounts=2)
    snap = dev.snapshot()
    try:
        deployed, _ = TasksContract.deploy(dev, dev.accounts[0])
        assert not deployed.preflight_enabled  # a dev chain replays a mined revert
        network = http_chain(anvil_node.url)  # kind "rpc": reverts would cost real ether
        key = dev_accounts(2)[1]
        network.add_account(key)
        tasks = TasksContract(network, deployed.address)
        assert tasks.preflight_enabled
        nonce = network.w3.eth.get_transaction_count(key.address)
        with pytest.raises(ContractRevertError, match="NothingToWithdraw"):
            tasks.withdraw(key.address)
        assert network.w3.eth.get_transaction_count(key.address) == nonce  # nothing sent
    finally:
        dev.revert(snap)
