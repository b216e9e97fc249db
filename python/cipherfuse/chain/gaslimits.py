"""Per-function gas limits of ``CipherfuseTasks`` transactions, so the client need not estimate.

Gas estimation runs a transaction many times (the embedded py-evm chain bisects: about 15
executions per transaction), so the client sends most transactions with a fixed limit taken
from the measured gas report instead. A limit is ``base + per_member * committee_size +
per_byte * payload_bytes`` where the payload is the one variable-length argument (objective
URI, model CID, endpoint, key boxes, envelope); each coefficient is the measured maximum with a
safety margin (:data:`SAFETY_MARGIN`, checked against fresh measurements in
``tests/chain/test_gas_limits.py``). Functions whose cost depends on chain state the caller
does not give — the committee draw over a pool with slashed verifiers (``revealSeed``,
``settleClaim``) — are estimated only then. The deployment (``"deploy"``) has a fixed limit
too: its gas depends only on the packaged bytecode. A revert is still reported as a typed
error: see :meth:`~cipherfuse.chain.tasks.TasksContract._transact` (a preflight ``eth_call``
on real networks, a replay of the mined revert on dev chains).
"""

from __future__ import annotations

from dataclasses import dataclass

from cipherfuse.chain.errors import ChainParameterError

#: Every limit is at least this factor above the gas measured for it.
SAFETY_MARGIN = 1.3


@dataclass(frozen=True)
class GasFormula:
    """``base + per_member * committee_size + per_byte * payload_bytes`` gas."""

    base: int
    per_member: int = 0
    per_byte: int = 0

    def limit(self, committee_size: int = 0, payload_bytes: int = 0) -> int:
        """The gas limit for one call."""
        if committee_size < 0 or payload_bytes < 0:
            raise ChainParameterError("committee_size and payload_bytes must be >= 0")
        return self.base + self.per_member * committee_size + self.per_byte * payload_bytes


def _m(gas: int) -> int:
    return int(gas * SAFETY_MARGIN)


#: Measured worst cases (cold storage, first writes; the most gas a call used in the chain
#: tests), before the margin; ``deploy`` is the packaged contract's deployment. The per-byte terms
#: cover calldata (16 gas a byte), the event data (8) and memory; ``joinAsVerifier`` also
#: stores its endpoint (one 22,100-gas slot per 32 bytes, 691 a byte).
MEASURED: dict[str, GasFormula] = {
    "deploy": GasFormula(5_170_000),
    "publishTask": GasFormula(212_000, 0, 40),
    "joinAsContributor": GasFormula(62_000),
    "leaveAsContributor": GasFormula(64_000),
    "joinAsVerifier": GasFormula(150_000, 0, 740),
    "submitClaim": GasFormula(175_000, 0, 40),
    "captureDrawHash": GasFormula(50_000),
    "reanchorDraw": GasFormula(35_000),
    "revealSeed": GasFormula(70_000, 30_000),
    "postKeyBoxes": GasFormula(40_000, 1_500, 40),
    "commitVote": GasFormula(38_000),
    "revealVote": GasFormula(40_000),
    "revealAbort": GasFormula(40_000),
    "settleClaim": GasFormula(80_000, 32_000),
    "commitRelease": GasFormula(34_000),
    "releaseEnvelope": GasFormula(68_000, 0, 40),
    "forfeitUnreleased": GasFormula(75_000),
    "retireVerifier": GasFormula(66_000),
    "reclaimBudget": GasFormula(58_000),
    "withdraw": GasFormula(36_000),
}

#: The limits the client sends: :data:`MEASURED` times :data:`SAFETY_MARGIN`.
GAS_LIMITS: dict[str, GasFormula] = {
    name: GasFormula(_m(f.base), _m(f.per_member), _m(f.per_byte)) for name, f in MEASURED.items()
}

#: Functions whose gas depends on the pool's slashed verifiers: estimated when the claim's pool
#: epoch is non-zero (fixed limits otherwise).
STATE_DEPENDENT = frozenset({"revealSeed", "settleClaim"})


def gas_limit(function: str, committee_size: int = 0, payload_bytes: int = 0) -> int:
    """The fixed gas limit of ``function`` for a committee and payload of the given sizes.

    Raises:
        ChainParameterError: ``function`` has no fixed limit.
    """
    formula = GAS_LIMITS.get(function)
    if formula is None:
        raise ChainParameterError(f"no fixed gas limit for {function!r}")
    return formula.limit(committee_size, payload_bytes)
