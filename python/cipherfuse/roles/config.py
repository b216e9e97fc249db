"""Task terms and role configuration (flags or a TOML file)."""

from __future__ import annotations

from cipherfuse.chain import TaskParams

ETHER = 10**18


def demo_task_params(window: int = 3600, threshold: float = 0.7) -> TaskParams:
    """The demo's task: 3 paid claims, committee of 3, 1 ETH per accepted model."""
    return TaskParams(
        min_accuracy_bps=round(threshold * 10_000),
        committee_size=3,
        max_claims=3,
        reward_per_model=ETHER,
        verifier_fee=ETHER // 100,
        contributor_deposit=ETHER,  # the contract asks for at least the reward
        verifier_deposit=ETHER // 5,
        join_window=window,
        claim_window=window,
        draw_window=window,
        commit_window=window,
        reveal_window=window,
        release_window=window,
    )
