"""gRPC probes (GA since 1.27) against the target app's ``grpc.health.v1.Health`` (issue 15).

The target app serves the standard health service on ``GRPC_PORT``
(:mod:`pytest_probes.target.grpc_health`); its answer follows the app's health rules, so the
flag files flip it between SERVING and NOT_SERVING at run time, as they flip the HTTP paths. The
kubelet's gRPC prober (``pkg/probe/grpc/grpc.go``) counts anything but SERVING as a failure and
posts "service unhealthy (responded with \\"NOT_SERVING\\")". The windows are the timing math's,
as for an HTTP probe: the gRPC call is bounded by ``timeoutSeconds`` as the HTTP request is.

The app logs each health check, so the faults are timed just before a probe
(:func:`pytest_probes.faults.before_next_probe`): the loss then comes at the earliest the spec
allows plus the kubelet's and the watch's delays, not at a random point of the period. The
failure thresholds are above upstream's usual ones so that the ``(failureThreshold - 1)`` periods
the spec allows dwarf what else is in the ratio ``make bench`` reads (the helpers' return
against the earliest the spec allows, issue 15: <= 1.15): the kubelet's and the watch's delays
(up to about a second under load) and the timeout by which the first counted tick may precede
the fault (``timing.container._first_tick_to_see``). With a span S of those periods the return
comes at about S + 1 s and the earliest is S - 1 s, so S >= 15 s keeps the ratio within 1.15.
Upstream's gRPC cases are in ``test_upstream_probe_cases.py`` and its sidecar twin.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_probes import (
    ContainerTiming,
    Timeline,
    assert_event_within,
    assert_no_restarts_for,
    assert_not_ready_within,
    assert_probe_failures,
    assert_ready_within,
    assert_restarts_within,
)
from pytest_probes.deploy import Deployer
from pytest_probes.faults import before_next_probe, set_flag, wait_serving
from pytest_probes.target.grpc_health import check_path
from pytest_probes.timeline import Record
from tests.live.helpers import fault_failures

pytestmark = pytest.mark.probes

PORT = 5000
NOT_SERVING = 'service unhealthy (responded with "NOT_SERVING")'


def _pod(name: str, **probes: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{
                "name": "app", "image": "probes-target",
                "env": [{"name": "GRPC_PORT", "value": str(PORT)}],
                "ports": [{"containerPort": PORT}], **probes}]}}


def _grpc_serving(api: Any, namespace: str, pod: str, started: Record) -> float:
    """Seconds from ``started`` until the app bound its gRPC port (its log's ``(grpc)`` line)."""
    at = wait_serving(api, namespace, pod, listener="grpc")
    return max(0.0, (at - started.time).total_seconds())


def test_grpc_readiness_follows_serving_and_not_serving(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any,
) -> None:
    """Readiness over gRPC (service ``readiness``): Ready while SERVING, not ready within the
    spec's loss window once the service answers NOT_SERVING, Ready again once it serves, and
    never restarted."""
    tl = probes_timeline
    name = "grpc-readiness"
    pod = _pod(name, readinessProbe={"grpc": {"port": PORT, "service": "readiness"},
                                     "periodSeconds": 2, "failureThreshold": 9})
    timing = ContainerTiming.from_pod_spec(pod, "app")
    probes_deploy([pod], wait="running")
    started = tl.wait_first(pod=name, kind="ContainerStarted", timeout=60)
    serving = _grpc_serving(_probes_api, tl.namespace, name, started)
    ready = assert_ready_within(tl, name, since=started,
                                within=timing.readiness_gain(ready_from=serving))

    # Ready, so the readiness ticker keeps its phase.
    assert timing.readiness is not None
    at = before_next_probe(_probes_api, tl.namespace, name, check_path("readiness"),
                           timing.readiness.period)
    fault = set_flag(_probes_api, tl.namespace, name, "fail-readiness", at=at)
    fail_from = (fault - started.time).total_seconds()
    loss = timing.readiness_loss(fail_from=fail_from).shifted(-fail_from)
    lost = assert_not_ready_within(tl, name, since=fault, within=loss)
    # Counted as the kubelet counts them: a probe that timed out under load counts as well.
    failures = assert_probe_failures(tl, name, probe="readiness",
                                     count=timing.readiness.failure_threshold, since=fault,
                                     within=loss)
    assert fault_failures(failures, NOT_SERVING)

    cleared = set_flag(_probes_api, tl.namespace, name, "fail-readiness", present=False)
    back_from = (cleared - started.time).total_seconds()
    assert_ready_within(tl, name, since=cleared,
                        within=timing.readiness_gain(ready_from=back_from).shifted(-back_from))
    assert lost.time > ready.time
    assert_no_restarts_for(tl, name, since=started,
                           duration=(tl.server_now() - started.time).total_seconds())


def test_grpc_liveness_not_serving_restarts_the_container(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any,
) -> None:
    """Liveness over gRPC (service ``""``): NOT_SERVING from just before a probe kills the
    container within ``first_liveness_kill`` of it; the app exits at once on SIGTERM and the
    container restarts within ``restart_after_kill``."""
    tl = probes_timeline
    name = "grpc-liveness"
    pod = _pod(name, livenessProbe={"grpc": {"port": PORT}, "periodSeconds": 3,
                                    "failureThreshold": 6})
    timing = ContainerTiming.from_pod_spec(pod, "app")
    probes_deploy([pod], wait="running")
    started = tl.wait_first(pod=name, kind="ContainerStarted", timeout=60)
    _grpc_serving(_probes_api, tl.namespace, name, started)
    assert timing.liveness is not None
    at = before_next_probe(_probes_api, tl.namespace, name, check_path(""),
                           timing.liveness.period)
    fault = set_flag(_probes_api, tl.namespace, name, "fail-liveness", at=at)
    fail_from = (fault - started.time).total_seconds()
    kill = timing.first_liveness_kill(fail_from=fail_from).shifted(-fail_from)
    failures = assert_probe_failures(tl, name, probe="liveness",
                                     count=timing.liveness.failure_threshold, since=fault,
                                     within=kill)
    assert fault_failures(failures, NOT_SERVING)
    killing = assert_event_within(tl, name, "Killing", since=fault, within=kill,
                                  message="failed liveness probe")
    assert_restarts_within(tl, name, since=killing,
                           within=timing.restart_after_kill(exits_on_sigterm_after=0))
