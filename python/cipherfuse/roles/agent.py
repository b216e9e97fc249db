"""What every role shares: chain + store access, persisted state, events, wake-ups.

An agent is a reconcile loop: :meth:`Agent.step` reads the chain (the source of truth),
compares it with the agent's persisted state and performs at most the next due actions.
Every action is guarded by a chain read, and every secret an action needs later is
persisted before the transaction that depends on it, so a restarted agent neither repeats
an action (no double claims or votes: the chain already shows them) nor loses money (the
seed, salt and sealing key survive the crash). :meth:`Agent.wakeups` lists the chain times
at which the agent next has something to do, which a development clock uses to skip idle
time (see :mod:`cipherfuse.roles.clock`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_utils.crypto import keccak

from cipherfuse.chain import (
    ChainError,
    ClaimInfo,
    ClaimStatus,
    EventPoller,
    TasksContract,
)
from cipherfuse.chain.errors import ForbiddenRpcError, GasLimitError, InsufficientFundsError
from cipherfuse.chain.tasks import TaskInfo
from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.roles.state import StateFile
from cipherfuse.storage import Store

Logger = Callable[[str], None]


def objective_uri(tasks: TasksContract, task_id: int) -> str:
    """The task's objective URI (the manifest CID), from its ``TaskPublished`` event,
    checked against the hash the contract stores.

    Raises:
        RoleConfigError: no such task on this contract.
    """
    if not 1 <= task_id <= tasks.task_count():
        raise RoleConfigError(
            f"task {task_id} does not exist on contract {tasks.address} "
            f"({tasks.task_count()} tasks published); check --task-id and --contract"
        )
    logs = tasks.contract.events.TaskPublished().get_logs(
        argument_filters={"taskId": task_id}, from_block=0
    )
    info = tasks.get_task(task_id)
    for log in logs:
        uri = str(log["args"]["objectiveUri"])
        if keccak(text=uri) == info.objective_hash:
            return uri
    raise RoleConfigError(f"the TaskPublished event of task {task_id} was not found")


FINAL = {
    ClaimStatus.REJECTED,
    ClaimStatus.INCONCLUSIVE,
    ClaimStatus.VOID,
    ClaimStatus.RELEASED,
    ClaimStatus.FORFEITED,
}


@dataclass
class RoleContext:
    """Where an agent works: one contract deployment and the role's own content store."""

    tasks: TasksContract
    store: Store
    log: Logger
    #: account -> how log lines name its party (e.g. ``"contributor 1 0x6813Eb"``);
    #: accounts not listed are named by role and the first 8 characters of the address.
    party_names: dict[str, str] = field(default_factory=dict)

    @property
    def dev_chain(self) -> bool:
        """Whether blocks can be mined on demand (embedded chain or anvil)."""
        return self.tasks.chain.kind in ("embedded", "anvil")


class Agent(abc.ABC):
    """Base of the three roles (abstract: each role implements step and wakeups)."""

    role = "agent"

    def __init__(
        self, ctx: RoleContext, account: str, state_dir: Path, *, start_block: int = 0
    ) -> None:
        self.ctx = ctx
        self.tasks = ctx.tasks
        self.chain = ctx.tasks.chain
        self.account = account
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state = StateFile(self.state_dir / f"{self.role}-{account}.json", self.role, account)
        self.poller = EventPoller(
            ctx.tasks,
            start_block=start_block,
            # Events are read only this deep: a reorg up to the signers' depth never
            # shows the role an event that is later undone.
            confirmations=ctx.tasks.chain.policy.confirmations,
            cursor_path=self.state_dir / f"{self.role}-{account}.cursor",
        )
        self.done = False
        self._task_cache: dict[int, TaskInfo] = {}
        self._claim_cache: dict[int, ClaimInfo] = {}
        self.finished: set[int] = set()

    # ------------------------------------------------------------ helpers
    def log(self, message: str) -> None:
        """Print one step, prefixed with the role and account."""
        name = self.ctx.party_names.get(self.account) or f"{self.role} {self.account[:8]}"
        self.ctx.log(f"[{name}] {message}")

    def now(self) -> int:
        """Timestamp of the latest block."""
        return self.chain.timestamp()

    def try_tx(self, what: str, action: Callable[[], object]) -> bool:
        """Run a transaction; a revert (someone was faster, a window moved) is logged.

        Two processes may send the same permissionless call (e.g. ``settleClaim``) at once:
        the second then reverts when mined (a plain :class:`ChainError`); the next step
        re-reads the chain, so the race costs gas only.
        """
        try:
            action()
        except (InsufficientFundsError, GasLimitError, ForbiddenRpcError):
            raise  # the account cannot send at all: the process must stop, not retry
        except ChainError as exc:
            self.log(f"{what}: not done ({exc})")
            return False
        return True

    def task(self, task_id: int) -> TaskInfo:
        """A task's terms (read once: windows, deposits and deadlines never change)."""
        if task_id not in self._task_cache:
            self._task_cache[task_id] = self.tasks.get_task(task_id)
        return self._task_cache[task_id]

    def claim(self, claim_id: int) -> ClaimInfo:
        """A claim's current state; its commitments are read (and checked) once."""
        cached = self._claim_cache.get(claim_id)
        if cached is None:
            info = self.tasks.get_claim(claim_id)
        else:
            raw = self.tasks.contract.functions.getClaim(claim_id).call()
            info = dataclasses.replace(
                cached,
                status=ClaimStatus(raw[2]),
                accept_votes=int(raw[3]),
                reject_votes=int(raw[4]),
                commit_deadline=int(raw[7]),
                reveal_deadline=int(raw[8]),
                release_deadline=int(raw[9]),
                boxes_posted=bool(raw[12]),
                abort_votes=int(raw[13]),
            )
        self._claim_cache[claim_id] = info
        return info

    def settle_if_due(self, claim_id: int, claim: ClaimInfo) -> bool:
        """Settle a claim whose votes are in or whose windows closed (anyone may)."""
        now = self.now()
        task = self.task(claim.task_id)
        due = (
            claim.status == ClaimStatus.AWAITING_SEED and now > claim.claimed_at + task.draw_window
        ) or (
            claim.status == ClaimStatus.VOTING
            and (
                now > claim.reveal_deadline
                or claim.accept_votes + claim.reject_votes + claim.abort_votes
                >= task.committee_size
            )
        )
        if not due:
            return False
        ok = self.try_tx(
            f"settle claim {claim_id}", lambda: self.tasks.settle_claim(self.account, claim_id)
        )
        if ok:
            outcome = self.claim(claim_id)
            self.log(
                f"settled claim {claim_id}: {outcome.status.name} "
                f"({outcome.accept_votes} accept / {outcome.reject_votes} reject)"
            )
        return ok

    def claim_wakeups(self, claim: ClaimInfo) -> list[int]:
        """Chain times after which a claim's next step becomes possible."""
        task = self.task(claim.task_id)
        if claim.status == ClaimStatus.AWAITING_SEED:
            return [claim.claimed_at + task.draw_window + 1]
        if claim.status == ClaimStatus.VOTING:
            return [claim.commit_deadline + 1, claim.reveal_deadline + 1]
        if claim.status == ClaimStatus.ACCEPTED:
            return [claim.release_deadline + 1]
        if claim.status == ClaimStatus.RELEASE_PENDING:
            return [claim.release_deadline + task.release_window + 1]
        return []

    def withdraw_credit(self) -> bool:
        """Withdraw whatever the contract owes this account."""
        credit = self.tasks.credit_of(self.account)
        if credit == 0:
            return False
        if self.try_tx("withdraw", lambda: self.tasks.withdraw(self.account)):
            self.log(f"withdrew {credit / 1e18:.4f} ETH")
            return True
        return False

    @abc.abstractmethod
    def step(self) -> bool:
        """Do the due actions; True if anything was done."""

    @abc.abstractmethod
    def wakeups(self) -> list[int]:
        """Future chain times at which this agent will have something to do."""

    def busy(self) -> bool:
        """Whether work of this agent runs in the background (its clock must not move)."""
        return False

    def background_results(self) -> int:
        """How many pieces of background work of this agent have ended so far (a change
        means its next step has something new to act on)."""
        return 0
