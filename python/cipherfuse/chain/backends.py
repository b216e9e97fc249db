"""Connections to a chain: embedded py-evm (default), or a node over HTTP/WebSocket.

:class:`Chain` wraps a connected :class:`web3.Web3`, reads and checks the node's chain id,
holds the local signing accounts (:class:`~cipherfuse.chain.signer.LocalSigner`, one per
key) and adds the development controls the tests and tools need (move time, mine blocks,
snapshots) for both the embedded ``EthereumTesterProvider`` and anvil.

Every connection refuses node-managed account methods (``eth_accounts``,
``eth_sendTransaction``, ``eth_sign``...) before they reach the node: transactions are
signed locally, so the same code runs on a dev node and on a public network.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import requests
from eth_abi import abi
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]
from eth_typing import ChecksumAddress
from eth_utils.address import to_canonical_address
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import TransactionNotFound
from web3.middleware import Web3Middleware
from web3.types import RPCEndpoint, TxReceipt

from cipherfuse.chain.devkeys import dev_accounts
from cipherfuse.chain.errors import (
    ChainError,
    ChainIdMismatchError,
    ChainParameterError,
    ForbiddenRpcError,
    NodeError,
    NodeUnreachableError,
)
from cipherfuse.chain.signer import TRANSFER_GAS, LocalSigner, SendPolicy

BackendKind = Literal["embedded", "anvil", "rpc"]

#: JSON-RPC methods that use accounts the node holds; cipherfuse never calls them.
NODE_ACCOUNT_METHODS = frozenset(
    {
        "eth_accounts",
        "eth_sendTransaction",
        "eth_sign",
        "eth_signTransaction",
        "eth_signTypedData",
        "eth_signTypedData_v4",
        "personal_sign",
        "personal_sendTransaction",
        "personal_unlockAccount",
        "personal_listAccounts",
    }
)

ZERO_ADDRESS = "0x" + "00" * 20

#: Balance each development account gets (10 000 ETH).
DEV_BALANCE_WEI = 10_000 * 10**18


class NodeAccountGuard(Web3Middleware):
    """web3 middleware that refuses :data:`NODE_ACCOUNT_METHODS` before they are sent, and
    turns a lost connection into :class:`NodeUnreachableError` (one line, not a traceback).
    """

    def wrap_make_request(self, make_request: Any) -> Any:
        """Wrap the request chain (see :class:`web3.middleware.Web3Middleware`)."""
        inner = super().wrap_make_request(make_request)

        def middleware(method: RPCEndpoint, params: Any) -> Any:
            try:
                return inner(method, params)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise NodeUnreachableError(
                    f"the node stopped answering ({method}): {type(exc).__name__}; is it "
                    "running and reachable?"
                ) from exc

        return middleware

    def request_processor(self, method: RPCEndpoint, params: Any) -> Any:
        """Raise :class:`ForbiddenRpcError` for a node-managed account method."""
        if method in NODE_ACCOUNT_METHODS:
            raise ForbiddenRpcError(
                f"{method} uses node-managed accounts; cipherfuse signs locally (LocalSigner)"
            )
        return method, params


class Chain:
    """A web3 connection, its local signing accounts, and development controls.

    Build one with :func:`embedded_chain`, :func:`http_chain` or :func:`websocket_chain`.

    Args:
        w3: the connection.
        kind: ``"embedded"``, ``"anvil"`` (dev controls over JSON-RPC) or ``"rpc"``.
        tester: the in-process tester of an embedded chain.
        chain_id: the chain id the caller expects; a node serving another raises
            :class:`ChainIdMismatchError` before anything is signed.
        policy: default send policy of the signers added later.
        endpoint: the node's URL, for messages.

    Raises:
        NodeError: the node does not answer.
        ChainIdMismatchError: see ``chain_id``.
    """

    def __init__(
        self,
        w3: Web3,
        kind: BackendKind,
        tester: EthereumTester | None = None,
        *,
        chain_id: int | None = None,
        policy: SendPolicy | None = None,
        endpoint: str = "",
    ) -> None:
        where = f" at {endpoint}" if endpoint else ""
        if not w3.is_connected():
            raise NodeError(
                f"the JSON-RPC endpoint{where} does not answer; is the node running and the "
                "URL right?"
            )
        w3.middleware_onion.inject(NodeAccountGuard, name="cipherfuse_account_guard", layer=0)
        # Read-only calls name a sender explicitly; otherwise web3's eth-tester middleware
        # would ask the node for its accounts to fill one in.
        w3.eth.default_account = Web3.to_checksum_address(ZERO_ADDRESS)
        self.w3 = w3
        self.kind: BackendKind = kind
        self._tester = tester
        #: The py-evm VM views run on, with the hash of the block it is at (see
        #: :meth:`_run_view_on_pyevm`); rebuilt when the head moves.
        self._view_vm: tuple[bytes, Any] | None = None
        self._view_lock = threading.Lock()
        self.chain_id = int(w3.eth.chain_id)
        if chain_id is not None and chain_id != self.chain_id:
            raise ChainIdMismatchError(
                f"the node{where} serves chain id {self.chain_id}, not the configured "
                f"{chain_id}; check rpc_url and chain_id"
            )
        self.policy = policy or SendPolicy()
        self._signers: dict[ChecksumAddress, LocalSigner] = {}

    @property
    def accounts(self) -> list[ChecksumAddress]:
        """Addresses of the local keys this connection signs for, in the order added."""
        return list(self._signers)

    def add_account(
        self,
        account: LocalAccount,
        *,
        journal_path: Path | None = None,
        policy: SendPolicy | None = None,
        log: Callable[[str], None] | None = None,
    ) -> LocalSigner:
        """Sign for ``account`` from now on; returns its signer.

        There is one signer per address: adding an address again returns the first signer
        unchanged (its policy and journal stay as they were).

        ``journal_path`` persists its nonce journal (a role's work folder), so a restart
        resends and confirms what a crash left pending.
        """
        address = Web3.to_checksum_address(account.address)
        existing = self._signers.get(address)
        if existing is not None:
            return existing
        signer = LocalSigner(
            self.w3,
            account,
            chain_id=self.chain_id,
            policy=policy or self.policy,
            journal_path=journal_path,
            log=log,
        )
        self._signers[address] = signer
        if self.w3.eth.default_account == ZERO_ADDRESS:
            # Read-only calls from a funded local account (eth-tester checks call gas).
            self.w3.eth.default_account = address
        return signer

    def signer(self, address: str) -> LocalSigner:
        """The signer of ``address``.

        Raises:
            ChainError: no local key for it (unlock its keystore with :meth:`add_account`).
        """
        try:
            return self._signers[Web3.to_checksum_address(address)]
        except KeyError:
            raise ChainError(
                f"no local key for {address}: unlock its keystore (cipherfuse never uses "
                "node-managed accounts)"
            ) from None

    def add_dev_accounts(self, count: int) -> list[ChecksumAddress]:
        """Add the first ``count`` development keys (:mod:`~cipherfuse.chain.devkeys`).

        On anvil, a key whose balance is zero is given :data:`DEV_BALANCE_WEI` with
        ``anvil_setBalance``; the embedded chain funds them at genesis.
        """
        added = []
        for account in dev_accounts(count):
            signer = self.add_account(account)
            if self.kind == "anvil" and signer.balance() == 0:
                self._rpc("anvil_setBalance", [signer.address, hex(DEV_BALANCE_WEI)])
            added.append(signer.address)
        return added

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

    def close(self, timeout: float = 10.0) -> None:
        """Close the connection's socket, if it holds one open.

        A WebSocket connection stays open between calls (and keeps sending keep-alive
        pings from web3's event-loop thread); closing it ends both. HTTP and embedded
        connections hold nothing open, so this does nothing for them. The connection
        must not be used afterwards.
        """
        from web3.providers.legacy_websocket import LegacyWebSocketProvider

        provider = self.w3.provider
        if not isinstance(provider, LegacyWebSocketProvider):
            return
        socket = provider.conn.ws
        loop = LegacyWebSocketProvider._loop
        if socket is None or loop is None:
            return
        provider.conn.ws = None
        asyncio.run_coroutine_threadsafe(socket.close(), loop).result(timeout)

    def call(self, to: str, data: bytes) -> bytes:
        """The return data of a read-only call of ``data`` to ``to`` at the latest block.

        The embedded chain answers in process (eth-tester directly, from the first local
        account as web3's eth-tester provider would fill in, without web3's JSON-RPC
        formatting layers, about a third of a view's cost there); the other backends use
        ``eth_call``. A revert raises what the backend raises (eth-tester's
        ``TransactionFailed``, web3's ``ContractLogicError``).
        """
        target = Web3.to_checksum_address(to)
        if self._tester is not None and self._signers:
            if isinstance(self._tester.backend, PyEVMBackend):
                return self._run_view_on_pyevm(target, bytes(data))
            return self._call_through_tester(target, bytes(data))
        return bytes(self.w3.eth.call(cast(Any, {"to": target, "data": HexBytes(data)})))

    def _call_through_tester(self, target: str, data: bytes) -> bytes:
        """``eth_call`` through eth-tester's API (the reference :meth:`call` is tested against)."""
        assert self._tester is not None
        tx = {"from": self.accounts[0], "to": target, "data": "0x" + data.hex()}
        return bytes(HexBytes(self._tester.call(tx, "latest")))

    def _run_view_on_pyevm(self, target: str, data: bytes) -> bytes:
        """The contract's code run as one message on py-evm at the latest mined block.

        What eth-tester's ``call`` computes, without its transaction: no unsigned
        transaction is built, validated, charged and reverted, only the message is executed,
        with the sender, origin, block context and gas limit eth-tester gives it. The VM of
        the latest mined block is kept for the next view at the same block (its state warm,
        each view's writes reverted): a small view costs about a quarter of eth-tester's
        path, the 28 views of the reference life cycle about 0.6 of it. A revert raises
        eth-tester's ``TransactionFailed`` with eth-tester's message.
        """
        assert self._tester is not None
        with self._view_lock:  # one shared VM state: one view at a time
            return self._run_view_locked(self._tester.backend, target, data)

    def _run_view_locked(self, backend: Any, target: str, data: bytes) -> bytes:
        chain = backend.chain
        block = chain.get_canonical_block_by_number(max(0, chain.get_block().number - 1))
        cached = self._view_vm
        if cached is None or cached[0] != block.header.hash:
            cached = self._view_vm = (block.header.hash, chain.get_vm(at_header=block.header))
        vm = cached[1]
        address = to_canonical_address(target)
        sender = to_canonical_address(self.accounts[0])
        snapshot = vm.state.snapshot()
        try:
            computation = vm.execute_bytecode(
                origin=sender,
                gas_price=0,
                gas=block.header.gas_limit,
                to=address,
                sender=sender,
                value=0,
                data=data,
                code=vm.state.get_code(address),
                code_address=address,
            )
        finally:
            vm.state.revert(snapshot)
        if computation.is_error:
            error = computation.error
            message = str(error)
            if backend.is_eip838_error(error):
                with contextlib.suppress(DecodingError):  # not a string: eth-tester's message
                    message = abi.decode(["string"], error.args[0][4:])[0]
            raise TransactionFailed(message)
        return bytes(computation.output)

    def transfer(self, sender: str, to: str, wei: int) -> TxReceipt:
        """Send ``wei`` from the local account ``sender`` to ``to`` (a signed transfer)."""
        return self.signer(sender).transact(to, value=wei, gas=TRANSFER_GAS, label="transfer")

    def fund(self, account: str, wei: int) -> None:
        """Send ``wei`` from the first local account to ``account``."""
        if not self._signers:
            raise ChainError("no local account to fund from")
        self.transfer(self.accounts[0], account, wei)

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


def embedded_chain(accounts: int = 10, *, policy: SendPolicy | None = None) -> Chain:
    """A fresh in-process py-evm chain (prague rules) whose first ``accounts`` development
    keys (:mod:`~cipherfuse.chain.devkeys`) are funded at genesis and signed for locally."""
    if not 1 <= accounts <= 1000:
        raise ChainParameterError(f"accounts must be in [1, 1000], got {accounts}")
    keys = dev_accounts(accounts)
    genesis = {
        bytes.fromhex(k.address[2:]): {
            "balance": DEV_BALANCE_WEI,
            "nonce": 0,
            "code": b"",
            "storage": {},
        }
        for k in keys
    }
    tester = EthereumTester(backend=PyEVMBackend(genesis_state=genesis))
    chain = Chain(Web3(EthereumTesterProvider(tester)), "embedded", tester, policy=policy)
    for key in keys:
        chain.add_account(key)
    return chain


#: Host names that always mean this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def http_chain(
    url: str,
    kind: BackendKind = "rpc",
    timeout: float = 30.0,
    *,
    chain_id: int | None = None,
    policy: SendPolicy | None = None,
    dev_accounts: int = 0,
) -> Chain:
    """Connect to a node's HTTP JSON-RPC endpoint (``kind="anvil"`` enables dev controls).

    ``chain_id`` is checked against the node's; ``dev_accounts`` adds that many
    development keys (anvil only; see :meth:`Chain.add_dev_accounts`).
    """
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
    chain = Chain(Web3(provider), kind, chain_id=chain_id, policy=policy, endpoint=url)
    if dev_accounts:
        if kind != "anvil":
            raise ChainParameterError("development accounts exist only on anvil")
        chain.add_dev_accounts(dev_accounts)
    return chain


def websocket_chain(
    url: str,
    kind: BackendKind = "rpc",
    timeout: float = 30.0,
    *,
    chain_id: int | None = None,
    policy: SendPolicy | None = None,
) -> Chain:
    """Connect to a node's WebSocket JSON-RPC endpoint."""
    if not url.startswith(("ws://", "wss://")):
        raise ChainParameterError(f"url must start with ws:// or wss://, got {url!r}")
    # Imported here: the module emits a DeprecationWarning (websockets.legacy) on import.
    from web3.providers.legacy_websocket import LegacyWebSocketProvider

    w3 = Web3(LegacyWebSocketProvider(url, websocket_timeout=int(timeout)))
    return Chain(w3, kind, chain_id=chain_id, policy=policy, endpoint=url)
