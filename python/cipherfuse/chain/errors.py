"""Exceptions of :mod:`cipherfuse.chain`.

Contract reverts carry a custom Solidity error; :func:`decode_revert` turns its ABI-encoded
data into a :class:`ContractRevertError` subclass whose message says what went wrong and
what to do about it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from cipherfuse.errors import CipherfuseError, ParameterError


class ChainError(CipherfuseError, RuntimeError):
    """Base class of chain-layer failures (node, transport, contract)."""


class EventDecodeError(ChainError, ValueError):
    """A log or :class:`~cipherfuse.chain.events.ChainEvent` does not match the contract ABI
    (unknown event, missing/extra/mistyped argument), or the typed event classes no longer
    mirror the ABI."""


class NodeError(ChainError):
    """A node could not be found, started or reached, or answered a request with an error."""


class KeystoreError(ChainError):
    """An encrypted key file is missing, unreadable, corrupt, or its password is wrong."""


class KeystoreNotFoundError(KeystoreError, FileNotFoundError):
    """The keystore file does not exist (create one with ``cipherfuse account new``)."""


class WrongPasswordError(KeystoreError, ValueError):
    """The password does not decrypt the keystore (its MAC does not match)."""


class KeystoreFormatError(KeystoreError, ValueError):
    """The file is not a version-3 Ethereum JSON keystore."""


class PasswordSourceError(KeystoreError):
    """The password could not be read (empty file, unset environment variable...)."""


class ChainIdMismatchError(ChainError):
    """The node serves another chain than the configured one (checked before signing)."""


class InsufficientFundsError(ChainError):
    """The account cannot pay the value plus the worst-case gas cost of a transaction.

    Attributes:
        balance: the account's balance, in wei.
        needed: value + gas limit x max fee per gas, in wei.
    """

    def __init__(self, message: str, *, balance: int, needed: int) -> None:
        super().__init__(message)
        self.balance = balance
        self.needed = needed


class FeeCapError(ChainError):
    """The network's fee is above the configured cap; nothing was sent."""


class GasLimitError(ChainError):
    """A transaction needs more gas than the configured limit; nothing was sent."""


class NodeUnreachableError(NodeError):
    """The node stopped answering (connection refused or timed out) during a request."""


class TransactionDroppedError(ChainError):
    """A sent transaction is gone and cannot be resent (its nonce was used by another one)."""


class TransactionTimeoutError(NodeError):
    """A transaction was not mined and confirmed in time (it stays in the nonce journal and
    is resent when the account's signer next starts)."""


class ForbiddenRpcError(ChainError):
    """A node-managed account method (``eth_sendTransaction``, ``eth_accounts``...) was
    called; cipherfuse signs every transaction locally."""


class ArtifactError(ChainError):
    """A compiled contract artifact is missing, corrupt, or differs from its sources."""


class CompilerError(ChainError):
    """The pinned Solidity compiler could not run or reported errors."""


class ChainParameterError(ParameterError):
    """A client-side argument is out of range (raised before any transaction is sent)."""


class ContractRevertError(ChainError):
    """The contract rejected a call with a custom error.

    Attributes:
        error_name: the Solidity error name, e.g. ``"JoinWindowClosed"``.
        args: decoded error arguments, by name.
    """

    def __init__(self, error_name: str, args: Mapping[str, Any], message: str) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.error_args = dict(args)


class WindowError(ContractRevertError):
    """The call came outside the time or block window in which it is allowed."""


class RoleError(ContractRevertError):
    """The caller does not hold the role or state the call needs."""


class StateError(ContractRevertError):
    """The task or claim is not in the state the call needs."""


class PaymentError(ContractRevertError):
    """The ETH sent, the budget, or a withdrawal is wrong."""


class TaskParameterError(ContractRevertError, ValueError):
    """The contract refused a task parameter (the message names it)."""


class CommitmentError(ContractRevertError):
    """A revealed value does not match its commitment, or a commitment is zero."""


_Explain = Callable[[Mapping[str, Any]], str]

#: error name -> (exception class, message builder). Every custom error of the contract
#: appears here; tests check the mapping is complete against the ABI.
ERROR_TABLE: dict[str, tuple[type[ContractRevertError], _Explain]] = {
    "InvalidParameter": (
        TaskParameterError,
        lambda a: f"task parameter {a['name']!r} is out of range; see TaskParams docs",
    ),
    "WrongPayment": (
        PaymentError,
        lambda a: f"wrong ETH amount: expected {a['expected']} wei, sent {a['sent']} wei",
    ),
    "UnknownTask": (StateError, lambda a: f"no task with id {a['taskId']}"),
    "UnknownClaim": (StateError, lambda a: f"no claim with id {a['claimId']}"),
    "JoinWindowClosed": (
        WindowError,
        lambda a: f"the join window closed at t={a['deadline']}; registration is over",
    ),
    "ClaimWindowNotOpen": (
        WindowError,
        lambda a: f"claims are accepted in t=[{a['opensAt']}, {a['closesAt']}) only",
    ),
    "AlreadyRegistered": (
        RoleError,
        lambda a: f"{a['account']} already has a role in task {a['taskId']} (or is its initiator)",
    ),
    "NotActiveContributor": (
        RoleError,
        lambda a: (
            f"{a['account']} is not an active (registered, unclaimed) contributor "
            f"of task {a['taskId']}"
        ),
    ),
    "NotActiveVerifier": (
        RoleError,
        lambda a: f"{a['account']} is not an active verifier of task {a['taskId']}",
    ),
    "BudgetExhausted": (
        StateError,
        lambda a: f"task {a['taskId']} already has its maximum of {a['maxClaims']} claims",
    ),
    "NotEnoughVerifiers": (
        StateError,
        lambda a: f"only {a['active']} active verifiers, the committee needs {a['needed']}",
    ),
    "ZeroCommitment": (
        CommitmentError,
        lambda a: "a hash/commitment argument is zero (or, for a vote, one of the markers 1..3)",
    ),
    "NotClaimant": (
        RoleError,
        lambda a: f"{a['caller']} is not the claimant of claim {a['claimId']}",
    ),
    "WrongClaimStatus": (
        StateError,
        lambda a: (
            f"claim {a['claimId']} is in status {_status_name(a['status'])}, "
            "which does not allow this call"
        ),
    ),
    "SeedRevealTooEarly": (
        WindowError,
        lambda a: f"the seed can be revealed from block {a['firstBlock']} on; wait for it",
    ),
    "SeedRevealTooLate": (
        WindowError,
        lambda a: (
            f"the seed window ended at t={a['deadline']}; the claim can only be settled as void"
        ),
    ),
    "DrawBlockExpired": (
        WindowError,
        lambda a: (
            f"draw block {a['drawBlock']} is beyond the 256-block horizon and its hash was not "
            "captured; call reanchor_draw, wait one block, then reveal"
        ),
    ),
    "DrawBlockNotExpired": (
        StateError,
        lambda a: (
            f"draw block {a['drawBlock']} is still usable (visible or captured); reveal instead"
        ),
    ),
    "DrawHashAlreadyCaptured": (
        StateError,
        lambda a: f"the draw block hash of claim {a['claimId']} is already stored",
    ),
    "PoolFull": (
        StateError,
        lambda a: f"the task's verifier pool is full ({a['maxVerifiers']} verifiers)",
    ),
    "ZeroBoxKey": (TaskParameterError, lambda a: "the X25519 box key must be non-zero"),
    "EndpointTooLong": (
        TaskParameterError,
        lambda a: f"the endpoint has {a['length']} bytes; at most {a['maxLength']} allowed",
    ),
    "ZeroModelSize": (TaskParameterError, lambda a: "the model's byte size must be non-zero"),
    "ModelAlreadyClaimed": (
        CommitmentError,
        lambda a: (
            f"this model hash was already claimed in task {a['taskId']} (claim {a['claimId']}); "
            "a claim must be one's own model"
        ),
    ),
    "KeyBoxesAlreadyPosted": (
        StateError,
        lambda a: f"the key boxes of claim {a['claimId']} were already posted",
    ),
    "WrongKeyBoxCount": (
        TaskParameterError,
        lambda a: f"need one key box per committee member ({a['expected']}), got {a['given']}",
    ),
    "BadKeyBoxLength": (
        TaskParameterError,
        lambda a: f"key box {a['index']} has {a['length']} bytes; allowed 1..256",
    ),
    "CommitmentMismatch": (
        CommitmentError,
        lambda a: (
            "the revealed value does not match the stored commitment "
            "(wrong seed, vote, salt or envelope)"
        ),
    ),
    "NotCommitteeMember": (
        RoleError,
        lambda a: f"{a['caller']} is not on the committee of claim {a['claimId']}",
    ),
    "CommitWindowClosed": (
        WindowError,
        lambda a: f"the vote commit window closed at t={a['deadline']}",
    ),
    "AlreadyCommitted": (
        StateError,
        lambda a: f"{a['verifier']} already committed a vote on claim {a['claimId']}",
    ),
    "RevealWindowNotOpen": (
        WindowError,
        lambda a: f"votes are revealed in t=({a['opensAt']}, {a['closesAt']}] only",
    ),
    "NothingToReveal": (
        StateError,
        lambda a: f"{a['verifier']} has no unrevealed vote on claim {a['claimId']}",
    ),
    "SettlementTooEarly": (
        WindowError,
        lambda a: f"the claim can be settled after t={a['notBefore']}",
    ),
    "ReleaseWindowClosed": (
        WindowError,
        lambda a: f"the envelope release deadline t={a['deadline']} has passed",
    ),
    "ReleaseWindowOpen": (
        WindowError,
        lambda a: f"the release is still possible until t={a['deadline']}; forfeit after that",
    ),
    "NotInitiator": (
        RoleError,
        lambda a: f"{a['caller']} is not the initiator of task {a['taskId']}",
    ),
    "TaskNotExpired": (
        WindowError,
        lambda a: f"the task expires at t={a['expiry']}; try again after that",
    ),
    "NothingToReclaim": (
        PaymentError,
        lambda a: f"task {a['taskId']} has no unspent escrow left",
    ),
    "VerifierHasDuties": (
        StateError,
        lambda a: (
            f"{a['unsettled']} claim(s) of the task are not settled; settle them first (anyone may)"
        ),
    ),
    "NothingToWithdraw": (PaymentError, lambda a: f"{a['account']} has no credit to withdraw"),
    "TransferFailed": (
        PaymentError,
        lambda a: f"sending {a['amount']} wei to {a['account']} failed",
    ),
    "Reentrancy": (RoleError, lambda a: "re-entrant call rejected"),
}

_STATUS_NAMES = (
    "None",
    "AwaitingSeed",
    "Voting",
    "Accepted",
    "Rejected",
    "Inconclusive",
    "Void",
    "Released",
    "Forfeited",
    "ReleasePending",
)


def _status_name(value: int) -> str:
    return _STATUS_NAMES[value] if 0 <= value < len(_STATUS_NAMES) else str(value)


class ErrorDecoder:
    """Decodes revert data of one contract ABI into typed exceptions."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self._by_selector: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for entry in abi:
            if entry.get("type") != "error":
                continue
            types = [str(i["type"]) for i in entry["inputs"]]
            names = [str(i["name"]) for i in entry["inputs"]]
            signature = f"{entry['name']}({','.join(types)})"
            self._by_selector[keccak(text=signature)[:4]] = (str(entry["name"]), types, names)

    @property
    def error_names(self) -> set[str]:
        """Names of every custom error in the ABI."""
        return {name for name, _, _ in self._by_selector.values()}

    def decode(self, data: bytes) -> ContractRevertError | None:
        """Typed exception for ``data``, or None if it is not one of this ABI's errors."""
        entry = self._by_selector.get(bytes(data[:4]))
        if entry is None:
            return None
        name, types, names = entry
        values = abi_decode(types, bytes(data[4:])) if types else ()
        args = dict(zip(names, values, strict=True))
        cls, explain = ERROR_TABLE.get(name, (ContractRevertError, lambda a: "contract error"))
        error: ContractRevertError = cls(name, args, f"{name}: {explain(args)}")
        return error
