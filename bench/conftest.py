"""Benchmark reporting: ratios, bandwidth and MAC rates measured in this run.

Each benchmark declares in ``extra_info``: ``role`` ("baseline", "candidate"
or "roofline"), and optionally ``bytes`` (memory it must read) and ``macs``
(multiply-accumulates) and ``threads``. After the run, every group prints
min times, candidate speed-up over baseline, GB/s against the roofline of the
same group, and GMAC/s per thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

import pytest

# One MNIST lookup for tests and benchmarks: the fixtures ``mnist_dir`` and ``mnist``.
from tests.conftest import mnist, mnist_dir

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

__all__ = ["Benchmark", "mnist", "mnist_dir"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Benchmark(Protocol):
    """The ``benchmark`` fixture of pytest-benchmark, as the benches use it.

    pytest-benchmark's own ``BenchmarkFixture`` carries no annotations, so strict mypy
    cannot check calls on it; the benches annotate the fixture with this protocol
    instead (imported under ``TYPE_CHECKING``: the fixture itself is unchanged).
    """

    group: str | None
    extra_info: dict[str, Any]

    def __call__(
        self, function_to_benchmark: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Time ``function_to_benchmark(*args, **kwargs)`` in calibrated rounds; its result."""

    def pedantic(
        self,
        target: Callable[..., _T],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        setup: Callable[[], tuple[tuple[Any, ...], Mapping[str, Any]] | None] | None = None,
        teardown: Callable[..., object] | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> _T:
        """Time ``target`` in exactly ``rounds`` x ``iterations`` calls; its result.

        ``setup`` runs before each round outside the timing and may return the round's
        ``(args, kwargs)``.
        """


if TYPE_CHECKING:

    def _the_fixture_is_a_benchmark(fixture: BenchmarkFixture) -> Benchmark:
        """Checked by mypy only: pytest-benchmark's fixture has every member named above."""
        return fixture


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    groups: dict[str, list[Any]] = {}
    for bench in session.benchmarks:
        if bench.stats is None or not bench.stats.rounds:
            continue
        groups.setdefault(bench.group or bench.name, []).append(bench)
    if not groups:
        return
    write = terminalreporter.write_line
    write("")
    write("cipherfuse benchmark summary (min times; ratios measured side by side in this run)")
    for group, benches in sorted(groups.items()):
        write(f"[{group}]")
        by_role = {b.extra_info.get("role"): b for b in benches}
        roof = by_role.get("roofline")
        base = by_role.get("baseline")
        roof_gbs = roof.extra_info["bytes"] / roof.stats.min / 1e9 if roof else None
        for b in benches:
            info = b.extra_info
            t = b.stats.min
            parts = [f"  {b.name:55} {t * 1e3:10.3f} ms"]
            if "bytes" in info:
                gbs = info["bytes"] / t / 1e9
                parts.append(f"{gbs:7.2f} GB/s")
                if roof_gbs and b is not roof:
                    parts.append(f"({100 * gbs / roof_gbs:5.1f}% of read roofline)")
            if "macs" in info:
                threads = info.get("threads", 1)
                parts.append(f"{info['macs'] / t / 1e9 / threads:7.2f} GMAC/s per thread")
            if base is not None and b is not base and info.get("role") == "candidate":
                parts.append(f"speed-up x{base.stats.min / t:.2f} vs {base.name}")
            write(" ".join(parts))
