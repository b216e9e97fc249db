"""Interleaved timing: every run once per round, ratios taken per round."""

from __future__ import annotations

import pytest

from cipherfuse.analysis.timing import interleaved_times, paired_ratio
from cipherfuse.errors import ParameterError


def test_runs_alternate_within_each_round_and_outputs_are_checked() -> None:
    calls: list[str] = []
    checked: list[tuple[str, int]] = []
    runs = {"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2}
    times = interleaved_times(runs, 3, check=lambda name, out: checked.append((name, out)))
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds
    assert checked == [("a", 1), ("b", 2)] * 4
    assert set(times) == {"a", "b"} and all(len(t) == 3 and min(t) >= 0 for t in times.values())


def test_paired_ratio_is_the_median_of_per_round_ratios() -> None:
    ratio = paired_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 3.0])  # per round: 2, 3, 1
    assert (ratio.median, ratio.low, ratio.high, ratio.rounds) == (2.0, 1.0, 3.0, 3)
    assert "x2.000" in str(ratio)
    with pytest.raises(ParameterError):
        paired_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ParameterError):
        interleaved_times({"a": lambda: None}, 0)
