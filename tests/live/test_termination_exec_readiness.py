"""Upstream's "readiness during termination" case, exactly as its e2e test states it.

``test/e2e/common/node/container_probe.go``, "should mark readiness on pods to false while pod
is in progress of terminating when a pod has a readiness probe": an exec readiness probe
(``cat /tmp/ready``, period 2, failureThreshold 1, initial delay 5) and a SIGTERM trap that
removes the file and then sleeps 30 s, in a pod with a 30 s grace period. The kubelet stops
liveness and startup when a pod starts terminating but keeps readiness running until the
containers have stopped (``kubelet.go`` ``SyncTerminatingPod``: ``StopLivenessAndStartup``, then
``killPod``, then ``RemovePod``), so the pod turns NotReady while it terminates. Upstream only
waits up to 5 minutes for NotReady, which the container's own exit also gives; here the window
comes from the probe spec, and the verdict rests on which came first.

Kubelets 1.35.x and 1.36.3 cancel exec probes of a terminating pod (kubernetes#140881, see
:func:`pytest_probes.kubelet_versions.exec_probes_cancelled_while_terminating`): the probe errors
instead of failing and the pod stays Ready until its container stops. The test asserts what the
running version does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_probes import (
    API_TIME_RESOLUTION,
    ContainerTiming,
    Record,
    Timeline,
    Window,
    assert_not_ready_within,
    assert_probe_failures,
    assert_ready_within,
)
from pytest_probes.cluster import Cluster
from pytest_probes.deploy import Deployer
from pytest_probes.kubelet_versions import exec_probes_cancelled_while_terminating
from pytest_probes.timeline import parse_time

pytestmark = pytest.mark.probes

NAME = "exec-readiness-terminating"

# Upstream's script, with one line added: the trap notes the moment before it removes the file,
# so the window can count from it. bash runs the trap only after the foreground `sleep 10`
# returns, so that moment is up to 10 s after SIGTERM.
SCRIPT = (
    '_term() { at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ); rm -f /tmp/ready; '
    'echo "ready-removed $at"; sleep 30; exit 0; }; '
    "trap _term SIGTERM; touch /tmp/ready; "
    'while true; do echo "hello"; sleep 10; done'
)

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": NAME, "labels": {"app": NAME}},
    "spec": {
        "terminationGracePeriodSeconds": 30,
        "containers": [{
            "name": "app",
            "image": "probes-target",
            "command": ["/bin/bash"],
            "args": ["-c", SCRIPT],
            "readinessProbe": {
                "exec": {"command": ["cat", "/tmp/ready"]},
                "initialDelaySeconds": 5,
                "periodSeconds": 2,
                "failureThreshold": 1,
            },
        }],
    },
}


def _removed_at(api: Any, namespace: str, *, until: datetime) -> datetime:
    """The moment the trap noted before removing the file, read from the container's log."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    while True:
        text = str(core.read_namespaced_pod_log(NAME, namespace, container="app"))
        for line in text.splitlines():
            if line.startswith("ready-removed "):
                at = parse_time(line.split()[1])
                assert at is not None, line
                return at
        assert datetime.now(UTC) < until, f"the SIGTERM trap never ran; log:\n{text}"
        time.sleep(0.5)


def test_exec_readiness_marks_a_terminating_pod_not_ready(
    probes_deploy: Deployer, probes_timeline: Timeline, probes_cluster: Cluster, _probes_api: Any,
    record_property: Callable[[str, object], None],
) -> None:
    """Upstream: Probing container should mark readiness on pods to false while pod is in
    progress of terminating when a pod has a readiness probe."""
    from kubernetes import client

    tl = probes_timeline
    timing = ContainerTiming.from_pod_spec(POD)
    assert timing.readiness is not None
    probes_deploy([POD], wait="running")
    started = tl.wait_first(pod=NAME, kind="ContainerStarted", timeout=60)
    assert_ready_within(tl, NAME, since=started, within=timing.readiness_gain())
    deleted = datetime.now(UTC)
    client.CoreV1Api(_probes_api).delete_namespaced_pod(NAME, tl.namespace)
    # The trap runs once the loop's `sleep 10` returns.
    removed = _removed_at(_probes_api, tl.namespace,
                          until=deleted + timedelta(seconds=10 + timing.pod_grace))
    fail_from = (removed - started.time).total_seconds()
    loss = timing.readiness_loss(fail_from=fail_from).shifted(-fail_from)
    # The kill comes pod_grace after SIGTERM; the window ends well before it.
    assert loss.latest < timing.pod_grace - (removed - deleted).total_seconds()
    period = timing.readiness.period
    # Failures after the first come on the readiness ticker, one a period.
    three = Window(loss.earliest, loss.latest + 2 * period)
    if not exec_probes_cancelled_while_terminating(probes_cluster.k8s_version):
        assert_probe_failures(tl, NAME, probe="readiness", count=1, since=removed, within=loss,
                              message="No such file or directory")
        not_ready = assert_not_ready_within(tl, NAME, since=removed, within=loss)
        # Readiness keeps being probed while the pod terminates, once a period.
        assert_probe_failures(tl, NAME, probe="readiness", count=3, since=removed, within=three,
                              message="No such file or directory")
        exited = tl.wait_first(pod=NAME, kind="ContainerTerminated",
                               timeout=timing.pod_grace + 10)
        assert not_ready.time < exited.time, (not_ready, exited)
        record_property("terminating", "NotReady")  # the version matrix shows it
        return
    # kubernetes#140881: every exec probe of the terminating pod errors, none fails. An errored
    # probe is no failure (the prober throws its result away), so they are counted here.
    since = removed.replace(microsecond=0)

    def third_error(t: Timeline) -> Record | None:
        errors = [r for r in t.query(pod=NAME, source="event", kind="Unhealthy",
                                     message="Readiness probe errored") if r.time >= since]
        count = sum(int(r.data.get("count_delta", 1)) for r in errors)
        return errors[-1] if count >= 3 and "context canceled" in errors[-1].message else None

    third = tl.wait_for(third_error, deadline=since + timedelta(seconds=three.latest),
                        grace=timing.status_lag)
    assert third is not None, f"no 3 errored readiness probes within {three}:\n{tl.to_markdown()}"
    assert (third.time - since).total_seconds() <= three.latest, (third, three)
    exited = tl.wait_first(pod=NAME, kind="ContainerTerminated", timeout=timing.pod_grace + 10)
    failed = tl.query(pod=NAME, source="event", kind="Unhealthy",
                      message="No such file or directory")
    assert not failed, failed
    lost = [r for r in tl.query(pod=NAME, kind="PodNotReady") if r.time >= deleted]
    # Ready is lost only with the container's exit, the second-resolution stamps aside.
    assert lost, f"the pod never turned NotReady:\n{tl.to_markdown()}"
    slack = timedelta(seconds=API_TIME_RESOLUTION)
    assert lost[0].time + slack >= exited.time, (lost[0], exited)
    record_property("terminating", "Ready until exit")
