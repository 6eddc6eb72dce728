"""The readiness helpers (``assertions/readiness.py``) on recorded streams and made-up records.

Seed 004's OnFailure pod (``onfailure-liveness-stop.jsonl``) loses Ready at 18:07:37, when it
completes. Of the two pods of ``web`` in ``liveness-restart.jsonl``, the one restarted at 16:59:50
is not Ready at 16:59:51.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytest_probes.assertions.readiness import assert_never_ready_for, assert_not_ready_within
from pytest_probes.errors import ProbeAssertionError
from pytest_probes.importers import replay_raw
from pytest_probes.timeline import Record, Timeline
from tests.helpers import BYSTANDER, LIVENESS_RESTART, STREAMS, VICTIM
from tests.helpers import first_record as _first

ONFAILURE = replay_raw(STREAMS / "onfailure-liveness-stop.jsonl")
RESTART = replay_raw(LIVENESS_RESTART)
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def rec(seconds: float, kind: str, *, pod: str = "web-0", source: str = "event") -> Record:
    return Record(time=T0 + timedelta(seconds=seconds), source=source, kind=kind,
                  namespace="ns", pod=pod)


def test_not_ready_within_passes_in_the_window_and_fails_outside_it() -> None:
    started = _first(ONFAILURE, "test", "ContainerStarted")  # 18:07:22; not Ready at 18:07:37
    lost = assert_not_ready_within(ONFAILURE, "test", since=started, within=(14, 16))
    assert lost.kind == "PodNotReady" and lost.message == "PodCompleted"
    with pytest.raises(ProbeAssertionError, match="Ready lost"):
        assert_not_ready_within(ONFAILURE, "test", since=started, within=(0, 10))
    with pytest.raises(ProbeAssertionError):
        assert_not_ready_within(ONFAILURE, "test", since=started, within=(20, 30))  # too early


def test_not_ready_within_a_prefix_counts_the_pod_that_lost_it() -> None:
    restarted = _first(RESTART, "web", "ContainerRestarted")
    lost = assert_not_ready_within(RESTART, "web", since=restarted, within=2)
    assert lost.pod == "web-77f9f5cf79-65npl"


def test_never_ready_for_fails_on_a_ready_pod_and_passes_once_it_is_not() -> None:
    started = _first(ONFAILURE, "test", "ContainerStarted")
    with pytest.raises(ProbeAssertionError, match="never Ready for 5 s"):
        assert_never_ready_for(ONFAILURE, "test", since=started, duration=5)
    lost = _first(ONFAILURE, "test", "PodNotReady")
    assert_never_ready_for(ONFAILURE, "test", since=lost.time + timedelta(seconds=1), duration=1)
    with pytest.raises(ProbeAssertionError, match="no pod matching 'nothing'"):
        assert_never_ready_for(ONFAILURE, "nothing", since=lost, duration=1)


def test_ready_after_a_not_ready_in_the_same_second_as_the_reference_is_not_already_ready() -> None:
    # Seen on 1.33: Ready at +0, a restart at +9 whose NotReady is stamped in the restart's own
    # second, Ready again at +14. Ready "since the restart" is the one at +14, not the old one.
    from pytest_probes import assert_ready_within

    def pod(seconds: float, kind: str) -> Record:
        return rec(seconds, kind, source="pod")

    tl = Timeline("ns", [pod(0, "PodReady"), pod(9, "ContainerRestarted"), pod(9, "PodNotReady"),
                         pod(14, "PodReady")])
    restart = tl.records[1]
    assert assert_ready_within(tl, "web-0", since=restart, within=(4, 8)).time.second == 14
    # Still in state and never left: counts at once.
    assert assert_ready_within(tl, "web-0", since=tl.records[-1], within=1).time.second == 14


def test_never_ready_for_fails_for_a_pod_that_was_ready_already() -> None:
    killing = _first(RESTART, VICTIM, "Killing")  # 16:59:49; the other pod has been Ready since
    with pytest.raises(ProbeAssertionError,
                       match=rf"expected never Ready for 5 s from 16:59:49; observed Ready at "
                       rf"16:59:\d\d \({BYSTANDER}\)"):
        assert_never_ready_for(RESTART, BYSTANDER, since=killing, duration=5)
