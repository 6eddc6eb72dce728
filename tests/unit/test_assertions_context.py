"""The helpers' context: the tolerance they judge by and the measurements they note."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytest_probes import ProbeAssertionError, Timeline, assert_event_within
from pytest_probes.assertions import HelperContext, Measurement, context_of, use_context
from pytest_probes.timeline import Record

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def rec(seconds: float, kind: str) -> Record:
    return Record(time=T0 + timedelta(seconds=seconds), source="event", kind=kind,
                  namespace="ns", pod="web-0")


def test_a_live_measurement_counts_the_helper_return_on_the_server_clock() -> None:
    mono = [100.0]
    wall = [T0.timestamp() + 10.4]
    tl = Timeline("ns", live=True, clock=lambda: mono[0], wall=lambda: wall[0])
    context = use_context(tl, HelperContext())
    seen = Record(time=T0 + timedelta(seconds=10), source="pod", kind="ContainerRestarted",
                  namespace="ns", pod="web-0", received=99.95, received_wall=wall[0] - 0.05)
    tl.last_wait_started = 99.9  # the helper started waiting before the record came
    tl.append(seen)
    m = context.measure(tl, "assert_restarts_within", "web-0", T0, 8.0, 12.0, seen)
    # The offset estimate is the record's own delivery (0.35 s): the return is 10.05 s after T0.
    assert (m.earliest, m.observed) == (8.0, 10.0)
    assert m.returned == pytest.approx(10.05)
    assert m.latency == pytest.approx(0.05)
    assert context.measurements == [m]
    # A record that was there before the helper started waiting says nothing about latency.
    tl.last_wait_started = 100.0
    assert context.measure(tl, "assert_restarts_within", "web-0", T0, 8.0, 12.0,
                           seen).latency is None
    assert m.to_json()["returned_s"] == 10.05 and m.to_json()["reference"] == \
        "2026-01-01T12:00:00Z"


def test_a_recorded_measurement_has_no_return_time() -> None:
    tl = Timeline("ns", [rec(3, "Killing")])
    m = context_of(tl).measure(tl, "assert_event_within", "web-0", T0, 0.0, 5.0, tl.records[0])
    assert (m.observed, m.returned, m.latency) == (3.0, None, None)


def test_the_helpers_note_their_measurements_in_the_context_given_to_the_timeline() -> None:
    tl = Timeline("ns", [rec(3, "Killing")], started=T0)
    context = use_context(tl, HelperContext())
    found = assert_event_within(tl, "web-0", "Killing", within=5)
    assert context_of(tl) is context
    assert context.measurements == [Measurement("assert_event_within", "web-0", T0, 0.0, 5.0,
                                                3.0)]
    assert found is tl.records[0]


def test_the_tolerance_stretches_the_windows_of_its_timeline_only() -> None:
    late = [rec(7, "Killing")]
    strict = Timeline("ns", late, started=T0)
    stretched = Timeline("ns", late, started=T0)
    use_context(stretched, HelperContext(tolerance=1.5))
    assert assert_event_within(stretched, "web-0", "Killing", within=5).kind == "Killing"
    assert context_of(stretched).measurements[0].latest == 7.5
    with pytest.raises(ProbeAssertionError, match=r"within 5 s of 12:00:00; observed Killing"):
        assert_event_within(strict, "web-0", "Killing", within=5)
    assert context_of(strict) == HelperContext(tolerance=1.0)


def test_a_timeline_without_a_context_gets_one_that_keeps_its_measurements() -> None:
    tl = Timeline("ns", [rec(3, "Killing")], started=T0)
    assert_event_within(tl, "web-0", "Killing", within=5)
    assert_event_within(tl, "web-0", "Killing", within=(2, 5))
    assert [m.earliest for m in context_of(tl).measurements] == [0.0, 2.0]
    # The timeline holds what the cluster did, nothing of the helpers'.
    assert not hasattr(tl, "tolerance") and not hasattr(tl, "measurements")
