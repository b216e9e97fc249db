"""Local signing: every transaction is built, signed and journaled here, then sent raw.

:class:`LocalSigner` is the one place where a contract call (or a deployment, or a plain
transfer) becomes a signed transaction: :meth:`LocalSigner.transact` takes the target,
the ABI-encoded call data and the value, and

1. waits for transactions a previous run left in the nonce journal (rebroadcasting them);
2. picks the nonce (the node's ``pending`` count, or past the journal's last entry);
3. estimates the gas (a revert surfaces here, before anything is signed) and checks it
   against the configured cap;
4. takes EIP-1559 fees from the node's fee history (:mod:`~cipherfuse.chain.fees`);
5. checks that the balance covers value + gas limit x max fee
   (:class:`~cipherfuse.chain.errors.InsufficientFundsError` names both amounts);
6. signs with the chain id the node reported (checked against the configured one when the
   :class:`~cipherfuse.chain.backends.Chain` was opened), journals and sends it with
   ``eth_sendRawTransaction``;
7. waits for the receipt and ``confirmations`` blocks on top of it, re-reading the block
   hash at that depth: a receipt whose block was reorganised away is waited for again, and
   a transaction the node no longer knows (dropped from its pool, or removed by a reorg) is
   rebroadcast; one that stays unmined for ``resend_after_s`` is replaced with higher fees.

Nothing here uses node-managed accounts (``eth_accounts``, ``eth_sendTransaction``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import requests
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception
from web3.types import TxReceipt

from cipherfuse.chain.errors import (
    ChainParameterError,
    GasLimitError,
    InsufficientFundsError,
    NodeUnreachableError,
    TransactionDroppedError,
    TransactionTimeoutError,
)
from cipherfuse.chain.fees import FeePolicy, Fees, bump_fees, suggest_fees
from cipherfuse.chain.nonces import JournalEntry, NonceJournal

#: Gas of a plain ETH transfer.
TRANSFER_GAS = 21_000
_TRANSIENT = (
    NodeUnreachableError,
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class SendPolicy:
    """How a :class:`LocalSigner` sends and waits.

    Attributes:
        confirmations: blocks that must follow a transaction's block before it counts
            (0: the receipt is enough; dev chains). Reorgs up to this depth are survived.
        gas_limit_cap: the most gas one transaction may use; larger estimates are refused.
        gas_margin_percent: added to the node's gas estimate.
        fees: fee choice and cap.
        fee_bump_percent: fee increase of a replacement for a stuck transaction (>= 10).
        resend_after_s: seconds a transaction may stay unmined before it is replaced with
            higher fees.
        timeout_s: seconds to wait for a transaction before giving up (it stays journaled).
        poll_max_s: longest pause between two polls of the node (polling starts at 2 ms
            and doubles).
    """

    confirmations: int = 0
    gas_limit_cap: int = 15_000_000
    gas_margin_percent: int = 20
    fees: FeePolicy = field(default_factory=FeePolicy)
    fee_bump_percent: int = 15
    resend_after_s: float = 60.0
    timeout_s: float = 600.0
    poll_max_s: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.confirmations <= 1000:
            raise ChainParameterError(
                f"confirmations must be in [0, 1000], got {self.confirmations}"
            )
        if not TRANSFER_GAS <= self.gas_limit_cap <= 100_000_000:
            raise ChainParameterError(
                f"gas_limit_cap must be in [21000, 1e8], got {self.gas_limit_cap}"
            )
        if not 0 <= self.gas_margin_percent <= 200:
            raise ChainParameterError("gas_margin_percent must be in [0, 200]")
        if not 10 <= self.fee_bump_percent <= 500:
            raise ChainParameterError("fee_bump_percent must be in [10, 500] (nodes need 10)")
        if self.resend_after_s <= 0 or self.timeout_s <= 0 or self.poll_max_s <= 0:
            raise ChainParameterError("resend_after_s, timeout_s and poll_max_s must be > 0")


@dataclass(frozen=True)
class SentTransaction:
    """A journaled, broadcast transaction (:meth:`LocalSigner.wait` confirms it)."""

    nonce: int
    tx_hash: bytes
    gas: int
    fees: Fees


class LocalSigner:
    """Signs and sends the transactions of one local account.

    Args:
        w3: the node connection (no node-managed account is ever used).
        account: the unlocked key (see :func:`~cipherfuse.chain.keystore.unlock_keystore`).
        chain_id: the chain id every transaction is signed for (the node's, checked).
        policy: gas, fee, confirmation and timeout settings.
        journal_path: where the nonce journal is kept (None: in memory).
        log: receives one line per notable event (resend, replacement, reorg).
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        chain_id: int,
        policy: SendPolicy | None = None,
        journal_path: Path | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address: ChecksumAddress = Web3.to_checksum_address(account.address)
        self.chain_id = chain_id
        self.policy = policy or SendPolicy()
        self.journal = NonceJournal.open(journal_path, self.address, chain_id)
        self._log = log or (lambda line: None)
        self._lock = threading.RLock()
        self._recovered = False

    # ---------------------------------------------------------------- public API

    def balance(self) -> int:
        """The account's balance in wei (latest block)."""
        return int(self.w3.eth.get_balance(self.address))

    def transact(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        fees: Fees | None = None,
        label: str = "",
        confirmations: int | None = None,
    ) -> TxReceipt:
        """Sign, send and confirm one transaction; returns its confirmed receipt.

        Args:
            to: the target address; None deploys ``data`` as init code.
            data: ABI-encoded call data (or init code).
            value: wei sent along.
            gas: a fixed gas limit (default: the node's estimate plus the margin).
            fees: fixed fees (default: :func:`~cipherfuse.chain.fees.suggest_fees`).
            label: what the transaction does, for messages and the journal.
            confirmations: overrides the policy's depth for this transaction.

        Raises:
            GasLimitError, FeeCapError, InsufficientFundsError: nothing was sent.
            TransactionDroppedError: the nonce was taken by another transaction.
            TransactionTimeoutError: not confirmed within ``policy.timeout_s``.
            Whatever the node's gas estimate raises for a reverting call (web3's
            ``ContractLogicError``, eth-tester's ``TransactionFailed``): nothing was sent.
        """
        with self._lock:
            sent = self.send(to, data, value=value, gas=gas, fees=fees, label=label)
            return self.wait(sent, confirmations)

    def send(
        self,
        to: str | None,
        data: bytes = b"",
        *,
        value: int = 0,
        gas: int | None = None,
        fees: Fees | None = None,
        label: str = "",
    ) -> SentTransaction:
        """Sign, journal and broadcast one transaction without waiting for it."""
        if value < 0:
            raise ChainParameterError(f"value must be >= 0 wei, got {value}")
        with self._lock:
            self.recover()
            call: dict[str, Any] = {"from": self.address, "value": value, "data": HexBytes(data)}
            if to is not None:
                call["to"] = Web3.to_checksum_address(to)
            nonce = self.journal.next_nonce(self._node_nonce("pending"))
            fees = fees or suggest_fees(self.w3, self.policy.fees)
            # Every transaction costs at least a transfer's gas: an account that cannot pay
            # even that is refused before the estimate (some nodes fail it with a generic
            # error when the sender cannot afford the gas).
            balance = self.balance()
            if gas is None:
                self._check_funds(balance, value, TRANSFER_GAS, fees, label, exact=False)
                estimate = int(self.w3.eth.estimate_gas(cast(Any, call)))
                with_margin = estimate + estimate * self.policy.gas_margin_percent // 100
                # The margin never pushes a transaction that fits the cap over it.
                gas = (
                    estimate
                    if estimate > self.policy.gas_limit_cap
                    else min(with_margin, self.policy.gas_limit_cap)
                )
            if gas > self.policy.gas_limit_cap:
                raise GasLimitError(
                    f"{label or 'transaction'} needs {gas} gas, above the configured limit "
                    f"{self.policy.gas_limit_cap}; raise gas_limit_cap if that is expected"
                )
            self._check_funds(balance, value, gas, fees, label, exact=True)
            tx = {**call, "nonce": nonce, "gas": gas, "chainId": self.chain_id, **fees.fields()}
            del tx["from"]
            if fees.gas_price is None:
                tx["type"] = 2
            raw, tx_hash = self._sign(tx)
            entry = JournalEntry(
                nonce=nonce,
                raw=[raw],
                hashes=[tx_hash],
                max_fee_per_gas=fees.max_fee_per_gas,
                max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                gas_price=fees.gas_price,
                to=call.get("to"),
                value=value,
                data="0x" + bytes(data).hex(),
                gas=gas,
                label=label,
            )
            self.journal.put(entry)  # journaled before the node sees it
            self._broadcast(raw)
            return SentTransaction(nonce, bytes(HexBytes(tx_hash)), gas, fees)

    def wait(self, sent: SentTransaction | int, confirmations: int | None = None) -> TxReceipt:
        """The receipt of a journaled nonce once it is ``confirmations`` deep.

        Rebroadcasts a transaction the node has lost, replaces one stuck for
        ``resend_after_s`` with higher fees, and waits again for one whose block was
        reorganised away. Removes the nonce from the journal when done.
        """
        nonce = sent.nonce if isinstance(sent, SentTransaction) else sent
        depth = self.policy.confirmations if confirmations is None else confirmations
        entry = self.journal.entries.get(nonce)
        if entry is None:
            raise ChainParameterError(f"nonce {nonce} of {self.address} is not pending")
        deadline = time.monotonic() + self.policy.timeout_s
        last_sent = time.monotonic()
        delay = 0.002
        while True:
            try:
                receipt = self._receipt(entry)
                if receipt is not None:
                    if depth == 0:
                        self.journal.remove(nonce)
                        return receipt
                    if self._confirmed(entry, receipt, depth):
                        self.journal.remove(nonce)
                        return receipt
                elif self._node_nonce("latest") > nonce:
                    # The nonce is used: by one of ours mined between the two reads, or by
                    # a transaction this signer did not send.
                    if self._receipt(entry) is None:
                        self.journal.remove(nonce)
                        raise TransactionDroppedError(
                            f"{entry.label or 'transaction'} (nonce {nonce} of {self.address})"
                            " was replaced by a transaction this signer did not send; check"
                            " that no other wallet uses this key"
                        )
                    continue
                elif not self._known(entry):
                    entry.resends += 1
                    self.journal.put(entry)
                    self._log(
                        f"{entry.label or 'transaction'} nonce {nonce}: the node no longer has "
                        f"it (dropped or reorganised away); resending"
                    )
                    self._broadcast(entry.raw[-1])
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent > self.policy.resend_after_s:
                    self._replace(entry)  # at the fee cap it logs and keeps waiting
                    last_sent = time.monotonic()
            except _TRANSIENT as exc:
                self._log(f"node unreachable while waiting for nonce {nonce}: {exc}; retrying")
            if time.monotonic() > deadline:
                raise TransactionTimeoutError(
                    f"{entry.label or 'transaction'} 0x{entry.hashes[-1].removeprefix('0x')} "
                    f"(nonce {nonce}) not confirmed within {self.policy.timeout_s:g} s; it stays "
                    "journaled and is resent when this account's signer next starts"
                )
            time.sleep(delay)
            delay = min(2 * delay, self.policy.poll_max_s)

    def recover(self) -> list[TxReceipt]:
        """Rebroadcast and confirm what the journal holds from an earlier run (once)."""
        with self._lock:
            if self._recovered:
                return []
            self._recovered = True
            receipts = []
            for nonce in sorted(self.journal.entries):
                entry = self.journal.entries[nonce]
                self._log(f"resuming {entry.label or 'transaction'} nonce {nonce} from the journal")
                if self._receipt(entry) is None and self._node_nonce("latest") <= nonce:
                    self._broadcast(entry.raw[-1])
                try:
                    receipts.append(self.wait(nonce))
                except TransactionDroppedError as exc:
                    self._log(str(exc))
            return receipts

    def replace(self, sent: SentTransaction | int) -> bool:
        """Replace a pending transaction with a fee-bumped copy now; False at the fee cap."""
        nonce = sent.nonce if isinstance(sent, SentTransaction) else sent
        with self._lock:
            return self._replace(self.journal.entries[nonce])

    # ---------------------------------------------------------------- internals

    def _sign(self, tx: dict[str, Any]) -> tuple[str, str]:
        signed = self.account.sign_transaction(tx)
        return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()

    def _node_nonce(self, block: str) -> int:
        return int(self.w3.eth.get_transaction_count(self.address, cast(Any, block)))

    def _check_funds(
        self, balance: int, value: int, gas: int, fees: Fees, label: str, *, exact: bool
    ) -> None:
        gas_cost = gas * fees.worst_case_per_gas
        if balance < value + gas_cost:
            least = "" if exact else "at least "
            raise InsufficientFundsError(
                f"{self.address} has {balance} wei but {label or 'the transaction'} needs "
                f"{least}{value + gas_cost} wei (value {value} + gas {least}{gas} x "
                f"{fees.worst_case_per_gas} wei); fund the account",
                balance=balance,
                needed=value + gas_cost,
            )

    def _broadcast(self, raw: str) -> None:
        try:
            self.w3.eth.send_raw_transaction(HexBytes(raw))
        except (Web3Exception, ValueError) as exc:
            text = str(exc).lower()
            # Already in the pool, or already mined: the wait loop sorts out which.
            if any(s in text for s in ("already known", "nonce too low", "known transaction")):
                return
            raise
        except _TRANSIENT as exc:
            raise NodeUnreachableError(
                f"the node did not take the transaction ({exc}); it is journaled and resent "
                "when the node answers again"
            ) from exc

    def _receipt(self, entry: JournalEntry) -> TxReceipt | None:
        for tx_hash in reversed(entry.hashes):
            try:
                return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                continue
        return None

    def _known(self, entry: JournalEntry) -> bool:
        for tx_hash in entry.hashes:
            try:
                self.w3.eth.get_transaction(HexBytes(tx_hash))
                return True
            except TransactionNotFound:
                continue
        return False

    def _confirmed(self, entry: JournalEntry, receipt: TxReceipt, depth: int) -> bool:
        block = int(receipt["blockNumber"])
        if int(self.w3.eth.block_number) - block < depth:
            return False
        canonical = self.w3.eth.get_block(block)["hash"]
        again = self._receipt(entry)
        if (
            again is not None
            and HexBytes(again["blockHash"]) == HexBytes(receipt["blockHash"])
            and HexBytes(canonical) == HexBytes(receipt["blockHash"])
        ):
            return True
        entry.reorgs += 1
        self.journal.put(entry)
        self._log(
            f"{entry.label or 'transaction'} nonce {entry.nonce}: block {block} was reorganised"
            " away; waiting for the transaction again"
        )
        return False

    def _replace(self, entry: JournalEntry) -> bool:
        old = Fees(entry.max_fee_per_gas, entry.max_priority_fee_per_gas, entry.gas_price)
        fresh = suggest_fees(self.w3, self.policy.fees)
        new = bump_fees(old, fresh, self.policy.fee_bump_percent, self.policy.fees.max_fee_cap)
        if new is None:
            self._log(
                f"{entry.label or 'transaction'} nonce {entry.nonce} is not mined and its fees "
                "are at the configured cap; waiting"
            )
            return False
        tx: dict[str, Any] = {
            "nonce": entry.nonce,
            "gas": entry.gas,
            "value": entry.value,
            "data": HexBytes(entry.data),
            "chainId": self.chain_id,
            **new.fields(),
        }
        if entry.to is not None:
            tx["to"] = Web3.to_checksum_address(entry.to)
        if new.gas_price is None:
            tx["type"] = 2
        raw, tx_hash = self._sign(tx)
        entry.add(raw, tx_hash)
        entry.max_fee_per_gas = new.max_fee_per_gas
        entry.max_priority_fee_per_gas = new.max_priority_fee_per_gas
        entry.gas_price = new.gas_price
        entry.replacements += 1
        self.journal.put(entry)
        self._log(
            f"{entry.label or 'transaction'} nonce {entry.nonce} not mined for "
            f"{self.policy.resend_after_s:g} s; replacing it with max fee "
            f"{new.worst_case_per_gas} wei/gas"
        )
        self._broadcast(raw)
        return True
