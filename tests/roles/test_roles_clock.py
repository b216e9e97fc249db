"""run_agents' wait while an agent works in the background: woken by a result, capped."""

from __future__ import annotations

import pytest

from cipherfuse.roles import clock


class FakeTime:
    """``time.monotonic`` / ``time.sleep`` for :mod:`cipherfuse.roles.clock`: sleeping
    only moves this clock, so the tests never wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


class BackgroundAgent:
    """Busy until ``ends_after`` sleeps have passed, when its result arrives."""

    done = False

    def __init__(self, fake: FakeTime, ends_after: int | None) -> None:
        self.fake = fake
        self.ends_after = ends_after

    def _ended(self) -> bool:
        return self.ends_after is not None and self.fake.sleeps >= self.ends_after

    def busy(self) -> bool:
        return not self._ended()

    def background_results(self) -> int:
        return int(self._ended())


class IdleAgent:
    done = False

    def busy(self) -> bool:
        return False

    def background_results(self) -> int:
        return 0


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake_time = FakeTime()
    monkeypatch.setattr(clock, "time", fake_time)
    return fake_time


def test_the_wait_ends_when_a_background_result_arrives(fake: FakeTime) -> None:
    busy_one = BackgroundAgent(fake, ends_after=3)
    assert clock._wait_while_busy([IdleAgent(), busy_one], step_seconds=3600.0)  # type: ignore[list-item]
    assert fake.sleeps == 3  # woken at the result, not after the hour
    assert fake.now == pytest.approx(3 * clock.BUSY_POLL_SECONDS)


def test_a_result_wakes_the_wait_while_another_agent_stays_busy(fake: FakeTime) -> None:
    agents = [BackgroundAgent(fake, ends_after=None), BackgroundAgent(fake, ends_after=2)]
    # The second agent's result is new work for the loop, though the first still runs.
    agents[1].busy = lambda: True  # type: ignore[method-assign]
    assert clock._wait_while_busy(agents, step_seconds=3600.0)  # type: ignore[arg-type]
    assert fake.sleeps == 2


def test_without_a_result_the_wait_lasts_the_step(fake: FakeTime) -> None:
    agents = [BackgroundAgent(fake, ends_after=None)]
    assert clock._wait_while_busy(agents, step_seconds=2.0)  # type: ignore[arg-type]
    assert fake.now == pytest.approx(2.0, abs=clock.BUSY_POLL_SECONDS)


def test_no_wait_when_nobody_is_busy(fake: FakeTime) -> None:
    assert not clock._wait_while_busy([IdleAgent()], step_seconds=3600.0)  # type: ignore[list-item]
    assert fake.sleeps == 0
