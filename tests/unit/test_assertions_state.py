"""The helpers that had no unit test (``assert_not_ready_within``, ``assert_never_ready_for``,
``assert_terminated``, ``assert_phase_within``) and ``assert_condition_within``, on recorded
streams.

``onfailure-liveness-stop.jsonl``: seed 004's OnFailure pod, three liveness kills (exit 0), then
Completed: Ready lost at 18:07:37, phase Succeeded at 18:07:39. ``liveness-restart.jsonl``: two
pods of one Deployment, one restarted at 16:59:50 and not Ready at 16:59:51.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pytest_probes import (
    ProbeAssertionError,
    Record,
    Timeline,
    assert_condition_within,
    assert_never_ready_for,
    assert_not_ready_within,
    assert_phase_within,
    assert_terminated,
)
from pytest_probes.importers import replay_raw

STREAMS = Path(__file__).resolve().parents[1] / "data" / "streams"
ONFAILURE = replay_raw(STREAMS / "onfailure-liveness-stop.jsonl")
RESTART = replay_raw(STREAMS / "liveness-restart.jsonl")


def _first(tl: Timeline, pod: str, kind: str) -> Record:
    found = tl.first(pod=pod, kind=kind)
    assert found is not None
    return found


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


def test_terminated_checks_reason_exit_code_and_window() -> None:
    started = _first(ONFAILURE, "test", "ContainerStarted")
    first = assert_terminated(ONFAILURE, "test", since=started, within=(4, 6),
                              reason="Completed", exit_code=0)
    assert first.time.second == 27
    with pytest.raises(ProbeAssertionError):
        assert_terminated(ONFAILURE, "test", since=started, within=(4, 6), exit_code=137)
    with pytest.raises(ProbeAssertionError):
        assert_terminated(ONFAILURE, "test", since=started, within=(0, 2))


def test_phase_within_passes_for_succeeded_and_fails_for_a_phase_never_reached() -> None:
    started = _first(ONFAILURE, "test", "ContainerStarted")
    done = assert_phase_within(ONFAILURE, "test", "Succeeded", since=started, within=(16, 18))
    assert done.data["phase"] == "Succeeded"
    with pytest.raises(ProbeAssertionError):
        assert_phase_within(ONFAILURE, "test", "Failed", since=started, within=60)
    with pytest.raises(ProbeAssertionError):
        assert_phase_within(ONFAILURE, "test", "Succeeded", since=started, within=(0, 10))


def test_any_pod_condition_by_name_is_recorded_and_asserted() -> None:
    added = _first(RESTART, "web-77f9f5cf79-65npl", "PodAdded")  # 16:59:42
    sandbox = assert_condition_within(RESTART, "web-77f9f5cf79-65npl",
                                      "PodReadyToStartContainers", since=added, within=(2, 4))
    assert sandbox.kind == "PodCondition" and sandbox.data["previous"] == "False"
    restarted = _first(RESTART, "web-77f9f5cf79-65npl", "ContainerRestarted")  # 16:59:50
    lost = assert_condition_within(RESTART, "web-77f9f5cf79-65npl", "ContainersReady",
                                   status="False", since=restarted, within=2)
    assert lost.time.second == 51
    # Ready has its own records, and the same helper reads them.
    ready = assert_condition_within(RESTART, "web-77f9f5cf79-65npl", "Ready", since=added,
                                    within=(2, 4))
    assert ready.kind == "PodReady"
    # A condition already there at `since` counts at 0 s.
    assert_condition_within(RESTART, "web", "PodScheduled", since=restarted, within=1)


def test_a_condition_that_does_not_come_in_time_fails_with_what_was_seen() -> None:
    started = _first(ONFAILURE, "test", "ContainerStarted")
    with pytest.raises(ProbeAssertionError, match=r"PodReadyToStartContainers=False at \+17 s"):
        assert_condition_within(ONFAILURE, "test", "PodReadyToStartContainers", status="False",
                                since=started, within=(0, 10))
    with pytest.raises(ProbeAssertionError, match="DisruptionTarget: never reported"):
        assert_condition_within(ONFAILURE, "test", "DisruptionTarget", since=started,
                                within=10)
    with pytest.raises(ValueError, match="True, False or Unknown"):
        assert_condition_within(ONFAILURE, "test", "Ready", status="yes", within=10)
