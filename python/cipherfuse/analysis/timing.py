"""Interleaved timing: baseline and candidates measured in alternation, ratios per pair.

On a shared machine, timing each variant in its own block of repeats lets the
load of the moment decide the ratio (a best-of-3 of one and a best-of-3 of the
other may come from different minutes). Here every round runs every variant
once, in the same order, and each candidate's time is divided by the
baseline's time *of the same round*; the median of those per-round ratios and
their spread are the figures to report.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cipherfuse.errors import ParameterError


@dataclass(frozen=True)
class PairedRatio:
    """Per-round ratios candidate / baseline: median, min and max, over ``rounds`` rounds."""

    median: float
    low: float
    high: float
    rounds: int

    def __str__(self) -> str:
        return f"x{self.median:.3f} (range {self.low:.3f}-{self.high:.3f}, {self.rounds} pairs)"


def interleaved_times(
    runs: Mapping[str, Callable[[], Any]],
    rounds: int,
    *,
    check: Callable[[str, Any], None] | None = None,
    warm: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds per round for every run, the runs called in turn within each round.

    ``warm`` calls each run once first (compilation, first-touch allocation);
    ``check(name, output)`` is called on every output outside the timed region.
    ``clock`` reads the time: wall time by default; ``time.thread_time`` counts only
    the calling thread's CPU time (for single-threaded runs on a machine shared with
    other jobs, where wall time also counts the time the thread waited for a core).
    """
    if rounds < 1:
        raise ParameterError(f"rounds must be >= 1, got {rounds}")
    if warm:
        for name, fn in runs.items():
            out = fn()
            if check is not None:
                check(name, out)
            del out
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = clock()
            out = fn()
            times[name].append(clock() - start)
            if check is not None:
                check(name, out)
            del out  # no run pays for the memory a previous run's output still holds
    return times


def paired_ratio(candidate: list[float], baseline: list[float]) -> PairedRatio:
    """Median and range of ``candidate[i] / baseline[i]`` over the rounds."""
    if len(candidate) != len(baseline) or not candidate:
        raise ParameterError("paired_ratio needs two non-empty lists of the same length")
    ratios = [c / b for c, b in zip(candidate, baseline, strict=True)]
    return PairedRatio(statistics.median(ratios), min(ratios), max(ratios), len(ratios))
