"""Chain benchmarks: the reference task life cycle on embedded py-evm vs anvil, and the
per-function gas report (stored in the benchmark's extra_info and printed).

Run: ``pytest bench/bench_chain.py --benchmark-only -s``. The anvil case needs the pinned
anvil (``npm ci`` in contracts/). Group ``chain-gas-limits-embedded`` times the embedded
life cycle estimating every transaction (baseline), with fixed gas limits (candidate) and the
same transactions sent to ``MinimalAnchor`` (the floor); ``chain-lifecycle-vs-anchor-
interleaved`` runs floor and candidate back to back and prints the ratio per pair.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cipherfuse.chain import AnvilNode, Chain, NodeError, embedded_chain, find_anvil, http_chain
from cipherfuse.chain.gasreport import GasReport, run_anchor_lifecycle, run_reference_lifecycle

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


def _gas_limit_case(benchmark, fixed: bool, role: str) -> None:  # type: ignore[no-untyped-def]
    from cipherfuse.chain.tasks import TasksContract

    def setup() -> tuple[tuple[Chain], dict[str, object]]:
        return (embedded_chain(ACCOUNTS),), {}  # a fresh chain per round, outside the timing

    benchmark.extra_info["role"] = role
    TasksContract.fixed_gas_limits = fixed
    try:
        report = benchmark.pedantic(run_reference_lifecycle, setup=setup, rounds=5, iterations=1)
    finally:
        TasksContract.fixed_gas_limits = True
    _check(report)


@pytest.mark.benchmark(group="chain-gas-limits-embedded")
def test_lifecycle_embedded_estimating_every_transaction(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Baseline: the node estimates the gas of every transaction (eth-tester bisects)."""
    _gas_limit_case(benchmark, fixed=False, role="baseline")


@pytest.mark.benchmark(group="chain-gas-limits-embedded")
def test_lifecycle_embedded_fixed_gas_limits(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Candidate: fixed per-function limits from the gas report (no estimation)."""
    _gas_limit_case(benchmark, fixed=True, role="candidate")


@pytest.mark.benchmark(group="chain-gas-limits-embedded")
def test_lifecycle_embedded_minimal_anchor_floor(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Floor: the same 50 transactions sent to MinimalAnchor (one stored digest each)."""

    def setup() -> tuple[tuple[Chain], dict[str, object]]:
        return (embedded_chain(ACCOUNTS),), {}

    benchmark.extra_info["role"] = "floor"
    report = benchmark.pedantic(run_anchor_lifecycle, setup=setup, rounds=5, iterations=1)
    assert report.transactions == 50


@pytest.mark.benchmark(group="chain-lifecycle-vs-anchor-interleaved")
def test_lifecycle_over_anchor_ratio_interleaved(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Reference life cycle (fixed limits) over the MinimalAnchor floor, one pair per round.

    Each round runs the floor and the reference life cycle back to back (alternating which
    goes first) on fresh chains, after a garbage collection, and records both times (wall,
    and this process's CPU time, which a loaded machine disturbs less); the ratios per pair,
    their median and spread are printed and kept in extra_info.
    """
    pairs: list[tuple[float, float, float, float]] = []

    def timed(run: Callable[[Chain], GasReport]) -> tuple[float, float]:
        chain = embedded_chain(ACCOUNTS)  # fresh chain, garbage collected: outside the timing
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        report = run(chain)
        w1, c1 = time.perf_counter(), time.process_time()
        assert report.transactions == 50
        return w1 - w0, c1 - c0

    def one_pair() -> None:
        # Alternate which run goes first, so a drift in the machine's load cancels out.
        if len(pairs) % 2 == 0:
            floor, reference = timed(run_anchor_lifecycle), timed(run_reference_lifecycle)
        else:
            reference, floor = timed(run_reference_lifecycle), timed(run_anchor_lifecycle)
        pairs.append((floor[0], reference[0], floor[1], reference[1]))

    one_pair()  # warm-up: imports, artifact loading, first-use caches
    pairs.clear()
    benchmark.pedantic(one_pair, rounds=15, iterations=1)
    wall = [ref / floor for floor, ref, _, _ in pairs]
    cpu = [ref / floor for _, _, floor, ref in pairs]
    benchmark.extra_info.update(
        wall_ratio_median=statistics.median(wall),
        wall_ratio_range=(min(wall), max(wall)),
        cpu_ratio_median=statistics.median(cpu),
        cpu_ratio_range=(min(cpu), max(cpu)),
        floor_wall_s_median=statistics.median(p[0] for p in pairs),
        reference_wall_s_median=statistics.median(p[1] for p in pairs),
    )
    print(
        f"\nreference / MinimalAnchor floor, {len(pairs)} interleaved pairs: wall median "
        f"{statistics.median(wall):.2f} (range {min(wall):.2f}-{max(wall):.2f}), CPU median "
        f"{statistics.median(cpu):.2f} (range {min(cpu):.2f}-{max(cpu):.2f})"
    )
