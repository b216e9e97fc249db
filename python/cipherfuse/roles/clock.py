"""Driving agents to completion, and skipping idle time on development chains.

:func:`run_agents` steps every agent until none has anything to do; then, on a dev chain
(embedded py-evm or anvil), it moves the chain's clock to the earliest time at which some
agent next has work (:meth:`Agent.wakeups`): a window that has to close, a deadline that
has to pass. Nothing is skipped while anyone can still act, so the outcome is the one a
real-time run would have, only faster. A stuck run (no agent can act and none waits for a
time) raises instead of spinning.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cipherfuse.chain import Chain
from cipherfuse.roles.agent import Agent
from cipherfuse.roles.errors import RolesError

#: While an agent works in the background, :func:`run_agents` checks it this often and
#: steps every agent again as soon as some background work ended (a verdict is in), or
#: after :data:`BUSY_STEP_SECONDS` at the latest (so the others can join a computation
#: that waits for them, or see what other processes did on a shared chain).
BUSY_POLL_SECONDS = 0.05
BUSY_STEP_SECONDS = 1.0
#: The latest re-step on the embedded chain, which only the agents of this process change:
#: while none of them acted and no background work ended, a step would read the same
#: chain and do nothing again (each idle step costs tens of milliseconds of py-evm calls,
#: taken from the computation it waits for).
EMBEDDED_BUSY_STEP_SECONDS = 10.0


def _background_results(agents: Sequence[Agent]) -> int:
    return sum(a.background_results() for a in agents)


def _wait_while_busy(agents: Sequence[Agent], step_seconds: float = BUSY_STEP_SECONDS) -> bool:
    """Sleep while some agent is busy, until one's background work ends or ``step_seconds``
    passed; True if any was busy."""
    if not any(a.busy() for a in agents if not a.done):
        return False
    results = _background_results(agents)
    until = time.monotonic() + step_seconds
    while (
        time.monotonic() < until
        and any(a.busy() for a in agents if not a.done)
        and _background_results(agents) == results
    ):
        time.sleep(BUSY_POLL_SECONDS)
    return True


def next_wakeup(agents: Sequence[Agent], now: int) -> int | None:
    """Earliest future time any unfinished agent waits for."""
    times = [t for a in agents if not a.done for t in a.wakeups() if t > now]
    return min(times) if times else None


def run_agents(agents: Sequence[Agent], chain: Chain, *, max_rounds: int = 10_000) -> int:
    """Step ``agents`` round-robin, advancing dev-chain time when all are idle.

    While an agent is :meth:`~Agent.busy` (background work, such as a three-party
    computation), time does not move: the agents are stepped again when some background
    work ended (:meth:`~Agent.background_results`), else every :data:`BUSY_STEP_SECONDS`
    (:data:`EMBEDDED_BUSY_STEP_SECONDS` on the embedded chain). Returns the number of
    rounds. Raises :class:`RolesError` if the agents stall.
    """
    step_seconds = EMBEDDED_BUSY_STEP_SECONDS if chain.kind == "embedded" else BUSY_STEP_SECONDS
    for rounds in range(1, max_rounds + 1):
        acted = False
        for agent in agents:
            acted = agent.step() or acted
        if acted:
            continue
        if all(a.done for a in agents):
            return rounds
        if _wait_while_busy(agents, step_seconds):
            continue
        now = chain.timestamp()
        target = next_wakeup(agents, now)
        if target is None:
            waiting = [f"{a.role} {a.account}" for a in agents if not a.done]
            raise RolesError(f"the run stalled: {', '.join(waiting)} wait for nothing")
        chain.advance_time(target - now)
    raise RolesError(f"the run did not finish within {max_rounds} rounds")
