"""``cipherfuse demo``: the whole paradigm in one process on the embedded chain and store.

One initiator, three computing contributors (Case I label subsets, Table II CNNs with an
average first pooling), three verification contributors, MNIST. Every role is the same
agent class the separate processes run; :func:`~cipherfuse.roles.clock.run_agents` steps
them and skips idle chain time.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from cipherfuse.chain import (
    ClaimStatus,
    TasksContract,
    Withdrawn,
    embedded_chain,
)
from cipherfuse.chain.events import EventPoller
from cipherfuse.chain.tasks import BallotState
from cipherfuse.data import (
    TABLE_III_LABELS,
    CaseSplit,
    Dataset,
    FallbackDatasetWarning,
    load_mnist,
    split_by_labels,
)
from cipherfuse.nn import TrainConfig
from cipherfuse.roles.agent import RoleContext
from cipherfuse.roles.behaviour import BEHAVIOURS
from cipherfuse.roles.clock import run_agents
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.contributor import ContributorAgent
from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.roles.initiator import InitiatorAgent, InitiatorSetup
from cipherfuse.roles.learning import case1_config, load_published_key, train_private_model
from cipherfuse.roles.manifest import TaskManifest, VerificationData, fetch_manifest
from cipherfuse.roles.verifier import VerifierAgent
from cipherfuse.roles.workload import CipherspaceJudge, encrypt_for_task
from cipherfuse.storage import LocalStore, Store

REPORT_FORMAT = "cipherfuse-demo-report"
Logger = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and behaviours of a demo run (``quick()`` for CI-sized runs)."""

    he_params: str = "paper"
    seed: int = 0
    train_size: int = 1000
    verify_size: int = 500
    fit_size: int = 500
    check_size: int = 500
    test_size: int = 1000
    max_epochs: int = 10
    learning_rate: float = 1e-3
    target_accuracy: float = 0.9
    threshold: float = 0.7
    fusion_epochs: tuple[int, int] = (6, 12)
    behaviours: tuple[str, str, str] = ("honest", "honest", "honest")
    vote_probability: float = 1.0
    mnist_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick(cls, **overrides: Any) -> DemoConfig:
        """Small data and few epochs (about a minute of training on 2 cores)."""
        base = cls(
            train_size=300,
            verify_size=150,
            fit_size=200,
            check_size=200,
            test_size=500,
            max_epochs=4,
            fusion_epochs=(4, 6),
        )
        return dataclasses.replace(base, **overrides)

    def validate(self) -> None:
        """Raise :class:`RoleConfigError` naming the first bad field."""
        if self.he_params not in ("paper", "secure"):
            raise RoleConfigError(f"--params must be paper or secure, got {self.he_params!r}")
        if self.he_params == "secure":
            raise RoleConfigError(
                "--params secure: verifiers cannot evaluate a securely encrypted model "
                "(cipherspace features need the paper's insecure parameters; see "
                "docs/protocol.md), so the paradigm's keyless verification cannot run; "
                "use --params paper"
            )
        for name in ("train_size", "verify_size", "fit_size", "check_size", "test_size"):
            if getattr(self, name) < 10:
                raise RoleConfigError(f"{name} must be >= 10, got {getattr(self, name)}")
        if not 1 <= self.max_epochs <= 100:
            raise RoleConfigError(f"max_epochs must be in 1..100, got {self.max_epochs}")
        if not 0.0 < self.threshold <= 1.0:
            raise RoleConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.vote_probability <= 1.0:
            raise RoleConfigError(
                f"vote probability must be in [0, 1], got {self.vote_probability}"
            )
        for b in self.behaviours:
            if b not in BEHAVIOURS:
                raise RoleConfigError(f"behaviour must be one of {BEHAVIOURS}, got {b!r}")


def load_demo_data(mnist_dir: Path | None) -> Dataset:
    """MNIST's test set from ``mnist_dir``, ``$CIPHERFUSE_MNIST_DIR`` or ``../shared/data/mnist``;
    scikit-learn's digits (with a warning) when none is there."""
    if mnist_dir is not None:
        return load_mnist(path=mnist_dir)
    if os.environ.get("CIPHERFUSE_MNIST_DIR"):
        return load_mnist(download=False)
    shared = Path("../shared/data/mnist")
    if shared.is_dir():
        return load_mnist(path=shared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackDatasetWarning)
        return load_mnist(download=False, allow_fallback=True)


def demo_split(data: Dataset, cfg: DemoConfig) -> CaseSplit:
    """Case I split: contributors' private data, the verification sample set, a test set."""
    return split_by_labels(
        data,
        TABLE_III_LABELS,
        train_per_contributor=cfg.train_size,
        verify_per_contributor=cfg.verify_size,
        fusion_train_size=cfg.fit_size + cfg.check_size,
        test_size=cfg.test_size,
        seed=cfg.seed,
    )


def verification_data(split: CaseSplit, fit_size: int) -> VerificationData:
    """The initiator's sample set for the verifiers: fit and check parts."""
    x, y = split.fusion_train.images, split.fusion_train.labels
    return VerificationData(x[:fit_size], y[:fit_size], x[fit_size:], y[fit_size:])


def make_contributor_payload(
    split: CaseSplit, index: int, cfg: DemoConfig, behaviour: str, log: Logger, info: dict[str, Any]
) -> Callable[[TaskManifest, bytes], bytes]:
    """The payload maker of contributor ``index`` (train, then HE-encrypt the first layer)."""
    part = split.contributors[index]

    def make(manifest: TaskManifest, key_blob: bytes) -> bytes:
        started = time.perf_counter()
        model, epochs, acc = train_private_model(
            case1_config(index + 1),
            tuple(part.label_set),
            (part.train.images, part.train.labels, part.verify.images, part.verify.labels),
            behaviour,
            cfg.seed * 100 + index,
            TrainConfig(
                learning_rate=cfg.learning_rate,
                max_epochs=cfg.max_epochs,
                target_accuracy=cfg.target_accuracy,
                progress=None,
            ),
        )
        info.update(
            labels=list(part.label_set),
            epochs=epochs,
            local_accuracy=acc,
            train_seconds=round(time.perf_counter() - started, 1),
        )
        log(
            f"[contributor {index + 1}] {model.config.name} on labels {list(part.label_set)}: "
            f"{epochs} epoch(s), local verification accuracy {acc:.3f}"
        )
        payload = encrypt_for_task(model, manifest, load_published_key(manifest.params, key_blob))
        log(f"[contributor {index + 1}] encrypted first layer: {len(payload)} bytes")
        return payload

    return make


def run_demo(cfg: DemoConfig, workdir: Path, log: Logger = print) -> dict[str, Any]:
    """Run the whole paradigm; returns the JSON report (also written to workdir/report.json)."""
    cfg.validate()
    started = time.perf_counter()
    data = load_demo_data(cfg.mnist_dir)
    split = demo_split(data, cfg)
    log(f"data: {data.source} ({len(data.labels)} images), Case I label subsets {TABLE_III_LABELS}")
    chain = embedded_chain(accounts=8)
    accounts = chain.accounts
    tasks, _ = TasksContract.deploy(chain, accounts[0])
    log(f"deployed CipherfuseTasks at {tasks.address} on the embedded chain")
    store: Store = LocalStore(workdir / "store")
    ctx = RoleContext(tasks, store, workdir / "mailbox", log)
    start_balances: dict[str, int] = {a: int(chain.w3.eth.get_balance(a)) for a in accounts[1:8]}
    params = demo_task_params(threshold=cfg.threshold)
    initiator = InitiatorAgent(
        ctx,
        accounts[1],
        workdir / "state",
        InitiatorSetup(
            params=params,
            he_params=cfg.he_params,
            threshold=cfg.threshold,
            verification=verification_data(split, cfg.fit_size),
            test=(split.test.images, split.test.labels),
            fusion_epochs=cfg.fusion_epochs,
        ),
    )
    while initiator.task_id is None:
        initiator.step()
    task_id = initiator.task_id
    manifest = fetch_manifest(store, initiator.state.data["manifest_cid"])
    vdata = VerificationData.from_bytes(store.get(manifest.verification_cid))
    infos: list[dict[str, Any]] = [{} for _ in range(3)]
    contributors = [
        ContributorAgent(
            ctx,
            accounts[2 + i],
            workdir / "state",
            task_id,
            make_contributor_payload(split, i, cfg, cfg.behaviours[i], log, infos[i]),
            behaviour=cfg.behaviours[i],
        )
        for i in range(3)
    ]
    verifiers = [
        VerifierAgent(
            ctx,
            accounts[5 + i],
            workdir / "state",
            task_id,
            CipherspaceJudge(manifest, vdata),
            vote_probability=cfg.vote_probability,
        )
        for i in range(3)
    ]
    run_agents([initiator, *verifiers, *contributors], chain)
    report = build_report(tasks, task_id, initiator, contributors, verifiers, infos, start_balances)
    report["config"] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()
    }
    report["data_source"] = data.source
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _balance(tasks: TasksContract, account: str) -> int:
    return int(tasks.chain.w3.eth.get_balance(Web3.to_checksum_address(account)))


def build_report(
    tasks: TasksContract,
    task_id: int,
    initiator: InitiatorAgent,
    contributors: list[ContributorAgent],
    verifiers: list[VerifierAgent],
    infos: list[dict[str, Any]],
    start_balances: dict[str, int],
) -> dict[str, Any]:
    """Outcomes, votes, money and accuracy, read back from the chain and the agents."""
    chain = tasks.chain
    withdrawn: dict[str, int] = {}
    for event in EventPoller(tasks).poll_typed():
        if isinstance(event, Withdrawn):
            withdrawn[event.account] = withdrawn.get(event.account, 0) + event.amount
    claims = []
    for i, c in enumerate(contributors):
        p = tasks.get_participant(task_id, c.account)
        entry: dict[str, Any] = {
            "contributor": i + 1,
            "account": c.account,
            "behaviour": c.behaviour,
            **{k: v for k, v in infos[i].items()},
        }
        if "claim_id" in c.state.data:
            claim_id = int(c.state.data["claim_id"])
            claim = tasks.get_claim(claim_id)
            votes = {}
            for m in tasks.committee_of(claim_id):
                state = tasks.ballot_of(claim_id, m)[1]
                votes[m] = {BallotState.ACCEPT: "accept", BallotState.REJECT: "reject"}.get(
                    state, "none"
                )
            entry.update(
                claim_id=claim_id,
                model_cid=claim.model_cid,
                outcome=claim.status.name,
                accept_votes=claim.accept_votes,
                reject_votes=claim.reject_votes,
                votes=votes,
            )
        entry["participant_state"] = p.state.name
        claims.append(entry)
    processed = initiator.state.data.get("processed", {})
    accuracies = [
        {"claim_id": int(k), "accuracy": v.get("accuracy")} for k, v in sorted(processed.items())
    ]
    roles = [("initiator", initiator.account)]
    roles += [(f"contributor {i + 1}", c.account) for i, c in enumerate(contributors)]
    roles += [(f"verifier {i + 1}", v.account) for i, v in enumerate(verifiers)]
    balances = {
        name: {
            "account": account,
            "withdrawn_wei": withdrawn.get(account, 0),
            "balance_change_wei": int(chain.w3.eth.get_balance(Web3.to_checksum_address(account)))
            - start_balances[account],
            "credit_left_wei": tasks.credit_of(account),
        }
        for name, account in roles
    }
    accepted = [c for c in claims if c.get("outcome") in (ClaimStatus.RELEASED.name,)]
    final = accuracies[-1]["accuracy"] if accuracies else None
    return {
        "format": REPORT_FORMAT,
        "version": 1,
        "contract": tasks.address,
        "task_id": task_id,
        "claims": claims,
        "accepted_models": len(accepted),
        "metamodel_accuracy": accuracies,
        "final_accuracy": final,
        "balances": balances,
        "contract_balance_wei": tasks.balance(),
        "task_holdings_wei": tasks.task_holdings(task_id),
        "judgements": {
            f"verifier {i + 1}": v.state.data.get("decisions", {}) for i, v in enumerate(verifiers)
        },
    }
