"""Polls on tenacity: on a fake clock and sleep, so no test waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tenacity import RetryCallState, Retrying, wait_fixed

from pytest_probes._poll import poll, stop_after


class FakeTime:
    """A clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _answers(*values: int) -> Iterator[int]:
    yield from values
    while True:
        yield values[-1]


def test_returns_the_first_answer_that_will_do():
    fake = FakeTime()
    answers = _answers(0, 0, 3, 4)
    assert poll(lambda: next(answers), until=lambda n: n > 2, timeout=10, wait=wait_fixed(0.5),
                clock=fake.clock, sleep=fake.sleep) == 3
    assert fake.slept == [0.5, 0.5]


def test_returns_the_last_answer_when_time_runs_out():
    fake = FakeTime()
    answers = _answers(1, 2, 3, 4, 5, 6)
    assert poll(lambda: next(answers), until=lambda n: n > 100, timeout=2, wait=wait_fixed(0.5),
                clock=fake.clock, sleep=fake.sleep) == 5
    assert fake.slept == [0.5] * 4


def test_asks_once_even_without_time():
    fake = FakeTime()
    assert poll(lambda: "no", until=lambda _a: False, timeout=0, clock=fake.clock,
                sleep=fake.sleep) == "no"
    assert fake.slept == []


def test_an_exception_ends_the_poll_at_once():
    fake = FakeTime()

    def read() -> int:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        poll(read, until=bool, timeout=10, clock=fake.clock, sleep=fake.sleep)
    assert fake.slept == []


def test_the_default_pause_grows_to_a_second():
    fake = FakeTime()
    poll(lambda: False, until=bool, timeout=5, clock=fake.clock, sleep=fake.sleep)
    assert fake.slept[:3] == [0.05, 0.1, 0.2]
    assert max(fake.slept) == 1.0


def test_stop_after_reads_the_clock_it_is_given():
    fake = FakeTime()
    stop = stop_after(1.5, fake.clock)
    state = RetryCallState(Retrying(), None, (), {})
    fake.now += 1.4
    assert not stop(state)
    fake.now += 0.1
    assert stop(state)
