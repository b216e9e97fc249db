"""Protocol scenarios on a real embedded chain and a real LocalStore.

The learning side is replaced by small *real* model files (``cipherfuse.nn`` format) and a
verdict on their architecture name, so these tests exercise the chain, the store, sealing,
key boxes, crash recovery and the money without training; the demo and testbed tests run
the real learning and cipherspace pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from cipherfuse.chain import Chain, TasksContract, embedded_chain
from cipherfuse.he import SecretKey
from cipherfuse.nn import DenseSpec, FlattenSpec, ModelConfig, TrainedModel
from cipherfuse.nn.model import init_params
from cipherfuse.nn.serialize import model_from_bytes, model_to_bytes
from cipherfuse.roles.agent import Agent, RoleContext
from cipherfuse.roles.behaviour import Judgement
from cipherfuse.roles.clock import run_agents
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.contributor import ContributorAgent
from cipherfuse.roles.initiator import InitiatorAgent, InitiatorSetup
from cipherfuse.roles.manifest import TaskManifest, VerificationData
from cipherfuse.roles.verifier import VerifierAgent
from cipherfuse.storage import LocalStore

ETHER = 10**18
PARAMS = demo_task_params()
LABELS = ((0, 1, 2, 3, 4), (0, 6, 7, 8, 9), (5, 6, 7, 8, 9))


def tiny_config(name: str) -> ModelConfig:
    """A 4x4-input model with 8 features (fast to fuse)."""
    return ModelConfig(name=name, input_shape=(4, 4, 1), layers=(FlattenSpec(), DenseSpec(8)))


def tiny_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 4, 4, 1), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)


def payload_maker(index: int, good: bool) -> Callable[[TaskManifest, bytes], bytes]:
    """A real model file; ``good=False`` names it ``bad-*`` (what the judge rejects)."""

    def make(manifest: TaskManifest, key_blob: bytes) -> bytes:
        assert manifest.params == "paper" and key_blob  # the published key was fetched
        name = f"{'good' if good else 'bad'}-{index}"
        config = tiny_config(name)
        params = init_params(config, jax.random.PRNGKey(index))
        return model_to_bytes(TrainedModel(config=config, params=params, labels=LABELS[index]))

    return make


class NameJudge:
    """Accepts a payload iff it parses as a model file whose name starts with ``good``."""

    def __init__(self) -> None:
        self.judged: list[int] = []
        self.remembered: list[int] = []

    def judge(self, claim_id: int, payload: bytes) -> Judgement:
        self.judged.append(claim_id)
        model, _ = model_from_bytes(payload)
        ok = model.config.name.startswith("good")
        return Judgement(ok, 1.0 if ok else 0.0, None, f"model {model.config.name}")

    def remember(self, claim_id: int, payload: bytes) -> None:
        self.remembered.append(claim_id)


def plain_decrypt(payload: bytes, manifest: TaskManifest, sk: SecretKey) -> TrainedModel:
    """The test payloads are plaintext model files."""
    return model_from_bytes(payload)[0]


@dataclass
class World:
    """One deployment with all seven roles; agents are rebuilt from disk by :meth:`agents`."""

    root: Path
    chain: Chain = field(default_factory=lambda: embedded_chain(accounts=8))
    behaviours: tuple[str, str, str] = ("honest", "honest", "honest")
    good: tuple[bool, bool, bool] = (True, True, True)
    stop_after_commit: tuple[bool, bool, bool] = (False, False, False)
    vote_probability: float = 1.0
    log_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tasks, _ = TasksContract.deploy(self.chain, self.chain.accounts[0])
        self.store = LocalStore(self.root / "store")
        self.ctx = RoleContext(self.tasks, self.store, self.log_lines.append)
        self.judges = [NameJudge() for _ in range(3)]
        fit_x, fit_y = tiny_data(60, 1)
        check_x, check_y = tiny_data(60, 2)
        self.setup = InitiatorSetup(
            params=PARAMS,
            he_params="paper",
            threshold=0.7,
            verification=VerificationData(fit_x, fit_y, check_x, check_y),
            test=tiny_data(60, 3),
            fusion_epochs=(1, 1),
        )
        initiator = self.initiator()
        while initiator.task_id is None:
            initiator.step()
        self.task_id = int(initiator.task_id)

    @property
    def accounts(self) -> list[str]:
        return list(self.chain.accounts)

    def initiator(self) -> InitiatorAgent:
        return InitiatorAgent(
            self.ctx, self.accounts[1], self.root / "state", self.setup, decrypt=plain_decrypt
        )

    def contributor(self, i: int) -> ContributorAgent:
        return ContributorAgent(
            self.ctx,
            self.accounts[2 + i],
            self.root / "state",
            self.task_id,
            payload_maker(i, self.good[i]),
            behaviour=self.behaviours[i],
        )

    def verifier(self, i: int) -> VerifierAgent:
        return VerifierAgent(
            self.ctx,
            self.accounts[5 + i],
            self.root / "state",
            self.task_id,
            self.judges[i],
            vote_probability=self.vote_probability,
            stop_after_commit=self.stop_after_commit[i],
        )

    def agents(self) -> list[Agent]:
        return [
            self.initiator(),
            *(self.verifier(i) for i in range(3)),
            *(self.contributor(i) for i in range(3)),
        ]

    def run(self) -> list[Agent]:
        agents = self.agents()
        run_agents(agents, self.chain)
        return agents

    def events(self, name: str) -> list[object]:
        from cipherfuse.chain import EventPoller

        return [e for e in EventPoller(self.tasks).poll_typed() if type(e).__name__ == name]

    def withdrawn(self, account: str) -> int:
        return sum(
            e.amount  # type: ignore[attr-defined]
            for e in self.events("Withdrawn")
            if e.account == account  # type: ignore[attr-defined]
        )
