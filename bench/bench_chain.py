"""Chain benchmarks: the reference task life cycle on embedded py-evm vs anvil, and the
per-function gas report (stored in the benchmark's extra_info and printed).

Run: ``pytest bench/bench_chain.py --benchmark-only -s``. The anvil case needs the pinned
anvil (``npm ci`` in contracts/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cipherfuse.chain import AnvilNode, Chain, NodeError, embedded_chain, find_anvil, http_chain
from cipherfuse.chain.gasreport import GasReport, run_reference_lifecycle

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 7  # 1 initiator + 3 verifiers + 3 contributors


def _check(report: GasReport) -> None:
    assert report.transactions == 50
    assert report.over_target() == {}, report.table()


@pytest.mark.benchmark(group="chain-lifecycle-1+3+3")
def test_lifecycle_embedded_pyevm(benchmark) -> None:  # type: ignore[no-untyped-def]
    def setup() -> tuple[tuple[Chain], dict[str, object]]:
        return (embedded_chain(ACCOUNTS),), {}

    report = benchmark.pedantic(run_reference_lifecycle, setup=setup, rounds=3, iterations=1)
    _check(report)
    benchmark.extra_info["gas"] = {k: report.median(k) for k in report.calls}
    benchmark.extra_info["total_gas"] = report.total
    print("\n" + report.table())


@pytest.mark.benchmark(group="chain-lifecycle-1+3+3")
def test_lifecycle_anvil(benchmark) -> None:  # type: ignore[no-untyped-def]
    try:
        binary = find_anvil(REPO_ROOT)
    except NodeError as exc:
        pytest.skip(str(exc))
    with AnvilNode(accounts=ACCOUNTS, binary=binary) as node:
        chain = http_chain(node.url, kind="anvil", dev_accounts=ACCOUNTS)

        def setup() -> tuple[tuple[Chain], dict[str, object]]:
            return (chain,), {}  # each round deploys a fresh contract on the running node

        report = benchmark.pedantic(run_reference_lifecycle, setup=setup, rounds=3, iterations=1)
    _check(report)
    benchmark.extra_info["total_gas"] = report.total


@pytest.mark.benchmark(group="chain-anvil-startup")
def test_anvil_startup(benchmark) -> None:  # type: ignore[no-untyped-def]
    try:
        binary = find_anvil(REPO_ROOT)
    except NodeError as exc:
        pytest.skip(str(exc))

    def start_stop() -> int:
        node = AnvilNode(accounts=2, binary=binary).start()
        chain_id = int(http_chain(node.url).w3.eth.chain_id)
        node.stop()
        return chain_id

    assert benchmark.pedantic(start_stop, rounds=5, iterations=1) == 31337


def _gas_limit_case(benchmark, fixed: bool) -> None:  # type: ignore[no-untyped-def]
    from cipherfuse.chain.tasks import TasksContract

    def setup() -> tuple[tuple[Chain], dict[str, object]]:
        return (embedded_chain(ACCOUNTS),), {}  # a fresh chain per round, outside the timing

    TasksContract.fixed_gas_limits = fixed
    try:
        report = benchmark.pedantic(run_reference_lifecycle, setup=setup, rounds=3, iterations=1)
    finally:
        TasksContract.fixed_gas_limits = True
    _check(report)


@pytest.mark.benchmark(group="chain-gas-limits-embedded")
def test_lifecycle_embedded_estimating_every_transaction(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Baseline: the node estimates the gas of every transaction (eth-tester bisects)."""
    _gas_limit_case(benchmark, fixed=False)


@pytest.mark.benchmark(group="chain-gas-limits-embedded")
def test_lifecycle_embedded_fixed_gas_limits(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Candidate: fixed per-function limits from the gas report (no estimation)."""
    _gas_limit_case(benchmark, fixed=True)
