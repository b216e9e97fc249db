"""Reference task life cycle with a per-function gas report.

:func:`run_reference_lifecycle` deploys the contract and runs one complete task on any
:class:`~cipherfuse.chain.backends.Chain` with dev controls: 1 initiator, ``verifiers``
verifiers (each registering a box key and an endpoint), ``contributors`` contributors who all
claim, committee size 3, each claimant posts its three 228-byte key boxes, everyone votes to
accept, each claimant settles its own claim (which locks its release) and releases its
envelope, the initiator reclaims the rest after expiry, verifiers retire, and everybody
withdraws. It returns the gas of every transaction by function, and checks the end state
(contract empty), so a benchmark can use it as its correctness check.
:func:`gas_per_added_claim` is the difference between the totals of two such life cycles
with one contributor more: everything one more claim costs. :func:`run_anchor_lifecycle` sends
the same transactions (senders, order, count) to the ``MinimalAnchor`` test contract, which
only stores one digest per call: the chain's and the signing client's floor that the
reference life cycle's run time is compared with in ``bench/bench_chain.py``.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3

from cipherfuse.chain.abicodec import FunctionCodec
from cipherfuse.chain.artifacts import load_artifact
from cipherfuse.chain.backends import Chain
from cipherfuse.chain.errors import ChainError, ChainParameterError
from cipherfuse.chain.tasks import (
    Receipt,
    TaskParams,
    TasksContract,
    envelope_commitment,
    seed_commitment,
    vote_commitment,
)

#: Per-call gas measured for a minimal lifecycle contract (no committee draw, no envelope);
#: the issue's target is every per-participant call within 1.5x of these.
REFERENCE_GAS = {
    "publishTask": 183_000,
    "joinAsContributor": 78_000,
    "joinAsVerifier": 78_000,
    "submitClaim": 103_000,
    "commitVote": 53_000,
    "revealVote": 87_000,
    "settleClaim": 210_000,
    "withdraw": 30_000,
}
TARGET_FACTOR = 1.5

#: Gas one more claim costs in the minimal lifecycle contract: join + claim + three commits
#: + three reveals + withdraw (631,000); the target for ours is within 1.3x of it.
MINIMAL_GAS_PER_CLAIM = (
    REFERENCE_GAS["joinAsContributor"]
    + REFERENCE_GAS["submitClaim"]
    + 3 * (REFERENCE_GAS["commitVote"] + REFERENCE_GAS["revealVote"])
    + REFERENCE_GAS["withdraw"]
)
PER_CLAIM_TARGET_FACTOR = 1.3

#: Registration carries the key directory (box key + endpoint: two more stored slots), so its
#: target is the minimal contract's 78,000 plus those two slots (2 x 22,100), times 1.5.
KEY_DIRECTORY_GAS = 2 * 22_100

#: Size of a key box of the default (secure) mode: ``cipherfuse.roles.sealing.make_key_box``
#: (magic, ephemeral key, nonce, tag) around a member's 162-byte secret (two 32-byte secrets
#: and one release piece, ``cipherfuse.roles.secure.BOX_SECRET_BYTES``); checked against the
#: roles in ``tests/roles/test_roles_secure.py``.
KEY_BOX_BYTES = 228
#: Size of the default (secure) mode's release envelope (magic and three release pieces,
#: ``cipherfuse.roles.secure.ENVELOPE_BYTES``).
ENVELOPE_BYTES = 300

_WINDOW = 100


def _b32(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


@dataclass
class GasReport:
    """Gas used per contract function over one life cycle."""

    calls: dict[str, list[int]] = field(default_factory=dict)

    def add(self, function: str, receipt: Receipt) -> None:
        """Record one transaction."""
        self.calls.setdefault(function, []).append(receipt.gas_used)

    @property
    def transactions(self) -> int:
        """Number of transactions recorded."""
        return sum(len(v) for v in self.calls.values())

    @property
    def total(self) -> int:
        """Total gas of the life cycle."""
        return sum(sum(v) for v in self.calls.values())

    def median(self, function: str) -> int:
        """Median gas of ``function``."""
        return int(statistics.median(self.calls[function]))

    def over_target(self) -> dict[str, tuple[int, int]]:
        """Functions whose median exceeds 1.5x the reference: name -> (median, limit)."""
        out = {}
        for name, ref in REFERENCE_GAS.items():
            limit = _target(name, ref)
            if name in self.calls and self.median(name) > limit:
                out[name] = (self.median(name), limit)
        return out

    def table(self) -> str:
        """Human-readable table: function, calls, min, median, max, target."""
        lines = [f"{'function':<20}{'calls':>6}{'min':>10}{'median':>10}{'max':>10}{'target':>10}"]
        for name in sorted(self.calls):
            gas = self.calls[name]
            ref = REFERENCE_GAS.get(name)
            target = f"{_target(name, ref):>10}" if ref else f"{'-':>10}"
            lines.append(
                f"{name:<20}{len(gas):>6}{min(gas):>10}{self.median(name):>10}{max(gas):>10}{target}"
            )
        lines.append(f"{'total':<20}{self.transactions:>6}{'':>30}{self.total:>10}")
        return "\n".join(lines)


def _target(name: str, ref: int) -> int:
    extra = KEY_DIRECTORY_GAS if name == "joinAsVerifier" else 0
    return int((ref + extra) * TARGET_FACTOR)


def gas_per_added_claim(with_n: GasReport, with_n_plus_one: GasReport) -> int:
    """Gas one more contributor's claim adds: the difference of two life-cycle totals."""
    return with_n_plus_one.total - with_n.total


def run_reference_lifecycle(
    chain: Chain, *, verifiers: int = 3, contributors: int = 3
) -> GasReport:
    """Run one complete task (see module doc) and return its gas report.

    Raises:
        ChainParameterError: not enough accounts on the chain.
        ChainError: the life cycle did not end as expected.
    """
    accounts = chain.accounts
    if verifiers < 3 or contributors < 1:
        raise ChainParameterError("need verifiers >= 3 (committee size) and contributors >= 1")
    if len(accounts) < 1 + verifiers + contributors:
        raise ChainParameterError(
            f"the chain has {len(accounts)} accounts; need {1 + verifiers + contributors}"
        )
    report = GasReport()
    initiator = accounts[0]
    vers = accounts[1 : 1 + verifiers]
    cons = accounts[1 + verifiers : 1 + verifiers + contributors]
    tasks, deploy = TasksContract.deploy(chain, initiator)
    report.add("deploy", deploy)
    params = TaskParams(
        min_accuracy_bps=9_000,
        committee_size=3,
        max_claims=contributors,
        reward_per_model=10**18,
        verifier_fee=10**16,
        contributor_deposit=10**18,
        verifier_deposit=2 * 10**17,
        join_window=_WINDOW,
        claim_window=_WINDOW,
        draw_window=_WINDOW,
        commit_window=_WINDOW,
        reveal_window=_WINDOW,
        release_window=_WINDOW,
    )
    task_id, receipt = tasks.publish_task(initiator, "ipfs://reference-objective", params)
    report.add("publishTask", receipt)
    # The participants read the published task once (deposits and deadlines are fixed).
    info = tasks.get_task(task_id)
    for v in vers:
        box_key, endpoint = _b32(f"box{v}"), f"10.0.0.{vers.index(v) + 1}:7400".encode()
        receipt = tasks.join_as_verifier(
            v, task_id, box_key, endpoint, deposit=info.verifier_deposit
        )
        report.add("joinAsVerifier", receipt)
    for c in cons:
        receipt = tasks.join_as_contributor(c, task_id, deposit=info.contributor_deposit)
        report.add("joinAsContributor", receipt)
    chain.advance_time(max(1, info.join_end - chain.timestamp()))
    claims = []
    for c in cons:
        seed, envelope = _b32(f"seed{c}"), (b"envelope" + _b32(f"env{c}") * 10)[:ENVELOPE_BYTES]
        claim_id, receipt = tasks.submit_claim(
            c,
            task_id,
            f"bafy-model-{c[2:10]}",
            _b32(f"model{c}"),
            1_048_576,
            seed_commitment(task_id, c, seed),
            envelope_commitment(task_id, c, envelope),
        )
        report.add("submitClaim", receipt)
        claims.append((claim_id, c, seed, envelope))
    chain.mine(2)
    committees = {}
    for claim_id, c, seed, _ in claims:
        committees[claim_id], receipt = tasks.draw_committee(c, claim_id, seed)
        report.add("revealSeed", receipt)
        boxes = [(_b32(f"box{claim_id}{m}") * 4)[:KEY_BOX_BYTES] for m in committees[claim_id]]
        report.add("postKeyBoxes", tasks.post_key_boxes(c, claim_id, boxes))
    for claim_id, members in committees.items():
        for m in members:
            commitment = vote_commitment(claim_id, m, True, _b32(f"salt{claim_id}{m}"))
            report.add("commitVote", tasks.commit_vote(m, claim_id, commitment))
    last_commit = max(tasks.get_claim(cid).commit_deadline for cid in committees)
    chain.advance_time(max(1, last_commit + 1 - chain.timestamp()))
    for claim_id, members in committees.items():
        for m in members:
            receipt = tasks.reveal_vote(m, claim_id, True, _b32(f"salt{claim_id}{m}"))
            report.add("revealVote", receipt)
    for claim_id, c, _, envelope in claims:
        report.add("settleClaim", tasks.settle_claim(c, claim_id))
        try:  # the client sends an envelope only for a claim accepted and locked
            report.add("releaseEnvelope", tasks.release_envelope(c, claim_id, envelope))
        except ChainParameterError as exc:
            raise ChainError(f"reference claim {claim_id} was not accepted ({exc})") from exc
    chain.advance_time(max(1, info.expiry + 1 - chain.timestamp()))
    for v in vers:
        report.add("retireVerifier", tasks.retire_verifier(v, task_id))
    for account in [initiator, *vers, *cons]:
        if tasks.credit_of(account) > 0:
            report.add("withdraw", tasks.withdraw(account))
    if tasks.balance() != 0 or tasks.task_holdings(task_id) != 0:
        raise ChainError("reference life cycle left funds in the contract")
    return report


#: Gas limit of one ``MinimalAnchor.anchor`` call: a first write to a slot (22,100), the
#: transaction base (21,000), calldata and the event, about 46,000, with margin.
ANCHOR_GAS = 60_000
#: Gas limit of the ``MinimalAnchor`` deployment (107,511 measured), so that, like the
#: reference run, the floor estimates nothing.
ANCHOR_DEPLOY_GAS = 140_000
_ANCHOR_SELECTOR = keccak(b"anchor(bytes32)")[:4]


def anchor_senders(accounts: Sequence[str], verifiers: int, contributors: int) -> list[list[str]]:
    """Senders of the reference life cycle's calls after deployment, in phases between its
    clock moves: publish + joins, claims, draws + key boxes, commits, reveals, settlements +
    releases, retirements + withdrawals (3 verifiers, 3 contributors: 49 calls)."""
    initiator = accounts[0]
    vers = accounts[1 : 1 + verifiers]
    cons = accounts[1 + verifiers : 1 + verifiers + contributors]
    committee = vers[:3]  # committee size 3
    return [
        [initiator, *vers, *cons],
        list(cons),
        [c for c in cons for _ in range(2)],
        [m for _ in cons for m in committee],
        [m for _ in cons for m in committee],
        [c for c in cons for _ in range(2)],
        [*vers, *vers, *cons],
    ]


def run_anchor_lifecycle(chain: Chain, *, verifiers: int = 3, contributors: int = 3) -> GasReport:
    """Deploy ``MinimalAnchor`` and send it the reference life cycle's transactions.

    Each call anchors a digest of its position (fixed gas limits :data:`ANCHOR_GAS` and
    :data:`ANCHOR_DEPLOY_GAS`, local signing as in the reference run); between the phases of
    :func:`anchor_senders` the clock moves and blocks are mined as in
    :func:`run_reference_lifecycle`. At the end the latest digest of every sender is read
    back and checked.

    Raises:
        ChainParameterError: not enough accounts on the chain.
        ChainError: a call failed or a stored digest is wrong.
    """
    accounts: list[str] = list(chain.accounts)
    if len(accounts) < 1 + verifiers + contributors or verifiers < 3 or contributors < 1:
        raise ChainParameterError(
            f"need verifiers >= 3, contributors >= 1 and {1 + verifiers + contributors} accounts"
        )
    artifact = load_artifact("MinimalAnchor")
    report = GasReport()
    deploy = chain.signer(accounts[0]).transact(
        None,
        bytes(HexBytes(artifact.bytecode)),
        gas=ANCHOR_DEPLOY_GAS,
        label="deploy MinimalAnchor",
    )
    if deploy["status"] != 1 or deploy["contractAddress"] is None:
        raise ChainError("MinimalAnchor deployment failed")
    address = Web3.to_checksum_address(deploy["contractAddress"])
    report.calls["deploy"] = [int(deploy["gasUsed"])]
    expected: dict[str, bytes] = {}
    step = 0
    for phase, senders in enumerate(anchor_senders(accounts, verifiers, contributors)):
        if phase == 1:
            chain.advance_time(_WINDOW + 1)
        elif phase == 2:
            chain.mine(2)
        elif phase in (4, 6):
            chain.advance_time(_WINDOW + 1)
        for sender in senders:
            step += 1
            digest = _b32(f"anchor{step}")
            data = _ANCHOR_SELECTOR + abi_encode(["bytes32"], [digest])
            raw = chain.signer(sender).transact(address, data, gas=ANCHOR_GAS, label="anchor")
            if raw["status"] != 1:
                raise ChainError(f"anchor call {step} reverted")
            report.calls.setdefault("anchor", []).append(int(raw["gasUsed"]))
            expected[sender] = digest
    codec = FunctionCodec(artifact.abi)
    for sender, digest in expected.items():
        stored = codec.decode("latest", chain.call(address, codec.encode("latest", [sender])))
        if bytes(stored) != digest:
            raise ChainError(f"MinimalAnchor holds the wrong digest for {sender}")
    return report
