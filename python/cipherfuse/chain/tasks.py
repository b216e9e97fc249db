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
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from cipherfuse.chain.abicodec import FunctionCodec, abi_type
from cipherfuse.chain.artifacts import Artifact, load_artifact
from cipherfuse.chain.backends import Chain
from cipherfuse.chain.errors import ChainError, ChainParameterError, ErrorDecoder
from cipherfuse.chain.gaslimits import gas_limit

_UINT_LIMITS = {8: 2**8, 16: 2**16, 32: 2**32, 64: 2**64, 96: 2**96}

#: Longest endpoint and key box the contract accepts (its MAX_ENDPOINT_BYTES, MAX_KEY_BOX_BYTES).
MAX_ENDPOINT_BYTES = 128
MAX_KEY_BOX_BYTES = 256
#: Claims whose ``ClaimSubmitted`` arguments a client keeps (oldest dropped first).
MAX_CACHED_CLAIMS = 4096


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
    RELEASE_PENDING = 9


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
    ABORT = 5


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
    open_claims: int
    committee_size: int
    min_accuracy_bps: int
    unsettled_claims: int
    slash_count: int
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
    ``model_size`` is the byte size the claimant committed to (judges refuse a larger blob
    before fetching it); ``pool_epoch`` the task's slash count at claim time (the pool the
    draw uses); ``entropy`` the captured draw-block hash before the draw, its randomness after.
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
    model_size: int
    pool_epoch: int
    boxes_posted: bool
    abort_votes: int
    commitments_digest: bytes
    entropy: bytes
    model_cid: str
    model_hash: bytes
    seed_commitment: bytes
    envelope_commitment: bytes


@dataclass(frozen=True)
class ParticipantInfo:
    """A participant's record in one task."""

    role: Role
    state: ParticipantState
    verifier_index: int
    slash_seq: int
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
    """The ``b'...'`` literal eth-tester puts in some revert messages (parsed, not eval'd).

    Every ``b'``/``b"`` position is tried in order: the escaped bytes of a literal can
    themselves contain ``b'`` (``\\x8b'``), which is not where the literal starts.
    """
    starts = sorted(
        i for i in range(len(message) - 1) if message[i] == "b" and message[i + 1] in "'\""
    )
    for start in starts:
        try:
            value = ast.literal_eval(message[start:])
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, bytes):
            return value
    return None


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


#: The contract's ``ABORT_VOTE``: stands in for the vote in an abort commitment.
ABORT_VOTE = keccak(b"cipherfuse.abort-vote")


def abort_commitment(claim_id: int, voter: str, salt: bytes) -> bytes:
    """``keccak256(abi.encode(claimId, voter, ABORT_VOTE, salt))``, a hidden abort."""
    return keccak(
        abi_encode(
            ["uint256", "address", "bytes32", "bytes32"],
            [claim_id, Web3.to_checksum_address(voter), ABORT_VOTE, _bytes32(salt, "salt")],
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


def envelope_commitment(task_id: int, claimant: str, envelope: bytes) -> bytes:
    """``keccak256(abi.encode(taskId, claimant, keccak256(envelope)))``: the claim's envelope
    commitment, bound to its task and claimant (the contract's ``envelopeCommitmentOf``).

    Committed at claim time, checked by the judges against the boxed key (with the claim's own
    task id and claimant, so a commitment copied from another claim fails) and at release.
    """
    if not isinstance(envelope, bytes | bytearray) or len(envelope) == 0:
        raise ChainParameterError("envelope must be non-empty bytes")
    return keccak(
        abi_encode(
            ["uint256", "address", "bytes32"],
            [task_id, Web3.to_checksum_address(claimant), keccak(bytes(envelope))],
        )
    )


class TasksContract:
    """One deployment of ``CipherfuseTasks`` on a :class:`Chain`."""

    ARTIFACT = "CipherfuseTasks"

    #: Send transactions with the fixed limits of :mod:`cipherfuse.chain.gaslimits` (False:
    #: let the node estimate every transaction, as a baseline for benchmarks).
    fixed_gas_limits: bool = True
    #: Check a fixed-limit transaction with ``eth_call`` before signing it, so that a revert
    #: raises its typed error with nothing sent (as the node's estimate did). None (the
    #: default): only on ``"rpc"`` chains, where a reverted transaction costs real ether; on
    #: dev chains a revert is mined and replayed instead (one execution, not two).
    preflight: bool | None = None

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
        self.codec = FunctionCodec(self.artifact.abi)
        self._event_topics = {
            str(e["name"]): keccak(
                text=f"{e['name']}({','.join(abi_type(i) for i in e['inputs'])})"
            )
            for e in self.artifact.abi
            if e.get("type") == "event"
        }
        #: Each event's non-indexed arguments (its log data): names and ABI types.
        self._event_data = {
            str(e["name"]): (
                tuple(str(i["name"]) for i in e["inputs"] if not i.get("indexed")),
                tuple(abi_type(i) for i in e["inputs"] if not i.get("indexed")),
            )
            for e in self.artifact.abi
            if e.get("type") == "event"
        }
        self._committee_sizes: dict[int, int] = {}
        #: ``ClaimSubmitted`` arguments by (claim id, claimant, draw block, stored digest):
        #: see :meth:`get_claim`.
        self._claim_args: dict[tuple[int, str, int, bytes], Any] = {}

    @classmethod
    def deploy(cls, chain: Chain, sender: str) -> tuple[TasksContract, Receipt]:
        """Deploy a fresh contract from ``sender`` (a signed contract-creation transaction,
        with the fixed limit of :mod:`~cipherfuse.chain.gaslimits`: its gas depends only on
        the packaged bytecode)."""
        artifact = load_artifact(cls.ARTIFACT)
        init_code = bytes(HexBytes(artifact.bytecode))
        gas = gas_limit("deploy") if cls.fixed_gas_limits else None
        raw = chain.signer(sender).transact(
            None, init_code, gas=gas, label=f"deploy {cls.ARTIFACT}"
        )
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

    def _send(
        self,
        fn_name: str,
        sender: str,
        *args: Any,
        value: int = 0,
        gas: int | None = None,
    ) -> Receipt:
        """Encode ``fn_name(*args)``, sign it as ``sender`` and send it; the confirmed receipt.

        See :meth:`_transact` (which also returns the node's receipt, with the logs).
        """
        return self._transact(fn_name, sender, *args, value=value, gas=gas)[0]

    def _transact(
        self,
        fn_name: str,
        sender: str,
        *args: Any,
        value: int = 0,
        gas: int | None = None,
    ) -> tuple[Receipt, Any]:
        """Encode ``fn_name(*args)``, sign it as ``sender`` and send it; the confirmed receipt
        and the node's raw receipt.

        ``gas`` is the function's fixed limit (:mod:`~cipherfuse.chain.gaslimits`); with
        None, or with ``fixed_gas_limits`` off, the node estimates it, and a revert found
        by the estimate (before anything is signed) becomes a typed
        :class:`~cipherfuse.chain.errors.ContractRevertError`. A fixed limit skips that
        estimate: with :attr:`preflight_enabled` one ``eth_call`` finds the revert before
        signing instead; otherwise a transaction that reverts on chain is replayed with
        ``eth_call`` against the state before its block to recover the contract's error.
        """
        if value < 0:
            raise ChainParameterError(f"value must be >= 0 wei, got {value}")
        data = self.codec.encode(fn_name, args)
        signer = self.chain.signer(sender)
        gas_limit = gas if gas is not None and self.fixed_gas_limits else None
        if gas_limit is not None and self.preflight_enabled:
            call_tx: dict[str, Any] = {
                "from": Web3.to_checksum_address(sender),
                "to": self.address,
                "value": value,
                "data": HexBytes(data),
            }
            try:
                self.chain.w3.eth.call(cast(Any, call_tx), block_identifier="latest")
            except (ContractLogicError, TransactionFailed) as exc:
                raise self.translate(exc) from exc
        try:
            raw = signer.transact(self.address, data, value=value, gas=gas_limit, label=fn_name)
        except (ContractLogicError, TransactionFailed) as exc:
            raise self.translate(exc) from exc
        tx_hash = bytes(raw["transactionHash"])
        if raw["status"] != 1:
            block = int(raw["blockNumber"])
            replay: dict[str, Any] = {
                "from": Web3.to_checksum_address(sender),
                "to": self.address,
                "value": value,
                "data": HexBytes(data),
            }
            try:
                self.chain.w3.eth.call(cast(Any, replay), block_identifier=block - 1)
            except (ContractLogicError, TransactionFailed) as exc:
                raise self.translate(exc) from exc
            raise ChainError(
                f"{fn_name} transaction 0x{tx_hash.hex()} reverted on chain (gas used "
                f"{int(raw['gasUsed'])} of {gas_limit}); out of gas, or the state changed in "
                "its block"
            )
        return Receipt(tx_hash, int(raw["blockNumber"]), int(raw["gasUsed"])), raw

    @property
    def preflight_enabled(self) -> bool:
        """Whether fixed-limit transactions are checked with ``eth_call`` first (see
        :attr:`preflight`)."""
        return self.chain.kind == "rpc" if self.preflight is None else self.preflight

    def _committee_size(self, task_id: int) -> int:
        size = self._committee_sizes.get(task_id)
        if size is None:
            size = self.get_task(task_id).committee_size
            self._committee_sizes[task_id] = size
        return size

    def _call(self, fn_name: str, *args: Any) -> Any:
        """The result of the view ``fn_name(*args)`` at the latest block (see
        :class:`~cipherfuse.chain.abicodec.FunctionCodec` for the Python types)."""
        data = self.codec.encode(fn_name, args)
        try:
            out = self.chain.call(self.address, data)
        except (ContractLogicError, TransactionFailed) as exc:
            raise self.translate(exc) from exc
        return self.codec.decode(fn_name, out)

    def _one_log(self, raw_receipt: Any, event: str) -> Any:
        """The log of the one ``event`` this contract emitted in a transaction."""
        topic0 = self._event_topics[event]
        found = [
            log
            for log in raw_receipt["logs"]
            if Web3.to_checksum_address(log["address"]) == self.address
            and log["topics"]
            and bytes(log["topics"][0]) == topic0
        ]
        if len(found) != 1:
            raise ChainError(f"expected one {event} event, found {len(found)}")
        return found[0]

    def _indexed_uint(self, raw_receipt: Any, event: str, topic_index: int) -> int:
        """An indexed ``uint`` argument (topic ``topic_index``) of the one ``event`` this
        contract emitted in a transaction, read from its receipt's logs."""
        log = self._one_log(raw_receipt, event)
        return int.from_bytes(bytes(log["topics"][topic_index]), "big")

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
        gas = gas_limit("publishTask", payload_bytes=len(objective_uri.encode()))
        receipt, raw = self._transact(
            "publishTask", sender, objective_uri, astuple(params), value=paid, gas=gas
        )
        task_id = self._indexed_uint(raw, "TaskPublished", 1)
        self._committee_sizes[task_id] = params.committee_size  # fixed for the task's life
        return task_id, receipt

    def reclaim_budget(self, sender: str, task_id: int) -> Receipt:
        """After expiry, credit the unspent escrow to the initiator."""
        return self._send("reclaimBudget", sender, task_id, gas=gas_limit("reclaimBudget"))

    # -------------------------------------------------------------- contributors

    def join_as_contributor(self, sender: str, task_id: int, deposit: int | None = None) -> Receipt:
        """Register as a contributor, paying the task's deposit (or ``deposit`` wei)."""
        value = self.get_task(task_id).contributor_deposit if deposit is None else deposit
        return self._send(
            "joinAsContributor", sender, task_id, value=value, gas=gas_limit("joinAsContributor")
        )

    def leave_as_contributor(self, sender: str, task_id: int) -> Receipt:
        """Leave before claiming; the deposit is credited back."""
        return self._send(
            "leaveAsContributor", sender, task_id, gas=gas_limit("leaveAsContributor")
        )

    def submit_claim(
        self,
        sender: str,
        task_id: int,
        model_cid: str,
        model_hash: bytes,
        model_size: int,
        seed_commitment: bytes,
        envelope_commitment: bytes,
    ) -> tuple[int, Receipt]:
        """Claim with the encrypted model's CID, hash and byte size; returns (claim id, receipt).

        ``envelope_commitment`` must be :func:`envelope_commitment` of this task, this sender
        and the envelope; ``seed_commitment`` :func:`seed_commitment` of the same.
        """
        if not model_cid:
            raise ChainParameterError("model_cid must be a non-empty storage CID")
        if not isinstance(model_size, int) or not 0 < model_size < _UINT_LIMITS[64]:
            raise ChainParameterError(f"model_size must be in [1, 2**64), got {model_size!r}")
        receipt, raw = self._transact(
            "submitClaim",
            sender,
            task_id,
            model_cid,
            _bytes32(model_hash, "model_hash"),
            model_size,
            _bytes32(seed_commitment, "seed_commitment"),
            _bytes32(envelope_commitment, "envelope_commitment"),
            gas=gas_limit("submitClaim", payload_bytes=len(model_cid.encode())),
        )
        return self._indexed_uint(raw, "ClaimSubmitted", 2), receipt

    def capture_draw_hash(self, sender: str, claim_id: int) -> Receipt:
        """Store the draw block's hash while it is within the 256-block horizon (anyone)."""
        return self._send("captureDrawHash", sender, claim_id, gas=gas_limit("captureDrawHash"))

    def reanchor_draw(self, sender: str, claim_id: int) -> Receipt:
        """Move an uncaptured draw whose block left the horizon to the next block (anyone)."""
        return self._send("reanchorDraw", sender, claim_id, gas=gas_limit("reanchorDraw"))

    def reveal_seed(self, sender: str, claim_id: int, seed: bytes) -> Receipt:
        """Reveal the claim seed, drawing the committee (see :meth:`draw_committee`, which
        also returns the drawn members)."""
        return self.draw_committee(sender, claim_id, seed)[1]

    def draw_committee(
        self, sender: str, claim_id: int, seed: bytes
    ) -> tuple[list[ChecksumAddress], Receipt]:
        """Reveal the claim seed, drawing the committee; the members in draw order (from
        the transaction's ``CommitteeDrawn`` event, so no further read) and the receipt.

        Allowed once the latest block is past the claim's draw block (some nodes estimate
        gas against the latest block, so wait for ``draw_block + 1`` to be mined). Estimated
        when the claim's pool has slashed verifiers (the draw then visits more positions).
        """
        claim = self.get_claim(claim_id)
        gas = None
        if claim.pool_epoch == 0:
            gas = gas_limit("revealSeed", committee_size=self._committee_size(claim.task_id))
        receipt, raw = self._transact(
            "revealSeed",
            sender,
            claim_id,
            _bytes32(seed, "seed"),
            claim.model_hash,
            claim.envelope_commitment,
            gas=gas,
        )
        log = self._one_log(raw, "CommitteeDrawn")
        if int.from_bytes(bytes(log["topics"][1]), "big") != claim_id:
            raise ChainError(f"the CommitteeDrawn event of claim {claim_id} names another claim")
        members = self._event_args(log, "CommitteeDrawn", claim_id)["members"]
        return [Web3.to_checksum_address(m) for m in members], receipt

    def post_key_boxes(self, sender: str, claim_id: int, boxes: list[bytes]) -> Receipt:
        """Post one key box per committee member (draw order; only the claimant, once)."""
        for i, box in enumerate(boxes):
            if not isinstance(box, bytes | bytearray) or not 0 < len(box) <= MAX_KEY_BOX_BYTES:
                raise ChainParameterError(f"key box {i} must be 1..{MAX_KEY_BOX_BYTES} bytes")
        payload = sum(len(b) for b in boxes)
        gas = gas_limit("postKeyBoxes", committee_size=len(boxes), payload_bytes=payload)
        return self._send("postKeyBoxes", sender, claim_id, [bytes(b) for b in boxes], gas=gas)

    def commit_release(self, sender: str, claim_id: int) -> Receipt:
        """Lock the release of an accepted claim (no forfeit afterwards); send no secret."""
        return self._send("commitRelease", sender, claim_id, gas=gas_limit("commitRelease"))

    def release_envelope(
        self, sender: str, claim_id: int, envelope: bytes, *, require_lock: bool = True
    ) -> Receipt:
        """Release the model-decryption envelope of a claim whose release is locked.

        Send this only after :meth:`commit_release` (or settling one's own accepted claim)
        was mined: until then the claim can still be forfeited, and an envelope seen in the
        mempool would hand over the model anyway. The client refuses to send it earlier
        (``require_lock=False`` skips that check; only tests of the contract's own refusal
        need it).
        """
        if not envelope:
            raise ChainParameterError("envelope must be non-empty bytes")
        claim = self.get_claim(claim_id)
        if require_lock and claim.status != ClaimStatus.RELEASE_PENDING:
            raise ChainParameterError(
                f"claim {claim_id} is {claim.status.name}, not RELEASE_PENDING: lock the release "
                "with commit_release first (the envelope must not be sent before that)"
            )
        return self._send(
            "releaseEnvelope",
            sender,
            claim_id,
            bytes(envelope),
            claim.model_hash,
            claim.seed_commitment,
            gas=gas_limit("releaseEnvelope", payload_bytes=len(envelope)),
        )

    def forfeit_unreleased(self, sender: str, claim_id: int) -> Receipt:
        """After the release deadline (or the lapse of a locked release), forfeit the claim."""
        return self._send("forfeitUnreleased", sender, claim_id, gas=gas_limit("forfeitUnreleased"))

    # -------------------------------------------------------------- verifiers

    def join_as_verifier(
        self,
        sender: str,
        task_id: int,
        box_key: bytes,
        endpoint: bytes = b"",
        deposit: int | None = None,
    ) -> Receipt:
        """Register as a verifier with its X25519 box key and committee endpoint.

        Pays the task's deposit (or ``deposit`` wei). ``endpoint`` (at most 128 bytes, e.g.
        ``b"host:port"``) may be empty when the verifier offers no committee channel.
        """
        key = _bytes32(box_key, "box_key")
        if not isinstance(endpoint, bytes | bytearray) or len(endpoint) > MAX_ENDPOINT_BYTES:
            raise ChainParameterError(f"endpoint must be at most {MAX_ENDPOINT_BYTES} bytes")
        value = self.get_task(task_id).verifier_deposit if deposit is None else deposit
        gas = gas_limit("joinAsVerifier", payload_bytes=len(endpoint))
        return self._send(
            "joinAsVerifier", sender, task_id, key, bytes(endpoint), value=value, gas=gas
        )

    def commit_vote(self, sender: str, claim_id: int, commitment: bytes) -> Receipt:
        """Commit a hidden vote (see :func:`vote_commitment`)."""
        return self._send(
            "commitVote",
            sender,
            claim_id,
            _bytes32(commitment, "commitment"),
            gas=gas_limit("commitVote"),
        )

    def reveal_vote(self, sender: str, claim_id: int, accept: bool, salt: bytes) -> Receipt:
        """Reveal a committed vote."""
        return self._send(
            "revealVote",
            sender,
            claim_id,
            bool(accept),
            _bytes32(salt, "salt"),
            gas=gas_limit("revealVote"),
        )

    def reveal_abort(self, sender: str, claim_id: int, salt: bytes) -> Receipt:
        """Reveal a committed abort (the member could not judge; see ``revealAbort``)."""
        return self._send(
            "revealAbort", sender, claim_id, _bytes32(salt, "salt"), gas=gas_limit("revealAbort")
        )

    def retire_verifier(self, sender: str, task_id: int) -> Receipt:
        """After expiry, once every claim is settled, take the verifier deposit back."""
        return self._send("retireVerifier", sender, task_id, gas=gas_limit("retireVerifier"))

    # -------------------------------------------------------------- anyone

    def settle_claim(self, sender: str, claim_id: int) -> Receipt:
        """Settle a claim (void, or tally its votes and pay the committee).

        Settling one's own accepted claim also locks its release (see :meth:`commit_release`).
        """
        raw = self._call("getClaim", claim_id)
        task_id, pool_epoch = int(raw[1]), int(raw[11])
        gas = None
        if pool_epoch == 0:
            gas = gas_limit("settleClaim", committee_size=self._committee_size(task_id))
        return self._send("settleClaim", sender, claim_id, gas=gas)

    def withdraw(self, sender: str) -> Receipt:
        """Withdraw the sender's whole credit."""
        return self._send("withdraw", sender, gas=gas_limit("withdraw"))

    # -------------------------------------------------------------- views

    def get_task(self, task_id: int) -> TaskInfo:
        """Stored state of a task."""
        raw = list(self._call("getTask", task_id))
        raw[0] = Web3.to_checksum_address(raw[0])
        raw[-1] = bytes(raw[-1])
        return TaskInfo(*raw)

    def _claim_events(self, claim_id: int, from_block: int, to_block: int | str) -> list[Any]:
        """Data arguments (by ABI name) of this contract's ``ClaimSubmitted`` events for
        ``claim_id`` in a block range, read with ``eth_getLogs`` and decoded with eth-abi."""
        topics = ["0x" + self._event_topics["ClaimSubmitted"].hex(), None, f"0x{claim_id:064x}"]
        logs = self.chain.w3.eth.get_logs(
            cast(
                Any,
                {
                    "address": self.address,
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "topics": topics,
                },
            )
        )
        return [self._event_args(log, "ClaimSubmitted", claim_id) for log in logs]

    def _event_args(self, log: Any, event: str, claim_id: int) -> dict[str, Any]:
        """The non-indexed arguments of ``event``'s ``log`` by name (a typed
        :class:`ChainError` if its data does not decode)."""
        names, types = self._event_data[event]
        try:
            values = abi_decode(list(types), bytes(log["data"]))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise ChainError(f"undecodable {event} event of claim {claim_id}") from exc
        return dict(zip(names, values, strict=True))

    def _claim_event(self, claim_id: int, claim_block: int) -> Any:
        logs = self._claim_events(claim_id, claim_block, claim_block)
        if len(logs) != 1:
            raise ChainError(
                f"ClaimSubmitted event of claim {claim_id} not found in block {claim_block}"
            )
        return logs[0]

    def get_claim(self, claim_id: int) -> ClaimInfo:
        """State of a claim, with its commitments read from its ``ClaimSubmitted`` event.

        Raises:
            ChainError: the event is missing or does not match the stored digest.
        """
        raw = list(self._call("getClaim", claim_id))
        (claimant, task_id, status, accepts, rejects, claimed_at, draw_block, commit_deadline,
         reveal_deadline, release_deadline, model_size, pool_epoch, boxes_posted, aborts,
         digest, entropy) = raw  # fmt: skip
        digest = bytes(digest)
        key = (int(claim_id), str(claimant).lower(), int(draw_block), digest)
        args = self._claim_args.get(key)
        if args is None:
            # The claim's event is in the block before its draw block (unless re-anchored).
            args = self._find_claim_event(claim_id, int(draw_block))
        model_hash = bytes(args["modelHash"])
        seed_commit = bytes(args["seedCommitment"])
        envelope_commit = bytes(args["envelopeCommitment"])
        if commitments_digest(model_hash, seed_commit, envelope_commit) != digest:
            raise ChainError(f"claim {claim_id}: event commitments do not match the stored digest")
        if key not in self._claim_args:
            if len(self._claim_args) >= MAX_CACHED_CLAIMS:
                self._claim_args.pop(next(iter(self._claim_args)))
            self._claim_args[key] = args
        return ClaimInfo(
            claimant=Web3.to_checksum_address(claimant),
            task_id=int(task_id),
            status=ClaimStatus(status),
            accept_votes=int(accepts),
            reject_votes=int(rejects),
            claimed_at=int(claimed_at),
            draw_block=int(draw_block),
            commit_deadline=int(commit_deadline),
            reveal_deadline=int(reveal_deadline),
            release_deadline=int(release_deadline),
            model_size=int(model_size),
            pool_epoch=int(pool_epoch),
            boxes_posted=bool(boxes_posted),
            abort_votes=int(aborts),
            commitments_digest=digest,
            entropy=bytes(entropy),
            model_cid=str(args["modelCid"]),
            model_hash=model_hash,
            seed_commitment=seed_commit,
            envelope_commitment=envelope_commit,
        )

    def _find_claim_event(self, claim_id: int, draw_block: int) -> Any:
        """The claim's event: in the block before its draw block, or (after a re-anchor moved
        the draw block) anywhere in the history, found by its indexed claim id.

        :meth:`get_claim` keeps what it found under the claim's id, claimant, draw block
        and stored commitments digest, all read fresh from the contract on every call: a
        reorg or a snapshot revert that puts another claim behind the id changes the key
        (the digest binds model hash, seed and envelope commitments, and through them task
        and claimant), so a cached event is only ever used for the claim it came from. (The
        model CID is not in the digest: the same claimant re-sending the same commitments
        under another CID after a reorg would keep the first CID; either names content that
        must hash to the committed model hash, which every reader checks.)"""
        try:
            return self._claim_event(claim_id, draw_block - 1)
        except ChainError:
            logs = self._claim_events(claim_id, 0, "latest")
            if len(logs) != 1:
                raise
            return logs[0]

    def get_participant(self, task_id: int, account: str) -> ParticipantInfo:
        """A participant's record (all zero if the account has no role)."""
        role, state, index, slash_seq, claim_id = self._call(
            "getParticipant", task_id, Web3.to_checksum_address(account)
        )
        return ParticipantInfo(Role(role), ParticipantState(state), index, slash_seq, claim_id)

    def verifier_key_of(self, task_id: int, verifier: str) -> tuple[bytes, bytes]:
        """A verifier's registered (box key, endpoint); (32 zero bytes, b"") if none."""
        key, endpoint = self._call("verifierKeyOf", task_id, Web3.to_checksum_address(verifier))
        return bytes(key), bytes(endpoint)

    def verifier_count(self, task_id: int) -> int:
        """Verifiers registered in the task's pool (slashed ones included)."""
        return int(self._call("verifierCount", task_id))

    def verifier_at(self, task_id: int, index: int) -> ChecksumAddress:
        """The verifier at a pool position."""
        return Web3.to_checksum_address(self._call("verifierAt", task_id, index))

    def claim_of_model(self, task_id: int, model_hash: bytes) -> int:
        """Claim id that claimed ``model_hash`` in the task (0 if none)."""
        return int(self._call("claimOfModel", task_id, _bytes32(model_hash, "model_hash")))

    def committee_of(self, claim_id: int) -> list[ChecksumAddress]:
        """Committee of a claim, in draw order (empty before the draw)."""
        return [Web3.to_checksum_address(a) for a in self._call("committeeOf", claim_id)]

    def ballot_of(self, claim_id: int, voter: str) -> tuple[bytes, BallotState]:
        """A member's (commitment, ballot state)."""
        commitment, state = self._call("ballotOf", claim_id, Web3.to_checksum_address(voter))
        return bytes(commitment), BallotState(state)

    def key_boxes_of(self, claim_id: int) -> dict[str, bytes]:
        """Key boxes the claimant posted, by committee member (empty before they are posted).

        Read from the claim's ``KeyBoxesPosted`` event (the contract accepts one such event per
        claim, from the claimant only), matched to :meth:`committee_of`.
        """
        logs = self.contract.events.KeyBoxesPosted().get_logs(
            argument_filters={"claimId": claim_id}, from_block=self._claim_block(claim_id)
        )
        if not logs:
            return {}
        if len(logs) != 1:
            raise ChainError(f"claim {claim_id} has {len(logs)} KeyBoxesPosted events")
        boxes = [bytes(b) for b in logs[0]["args"]["boxes"]]
        members = self.committee_of(claim_id)
        if len(boxes) != len(members):
            raise ChainError(f"claim {claim_id}: {len(boxes)} key boxes for {len(members)} members")
        return dict(zip(members, boxes, strict=True))

    def envelope_of(self, claim_id: int) -> bytes:
        """Envelope released for a claim (empty before release), from ``EnvelopeReleased``."""
        logs = self.contract.events.EnvelopeReleased().get_logs(
            argument_filters={"claimId": claim_id}, from_block=self._claim_block(claim_id)
        )
        if not logs:
            return b""
        return bytes(logs[-1]["args"]["envelope"])

    def _claim_block(self, claim_id: int) -> int:
        """First block that can hold a claim's draw-time events (its current draw block)."""
        return int(self._call("getClaim", claim_id)[6])

    def credit_of(self, account: str) -> int:
        """Wei ``account`` may withdraw."""
        return int(self._call("creditOf", Web3.to_checksum_address(account)))

    def task_holdings(self, task_id: int) -> int:
        """Wei held for a task (escrow + reserved + deposits)."""
        return int(self._call("taskHoldings", task_id))

    def active_verifier_count(self, task_id: int) -> int:
        """Verifiers still eligible for committees of new claims."""
        return int(self._call("activeVerifierCount", task_id))

    def burned(self) -> int:
        """Wei burned by lapsed releases (held by the contract, owned by nobody)."""
        return int(self._call("burned"))

    def task_count(self) -> int:
        """Number of tasks published."""
        return int(self._call("taskCount"))

    def balance(self) -> int:
        """ETH balance of the contract, in wei."""
        return int(self.chain.w3.eth.get_balance(self.address))
