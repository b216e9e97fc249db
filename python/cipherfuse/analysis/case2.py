"""Case II (paper Sec. VIII-B, Table IV): lazy contributors and unreliable verifiers.

Each column of Table IV gives, for the three verifiers of a committee, the probability
that each concludes a positive vote; the paper then computes the probability that the
majority vote is positive. Here that probability is

- computed in closed form (:func:`majority_probability`, any committee size), and
- measured by running claims through the real ``CipherfuseTasks`` contract on the
  embedded py-evm chain (:func:`run_on_chain`): publish a task, join three verifiers and
  the contributors, upload each claimed model's bytes to a real content-addressed store,
  claim with its CID and hash, draw the committee, commit and reveal votes (each verifier
  votes positive with its own probability after fetching and hash-checking the model),
  settle, and count the claims the contract accepted.

The model's content cannot change these statistics (the votes are drawn with the given
probabilities), so the uploaded bytes are seeded placeholders, not trained networks.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from cipherfuse.analysis.experiment import Better, ExperimentResult
from cipherfuse.analysis.pow import wilson_interval
from cipherfuse.chain import (
    Chain,
    ChainError,
    ClaimStatus,
    TaskParams,
    TasksContract,
    embedded_chain,
    envelope_commitment,
    seed_commitment,
    vote_commitment,
)
from cipherfuse.chain.fees import Fees
from cipherfuse.errors import ParameterError
from cipherfuse.storage import LocalStore
from cipherfuse.validation import strict_int

ETHER = 10**18
#: Gas limit sent with every transaction. Fixing it skips eth-tester's gas estimation
#: (a binary search that re-executes each call about a dozen times); every call of
#: this contract stays far below it, and a status check rejects any failure.
TX_GAS = 3_000_000


@dataclass(frozen=True)
class VoteScenario:
    """One column of Table IV: who claims, and each verifier's positive-vote probability."""

    column: str
    vote_probabilities: tuple[float, ...]
    lazy_claimant: bool
    paper_majority_percent: float

    def __post_init__(self) -> None:
        if not self.vote_probabilities:
            raise ParameterError(f"scenario {self.column!r}: need at least one verifier")
        for p in self.vote_probabilities:
            if not 0.0 <= p <= 1.0:
                raise ParameterError(
                    f"scenario {self.column!r}: vote probabilities must be in [0, 1], got {p}"
                )


#: Table IV of the paper (probabilities of a positive vote of verifiers 1, 2, 3).
TABLE_IV: tuple[VoteScenario, ...] = (
    VoteScenario("Models {1}", (0.8, 0.8, 0.2), False, 70.4),
    VoteScenario("Models {1, 2}", (1.0, 1.0, 1.0), False, 100.0),
    VoteScenario("Models {1, 2, 3}", (0.8, 0.8, 0.8), False, 89.6),
    VoteScenario("Models {1*}", (0.1, 0.1, 0.1), True, 2.8),
    VoteScenario("Models {1, 2, 3*}", (0.1, 0.1, 0.1), True, 2.8),
)


def majority_probability(probabilities: Sequence[float]) -> float:
    """Probability that a strict majority of independent voters votes positive.

    ``probabilities[i]`` is voter ``i``'s positive-vote probability (Poisson-binomial
    distribution, computed exactly by dynamic programming). A tie is not a majority,
    which is also the contract's rule (strict majority of the whole committee).
    """
    if not probabilities:
        raise ParameterError("need at least one voter probability")
    dist = np.zeros(len(probabilities) + 1)
    dist[0] = 1.0
    for p in probabilities:
        if not 0.0 <= p <= 1.0:
            raise ParameterError(f"vote probabilities must be in [0, 1], got {p}")
        dist[1:] = dist[1:] * (1.0 - p) + dist[:-1] * p
        dist[0] *= 1.0 - p
    return float(dist[len(probabilities) // 2 + 1 :].sum())


@dataclass
class ScenarioOutcome:
    """What the chain recorded for one scenario's trials."""

    scenario: VoteScenario
    trials: int = 0
    accepted: int = 0
    positive_votes: list[int] = field(default_factory=list)
    #: Per trial: (on-chain status accepted?, majority of the votes the verifiers drew).
    decisions: list[tuple[bool, bool]] = field(default_factory=list)

    @property
    def accepted_rate(self) -> float:
        """Fraction of claims the contract accepted."""
        return self.accepted / self.trials

    def vote_rate(self, verifier: int) -> float:
        """Fraction of positive votes revealed by verifier ``verifier`` (0-based)."""
        return self.positive_votes[verifier] / self.trials

    def interval(self, z_score: float = 1.959964) -> tuple[float, float]:
        """Wilson interval of :attr:`accepted_rate` (default 95 %)."""
        return wilson_interval(self.accepted, self.trials, z_score)


def case2_task_params(max_claims: int, committee_size: int) -> TaskParams:
    """Task parameters for the trials (generous windows; time is advanced explicitly)."""
    return TaskParams(
        min_accuracy_bps=7_000,  # the paper's verifiers: 70 % for the first model
        committee_size=committee_size,
        max_claims=max_claims,
        reward_per_model=ETHER,
        verifier_fee=ETHER // 100,
        contributor_deposit=ETHER,  # the contract asks for at least the reward
        verifier_deposit=ETHER // 5,
        # The embedded chain stamps blocks with wall-clock time, so every window must
        # outlast a slow (loaded) machine; the trials move time on explicitly instead.
        join_window=10**6,
        claim_window=10**8,
        draw_window=10**5,
        commit_window=3_600,
        reveal_window=10**5,
        release_window=10**5,
    )


class _Driver:
    """Sends the trial transactions with a fixed gas limit and fees, translating reverts."""

    def __init__(self, chain: Chain, tasks: TasksContract) -> None:
        self.chain = chain
        self.tasks = tasks
        # Fixed fees: the base fee only falls on these one-transaction blocks, so twice
        # today's stays valid, and no fee history is read per transaction.
        base_fee = int(chain.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        self.fees = Fees(max_fee_per_gas=2 * base_fee + 1, max_priority_fee_per_gas=1)

    def send(self, fn_name: str, sender: str, *args: Any, value: int = 0) -> Any:
        data = bytes(HexBytes(self.tasks.contract.encode_abi(fn_name, args=list(args))))
        signer = self.chain.signer(sender)
        try:
            receipt = signer.transact(
                self.tasks.address, data, value=value, gas=TX_GAS, fees=self.fees, label=fn_name
            )
        except (ContractLogicError, TransactionFailed) as exc:
            raise self.tasks.translate(exc) from exc
        if receipt["status"] != 1:
            raise ChainError(
                f"{fn_name} transaction 0x{bytes(receipt['transactionHash']).hex()} failed"
            )
        return receipt


def _model_bytes(rng: np.random.Generator, lazy: bool, size: int = 4096) -> bytes:
    header = b"cipherfuse-case2-model:" + (b"lazy:" if lazy else b"trained:")
    return header + rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()


def _run_scenario(
    driver: _Driver,
    store: LocalStore,
    scenario: VoteScenario,
    trials: int,
    rng: np.random.Generator,
    initiator: str,
    verifiers: Sequence[str],
    contributors: Sequence[str],
) -> ScenarioOutcome:
    chain, tasks = driver.chain, driver.tasks
    size = len(scenario.vote_probabilities)
    params = case2_task_params(trials, size)
    task_id, _ = tasks.publish_task(initiator, "ipfs://case2-objective", params)
    for verifier in verifiers:
        box_key = hashlib.sha256(b"case2-box-key" + bytes.fromhex(verifier[2:])).digest()
        driver.send(
            "joinAsVerifier", verifier, task_id, box_key, b"", value=params.verifier_deposit
        )
    for contributor in contributors[:trials]:
        driver.send("joinAsContributor", contributor, task_id, value=params.contributor_deposit)
    task = tasks.get_task(task_id)
    chain.advance_time(max(1, task.join_end - chain.timestamp()))
    outcome = ScenarioOutcome(scenario, positive_votes=[0] * size)
    index_of = {v: i for i, v in enumerate(verifiers)}
    for trial in range(trials):
        contributor = contributors[trial]
        model = _model_bytes(rng, scenario.lazy_claimant)
        cid = store.put(model)
        model_hash = hashlib.sha256(model).digest()
        seed = rng.bytes(32)
        envelope = b"case2-envelope:" + rng.bytes(32)
        commitment = envelope_commitment(task_id, contributor, envelope)
        receipt = driver.send(
            "submitClaim",
            contributor,
            task_id,
            cid,
            model_hash,
            len(model),
            seed_commitment(task_id, contributor, seed),
            commitment,
        )
        submitted = tasks.contract.events.ClaimSubmitted().process_receipt(receipt, errors=DISCARD)
        claim_id = int(submitted[0]["args"]["claimId"])
        chain.mine(2)  # past the draw block
        drawn = driver.send("revealSeed", contributor, claim_id, seed, model_hash, commitment)
        events = tasks.contract.events
        committee = list(
            events.CommitteeDrawn().process_receipt(drawn, errors=DISCARD)[0]["args"]["members"]
        )
        # Each verifier reads the claim (CID, hash, deadlines) from the chain, fetches the
        # claimed bytes by CID and checks them against the hash before voting.
        claim = tasks.get_claim(claim_id)
        fetched_ok = hashlib.sha256(store.get(claim.model_cid)).digest() == claim.model_hash
        votes: dict[str, tuple[bool, bytes]] = {}
        for member in committee:
            probability = scenario.vote_probabilities[index_of[member]]
            accept = bool(fetched_ok and rng.random() < probability)
            salt = rng.bytes(32)
            votes[member] = (accept, salt)
            driver.send(
                "commitVote", member, claim_id, vote_commitment(claim_id, member, accept, salt)
            )
        chain.advance_time(max(1, claim.commit_deadline + 1 - chain.timestamp()))
        for member, (accept, salt) in votes.items():
            revealed = driver.send("revealVote", member, claim_id, accept, salt)
            recorded = events.VoteRevealed().process_receipt(revealed, errors=DISCARD)[0]["args"]
            if recorded["accept"]:
                outcome.positive_votes[index_of[recorded["verifier"]]] += 1
        settled = events.ClaimSettled().process_receipt(
            driver.send("settleClaim", initiator, claim_id), errors=DISCARD
        )[0]["args"]
        status = ClaimStatus(settled["outcome"])
        if status not in (ClaimStatus.ACCEPTED, ClaimStatus.REJECTED):
            raise ChainError(f"claim {claim_id} settled as {status.name}, expected a majority")
        drawn_positive = sum(a for a, _ in votes.values())
        if settled["acceptVotes"] != drawn_positive:
            raise ChainError(
                f"claim {claim_id}: the contract counted {settled['acceptVotes']} positive"
                f" votes, the verifiers cast {drawn_positive}"
            )
        drawn_majority = drawn_positive > size // 2
        outcome.decisions.append((status == ClaimStatus.ACCEPTED, drawn_majority))
        outcome.trials += 1
        outcome.accepted += int(status == ClaimStatus.ACCEPTED)
    return outcome


#: Where the trials run: py-evm in process, a fresh anvil, or anvil when its binary is found.
Case2Backend = Literal["auto", "embedded", "anvil"]


def resolve_backend(backend: Case2Backend) -> Literal["embedded", "anvil"]:
    """``auto`` becomes ``anvil`` when :func:`cipherfuse.chain.anvil.find_anvil` finds it."""
    if backend not in ("auto", "embedded", "anvil"):
        raise ParameterError(f"backend must be 'auto', 'embedded' or 'anvil', got {backend!r}")
    if backend != "auto":
        return backend
    from cipherfuse.chain.anvil import find_anvil

    try:
        find_anvil()
    except ChainError:
        return "embedded"
    return "anvil"


def run_on_chain(
    scenarios: Sequence[VoteScenario],
    trials: int,
    *,
    seed: int,
    store_dir: Path | None = None,
    backend: Case2Backend = "embedded",
) -> list[ScenarioOutcome]:
    """Run ``trials`` claims per scenario through the contract on a fresh chain.

    One task per scenario (published by account 0, ``trials`` claims), the same verifier
    accounts in every task (verifier ``i`` votes with ``vote_probabilities[i]``), one
    contributor account per claim. Models go into a :class:`LocalStore` under
    ``store_dir`` (a temporary directory when ``None``). ``backend``: the embedded py-evm
    chain, or a fresh anvil on 127.0.0.1 (about 30x faster per transaction here; stopped
    when the run ends), or ``auto`` (anvil when installed, else embedded).
    """
    strict_int(trials, "trials", minimum=1, maximum=900, error=ParameterError)
    if not scenarios:
        raise ParameterError("need at least one scenario")
    committee = len(scenarios[0].vote_probabilities)
    if any(len(s.vote_probabilities) != committee for s in scenarios):
        raise ParameterError("all scenarios must have the same committee size")
    accounts_needed = 1 + committee + trials
    if resolve_backend(backend) == "embedded":
        return _run_on(
            embedded_chain(accounts_needed), scenarios, trials, seed, store_dir, committee
        )
    from cipherfuse.chain.anvil import AnvilNode
    from cipherfuse.chain.backends import http_chain

    with AnvilNode(accounts=accounts_needed) as node:
        chain = http_chain(node.url, kind="anvil", dev_accounts=accounts_needed)
        return _run_on(chain, scenarios, trials, seed, store_dir, committee)


def _run_on(
    chain: Chain,
    scenarios: Sequence[VoteScenario],
    trials: int,
    seed: int,
    store_dir: Path | None,
    committee: int,
) -> list[ScenarioOutcome]:
    rng = np.random.default_rng(seed)
    accounts = chain.accounts
    initiator, verifiers = accounts[0], accounts[1 : 1 + committee]
    contributors = accounts[1 + committee :]
    tasks, _ = TasksContract.deploy(chain, initiator)
    driver = _Driver(chain, tasks)
    with tempfile.TemporaryDirectory(prefix="cipherfuse-case2-") as tmp:
        store = LocalStore(Path(tmp) if store_dir is None else store_dir, durable=False)
        return [
            _run_scenario(driver, store, s, trials, rng, initiator, verifiers, contributors)
            for s in scenarios
        ]


def run_case2_experiment(
    *, seed: int, quick: bool, trials: int | None = None, backend: Case2Backend = "embedded"
) -> ExperimentResult:
    """Table IV: per-verifier positive-vote rates and the majority vote, closed form and
    measured on the contract (``trials`` claims per column; 30 quick, 300 full)."""
    n = trials if trials is not None else (30 if quick else 300)
    used = resolve_backend(backend)
    result = ExperimentResult("case2", seed, quick)
    names = {"embedded": "embedded py-evm", "anvil": "anvil"}
    result.meta.update({"trials_per_column": n, "backend": names[used], "committee": 3})
    for outcome in run_on_chain(TABLE_IV, n, seed=seed, backend=used):
        s = outcome.scenario
        col = s.column
        for i, p in enumerate(s.vote_probabilities):
            result.add(
                f"{col} verifier {i + 1} positive votes (measured)",
                100.0 * outcome.vote_rate(i),
                "%",
                paper=100.0 * p,
            )
        result.add(
            f"{col} majority positive (closed form)",
            100.0 * majority_probability(s.vote_probabilities),
            "%",
            paper=s.paper_majority_percent,
        )
        better: Better = "lower" if s.lazy_claimant else "higher"
        result.add(
            f"{col} majority positive (measured)",
            100.0 * outcome.accepted_rate,
            "%",
            paper=s.paper_majority_percent,
            better=better,
        )
        low, high = outcome.interval()
        result.add(f"{col} measured 95% CI low", 100.0 * low, "%")
        result.add(f"{col} measured 95% CI high", 100.0 * high, "%")
    return result
