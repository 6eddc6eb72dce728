"""Seed 001, O1.1: a failing readiness probe takes a pod out of service without restarting it.

The write-up's server fails its health check from 10 s after start; readiness is probed every
5 s from 5 s. The pod becomes Ready, then loses Ready after three failures, stays Running with
no restart, leaves the Service's endpoints, and its log shows one health request per period.
Every window comes from the manifest's probe spec through the timing math.

Where the server's own 10 s fall in the probe period decides up to a period (5 s) of when the
pod loses Ready, so the test makes the same failure itself, just before a probe (the manifest's
``FAIL_AFTER`` is dropped), and counts the loss from it: two periods to the third failure.
"""

from __future__ import annotations

import copy
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
from pytest_probes.deploy import Deployer, load_manifests
from pytest_probes.faults import app_start_lag, before_next_probe, set_flag
from pytest_probes.timing import endpoints_follow
from tests.live.helpers import health_log

pytestmark = pytest.mark.probes

POD = "httpserver-readiness"


def test_o1_1_readiness_failure_removes_the_pod_from_service_without_a_restart(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: object
) -> None:
    """O1.1: a readiness failure takes the pod out of service without a restart."""
    tl = probes_timeline
    docs = [copy.deepcopy(o.doc) for o in load_manifests("seed001-readiness.yaml")]
    pod = next(d for d in docs if d["kind"] == "Pod")
    container = pod["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "FAIL_AFTER"]
    objects = probes_deploy(docs, wait="running")
    timing = ContainerTiming.from_pod_spec(next(o for o in objects if o["kind"] == "Pod"))
    assert timing.readiness is not None
    started = tl.wait_first(pod=POD, kind="ContainerStarted", timeout=30)
    # The app answers once it listens, a little after the container started.
    serving = app_start_lag(_probes_api, tl.namespace, POD, started.time)
    gain = timing.readiness_gain(ready_from=serving)

    ready = assert_ready_within(tl, POD, since=started, within=gain)
    assert_endpoint_added_within(tl, POD, since=started, within=endpoints_follow(gain))
    # Ready, so the readiness ticker keeps its phase. /healthz answers with the app's liveness
    # health, which the flag fail-liveness turns to 500.
    at = before_next_probe(_probes_api, tl.namespace, POD, "/healthz", timing.readiness.period)
    fault = set_flag(_probes_api, tl.namespace, POD, "fail-liveness", at=at)
    fail_from = (fault - started.time).total_seconds()
    lost = assert_not_ready_within(
        tl, POD, since=fault, within=timing.readiness_loss(fail_from=fail_from).shifted(-fail_from))
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
    # OK until the fault, failing from then on.
    assert outcomes[0] == "ok" and "fail" in outcomes, outcomes
    assert "ok" not in outcomes[outcomes.index("fail"):], outcomes
    gaps = [(b.time - a.time).total_seconds() for a, b in pairwise(health)]
    # The ticker is exact; a manual run right after a status change can add one probe early
    # (prober_manager.go UpdatePodStatus), so every gap is at most one period.
    assert all(g <= timing.readiness.period + API_TIME_RESOLUTION for g in gaps), gaps
    assert sum(abs(g - timing.readiness.period) <= API_TIME_RESOLUTION for g in gaps) >= \
        len(gaps) - 2, gaps
