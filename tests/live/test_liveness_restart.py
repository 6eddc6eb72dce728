"""A liveness failure in one of two replicas, on a real kubelet.

The pod whose liveness endpoint starts failing fails its probe ``failureThreshold`` times, is
killed and restarted once, and its address leaves the Service's endpoints and rejoins them, while
the other replica's address stays. Every window comes from the probe spec below.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import yaml

from pytest_probes import (
    Cluster,
    Timeline,
    assert_endpoint_added_within,
    assert_endpoint_kept_for,
    assert_endpoint_removed_after,
    assert_event_within,
    assert_no_restarts_for,
    assert_probe_failures,
    assert_ready_within,
    assert_restarts_within,
)
from pytest_probes.deploy import Deployer
from pytest_probes.faults import app_start_lag, before_next_probe, set_flag
from pytest_probes.timing import ContainerTiming, delay_from, endpoints_follow
from tests.live.helpers import fault_failures

pytestmark = pytest.mark.probes

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: probes-target
          # Liveness waits for the app to answer once (seen: under the load of the whole suite
          # starting, the app took over 6 s to listen and liveness killed it before it did).
          startupProbe:
            httpGet: {path: /livez, port: 8080}
            periodSeconds: 1
            failureThreshold: 60
          # The kill comes three periods (15 s) after a fault made just before a probe.
          livenessProbe:
            httpGet: {path: /livez, port: 8080}
            periodSeconds: 5
            failureThreshold: 4
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
            # Long enough that a restarted container is reported not ready before it can pass
            # (more than the kubelet's status lag): with no delay the new container can turn
            # ready within the same status sync, and the API never shows the pod not ready
            # (seen on 1.33: the address stayed through the restart).
            initialDelaySeconds: 5
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: 8080
"""


def test_liveness_failure_restarts_only_that_pod_and_moves_only_its_endpoint(
    probes_cluster: Cluster,
    probes_deploy: Deployer,
    probes_timeline: Timeline,
    probes_namespace: str,
) -> None:
    """O0.5, on two replicas: only the failing pod restarts, and only its endpoint moves."""
    tl = probes_timeline
    timing = ContainerTiming.from_pod_spec(next(iter(yaml.safe_load_all(MANIFEST))), "app")
    assert timing.liveness is not None and timing.readiness is not None
    # See the manifest.
    assert delay_from(timing.readiness.initial_delay, start="runtime") > timing.status_lag
    objects = probes_deploy(MANIFEST, wait="ready")
    victim, bystander = sorted(p["metadata"]["name"] for p in probes_deploy.pods(objects))
    with probes_cluster.api_client() as api:
        for pod in (victim, bystander):
            first = tl.wait_first(pod=pod, kind="ContainerStarted", timeout=30)
            # Readiness runs once the startup probe passed, i.e. once the app answers.
            serving = app_start_lag(api, probes_namespace, pod, first.time)
            assert_endpoint_added_within(
                tl, pod, since=first,
                within=endpoints_follow(timing.readiness_gain(startup_from=serving)))

    # Ready means serving; one more liveness period and a failure from the start-up (connection
    # refused before the app listened) no longer counts towards failureThreshold.
    time.sleep(timing.liveness.period)
    with probes_cluster.api_client() as api:
        at = before_next_probe(api, probes_namespace, victim, "/livez", timing.liveness.period)
        fault = set_flag(api, probes_namespace, victim, "fail-liveness", at=at)
    started = tl.last(pod=victim, kind="ContainerStarted")
    assert started is not None
    fail_from = (fault - started.time).total_seconds()

    # failureThreshold failures, then Killing, in the window the spec allows after the fault.
    kill = timing.first_liveness_kill(fail_from=fail_from).shifted(-fail_from)
    # Counted as the kubelet counts them: a probe that timed out under load counts as well.
    failures = assert_probe_failures(tl, victim, probe="liveness",
                                     count=timing.liveness.failure_threshold,
                                     since=fault, within=kill)
    assert fault_failures(failures, "statuscode: 500")
    killing = assert_event_within(tl, victim, "Killing", since=fault, within=kill,
                                  message="failed liveness probe")
    assert killing.time >= failures[-1].time

    # One restart: the app exits at once on SIGTERM, so no grace period is waited out.
    restart = timing.restart_after_kill(exits_on_sigterm_after=0.0)
    restarts = assert_restarts_within(tl, victim, since=killing, within=restart)
    assert restarts[0].data["restartCount"] == 1
    assert restarts[0].data["previous"]["exitCode"] == 0

    # Its address leaves the endpoints after the kill (the new container is not ready yet) and
    # comes back once the new container passes readiness (the fault flag died with the old one).
    removed = assert_endpoint_removed_after(
        tl, victim, after=killing, since=killing,
        within=endpoints_follow(restart + timing.readiness_loss_on_restart()),
    )
    added = assert_endpoint_added_within(tl, victim, since=restarts[0],
                                         within=endpoints_follow(timing.readiness_gain()))
    assert_ready_within(tl, victim, since=restarts[0], within=timing.readiness_gain())
    assert removed.data["ready_addresses"] != added.data["ready_addresses"]

    # The other replica kept its address and its container throughout.
    until = (added.time - fault).total_seconds()
    assert_endpoint_kept_for(tl, bystander, since=fault, duration=until)
    assert_no_restarts_for(tl, bystander, duration=(datetime.now(UTC) - fault).total_seconds(),
                           since=fault)
