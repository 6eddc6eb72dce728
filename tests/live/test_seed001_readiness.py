"""Seed 001, O1.1: a failing readiness probe takes a pod out of service without restarting it.

The server's health check fails from 10 s after start; readiness is probed every 5 s from 5 s. The
pod becomes Ready, then loses Ready after three failures, stays Running with no restart, leaves the
Service's endpoints, and its log shows one health request per period. Every window comes from the
manifest's probe spec through the timing math.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from pytest_probes import (
    API_TIME_RESOLUTION,
    ContainerTiming,
    Timeline,
    Window,
    assert_endpoint_added_within,
    assert_endpoint_removed_after,
    assert_no_restarts_for,
    assert_not_ready_within,
    assert_ready_within,
)
from pytest_probes.deploy import Deployer
from pytest_probes.faults import app_start_lag
from pytest_probes.timing import endpoints_follow
from tests.live.helpers import health_log

pytestmark = pytest.mark.probes

POD = "httpserver-readiness"
FAIL_AFTER = 10.0  # the manifest's FAIL_AFTER: health fails this long after the app started


def test_o1_1_readiness_failure_removes_the_pod_from_service_without_a_restart(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: object
) -> None:
    tl = probes_timeline
    objects = probes_deploy("seed001-readiness.yaml", wait="running")
    timing = ContainerTiming.from_pod_spec(next(o for o in objects if o["kind"] == "Pod"))
    assert timing.readiness is not None
    started = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=30)
    # The app answers once it listens, and counts FAIL_AFTER from its clock's start, both a
    # little after the container's.
    serving = app_start_lag(_probes_api, tl.namespace, POD, started.time)
    clock = app_start_lag(_probes_api, tl.namespace, POD, started.time, origin="clock")
    gain = timing.readiness_gain(ready_from=serving)

    ready = assert_ready_within(tl, POD, since=started, within=gain)
    assert_endpoint_added_within(tl, POD, since=started, within=endpoints_follow(gain))
    fail_from = FAIL_AFTER + clock
    lost = assert_not_ready_within(tl, POD, since=started,
                                   within=timing.readiness_loss(fail_from=fail_from))
    assert lost.time > ready.time
    assert_endpoint_removed_after(tl, POD, after=lost, since=started,
                                  within=endpoints_follow(Window(0.0, 0.0)))

    # STATUS stays Running and RESTARTS 0 the whole time.
    assert_no_restarts_for(tl, POD, since=started,
                           duration=(lost.time - started.time).total_seconds())
    assert [r.data["phase"] for r in tl.query(pod=POD, kind="PodPhase")][-1] == "Running"

    # The server log shows one health request per period.
    health = health_log(_probes_api, tl.namespace, POD)
    outcomes = [h.outcome for h in health]
    # OK until FAIL_AFTER, failing from then on (how many OKs depends on the ticker's phase).
    assert outcomes[0] == "ok" and "fail" in outcomes, outcomes
    assert "ok" not in outcomes[outcomes.index("fail"):], outcomes
    gaps = [(b.time - a.time).total_seconds() for a, b in pairwise(health)]
    # The ticker is exact; a manual run right after a status change can add one probe early
    # (prober_manager.go UpdatePodStatus), so every gap is at most one period.
    assert all(g <= timing.readiness.period + API_TIME_RESOLUTION for g in gaps), gaps
    assert sum(abs(g - timing.readiness.period) <= API_TIME_RESOLUTION for g in gaps) >= \
        len(gaps) - 2, gaps
