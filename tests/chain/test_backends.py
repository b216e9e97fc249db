"""Backends and the anvil helper: connection kinds, dev controls, start/stop, bad input."""

from __future__ import annotations

import os

import pytest

from cipherfuse.chain import (
    AnvilNode,
    ChainError,
    ChainParameterError,
    NodeError,
    TasksContract,
    embedded_chain,
    find_anvil,
    http_chain,
    websocket_chain,
)
from cipherfuse.chain.backends import Chain

from .conftest import anvil_binary_or_skip


def test_advance_time_and_mine_on_both_backends(chain: Chain) -> None:
    t0, b0 = chain.timestamp(), chain.block_number()
    assert chain.advance_time(500) == t0 + 500
    assert chain.block_number() == b0 + 1
    chain.mine(3)
    assert chain.block_number() == b0 + 4
    snap = chain.snapshot()
    chain.mine(2)
    chain.revert(snap)
    assert chain.block_number() == b0 + 4
    with pytest.raises(ChainParameterError, match="seconds"):
        chain.advance_time(0)
    with pytest.raises(ChainParameterError, match="blocks"):
        chain.mine(0)


def test_wait_for_receipt_returns_mined_receipts_and_times_out(chain: Chain) -> None:
    a, b = chain.accounts[:2]
    before = chain.w3.eth.get_balance(b)
    tx = chain.signer(a).send(b, value=1, gas=21_000).tx_hash
    receipt = chain.wait_for_receipt(bytes(tx))
    assert receipt["status"] == 1
    assert receipt["transactionHash"] == tx
    assert chain.w3.eth.get_balance(b) == before + 1
    with pytest.raises(NodeError, match=r"not mined within 0\.05 s"):
        chain.wait_for_receipt(b"\x12" * 32, timeout=0.05)


def test_loopback_http_chain_ignores_proxy_settings(
    anvil_node: AnvilNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that does not exist: a loopback node must still be reached directly.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    http = http_chain(anvil_node.url, kind="anvil")
    with AnvilNode(accounts=1) as started_under_proxy:  # its readiness probe goes direct too
        assert http_chain(started_under_proxy.url).block_number() == 0
    before = http.block_number()
    http.mine(1)
    assert http.block_number() == before + 1
    assert http.w3.eth.chain_id == http.w3.eth.chain_id == 31337


def test_websocket_backend_runs_contract_calls(anvil_node: AnvilNode) -> None:
    ws = websocket_chain(anvil_node.ws_url, kind="anvil")
    try:
        ws.add_dev_accounts(1)
        tasks, receipt = TasksContract.deploy(ws, ws.accounts[0])
        assert receipt.gas_used > 1_000_000
        assert tasks.task_count() == 0
        socket = ws.w3.provider.conn.ws  # type: ignore[attr-defined]
        assert socket is not None and socket.open
    finally:
        ws.close()
    assert socket.closed and ws.w3.provider.conn.ws is None  # type: ignore[attr-defined]
    ws.close()  # closing twice is harmless
    http_chain(anvil_node.url).close()  # nothing to close over HTTP
    http = http_chain(anvil_node.url)
    assert TasksContract(http, tasks.address).task_count() == 0


def test_bad_urls_and_unreachable_nodes_raise() -> None:
    with pytest.raises(ChainParameterError, match="http"):
        http_chain("ws://127.0.0.1:1")
    with pytest.raises(ChainParameterError, match="ws"):
        websocket_chain("http://127.0.0.1:1")
    with pytest.raises(NodeError, match="does not answer"):
        http_chain("http://127.0.0.1:9", timeout=2)
    with pytest.raises(ChainParameterError, match="accounts"):
        embedded_chain(0)


def test_embedded_has_no_rpc_dev_methods() -> None:
    chain = embedded_chain(1)
    with pytest.raises(ChainError, match="not available"):
        chain._rpc("evm_mine", [])


def test_anvil_node_lifecycle_and_validation() -> None:
    binary = anvil_binary_or_skip()
    node = AnvilNode(accounts=2, binary=binary)
    assert node.pid is None
    node.start()
    pid = node.pid
    assert pid is not None
    try:
        chain = http_chain(node.url, kind="anvil", dev_accounts=2)
        assert len(chain.accounts) == 2
        # anvil holds no accounts of its own; the two development keys are funded.
        assert chain._rpc("eth_accounts", []) == []
        assert all(chain.signer(a).balance() == 10_000 * 10**18 for a in chain.accounts)
        with pytest.raises(NodeError, match="already running"):
            node.start()
    finally:
        node.stop()
    node.stop()  # idempotent
    assert node.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    for kwargs in ({"accounts": -1}, {"balance_eth": 0}, {"port": 70_000}):
        with pytest.raises(ChainParameterError):
            AnvilNode(**kwargs)  # type: ignore[arg-type]


def test_anvil_refuses_a_busy_port_and_reports_a_failed_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    binary = anvil_binary_or_skip()
    first = AnvilNode(accounts=1, binary=binary).start()
    try:
        port = int(first.url.rsplit(":", 1)[1])
        # Another node already answers there: never mistake it for ours.
        with pytest.raises(NodeError, match="already in use"):
            AnvilNode(accounts=1, binary=binary, port=port).start()
    finally:
        first.stop()
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(NodeError, match="exited at startup: boom"):
        AnvilNode(binary=fake).start()


def test_find_anvil_honours_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CIPHERFUSE_ANVIL", str(tmp_path / "missing"))
    with pytest.raises(NodeError, match="not an executable"):
        find_anvil()
    monkeypatch.delenv("CIPHERFUSE_ANVIL")
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(NodeError, match="npm install -g @foundry-rs/anvil") as info:
        find_anvil(tmp_path)
    assert "\n" not in str(info.value)


def test_find_anvil_looks_on_path_then_in_foundry_bin(  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("CIPHERFUSE_ANVIL", raising=False)
    home_bin = tmp_path / "home" / ".foundry" / "bin"
    home_bin.mkdir(parents=True)
    foundry = home_bin / "anvil"
    foundry.write_text("#!/bin/sh\n")
    foundry.chmod(0o755)
    on_path_dir = tmp_path / "bin"
    on_path_dir.mkdir()
    on_path = on_path_dir / "anvil"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(on_path_dir))
    assert find_anvil(tmp_path / "no-checkout") == on_path
    monkeypatch.setenv("PATH", "")
    assert find_anvil(tmp_path / "no-checkout") == foundry
    # the current directory is not searched
    (tmp_path / "cwd" / "contracts").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd")
    assert find_anvil(tmp_path / "no-checkout") == foundry
