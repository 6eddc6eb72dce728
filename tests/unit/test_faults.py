"""Where the next probe comes, from when the app saw the earlier ones (faults.next_probe)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytest_probes.faults import next_probe

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_the_next_probe_is_a_whole_number_of_periods_after_the_last() -> None:
    assert next_probe(at(1.0, 4.0, 7.0), 3, after=T0 + timedelta(seconds=11.5)) == at(13.0)[0]
    assert next_probe(at(1.0, 4.0, 7.0), 3, after=T0 + timedelta(seconds=13.0)) == at(13.0)[0]


def test_the_least_late_request_sets_the_phase() -> None:
    # Each request reaches the app a little after the kubelet's tick; the earliest is nearest.
    ticks = at(1.04, 4.20, 7.01, 10.12)
    assert next_probe(ticks, 3, after=T0 + timedelta(seconds=11)) == at(13.01)[0]


def test_probes_before_a_ticker_restart_do_not_count() -> None:
    # Readiness while not ready: a pod sync ran a probe at 8.4 and restarted the ticker.
    ticks = at(1.0, 4.0, 7.0, 8.4, 11.4)
    assert next_probe(ticks, 3, after=T0 + timedelta(seconds=12)) == at(14.4)[0]


def test_a_moment_before_the_last_probe_gives_the_last_probe() -> None:
    assert next_probe(at(5.0), 2, after=T0) == at(5.0)[0]


@pytest.mark.parametrize(("ticks", "period"), [([], 1.0), (at(1.0), 0.0)])
def test_no_probes_or_no_period_is_an_error(ticks: list[datetime], period: float) -> None:
    with pytest.raises(ValueError, match="at least one probe and a positive period"):
        next_probe(ticks, period, after=T0)
