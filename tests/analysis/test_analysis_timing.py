"""Interleaved timing: every run once per round, ratios taken per round."""

from __future__ import annotations

import weakref

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


def test_the_clock_is_chosen_by_the_caller_and_outputs_are_not_kept() -> None:
    """A fake clock that advances 1 s per reading (runs take 1 s each); each output is
    released before the next run starts."""
    ticks = iter(range(1000))
    outputs: list[weakref.ref[Output]] = []

    class Output:
        pass

    def run() -> Output:
        assert all(ref() is None for ref in outputs)  # the previous run's output is gone
        out = Output()
        outputs.append(weakref.ref(out))
        return out

    times = interleaved_times({"a": run, "b": run}, 2, clock=lambda: float(next(ticks)))
    assert times == {"a": [1.0, 1.0], "b": [1.0, 1.0]}
    assert len(outputs) == 6  # one warm-up round, two timed rounds
