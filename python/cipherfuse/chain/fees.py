"""EIP-1559 fee suggestions from the node's fee history, with a cap and a replacement bump.

:func:`suggest_fees` asks ``eth_feeHistory`` for the next block's base fee and the recent
priority fees paid (a percentile per block). A node without fee history (or one that
answers it empty, as the embedded py-evm chain does) falls back to the latest block's base
fee and ``eth_maxPriorityFeePerGas``; a node without EIP-1559 gets a legacy gas price. The
max fee is ``2 x base fee + tip`` (it survives six full blocks of base-fee growth), never
above the configured cap.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import Web3Exception

from cipherfuse.chain.errors import ChainParameterError, FeeCapError

GWEI = 10**9


@dataclass(frozen=True)
class Fees:
    """Fees of one transaction, in wei per gas.

    ``gas_price`` is set (and the other two are 0) only for a legacy, pre-EIP-1559 node.
    """

    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_price: int | None = None

    @property
    def worst_case_per_gas(self) -> int:
        """The most a unit of gas can cost under these fees."""
        return self.gas_price if self.gas_price is not None else self.max_fee_per_gas

    def fields(self) -> dict[str, int]:
        """The transaction fields these fees set."""
        if self.gas_price is not None:
            return {"gasPrice": self.gas_price}
        return {
            "maxFeePerGas": self.max_fee_per_gas,
            "maxPriorityFeePerGas": self.max_priority_fee_per_gas,
        }


@dataclass(frozen=True)
class FeePolicy:
    """How fees are chosen.

    Attributes:
        max_fee_cap: the most wei per gas this account will ever offer (None: no cap).
        priority_fee: a fixed tip in wei per gas (None: the ``reward_percentile`` of
            recent blocks' tips, at least ``min_priority_fee``).
        min_priority_fee: floor of the tip taken from fee history.
        history_blocks: blocks of fee history asked for.
        reward_percentile: percentile of each block's tips used.
    """

    max_fee_cap: int | None = None
    priority_fee: int | None = None
    min_priority_fee: int = 0
    history_blocks: int = 10
    reward_percentile: float = 50.0

    def __post_init__(self) -> None:
        if self.max_fee_cap is not None and self.max_fee_cap < 1:
            raise ChainParameterError(f"max_fee_cap must be >= 1 wei, got {self.max_fee_cap}")
        if self.priority_fee is not None and self.priority_fee < 0:
            raise ChainParameterError(f"priority_fee must be >= 0, got {self.priority_fee}")
        if self.min_priority_fee < 0:
            raise ChainParameterError("min_priority_fee must be >= 0")
        if not 1 <= self.history_blocks <= 1024:
            raise ChainParameterError("history_blocks must be in [1, 1024]")
        if not 0.0 <= self.reward_percentile <= 100.0:
            raise ChainParameterError("reward_percentile must be in [0, 100]")


def _from_history(w3: Web3, policy: FeePolicy) -> tuple[int, int] | None:
    """(next base fee, median tip) from ``eth_feeHistory``, or None where it is unusable."""
    try:
        history: Any = w3.eth.fee_history(
            policy.history_blocks, "latest", [policy.reward_percentile]
        )
    except (Web3Exception, ValueError, NotImplementedError):
        return None  # the node has no fee history: fall back
    bases = list(history.get("baseFeePerGas") or [])
    if not bases:
        return None
    rewards = [int(r[0]) for r in (history.get("reward") or []) if r]
    tip = int(statistics.median(rewards)) if rewards else 0
    return int(bases[-1]), tip


def _fallback(w3: Web3) -> tuple[int, int] | None:
    """(base fee of the latest block, node's tip suggestion); None for a legacy node."""
    latest: Any = w3.eth.get_block("latest")
    base = latest.get("baseFeePerGas")
    if base is None:
        return None
    try:
        tip = int(w3.eth.max_priority_fee)
    except (Web3Exception, ValueError, NotImplementedError):
        tip = GWEI  # the node has no suggestion either
    return int(base), tip


def suggest_fees(w3: Web3, policy: FeePolicy) -> Fees:
    """Fees for a transaction sent now.

    Raises:
        FeeCapError: the next block's base fee plus the tip is above ``max_fee_cap``
            (a transaction at the cap would not be mined now).
    """
    found = _from_history(w3, policy) or _fallback(w3)
    if found is None:
        price = int(w3.eth.gas_price)
        if policy.max_fee_cap is not None and price > policy.max_fee_cap:
            raise FeeCapError(
                f"the node's gas price {price} wei exceeds the configured cap "
                f"{policy.max_fee_cap} wei; raise max_fee_gwei or wait for cheaper gas"
            )
        return Fees(0, 0, gas_price=price)
    base, history_tip = found
    tip = (
        policy.priority_fee
        if policy.priority_fee is not None
        else max(history_tip, policy.min_priority_fee)
    )
    max_fee = 2 * base + tip
    if policy.max_fee_cap is not None:
        if base + tip > policy.max_fee_cap:
            raise FeeCapError(
                f"base fee {base} wei + tip {tip} wei exceeds the configured max fee cap "
                f"{policy.max_fee_cap} wei; raise max_fee_gwei or wait for cheaper gas"
            )
        max_fee = min(max_fee, policy.max_fee_cap)
    return Fees(max_fee, min(tip, max_fee))


def _raised(value: int, percent: int) -> int:
    return -(-value * (100 + percent) // 100)


def bump_fees(old: Fees, fresh: Fees, percent: int, cap: int | None) -> Fees | None:
    """Fees of a replacement for a transaction sent with ``old``, or None if the cap forbids.

    Nodes accept a replacement (same nonce) only if both fees rise by at least 10 %
    (geth's default price bump); the replacement offers ``percent`` more than ``old``, or
    the current suggestion ``fresh`` if that is higher.
    """
    if percent < 10:
        raise ChainParameterError(f"a fee bump must be >= 10 %, got {percent}")
    if old.gas_price is not None:
        price = max(_raised(old.gas_price, percent), fresh.worst_case_per_gas)
        if cap is not None and price > cap:
            return None
        return Fees(0, 0, gas_price=price)
    tip = max(_raised(old.max_priority_fee_per_gas, percent), fresh.max_priority_fee_per_gas)
    max_fee = max(_raised(old.max_fee_per_gas, percent), fresh.max_fee_per_gas, tip)
    if cap is not None and max_fee > cap:
        return None
    return Fees(max_fee, tip)
