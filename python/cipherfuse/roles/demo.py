"""``cipherfuse demo``: the whole paradigm in one process on the embedded chain and store.

One initiator, three computing contributors (Case I label subsets, Table II CNNs with an
average first pooling), three verification contributors, MNIST. By default (``secure``)
the committee judges each claimed model in three-party computation over loopback
channels (:mod:`cipherfuse.roles.secure`); ``paper`` judges in the paper's cipherspace.
Every role is the same agent class the separate processes run;
:func:`~cipherfuse.roles.clock.run_agents` steps them and skips idle chain time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
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
    DatasetError,
    FallbackDatasetWarning,
    load_mnist,
    split_by_labels,
)
from cipherfuse.data.mnist import FALLBACK_SOURCE
from cipherfuse.files import atomic_write_bytes
from cipherfuse.fusion.serialize import save_metamodel
from cipherfuse.nn import TrainConfig
from cipherfuse.roles.agent import RoleContext
from cipherfuse.roles.behaviour import BEHAVIOURS
from cipherfuse.roles.clock import run_agents
from cipherfuse.roles.config import demo_task_params
from cipherfuse.roles.contributor import ContributorAgent
from cipherfuse.roles.errors import RoleConfigError, StaleWorkdirError
from cipherfuse.roles.initiator import InitiatorAgent, InitiatorSetup
from cipherfuse.roles.learning import (
    TrainingPrecompiler,
    case1_config,
    load_published_key,
    train_private_model,
)
from cipherfuse.roles.manifest import TaskManifest, VerificationData, fetch_manifest
from cipherfuse.roles.secure import ClaimMaterial, SecureJudge, prepare_secure_claim
from cipherfuse.roles.verifier import VerifierAgent
from cipherfuse.roles.workload import CipherspaceJudge, encrypt_for_task
from cipherfuse.storage import LocalStore, Store

REPORT_FORMAT = "cipherfuse-demo-report"
Logger = Callable[[str], None]


#: Judging modes, by parameter set: ``secure`` (the default) judges in honest-majority
#: three-party computation (no member can read the model); ``paper`` judges in the paper's
#: IVHE cipherspace, where every member can read it.
JUDGING_BY_PARAMS: dict[str, str] = {"secure": "mpc", "paper": "cipherspace"}
JUDGING_MODES: tuple[str, ...] = tuple(JUDGING_BY_PARAMS.values())
DEFAULT_PARAMS = "secure"
DEFAULT_JUDGING = JUDGING_BY_PARAMS[DEFAULT_PARAMS]

#: Printed once at the start of every run with the paper's parameters.
PAPER_PARAMS_WARNING = (
    "WARNING: --params paper is the paper's INSECURE parameter set (k = 1: the secret key "
    "falls to least squares): every committee member can read the models it judges; use "
    "it to reproduce the paper, never for private models."
)

#: Sizes used when MNIST is unavailable and scikit-learn's 1,797 digits stand in.
FALLBACK_SIZES: dict[str, int] = {
    "train_size": 200,
    "verify_size": 100,
    "fit_size": 150,
    "check_size": 150,
    "test_size": 300,
}


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and behaviours of a demo run (``quick()`` for CI-sized runs).

    The default sizes use 6,500 of the 10,000 images of MNIST's test set that ships with
    the package: per contributor 1,000 training and 500 local verification images, 1,000
    verification samples (500 to fit, 500 to check) and a held-out test set of 1,000.
    The paper's Case I uses 1,000 + 1,000 per contributor and the 60,000-image training
    split; this is a reduced run.
    """

    he_params: str = DEFAULT_PARAMS
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
        """Small data and few epochs (CI-sized)."""
        base = cls(
            train_size=500,
            verify_size=200,
            fit_size=200,
            check_size=200,
            test_size=500,
            max_epochs=3,
            fusion_epochs=(3, 6),
        )
        return dataclasses.replace(base, **overrides)

    @property
    def judging(self) -> str:
        """``mpc`` (three-party judging, ``secure``) or ``cipherspace`` (``paper``)."""
        return JUDGING_BY_PARAMS.get(self.he_params, "")

    @property
    def images_needed(self) -> int:
        """Images the Case I split draws: 3 contributors' train + verify, fusion, test."""
        return (
            3 * (self.train_size + self.verify_size)
            + self.fit_size
            + self.check_size
            + self.test_size
        )

    def validate(self) -> None:
        """Raise :class:`RoleConfigError` naming the first bad field."""
        if self.he_params not in JUDGING_BY_PARAMS:
            raise RoleConfigError(f"--params must be secure or paper, got {self.he_params!r}")
        if not 0 <= self.seed < 2**32:
            raise RoleConfigError(f"--seed must be in 0..{2**32 - 1}, got {self.seed}")
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


@dataclass(frozen=True)
class DemoData:
    """The demo's dataset and, when a stand-in was used, the warning that says so."""

    data: Dataset
    warning: str | None = None


def load_demo_data(mnist_dir: Path | None) -> DemoData:
    """The demo's images: ``mnist_dir``, else ``$CIPHERFUSE_MNIST_DIR``, else the download
    cache, else MNIST's test set shipped in the package (md5-checked).

    Nothing is downloaded. Only when the shipped copy is missing or damaged are
    scikit-learn's 8x8 digits used; :attr:`DemoData.warning` then says so (and the
    :class:`FallbackDatasetWarning` is re-emitted for API callers).
    """
    if mnist_dir is not None:
        return DemoData(load_mnist(path=mnist_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FallbackDatasetWarning)
        data = load_mnist(download=False, allow_fallback=True)
    fallback = [w for w in caught if issubclass(w.category, FallbackDatasetWarning)]
    if not fallback:
        return DemoData(data)
    text = str(fallback[0].message)
    warnings.warn(text, FallbackDatasetWarning, stacklevel=2)
    return DemoData(data, f"WARNING: {text} The demo uses reduced sizes to fit.")


def sizes_for(cfg: DemoConfig, data: Dataset) -> DemoConfig:
    """``cfg``, shrunk to :data:`FALLBACK_SIZES` when scikit-learn's digits stand in."""
    if data.source != FALLBACK_SOURCE:
        return cfg
    smaller = {k: min(v, getattr(cfg, k)) for k, v in FALLBACK_SIZES.items()}
    return dataclasses.replace(cfg, **smaller)


def demo_split(data: Dataset, cfg: DemoConfig) -> CaseSplit:
    """Case I split: contributors' private data, the verification sample set, a test set.

    Raises:
        RoleConfigError: the dataset is too small for ``cfg``'s sizes.
    """
    if cfg.images_needed > len(data):
        raise RoleConfigError(
            f"the demo needs {cfg.images_needed} images but {data.source} has {len(data)}; "
            "give --mnist-dir a folder with the full MNIST set or use --quick"
        )
    try:
        return _split(data, cfg)
    except DatasetError as exc:
        raise RoleConfigError(f"{exc}; use --quick or a larger --mnist-dir") from exc


def _split(data: Dataset, cfg: DemoConfig) -> CaseSplit:
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


def party_name(role: str, index: int, account: str) -> str:
    """How the demo names a party everywhere: ``"contributor 1 0x6813Eb"``."""
    return f"{role} {index} {account[:8]}"


def make_contributor_payload(
    split: CaseSplit,
    index: int,
    cfg: DemoConfig,
    behaviour: str,
    log: Logger,
    info: dict[str, Any],
    name: str | None = None,
    precompiler: TrainingPrecompiler | None = None,
) -> Callable[[TaskManifest, bytes], bytes | ClaimMaterial]:
    """The claim maker of contributor ``index``: train, then share the whole model for
    three-party judging (``secure``) or HE-encrypt its first layer (``paper``).
    ``precompiler``: compiles contributor ``index``'s training ahead (its architecture
    is its ``index``-th)."""
    part = split.contributors[index]
    who = name or f"contributor {index + 1}"

    def make(manifest: TaskManifest, key_blob: bytes) -> bytes | ClaimMaterial:
        started = time.perf_counter()
        log(
            f"[{who}] training on {len(part.train)} images of labels {list(part.label_set)}: "
            f"at most {cfg.max_epochs} epoch(s), stopping early once its own-label "
            f"accuracy reaches {cfg.target_accuracy:.2f}"
        )
        if precompiler is not None and behaviour != "lazy":  # lazy trains nothing
            precompiler.wait(index)
        model, epochs, acc = train_private_model(
            case1_config(index + 1),
            tuple(part.label_set),
            (part.train.images, part.train.labels, part.verify.images, part.verify.labels),
            behaviour,
            cfg.seed * 100 + index,
            contributor_train_config(cfg),
        )
        seconds = round(time.perf_counter() - started, 1)
        info.update(
            labels=list(part.label_set),
            epochs=epochs,
            local_accuracy=acc,
            train_seconds=seconds,
        )
        log(
            f"[{who}] {model.config.name}: {epochs} epoch(s) in {seconds} s, own-label "
            f"accuracy {acc:.3f} on its {len(part.verify)} held-out images"
        )
        if manifest.params == "secure":
            material = prepare_secure_claim(model, manifest)
            log(f"[{who}] shared the whole model in replicated shares: {len(material.blob)} bytes")
            return material
        payload = encrypt_for_task(model, manifest, load_published_key(manifest.params, key_blob))
        log(f"[{who}] encrypted first layer: {len(payload)} bytes")
        return payload

    return make


def contributor_train_config(cfg: DemoConfig) -> TrainConfig:
    """How the demo's contributors train."""
    return TrainConfig(
        learning_rate=cfg.learning_rate,
        max_epochs=cfg.max_epochs,
        target_accuracy=cfg.target_accuracy,
        progress=False,
    )


def start_precompiler(cfg: DemoConfig) -> TrainingPrecompiler:
    """Compile the three contributors' training ahead, in a background thread."""
    configs = [case1_config(i + 1) for i in range(3)]
    return TrainingPrecompiler(configs, contributor_train_config(cfg), verify_size=cfg.verify_size)


#: The marker file that says a work folder belongs to a demo run on an embedded chain.
WORKDIR_MARKER = "cipherfuse-demo-run.json"
#: What a demo run writes into its work folder (cleared by ``fresh=True``).
WORKDIR_PARTS = ("state", "store")


def prepare_workdir(workdir: Path, *, fresh: bool = False) -> None:
    """Claim ``workdir`` for a new demo run.

    The demo's chain lives in its process, so the state of an earlier run (finished or
    interrupted) refers to claims and tasks that no longer exist: such a folder is
    refused (:class:`StaleWorkdirError`), or cleared when ``fresh`` is true. Only the
    demo's own parts (``state/``, ``store/``, the marker) are removed.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / WORKDIR_MARKER
    used = [p for p in WORKDIR_PARTS if (workdir / p).is_dir() and any((workdir / p).iterdir())]
    if marker.exists() or used:
        if not fresh:
            raise StaleWorkdirError(
                f"{workdir} holds an earlier demo run; its embedded chain ended with that "
                "process, so it cannot be resumed: use a new --workdir or add --fresh to "
                "clear it"
            )
        for part in WORKDIR_PARTS:
            shutil.rmtree(workdir / part, ignore_errors=True)
        marker.unlink(missing_ok=True)
    body = {"format": "cipherfuse-demo-run", "chain": "embedded", "pid": os.getpid()}
    atomic_write_bytes(marker, json.dumps(body).encode(), mode=0o644)


def run_demo(
    cfg: DemoConfig,
    workdir: Path,
    log: Logger = print,
    *,
    fresh: bool = False,
    metamodel_path: Path | None = None,
) -> dict[str, Any]:
    """Run the whole paradigm; returns the JSON report (free of keys and salts).

    Args:
        cfg: sizes, behaviours and parameters.
        workdir: where store and state go; must be unused (see
            :func:`prepare_workdir`) unless ``fresh``.
        log: receives one line per step.
        fresh: clear an earlier run's state in ``workdir`` instead of refusing it.
        metamodel_path: where to write the initiator's final MetaModel (none written
            when ``None`` or when no model was accepted).
    """
    cfg.validate()
    started = time.perf_counter()
    prepare_workdir(workdir, fresh=fresh)
    if cfg.he_params == "paper":
        log(PAPER_PARAMS_WARNING)
    loaded = load_demo_data(cfg.mnist_dir)
    data = loaded.data
    if loaded.warning:
        log(loaded.warning)
    cfg = sizes_for(cfg, data)
    split = demo_split(data, cfg)
    precompiler = start_precompiler(cfg)
    try:
        return _run_demo(cfg, workdir, log, loaded, split, started, precompiler, metamodel_path)
    finally:
        # Compiling cannot be interrupted midway; let the thread end before the process.
        precompiler.join(timeout=60.0)


def _run_demo(
    cfg: DemoConfig,
    workdir: Path,
    log: Logger,
    loaded: DemoData,
    split: CaseSplit,
    started: float,
    precompiler: TrainingPrecompiler,
    metamodel_path: Path | None,
) -> dict[str, Any]:
    data = loaded.data
    log(
        f"data: {data.source} ({len(data.labels)} images); reduced Case I run: "
        f"{cfg.train_size} training images per contributor (the paper uses 1,000 of the "
        f"60,000-image training split), {cfg.test_size} held-out test images"
    )
    chain = embedded_chain(accounts=8)
    accounts = chain.accounts
    tasks, _ = TasksContract.deploy(chain, accounts[0])
    log(f"deployed CipherfuseTasks at {tasks.address} on the embedded chain")
    names: dict[str, str] = {accounts[1]: f"initiator {accounts[1][:8]}"}
    names.update(
        {accounts[2 + i]: party_name("contributor", i + 1, accounts[2 + i]) for i in range(3)}
    )
    names.update(
        {accounts[5 + i]: party_name("verifier", i + 1, accounts[5 + i]) for i in range(3)}
    )
    store: Store = LocalStore(workdir / "store")
    ctx = RoleContext(tasks, store, log, party_names=names)
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
            make_contributor_payload(
                split,
                i,
                cfg,
                cfg.behaviours[i],
                log,
                infos[i],
                names[accounts[2 + i]],
                precompiler,
            ),
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
            make_judge(cfg.judging, manifest, vdata),
            vote_probability=cfg.vote_probability,
        )
        for i in range(3)
    ]
    try:
        run_agents([initiator, *verifiers, *contributors], chain)
    finally:
        for verifier in verifiers:
            if isinstance(verifier.judge, SecureJudge):
                verifier.judge.close()
    report = build_report(tasks, task_id, initiator, contributors, verifiers, infos, start_balances)
    report["config"] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()
    }
    report["data_source"] = data.source
    report["data_images"] = len(data)
    report["data_warning"] = loaded.warning
    report["insecure_params"] = cfg.he_params == "paper"
    report["judging"] = cfg.judging
    report["metamodel_file"] = None
    if metamodel_path is not None and initiator.metamodel is not None:
        save_metamodel(metamodel_path, initiator.metamodel)
        os.chmod(metamodel_path, 0o644)
        report["metamodel_file"] = str(metamodel_path)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def make_judge(
    mode: str, manifest: TaskManifest, vdata: VerificationData, *, host: str = "127.0.0.1"
) -> CipherspaceJudge | SecureJudge:
    """The verifiers' judge for ``mode`` (one of :data:`JUDGING_MODES`); a three-party
    judge listens for its committee on ``host`` (and registers that address)."""
    if mode == "mpc":
        return SecureJudge(manifest, vdata, host=host)
    if mode == "cipherspace":
        return CipherspaceJudge(manifest, vdata)
    raise RoleConfigError(f"judging must be one of {', '.join(JUDGING_MODES)}, got {mode!r}")


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
            "name": party_name("contributor", i + 1, c.account),
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
                votes[m] = {
                    BallotState.ACCEPT: "accept",
                    BallotState.REJECT: "reject",
                    BallotState.ABORT: "abort",
                }.get(state, "none")
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
    roles = [(f"initiator {initiator.account[:8]}", initiator.account)]
    roles += [
        (party_name("contributor", i + 1, c.account), c.account) for i, c in enumerate(contributors)
    ]
    roles += [
        (party_name("verifier", i + 1, v.account), v.account) for i, v in enumerate(verifiers)
    ]
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
            party_name("verifier", i + 1, v.account): {
                claim: public_decision(d) for claim, d in v.state.data.get("decisions", {}).items()
            }
            for i, v in enumerate(verifiers)
        },
    }


#: The fields of a verifier's decision that a report may show. The vote salt and the
#: claim's sealing key stay in the verifier's state file.
PUBLIC_DECISION_FIELDS = ("accept", "abort", "accuracy", "baseline", "reason", "honest")


def public_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """A verifier's decision without its secrets (vote salt, sealing key)."""
    return {k: decision[k] for k in PUBLIC_DECISION_FIELDS if k in decision}
