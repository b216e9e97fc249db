"""Typed client of the ``CipherfuseTasks`` contract.

Every transaction method takes the sending account first (an address the
:class:`~cipherfuse.chain.backends.Chain` holds a local key for), signs and sends it
through that account's :class:`~cipherfuse.chain.signer.LocalSigner` (:meth:`TasksContract._send`
is the one place a contract call becomes a raw transaction), waits for the confirmed
receipt, and returns a :class:`Receipt` (plus the new id for :meth:`TasksContract.publish_task` and
:meth:`TasksContract.submit_claim`). A contract revert becomes a
:class:`~cipherfuse.chain.errors.ContractRevertError` subclass with an actionable message.
"""

from __future__ import annotations

import ast
from dataclasses import astuple, dataclass
from enum import IntEnum
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from cipherfuse.chain.artifacts import Artifact, load_artifact
from cipherfuse.chain.backends import Chain
from cipherfuse.chain.errors import ChainError, ChainParameterError, ErrorDecoder

_UINT_LIMITS = {8: 2**8, 16: 2**16, 32: 2**32, 96: 2**96}


class ClaimStatus(IntEnum):
    """Mirror of the contract's ``ClaimStatus``."""

    NONE = 0
    AWAITING_SEED = 1
    VOTING = 2
    ACCEPTED = 3
    REJECTED = 4
    INCONCLUSIVE = 5
    VOID = 6
    RELEASED = 7
    FORFEITED = 8


class Role(IntEnum):
    """Mirror of the contract's ``Role``."""

    NONE = 0
    CONTRIBUTOR = 1
    VERIFIER = 2


class ParticipantState(IntEnum):
    """Mirror of the contract's ``ParticipantState``."""

    NONE = 0
    ACTIVE = 1
    CLAIMED = 2
    LEFT = 3
    RETIRED = 4
    SLASHED = 5


class BallotState(IntEnum):
    """Ballot states returned by ``ballotOf``."""

    NONE = 0
    MEMBER = 1
    COMMITTED = 2
    ACCEPT = 3
    REJECT = 4


@dataclass(frozen=True)
class TaskParams:
    """Publication parameters (amounts in wei, windows in seconds).

    ``min_accuracy_bps`` is the accuracy criterion in basis points (9000 = 90 %), checked by
    the verifiers off chain. The budget escrowed at publication is
    ``max_claims * (reward_per_model + committee_size * verifier_fee)``.
    """

    min_accuracy_bps: int
    committee_size: int
    max_claims: int
    reward_per_model: int
    verifier_fee: int
    contributor_deposit: int
    verifier_deposit: int
    join_window: int
    claim_window: int
    draw_window: int
    commit_window: int
    reveal_window: int
    release_window: int

    def __post_init__(self) -> None:
        widths = (16, 8, 16, 96, 96, 96, 96, 32, 32, 32, 32, 32, 32)
        for (name, value), bits in zip(vars(self).items(), widths, strict=True):
            if not isinstance(value, int) or not 0 <= value < _UINT_LIMITS[bits]:
                raise ChainParameterError(
                    f"TaskParams.{name} must be an integer in [0, 2**{bits}), got {value!r}"
                )

    @property
    def budget(self) -> int:
        """Wei that :meth:`TasksContract.publish_task` escrows."""
        return self.max_claims * (self.reward_per_model + self.committee_size * self.verifier_fee)


@dataclass(frozen=True)
class TaskInfo:
    """Stored task state (see the contract's ``Task`` struct)."""

    initiator: ChecksumAddress
    max_claims: int
    claim_count: int
    committee_size: int
    min_accuracy_bps: int
    reward_per_model: int
    verifier_fee: int
    join_end: int
    contributor_deposit: int
    verifier_deposit: int
    claim_end: int
    draw_window: int
    commit_window: int
    reveal_window: int
    release_window: int
    expiry: int
    escrow: int
    reserved: int
    deposits_held: int
    objective_hash: bytes


@dataclass(frozen=True)
class ClaimInfo:
    """Claim state: the stored struct plus the commitments published in ``ClaimSubmitted``.

    The contract stores only ``commitments_digest``; :meth:`TasksContract.get_claim` reads the
    three commitments and the model CID from the claim's event and checks them against it.
    """

    claimant: ChecksumAddress
    task_id: int
    status: ClaimStatus
    accept_votes: int
    reject_votes: int
    claimed_at: int
    draw_block: int
    commit_deadline: int
    reveal_deadline: int
    release_deadline: int
    commitments_digest: bytes
    model_cid: str
    model_hash: bytes
    seed_commitment: bytes
    envelope_commitment: bytes


@dataclass(frozen=True)
class ParticipantInfo:
    """A participant's record in one task."""

    role: Role
    state: ParticipantState
    duties: int
    verifier_index: int
    claim_id: int


@dataclass(frozen=True)
class Receipt:
    """What a mined transaction cost and where it landed."""

    tx_hash: bytes
    block_number: int
    gas_used: int


def _bytes32(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ChainParameterError(f"{name} must be exactly 32 bytes")
    return bytes(value)


def _bytes_literal(message: str) -> bytes | None:
    """The ``b'...'`` literal eth-tester puts in some revert messages (parsed, not eval'd)."""
    start = message.find("b'")
    if start < 0:
        start = message.find('b"')
    if start < 0:
        return None
    try:
        value = ast.literal_eval(message[start:])
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, bytes) else None


def _revert_data(exc: BaseException) -> bytes | None:
    """Raw revert data carried by a web3 or eth-tester exception (or its causes)."""
    seen: BaseException | None = exc
    for _ in range(16):
        if seen is None:
            return None
        if isinstance(seen, ContractLogicError):
            data = seen.data
            if isinstance(data, dict):
                data = data.get("data")
            if isinstance(data, str) and data.startswith("0x"):
                return bytes.fromhex(data[2:])
        elif seen.args and isinstance(seen.args[0], bytes | bytearray):
            return bytes(seen.args[0])
        elif seen.args and isinstance(seen.args[0], str):
            literal = _bytes_literal(seen.args[0])
            if literal is not None:
                return literal
        elif seen.args and isinstance(seen.args[0], BaseException):
            # eth-tester sometimes wraps the EVM's Revert in its TransactionFailed.
            seen = seen.args[0]
            continue
        seen = seen.__cause__ or seen.__context__
    return None


def seed_commitment(task_id: int, claimant: str, seed: bytes) -> bytes:
    """``keccak256(abi.encode(taskId, claimant, seed))``, the claim's seed commitment."""
    return keccak(
        abi_encode(
            ["uint256", "address", "bytes32"],
            [task_id, Web3.to_checksum_address(claimant), _bytes32(seed, "seed")],
        )
    )


def vote_commitment(claim_id: int, voter: str, accept: bool, salt: bytes) -> bytes:
    """``keccak256(abi.encode(claimId, voter, accept, salt))``, a hidden vote."""
    return keccak(
        abi_encode(
            ["uint256", "address", "bool", "bytes32"],
            [claim_id, Web3.to_checksum_address(voter), bool(accept), _bytes32(salt, "salt")],
        )
    )


def commitments_digest(model_hash: bytes, seed_commit: bytes, envelope_commit: bytes) -> bytes:
    """``keccak256(abi.encode(modelHash, seedCommitment, envelopeCommitment))``."""
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32"],
            [
                _bytes32(model_hash, "model_hash"),
                _bytes32(seed_commit, "seed_commitment"),
                _bytes32(envelope_commit, "envelope_commitment"),
            ],
        )
    )


def envelope_commitment(envelope: bytes) -> bytes:
    """``keccak256(envelope)``, committed at claim time and checked at release."""
    if not isinstance(envelope, bytes | bytearray) or len(envelope) == 0:
        raise ChainParameterError("envelope must be non-empty bytes")
    return keccak(bytes(envelope))


class TasksContract:
    """One deployment of ``CipherfuseTasks`` on a :class:`Chain`."""

    ARTIFACT = "CipherfuseTasks"

    def __init__(self, chain: Chain, address: str, artifact: Artifact | None = None) -> None:
        self.chain = chain
        self.artifact = artifact or load_artifact(self.ARTIFACT)
        self.address = Web3.to_checksum_address(address)
        code = chain.w3.eth.get_code(self.address)
        if HexBytes(code) != HexBytes(self.artifact.deployed_bytecode):
            raise ChainError(
                f"the code at {self.address} is not the packaged {self.ARTIFACT} "
                "(wrong address, or a different build)"
            )
        self.contract: Contract = chain.w3.eth.contract(address=self.address, abi=self.artifact.abi)
        self.errors = ErrorDecoder(self.artifact.abi)

    @classmethod
    def deploy(cls, chain: Chain, sender: str) -> tuple[TasksContract, Receipt]:
        """Deploy a fresh contract from ``sender`` (a signed contract-creation transaction)."""
        artifact = load_artifact(cls.ARTIFACT)
        init_code = bytes(HexBytes(artifact.bytecode))
        raw = chain.signer(sender).transact(None, init_code, label=f"deploy {cls.ARTIFACT}")
        tx_hash = bytes(raw["transactionHash"])
        if raw["status"] != 1 or raw["contractAddress"] is None:
            raise ChainError(f"deployment transaction 0x{tx_hash.hex()} failed")
        receipt = Receipt(tx_hash, int(raw["blockNumber"]), int(raw["gasUsed"]))
        return cls(chain, raw["contractAddress"], artifact), receipt

    # -------------------------------------------------------------- plumbing

    def translate(self, exc: ContractLogicError | TransactionFailed) -> Exception:
        """Map a revert (web3 over JSON-RPC, or eth-tester in process) to a typed exception.

        Falls back to a generic :class:`ChainError` when the revert data is not one of the
        contract's custom errors.
        """
        data = _revert_data(exc)
        if data is not None:
            typed = self.errors.decode(data)
            if typed is not None:
                return typed
        return ChainError(f"contract call reverted: {exc}")

    def _send(self, fn_name: str, sender: str, *args: Any, value: int = 0) -> Receipt:
        """Encode ``fn_name(*args)``, sign it as ``sender`` and send it; the confirmed receipt.

        A revert found by the gas estimate (before anything is signed) becomes a typed
        :class:`~cipherfuse.chain.errors.ContractRevertError`.
        """
        if value < 0:
            raise ChainParameterError(f"value must be >= 0 wei, got {value}")
        data = bytes(HexBytes(self.contract.encode_abi(fn_name, args=list(args))))
        signer = self.chain.signer(sender)
        try:
            raw = signer.transact(self.address, data, value=value, label=fn_name)
        except (ContractLogicError, TransactionFailed) as exc:
            raise self.translate(exc) from exc
        tx_hash = bytes(raw["transactionHash"])
        if raw["status"] != 1:
            raise ChainError(f"{fn_name} transaction 0x{tx_hash.hex()} reverted on chain")
        return Receipt(tx_hash, int(raw["blockNumber"]), int(raw["gasUsed"]))

    def _call(self, fn_name: str, *args: Any) -> Any:
        try:
            return getattr(self.contract.functions, fn_name)(*args).call()
        except (ContractLogicError, TransactionFailed) as exc:
            raise self.translate(exc) from exc

    def _event_arg(self, receipt: Receipt, event: str, arg: str) -> Any:
        raw = self.chain.w3.eth.get_transaction_receipt(HexBytes(receipt.tx_hash))
        logs = getattr(self.contract.events, event)().process_receipt(raw)
        if len(logs) != 1:
            raise ChainError(f"expected one {event} event, found {len(logs)}")
        return logs[0]["args"][arg]

    # -------------------------------------------------------------- initiator

    def publish_task(
        self, sender: str, objective_uri: str, params: TaskParams, *, value: int | None = None
    ) -> tuple[int, Receipt]:
        """Publish a task, escrowing ``params.budget`` (or exactly ``value`` wei if given).

        Returns (task id, receipt).
        """
        if not objective_uri:
            raise ChainParameterError("objective_uri must be a non-empty URI or CID")
        paid = params.budget if value is None else value
        receipt = self._send("publishTask", sender, objective_uri, astuple(params), value=paid)
        return int(self._event_arg(receipt, "TaskPublished", "taskId")), receipt

    def reclaim_budget(self, sender: str, task_id: int) -> Receipt:
        """After expiry, credit the unspent escrow to the initiator."""
        return self._send("reclaimBudget", sender, task_id)

    # -------------------------------------------------------------- contributors

    def join_as_contributor(self, sender: str, task_id: int, deposit: int | None = None) -> Receipt:
        """Register as a contributor, paying the task's deposit (or ``deposit`` wei)."""
        value = self.get_task(task_id).contributor_deposit if deposit is None else deposit
        return self._send("joinAsContributor", sender, task_id, value=value)

    def leave_as_contributor(self, sender: str, task_id: int) -> Receipt:
        """Leave before claiming; the deposit is credited back."""
        return self._send("leaveAsContributor", sender, task_id)

    def submit_claim(
        self,
        sender: str,
        task_id: int,
        model_cid: str,
        model_hash: bytes,
        seed_commitment: bytes,
        envelope_commitment: bytes,
    ) -> tuple[int, Receipt]:
        """Claim with the encrypted model's CID and hash; returns (claim id, receipt)."""
        if not model_cid:
            raise ChainParameterError("model_cid must be a non-empty storage CID")
        receipt = self._send(
            "submitClaim",
            sender,
            task_id,
            model_cid,
            _bytes32(model_hash, "model_hash"),
            _bytes32(seed_commitment, "seed_commitment"),
            _bytes32(envelope_commitment, "envelope_commitment"),
        )
        return int(self._event_arg(receipt, "ClaimSubmitted", "claimId")), receipt

    def reveal_seed(self, sender: str, claim_id: int, seed: bytes) -> Receipt:
        """Reveal the claim seed, drawing the committee.

        Allowed once the latest block is past the claim's draw block (some nodes estimate
        gas against the latest block, so wait for ``draw_block + 1`` to be mined).
        """
        claim = self.get_claim(claim_id)
        return self._send(
            "revealSeed",
            sender,
            claim_id,
            _bytes32(seed, "seed"),
            claim.model_hash,
            claim.envelope_commitment,
        )

    def release_envelope(self, sender: str, claim_id: int, envelope: bytes) -> Receipt:
        """Release the model-decryption envelope of an accepted claim."""
        if not envelope:
            raise ChainParameterError("envelope must be non-empty bytes")
        claim = self.get_claim(claim_id)
        return self._send(
            "releaseEnvelope",
            sender,
            claim_id,
            bytes(envelope),
            claim.model_hash,
            claim.seed_commitment,
        )

    def forfeit_unreleased(self, sender: str, claim_id: int) -> Receipt:
        """After the release deadline, move an unreleased reward to the initiator."""
        return self._send("forfeitUnreleased", sender, claim_id)

    # -------------------------------------------------------------- verifiers

    def join_as_verifier(self, sender: str, task_id: int, deposit: int | None = None) -> Receipt:
        """Register as a verifier, paying the task's deposit (or ``deposit`` wei)."""
        value = self.get_task(task_id).verifier_deposit if deposit is None else deposit
        return self._send("joinAsVerifier", sender, task_id, value=value)

    def commit_vote(self, sender: str, claim_id: int, commitment: bytes) -> Receipt:
        """Commit a hidden vote (see :func:`vote_commitment`)."""
        return self._send("commitVote", sender, claim_id, _bytes32(commitment, "commitment"))

    def reveal_vote(self, sender: str, claim_id: int, accept: bool, salt: bytes) -> Receipt:
        """Reveal a committed vote."""
        return self._send("revealVote", sender, claim_id, bool(accept), _bytes32(salt, "salt"))

    def retire_verifier(self, sender: str, task_id: int) -> Receipt:
        """After expiry, take the verifier deposit back (no pending duty)."""
        return self._send("retireVerifier", sender, task_id)

    # -------------------------------------------------------------- anyone

    def settle_claim(self, sender: str, claim_id: int) -> Receipt:
        """Settle a claim (void, or tally its votes and pay the committee)."""
        return self._send("settleClaim", sender, claim_id)

    def withdraw(self, sender: str) -> Receipt:
        """Withdraw the sender's whole credit."""
        return self._send("withdraw", sender)

    # -------------------------------------------------------------- views

    def get_task(self, task_id: int) -> TaskInfo:
        """Stored state of a task."""
        raw = list(self._call("getTask", task_id))
        raw[0] = Web3.to_checksum_address(raw[0])
        raw[-1] = bytes(raw[-1])
        return TaskInfo(*raw)

    def get_claim(self, claim_id: int) -> ClaimInfo:
        """State of a claim, with its commitments read from its ``ClaimSubmitted`` event.

        Raises:
            ChainError: the event is missing or does not match the stored digest.
        """
        raw = list(self._call("getClaim", claim_id))
        raw[0] = Web3.to_checksum_address(raw[0])
        raw[2] = ClaimStatus(raw[2])
        digest = bytes(raw[10])
        claim_block = int(raw[6]) - 1
        logs = self.contract.events.ClaimSubmitted().get_logs(
            argument_filters={"claimId": claim_id}, from_block=claim_block, to_block=claim_block
        )
        if len(logs) != 1:
            raise ChainError(
                f"ClaimSubmitted event of claim {claim_id} not found in block {claim_block}"
            )
        args = logs[0]["args"]
        model_hash = bytes(args["modelHash"])
        seed_commit = bytes(args["seedCommitment"])
        envelope_commit = bytes(args["envelopeCommitment"])
        if commitments_digest(model_hash, seed_commit, envelope_commit) != digest:
            raise ChainError(f"claim {claim_id}: event commitments do not match the stored digest")
        return ClaimInfo(
            claimant=raw[0],
            task_id=int(raw[1]),
            status=raw[2],
            accept_votes=int(raw[3]),
            reject_votes=int(raw[4]),
            claimed_at=int(raw[5]),
            draw_block=int(raw[6]),
            commit_deadline=int(raw[7]),
            reveal_deadline=int(raw[8]),
            release_deadline=int(raw[9]),
            commitments_digest=digest,
            model_cid=str(args["modelCid"]),
            model_hash=model_hash,
            seed_commitment=seed_commit,
            envelope_commitment=envelope_commit,
        )

    def get_participant(self, task_id: int, account: str) -> ParticipantInfo:
        """A participant's record (all zero if the account has no role)."""
        role, state, duties, index, claim_id = self._call(
            "getParticipant", task_id, Web3.to_checksum_address(account)
        )
        return ParticipantInfo(Role(role), ParticipantState(state), duties, index, claim_id)

    def committee_of(self, claim_id: int) -> list[ChecksumAddress]:
        """Committee of a claim, in draw order (empty before the draw)."""
        return [Web3.to_checksum_address(a) for a in self._call("committeeOf", claim_id)]

    def ballot_of(self, claim_id: int, voter: str) -> tuple[bytes, BallotState]:
        """A member's (commitment, ballot state)."""
        commitment, state = self._call("ballotOf", claim_id, Web3.to_checksum_address(voter))
        return bytes(commitment), BallotState(state)

    def envelope_of(self, claim_id: int) -> bytes:
        """Envelope released for a claim (empty before release)."""
        return bytes(self._call("envelopeOf", claim_id))

    def credit_of(self, account: str) -> int:
        """Wei ``account`` may withdraw."""
        return int(self._call("creditOf", Web3.to_checksum_address(account)))

    def task_holdings(self, task_id: int) -> int:
        """Wei held for a task (escrow + reserved + deposits)."""
        return int(self._call("taskHoldings", task_id))

    def active_verifier_count(self, task_id: int) -> int:
        """Verifiers still eligible for committees."""
        return int(self._call("activeVerifierCount", task_id))

    def task_count(self) -> int:
        """Number of tasks published."""
        return int(self._call("taskCount"))

    def balance(self) -> int:
        """ETH balance of the contract, in wei."""
        return int(self.chain.w3.eth.get_balance(self.address))
