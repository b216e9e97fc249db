"""The Ethereum layer: the ``CipherfuseTasks`` contract and its Python client.

- :mod:`~cipherfuse.chain.backends`: embedded py-evm chain, HTTP/WebSocket nodes.
- :mod:`~cipherfuse.chain.anvil`: start/stop a local anvil node.
- :mod:`~cipherfuse.chain.tasks`: typed wrapper of the contract.
- :mod:`~cipherfuse.chain.events`: confirmed, resumable event polling.
- :mod:`~cipherfuse.chain.typed_events`: one typed class per contract event, ABI-checked.
- :mod:`~cipherfuse.chain.artifacts` / :mod:`~cipherfuse.chain.compiler`: packaged
  ABI/bytecode and their reproducible rebuild with the pinned solcjs.
"""

from __future__ import annotations

from cipherfuse.chain.anvil import AnvilNode, find_anvil
from cipherfuse.chain.backends import Chain, embedded_chain, http_chain, websocket_chain
from cipherfuse.chain.errors import (
    ArtifactError,
    ChainError,
    ChainParameterError,
    CommitmentError,
    CompilerError,
    ContractRevertError,
    EventDecodeError,
    NodeError,
    PaymentError,
    RoleError,
    StateError,
    WindowError,
)
from cipherfuse.chain.events import ChainEvent, EventPoller
from cipherfuse.chain.gaslimits import GAS_LIMITS, gas_limit
from cipherfuse.chain.tasks import (
    BallotState,
    ClaimInfo,
    ClaimStatus,
    ParticipantInfo,
    ParticipantState,
    Receipt,
    Role,
    TaskInfo,
    TaskParams,
    TasksContract,
    envelope_commitment,
    seed_commitment,
    vote_commitment,
)
from cipherfuse.chain.typed_events import (
    EVENT_CLASSES,
    BudgetReclaimed,
    ClaimForfeited,
    ClaimSettled,
    ClaimSubmitted,
    CommitteeDrawn,
    ContractEvent,
    ContributorJoined,
    ContributorLeft,
    Credited,
    DrawHashCaptured,
    DrawReanchored,
    EnvelopeReleased,
    EventDecoder,
    KeyBoxesPosted,
    ReleaseCommitted,
    TaskPublished,
    VerifierJoined,
    VerifierRetired,
    VerifierSlashed,
    VoteCommitted,
    VoteRevealed,
    Withdrawn,
)

__all__ = [
    "EVENT_CLASSES",
    "GAS_LIMITS",
    "AnvilNode",
    "ArtifactError",
    "BallotState",
    "BudgetReclaimed",
    "Chain",
    "ChainError",
    "ChainEvent",
    "ChainParameterError",
    "ClaimForfeited",
    "ClaimInfo",
    "ClaimSettled",
    "ClaimStatus",
    "ClaimSubmitted",
    "CommitmentError",
    "CommitteeDrawn",
    "CompilerError",
    "ContractEvent",
    "ContractRevertError",
    "ContributorJoined",
    "ContributorLeft",
    "Credited",
    "DrawHashCaptured",
    "DrawReanchored",
    "EnvelopeReleased",
    "EventDecodeError",
    "EventDecoder",
    "EventPoller",
    "KeyBoxesPosted",
    "NodeError",
    "ParticipantInfo",
    "ParticipantState",
    "PaymentError",
    "Receipt",
    "ReleaseCommitted",
    "Role",
    "RoleError",
    "StateError",
    "TaskInfo",
    "TaskParams",
    "TaskPublished",
    "TasksContract",
    "VerifierJoined",
    "VerifierRetired",
    "VerifierSlashed",
    "VoteCommitted",
    "VoteRevealed",
    "WindowError",
    "Withdrawn",
    "embedded_chain",
    "envelope_commitment",
    "find_anvil",
    "gas_limit",
    "http_chain",
    "seed_commitment",
    "vote_commitment",
    "websocket_chain",
]
