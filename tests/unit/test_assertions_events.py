"""The Event and log helpers (``assertions/events.py``) on recorded records.

``liveness-restart.jsonl``: ``web-77f9f5cf79-65npl`` started at 16:59:44, failed its liveness
probe at 16:59:45, 47 and 49 (one aggregated Unhealthy Event, count 1 to 3), was killed at 16:59:49
and failed its readiness probe once while it restarted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_probes import (
    ProbeAssertionError,
    Record,
    Timeline,
    assert_event_within,
    assert_log_within,
    assert_probe_failures,
    probe_failures,
)
from pytest_probes.importers import replay_raw
from pytest_probes.podlogs import log_line_record
from tests.helpers import LIVENESS_RESTART, VICTIM, first_record

RESTART = replay_raw(LIVENESS_RESTART)


def test_probe_failures_expand_an_aggregated_event_per_probe() -> None:
    (failures,) = probe_failures(RESTART, "web", probe="liveness").values()
    assert [(r.time.second, r.data["count"]) for r in failures] == [(45, 1), (47, 2), (49, 3)]
    assert {k: len(v) for k, v in probe_failures(RESTART, "web", probe="readiness").items()} == {
        VICTIM: 1}
    assert probe_failures(RESTART, "web", probe="startup") == {}
    with pytest.raises(ValueError, match="choose one of liveness, readiness, startup"):
        probe_failures(RESTART, "web", probe="bogus")


def test_probe_failures_assertion_counts_to_the_nth_failure() -> None:
    started = first_record(RESTART, VICTIM, "ContainerStarted")  # 16:59:44
    failures = assert_probe_failures(RESTART, "web", probe="liveness", count=3, since=started,
                                     within=(4, 6))
    assert len(failures) == 3 and failures[-1].time.second == 49
    with pytest.raises(ProbeAssertionError, match=f"observed failures {VICTIM}: 3"):
        assert_probe_failures(RESTART, "web", probe="liveness", count=4, within=60)


def test_event_within_returns_the_event_in_its_window_and_fails_outside_it() -> None:
    failed = first_record(RESTART, VICTIM, "Unhealthy")  # 16:59:45
    killing = assert_event_within(RESTART, VICTIM, "Killing", since=failed, within=(3, 5))
    assert killing.message == "Container app failed liveness probe, will be restarted"
    with pytest.raises(ProbeAssertionError, match=r"observed Killing at \+4 s"):
        assert_event_within(RESTART, VICTIM, "Killing", since=failed, within=(0, 2))


def test_log_within_matches_a_line_by_regular_expression() -> None:
    lines = ["2026-12-05T12:00:00.5Z starting", "2026-12-05T12:00:02.25Z listening on 8080"]
    records = [log_line_record("ns", "web-0", "app", line) for line in lines]
    tl = Timeline("ns", [r for r in records if r is not None])
    line = assert_log_within(tl, "web-0", r"listening on \d+", since=tl.records[0], within=3)
    assert line.message == "listening on 8080" and line.container == "app"
    with pytest.raises(ProbeAssertionError, match=r"a log line matching 'ready' within"):
        assert_log_within(tl, "web-0", "ready", within=10)
    with pytest.raises(ValueError, match="is no regular expression"):
        assert_log_within(tl, "web-0", "(", within=10)


GRPC_TIMELINES = Path(__file__).resolve().parents[1] / "data" / "timelines"
"""Recorded on the local provider, Kubernetes 1.37.2, by ``tests/live/test_grpc_probes.py``
(liveness flipped to NOT_SERVING) and upstream's "should be restarted with a GRPC liveness probe"
(nothing listens on 2333)."""


def test_grpc_probe_failures_as_the_kubelet_posted_them() -> None:
    tl = Timeline.load(GRPC_TIMELINES / "grpc-liveness-not-serving.jsonl")
    (pod,) = tl.pods()
    # pkg/probe/grpc/grpc.go: any status but SERVING fails with this text.
    failures = probe_failures(tl, pod, probe="liveness",
                              message='service unhealthy (responded with "NOT_SERVING")')
    assert len(failures[pod]) == 2  # failureThreshold 2, then the kill
    assert tl.query(pod=pod, kind="Killing", message="failed liveness probe")
    refused = Timeline.load(GRPC_TIMELINES / "upstream-25-grpc-liveness-refused.jsonl")
    (pod,) = refused.pods()
    # A refused port: the blocking dial runs into the probe's 5 s timeout.
    (failure,) = probe_failures(refused, pod, probe="liveness", message="within 5s")[pod]
    assert "timeout: failed to connect service" in failure.message


def test_a_probe_that_errored_is_no_failure() -> None:
    # The Events kubelet 1.36.3 posted for an exec liveness probe canceled as its pod terminated
    # (make matrix, 2026-12-06; kubernetes#140881), beside a real failure. The prober throws an
    # errored result away (worker.go doProbe): it counts towards no threshold.
    t0 = datetime(2026, 12, 6, 3, 16, 12, tzinfo=UTC)

    def unhealthy(seconds: int, message: str) -> Record:
        return Record(time=t0 + timedelta(seconds=seconds), source="event", kind="Unhealthy",
                      namespace="ns", pod="p", container="busybox", message=message)

    tl = Timeline("ns", [
        unhealthy(0, "Liveness probe errored and resulted in unknown state: rpc error: "
                     "code = Canceled desc = context canceled"),
        unhealthy(1, "Readiness probe errored and resulted in unknown state: rpc error: "
                     "code = Canceled desc = context canceled"),
        unhealthy(2, "Liveness probe failed: cat: /tmp/liveness: No such file or directory"),
    ])
    (failure,) = probe_failures(tl, "p", probe="liveness")["p"]
    assert failure.message.startswith("Liveness probe failed")
    assert probe_failures(tl, "p", probe="readiness") == {}
    with pytest.raises(ProbeAssertionError, match="readiness"):
        assert_probe_failures(tl, "p", probe="readiness", count=1, within=5)
