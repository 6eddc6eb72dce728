"""The phase, condition and termination helpers (``assertions/phases.py``) on recorded streams.

``onfailure-liveness-stop.jsonl`` is seed 004's OnFailure pod: started at 18:07:22, its container
ends with exit code 0 at each of three liveness kills (the first at 18:07:27), then the pod
completes, phase Succeeded at 18:07:39. ``liveness-restart.jsonl`` has the conditions of two pods
of one Deployment, one of them restarted at 16:59:50.
"""

from __future__ import annotations

import pytest

from pytest_probes.assertions.phases import (
    assert_condition_within,
    assert_phase_within,
    assert_terminated,
)
from pytest_probes.errors import ProbeAssertionError
from pytest_probes.importers import replay_raw
from tests.helpers import BYSTANDER, LIVENESS_RESTART, STREAMS
from tests.helpers import first_record as _first

ONFAILURE = replay_raw(STREAMS / "onfailure-liveness-stop.jsonl")
RESTART = replay_raw(LIVENESS_RESTART)


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


def test_terminated_fails_for_a_container_that_never_ended() -> None:
    with pytest.raises(ProbeAssertionError,
                       match=r"expected termination with reason Error within 30 s; observed no "
                       r"termination"):
        assert_terminated(RESTART, BYSTANDER, reason="Error", within=30)
