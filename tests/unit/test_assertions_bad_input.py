"""Bad arguments to the helpers: a clear error at once, never a traceback or a vacuous pass.

Run on a recording with a restart in it (liveness-restart.jsonl, recorded on a local cluster), so
a helper that accepted a meaningless duration would pass where it must not.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_probes import (
    assert_endpoint_kept_for,
    assert_event_within,
    assert_never_ready_for,
    assert_no_restarts_for,
    restarts_of,
)
from pytest_probes.importers import replay_raw
from pytest_probes.timeline import Timeline, as_time

STREAM = Path(__file__).resolve().parents[1] / "data" / "streams" / "liveness-restart.jsonl"


@pytest.fixture(scope="module")
def restarted() -> tuple[Timeline, str]:
    tl = replay_raw(STREAM)
    pod = "web-77f9f5cf79-65npl"
    assert restarts_of(tl, pod)[pod], "the recording has lost its restart"
    return tl, pod


@pytest.mark.parametrize("duration", [-10, 0, float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("helper", [assert_no_restarts_for, assert_never_ready_for,
                                    assert_endpoint_kept_for])
def test_a_meaningless_duration_is_refused(restarted: tuple[Timeline, str], helper: object,
                                           duration: float) -> None:
    tl, pod = restarted
    with pytest.raises(ValueError, match=r"duration=.*must be a finite number of seconds above 0"):
        helper(tl, pod, duration=duration)  # type: ignore[operator]


def test_a_duration_of_another_type_is_refused(restarted: tuple[Timeline, str]) -> None:
    tl, pod = restarted
    with pytest.raises(TypeError, match=r"takes seconds \(a number\); got '10'"):
        assert_no_restarts_for(tl, pod, duration="10")  # type: ignore[arg-type]


@pytest.mark.parametrize(("within", "error", "message"), [
    (float("nan"), ValueError, "finite ends"),
    ((0, float("inf")), ValueError, "finite ends"),
    ((5, 1), ValueError, "ends before it starts"),
    (-3, ValueError, "nothing can happen within it"),
    ("soon", TypeError, "within= takes seconds"),
    ((1, 2, 3), TypeError, "within= takes seconds"),
])
def test_a_meaningless_window_is_refused(restarted: tuple[Timeline, str], within: object,
                                         error: type[Exception], message: str) -> None:
    tl, pod = restarted
    with pytest.raises(error, match=message):
        assert_event_within(tl, pod, "Killing", within=within)  # type: ignore[arg-type]


def test_every_time_type_is_accepted_the_same(restarted: tuple[Timeline, str]) -> None:
    tl, pod = restarted
    first = tl.records[0]
    forms = [first, first.time, first.time.timestamp(), int(first.time.timestamp()),
             first.time.strftime("%Y-%m-%dT%H:%M:%SZ")]
    killings = {assert_event_within(tl, pod, "Killing", since=form, within=600).time
                for form in forms}
    assert len(killings) == 1


@pytest.mark.parametrize(("value", "error", "message"), [
    (object(), TypeError, "since= takes an epoch number .*a Record; got object"),
    (True, TypeError, "since= takes an epoch number"),
    ("yesterday", ValueError, "'yesterday' is not an RFC 3339 time"),
    (float("nan"), ValueError, "nan is not a time"),
    (1e15, ValueError, "is not a time"),
])
def test_a_wrong_time_names_the_accepted_types(value: object, error: type[Exception],
                                               message: str) -> None:
    with pytest.raises(error, match=message):
        as_time(value, argument="since")


def test_an_epoch_float_is_what_time_time_returns() -> None:
    now = time.time()
    assert abs(as_time(now, argument="at").timestamp() - now) < 1e-6
    assert as_time(now).tzinfo is UTC
    assert as_time(datetime(2026, 1, 1)).tzinfo is not None
