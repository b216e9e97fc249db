"""Connections to a chain: embedded py-evm (default), or a node over HTTP/WebSocket.

:class:`Chain` wraps a connected :class:`web3.Web3` and adds the development controls the
tests and tools need (move time, mine blocks, snapshots) for both the embedded
``EthereumTesterProvider`` and anvil.
"""

from __future__ import annotations

import time
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import requests
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from eth_typing import ChecksumAddress
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint, TxReceipt, Wei

from cipherfuse.chain.errors import ChainError, ChainParameterError, NodeError

BackendKind = Literal["embedded", "anvil", "rpc"]


class Chain:
    """A web3 connection plus development controls.

    Build one with :func:`embedded_chain`, :func:`http_chain` or :func:`websocket_chain`.
    """

    def __init__(self, w3: Web3, kind: BackendKind, tester: EthereumTester | None = None) -> None:
        if not w3.is_connected():
            raise NodeError("the JSON-RPC endpoint does not answer; is the node running?")
        self.w3 = w3
        self.kind: BackendKind = kind
        self._tester = tester

    @property
    def accounts(self) -> list[ChecksumAddress]:
        """Unlocked accounts of the node."""
        return list(self.w3.eth.accounts)

    def block_number(self) -> int:
        """Number of the latest block."""
        return int(self.w3.eth.block_number)

    def timestamp(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> int:
        """Mine a block ``seconds`` after the latest one (dev chains only).

        Afterwards the latest block has that timestamp and the next transaction runs in a
        block with a strictly later one. Returns the new latest timestamp.
        """
        if seconds < 1:
            raise ChainParameterError(f"seconds must be >= 1, got {seconds}")
        target = self.timestamp() + seconds
        if self._tester is not None:
            # eth-tester mines the travelled-to block at target - 1 and keeps target pending.
            self._tester.time_travel(target + 1)
        else:
            self._rpc("evm_setNextBlockTimestamp", [target])
            self._rpc("evm_mine", [])
        return self.timestamp()

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (dev chains only)."""
        if blocks < 1:
            raise ChainParameterError(f"blocks must be >= 1, got {blocks}")
        if self._tester is not None:
            self._tester.mine_blocks(blocks)
        else:
            self._rpc("anvil_mine", [hex(blocks)])

    def snapshot(self) -> Any:
        """Take a state snapshot (dev chains only); pass the result to :meth:`revert`."""
        if self._tester is not None:
            return self._tester.take_snapshot()
        return self._rpc("evm_snapshot", [])

    def revert(self, snapshot_id: Any) -> None:
        """Return to a snapshot taken by :meth:`snapshot`."""
        if self._tester is not None:
            self._tester.revert_to_snapshot(snapshot_id)
        else:
            self._rpc("evm_revert", [snapshot_id])

    def fund(self, account: str, wei: int) -> None:
        """Send ``wei`` from the first dev account to ``account``."""
        tx = self.w3.eth.send_transaction(
            {"from": self.accounts[0], "to": Web3.to_checksum_address(account), "value": Wei(wei)}
        )
        self.wait_for_receipt(tx)

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = 120.0) -> TxReceipt:
        """The receipt of ``tx_hash`` once mined, polled with a short back-off.

        web3's ``wait_for_transaction_receipt`` sleeps a fixed 0.1 s whenever the receipt is
        not there at the first ask. A dev node (anvil) mines each transaction a few
        milliseconds after accepting it, so under load that sleep dominated: Case II on
        anvil spent ~85% of its wall time in it. Here the wait starts at 2 ms and doubles
        up to 0.1 s.

        Raises:
            NodeError: not mined within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(cast(Any, tx_hash))
            except TransactionNotFound:
                pass
            if time.monotonic() >= deadline:
                raise NodeError(
                    f"transaction 0x{bytes(tx_hash).hex()} was not mined within"
                    f" {timeout:g} s; is the node mining (automine, or a block time set)?"
                )
            time.sleep(delay)
            delay = min(2 * delay, 0.1)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        if self.kind == "embedded":
            raise ChainError(f"{method} is not available on the embedded backend")
        response = self.w3.provider.make_request(cast(Any, method), params)
        if "error" in response:
            raise NodeError(f"{method} failed: {response['error']}")
        return response.get("result")


def embedded_chain(accounts: int = 10) -> Chain:
    """A fresh in-process py-evm chain (prague rules) with ``accounts`` funded accounts."""
    if not 1 <= accounts <= 1000:
        raise ChainParameterError(f"accounts must be in [1, 1000], got {accounts}")
    genesis = PyEVMBackend.generate_genesis_state(num_accounts=accounts)
    tester = EthereumTester(backend=PyEVMBackend(genesis_state=genesis))
    return Chain(Web3(EthereumTesterProvider(tester)), "embedded", tester)


#: Host names that always mean this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def http_chain(url: str, kind: BackendKind = "rpc", timeout: float = 30.0) -> Chain:
    """Connect to a node's HTTP JSON-RPC endpoint (``kind="anvil"`` enables dev controls)."""
    if not url.startswith(("http://", "https://")):
        raise ChainParameterError(f"url must start with http:// or https://, got {url!r}")
    session = requests.Session()
    if urlsplit(url).hostname in LOOPBACK_HOSTS:
        # A loopback node is never reached through a proxy: skip requests' per-call scan
        # of the proxy environment (measured ~12% of a transaction's client time).
        session.trust_env = False
    provider = Web3.HTTPProvider(
        url,
        request_kwargs={"timeout": timeout},
        session=session,
        # web3 asks for the chain id before every transaction; a node's id is fixed for
        # the connection, so it is asked once (about 2 of the ~6 requests per transaction).
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Chain(Web3(provider), kind)


def websocket_chain(url: str, kind: BackendKind = "rpc", timeout: float = 30.0) -> Chain:
    """Connect to a node's WebSocket JSON-RPC endpoint."""
    if not url.startswith(("ws://", "wss://")):
        raise ChainParameterError(f"url must start with ws:// or wss://, got {url!r}")
    # Imported here: the module emits a DeprecationWarning (websockets.legacy) on import.
    from web3.providers.legacy_websocket import LegacyWebSocketProvider

    return Chain(Web3(LegacyWebSocketProvider(url, websocket_timeout=int(timeout))), kind)
