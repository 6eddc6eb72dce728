"""Probe behaviours the Kubernetes documentation describes, beyond the seed write-ups.

Each test deploys a small pod of the target app, flips a fault where one is needed, and checks
what the kubelet does within the window the probe spec allows (pytest_probes.timing).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from pytest_probes import (
    API_TIME_RESOLUTION,
    ContainerTiming,
    Timeline,
    Window,
    assert_endpoint_added_within,
    assert_endpoint_removed_after,
    assert_event_within,
    assert_never_ready_for,
    assert_no_restarts_for,
    assert_not_ready_within,
    assert_probe_failures,
    assert_ready_within,
    assert_restarts_within,
)
from pytest_probes._poll import poll
from pytest_probes.deploy import Deployer
from pytest_probes.faults import app_start_lag, before_next_probe, set_flag
from pytest_probes.timing import endpoints_follow
from tests.live.helpers import before_next_exec_probe, health_log

pytestmark = pytest.mark.probes


def _pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    for c in containers:
        c.setdefault("image", "probes-target")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": containers, **spec}}


def _service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def _env(**values: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def _log_until(api: Any, namespace: str, pod: str, container: str, needles: list[str],
               until: datetime) -> str:
    """The container's log once each needle appears twice, or as it is at ``until``."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    while True:
        log = str(core.read_namespaced_pod_log(pod, namespace, container=container))
        if all(log.count(n) >= 2 for n in needles) or datetime.now(UTC) > until:
            return log
        time.sleep(0.5)


EXEC_TICKS = "/tmp/probes/exec-ticks"
"""Where the exec probe's command notes the time it runs."""


def _started(tl: Timeline, pod: str, container: str | None = None) -> Any:
    return tl.wait_first(pod=pod, kind="ContainerStarted", container=container, timeout=60)


def test_exec_liveness_probe_restarts_the_container_when_its_command_fails(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """The command also notes when it runs, so the fault can be timed just before a probe.

    Upstream: Probing container should be restarted with a exec "cat /tmp/health" liveness
    probe [Conformance]."""
    tl = probes_timeline
    check = (f"date -u +%Y-%m-%dT%H:%M:%S.%3NZ >> {EXEC_TICKS}; "
             "if [ -e /tmp/probes/fail-liveness ]; then echo unhealthy: flag set; exit 1; fi")
    pod = _pod("exec-probe", [{
        "name": "app",
        "livenessProbe": {"exec": {"command": ["sh", "-c", check]},
                          "periodSeconds": 2, "failureThreshold": 9},
    }])
    timing = ContainerTiming.from_pod_spec(pod)
    assert timing.liveness is not None
    probes_deploy([pod], wait="running")
    started = _started(tl, "exec-probe")
    at = before_next_exec_probe(_probes_api, tl.namespace, "exec-probe", EXEC_TICKS,
                                timing.liveness.period)
    fault = set_flag(_probes_api, tl.namespace, "exec-probe", "fail-liveness", at=at)
    fail_from = (fault - started.time).total_seconds()
    kill = timing.first_liveness_kill(fail_from=fail_from).shifted(-fail_from)
    assert_probe_failures(tl, "exec-probe", probe="liveness",
                          count=timing.liveness.failure_threshold, since=fault,
                          within=kill, message="unhealthy: flag set")
    killing = assert_event_within(tl, "exec-probe", "Killing", since=fault, within=kill)
    assert_restarts_within(tl, "exec-probe", since=killing,
                           within=timing.restart_after_kill(exits_on_sigterm_after=0))


def test_tcp_readiness_probe_passes_once_the_port_accepts_connections(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    tl = probes_timeline
    listens_after = 12.0  # long enough that the last probe period weighs under 10 %
    pod = _pod("tcp-probe", [{
        "name": "app", "env": _env(START_DELAY=f"{listens_after:g}", START_MODE="refuse"),
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    }])
    timing = ContainerTiming.from_pod_spec(pod)
    probes_deploy([pod, _service("tcp-probe")], wait="running")
    started = _started(tl, "tcp-probe")
    assert_probe_failures(tl, "tcp-probe", probe="readiness", count=1, since=started,
                          within=listens_after, message="connect: connection refused")
    serving = app_start_lag(_probes_api, tl.namespace, "tcp-probe", started.time)
    gain = timing.readiness_gain(ready_from=serving)
    assert gain.earliest >= listens_after - 1
    assert_ready_within(tl, "tcp-probe", since=started, within=gain)
    assert_endpoint_added_within(tl, "tcp-probe", since=started, within=endpoints_follow(gain))


def test_http_probe_timeout_counts_as_a_failure(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    tl = probes_timeline
    pod = _pod("timeout-probe", [{
        "name": "app",
        "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}, "periodSeconds": 3,
                          "timeoutSeconds": 2, "failureThreshold": 6,
                          "initialDelaySeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
    }])
    timing = ContainerTiming.from_pod_spec(pod)
    assert timing.liveness is not None
    probes_deploy([pod], wait="ready")  # serving before the fault
    started = _started(tl, "timeout-probe")
    at = before_next_probe(_probes_api, tl.namespace, "timeout-probe", "/livez",
                           timing.liveness.period)
    fault = set_flag(_probes_api, tl.namespace, "timeout-probe", "hang-liveness", at=at)
    # A hung request fails exactly when timeoutSeconds runs out.
    kill_from = (fault - started.time).total_seconds()
    kill = timing.first_liveness_kill(
        fail_from=kill_from, probe_response=timing.liveness.timeout).shifted(-kill_from)
    failures = assert_probe_failures(tl, "timeout-probe", probe="liveness",
                                     count=timing.liveness.failure_threshold,
                                     since=fault, within=kill)
    assert all("Client.Timeout exceeded" in f.message or "deadline exceeded" in f.message
               for f in failures), [f.message for f in failures]
    assert_event_within(tl, "timeout-probe", "Killing", since=fault, within=kill)


STARTUP_FAILURES = 18
"""Many short periods rather than a few long ones: where the container starts in the probe
ticker's period is chance, so the longer the give-up is against the period, the nearer it comes
to the earliest the spec allows. Each failure is an event, and the kubelet allows a pod a burst
of 25 (with Scheduled, Pulled, Created, Started and Killing, 18 fit)."""


def test_startup_probe_that_never_succeeds_kills_after_failure_threshold_periods(
    probes_deploy: Deployer, probes_timeline: Timeline
) -> None:
    """Liveness and readiness are held back meanwhile: no Unhealthy from either, never Ready.

    Upstream: Probing container should be restarted startup probe fails.
    Upstream: Probing container should *not* be restarted by liveness probe because startup
    probe delays it."""
    tl = probes_timeline
    pod = _pod("startup-gives-up", [{
        "name": "app", "env": _env(START_DELAY="3600", START_MODE="503"),
        "startupProbe": {"httpGet": {"path": "/startupz", "port": 8080}, "periodSeconds": 1,
                         "failureThreshold": STARTUP_FAILURES},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}, "periodSeconds": 1},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
    }])
    timing = ContainerTiming.from_pod_spec(pod)
    probes_deploy([pod], wait="running")
    started = _started(tl, "startup-gives-up")
    give_up = timing.startup_give_up()
    killing = assert_event_within(tl, "startup-gives-up", "Killing", since=started,
                                  within=give_up, message="failed startup probe")
    assert_probe_failures(tl, "startup-gives-up", probe="startup", count=STARTUP_FAILURES,
                          since=started, within=give_up)
    assert_never_ready_for(tl, "startup-gives-up", since=started,
                           duration=(killing.time - started.time).total_seconds())
    assert not tl.query(pod="startup-gives-up", kind="Unhealthy",
                        where=lambda r: not r.message.startswith("Startup"))
    assert_restarts_within(tl, "startup-gives-up", since=killing,
                           within=timing.restart_after_kill(exits_on_sigterm_after=0,
                                                            reason="startup"))


def test_probe_level_termination_grace_period_overrides_the_pods(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """Upstream: Probing container should override timeoutGracePeriodSeconds when LivenessProbe
    field is set."""
    tl = probes_timeline
    pod = _pod("probe-grace", [{
        "name": "app", "env": _env(ON_SIGTERM="ignore"),
        "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}, "periodSeconds": 2,
                          "failureThreshold": 9, "terminationGracePeriodSeconds": 3,
                          "initialDelaySeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
    }], terminationGracePeriodSeconds=120)
    timing = ContainerTiming.from_pod_spec(pod)
    assert timing.grace_period("liveness") == 3 and timing.pod_grace == 120
    probes_deploy([pod], wait="ready")  # serving before the fault
    started = _started(tl, "probe-grace")
    at = before_next_probe(_probes_api, tl.namespace, "probe-grace", "/livez", 2)
    fault = set_flag(_probes_api, tl.namespace, "probe-grace", "fail-liveness", at=at)
    fail_from = (fault - started.time).total_seconds()
    killing = assert_event_within(
        tl, "probe-grace", "Killing", since=fault,
        within=timing.first_liveness_kill(fail_from=fail_from).shifted(-fail_from))
    # The app ignores SIGTERM, so it is SIGKILLed when the probe's 3 s run out, not the pod's 120.
    restart = timing.restart_after_kill(exits_on_sigterm_after=None)
    assert restart.latest < timing.pod_grace
    restarted = assert_restarts_within(tl, "probe-grace", since=killing, within=restart)
    assert restarted[0].data["previous"]["exitCode"] == 137


def test_readiness_success_threshold_needs_consecutive_successes(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """A pod that lost readiness turns Ready again after ``successThreshold`` successes, a
    period apart: the fault is cleared just before a probe, and Ready follows four periods on."""
    tl = probes_timeline
    name = "success-threshold"
    pod = _pod(name, [{
        "name": "app",
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 3,
                           "successThreshold": 5, "failureThreshold": 5},
    }])
    timing = ContainerTiming.from_pod_spec(pod)
    probe = timing.readiness
    assert probe is not None
    probes_deploy([pod], wait="ready")
    started = _started(tl, name)
    # Ready, so the probe's ticker keeps its phase: the fault is timed just before a probe.
    at = before_next_probe(_probes_api, tl.namespace, name, "/readyz", probe.period)
    fault = set_flag(_probes_api, tl.namespace, name, "fail-readiness", at=at)
    fail_from = (fault - started.time).total_seconds()
    not_ready = assert_not_ready_within(
        tl, name, since=fault,
        within=timing.readiness_loss(fail_from=fail_from).shifted(-fail_from))
    # The readiness change syncs the pod, and that sync runs a readiness probe at once and
    # restarts the probe's ticker (and the pod's resync timer). Once the app has seen a probe on
    # the new phase, the fix is timed just before one.
    time.sleep(timing.status_lag + probe.period)
    at = before_next_probe(_probes_api, tl.namespace, name, "/readyz", probe.period)
    fixed = set_flag(_probes_api, tl.namespace, name, "fail-readiness", present=False, at=at)
    fixed_from = (fixed - started.time).total_seconds()
    gain = timing.readiness_gain(
        ready_from=fixed_from,
        synced_at=(not_ready.time - started.time).total_seconds()).shifted(-fixed_from)
    # The first success's tick may precede the fix by up to the timeout, its request reaching
    # the app after it (timing: _first_tick_to_see).
    assert gain.earliest == pytest.approx(
        (probe.success_threshold - 1) * probe.period - probe.timeout)
    ready = assert_ready_within(tl, name, since=fixed, within=gain)
    # The app saw successThreshold successful readiness requests in a row before the pod turned
    # Ready. Its line of the last one can reach the container's log after the kubelet has
    # reported Ready (the runtime's shim copies stdout to the log file on its own; seen under
    # load, the fifth line missing at once): the log is read again for a status lag at most.

    def streak_of(health: list[Any]) -> list[Any]:
        return [h for h in health if h.path == "/readyz" and fixed <= h.time
                and h.time < ready.time + timedelta(seconds=API_TIME_RESOLUTION)]

    streak = streak_of(poll(lambda: health_log(_probes_api, tl.namespace, name),
                            until=lambda h: len(streak_of(h)) >= probe.success_threshold,
                            timeout=timing.status_lag))
    assert len(streak) >= probe.success_threshold, streak
    assert all(h.outcome == "ok" for h in streak), streak


def test_readiness_during_termination_leaves_ready_endpoints_at_once_but_keeps_probing(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    """A deleted pod's endpoint turns not ready (terminating) at once, while still serving;
    the kubelet keeps running readiness during the grace period, so a readiness failure then
    turns ``serving`` false too."""
    from kubernetes import client

    tl = probes_timeline
    name = "terminating"
    pod = _pod(name, [{
        "name": "app", "env": _env(ON_SIGTERM="ignore"),
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1,
                           "failureThreshold": 11},
    }], terminationGracePeriodSeconds=30)
    timing = ContainerTiming.from_pod_spec(pod)
    probes_deploy([pod, _service(name)], wait="ready")
    started = _started(tl, name)
    assert_endpoint_added_within(tl, name, since=started,
                                 within=endpoints_follow(timing.readiness_gain()))
    deleted = datetime.now(UTC)
    client.CoreV1Api(_probes_api).delete_namespaced_pod(name, tl.namespace)
    removed = assert_endpoint_removed_after(tl, name, after=deleted, since=deleted,
                                            within=endpoints_follow(Window(0.0, 0.0)))
    # Out of the ready set because it is terminating, though its readiness still passes.
    assert removed.data["terminating"] and removed.data["serving"], removed.data
    # Still ready, so the readiness ticker keeps its phase: the fault is timed before a probe.
    at = before_next_probe(_probes_api, tl.namespace, name, "/readyz", 1)
    fault = set_flag(_probes_api, tl.namespace, name, "fail-readiness", at=at)
    fail_from = (fault - started.time).total_seconds()
    loss = timing.readiness_loss(fail_from=fail_from).shifted(-fail_from)
    assert loss.latest < timing.pod_grace - (fault - deleted).total_seconds()
    assert_not_ready_within(tl, name, since=fault, within=loss)
    stopped = tl.wait_first(pod=name, source="endpoints",
                            where=lambda r: r.data.get("terminating")
                            and not r.data.get("serving"),
                            timeout=endpoints_follow(loss).latest)
    assert stopped.time >= removed.time
    assert_no_restarts_for(tl, name, since=started,
                           duration=(stopped.time - started.time).total_seconds())


REDIRECTS = """
apiVersion: v1
kind: Pod
metadata: {name: http-codes, labels: {app: http-codes}}
spec:
  containers:
    - name: redirect-to-ok
      image: probes-target
      env: [{name: PORT, value: "8081"}]
      readinessProbe: {httpGet: {path: "/redirect?to=/readyz", port: 8081}, periodSeconds: 1}
    - name: status-399
      image: probes-target
      env: [{name: PORT, value: "8082"}]
      readinessProbe: {httpGet: {path: /status/399, port: 8082}, periodSeconds: 1}
    - name: status-200
      image: probes-target
      env: [{name: PORT, value: "8083"}]
      readinessProbe: {httpGet: {path: /status/200, port: 8083}, periodSeconds: 1}
    - name: status-400
      image: probes-target
      env: [{name: PORT, value: "8084"}]
      readinessProbe: {httpGet: {path: /status/400, port: 8084}, periodSeconds: 1}
    - name: redirect-to-500
      image: probes-target
      env: [{name: PORT, value: "8085"}]
      readinessProbe:
        httpGet: {path: "/redirect?to=/status/500", port: 8085}
        periodSeconds: 1
"""


def test_http_probe_success_is_200_to_399_and_redirects_are_followed(
    probes_deploy: Deployer, probes_timeline: Timeline, _probes_api: Any
) -> None:
    tl = probes_timeline
    spec = yaml.safe_load(REDIRECTS)
    probes_deploy(REDIRECTS, wait="running")
    good = {"redirect-to-ok", "status-399", "status-200"}
    bad = {"status-400": ["GET /status/400 status=400"],
           "redirect-to-500": ["GET /redirect status=302", "GET /status/500 status=500"]}
    for container in good:
        started = _started(tl, "http-codes", container)
        serving = app_start_lag(_probes_api, tl.namespace, "http-codes", started.time,
                                container=container)
        gain = ContainerTiming.from_pod_spec(spec, container).readiness_gain(ready_from=serving)
        ready = tl.wait_first(pod="http-codes", kind="ContainerReady", container=container,
                              timeout=gain.latest + 5)
        offset = (ready.time - started.time).total_seconds()
        assert gain.contains(offset, slack=1), (container, offset, gain)
    # The failing ones, from what their apps answered: Unhealthy events cannot show it, the
    # kubelet rate-limits events per pod (a burst of 25) and five containers failing at start-up
    # use that up within seconds.
    for container, answers in bad.items():
        started = _started(tl, "http-codes", container)
        serving = app_start_lag(_probes_api, tl.namespace, "http-codes", started.time,
                                container=container)
        timing = ContainerTiming.from_pod_spec(spec, container)
        probe = timing.readiness
        assert probe is not None
        # Two failed probes: the first one the app could answer, and one period later.
        until = started.time + timedelta(
            seconds=timing.readiness_gain(ready_from=serving).latest + probe.period)
        log = _log_until(_probes_api, tl.namespace, "http-codes", container, answers, until)
        for answer in answers:
            assert log.count(answer) >= 2, (container, answer, log[-2000:])
    assert not {r.container for r in tl.query(pod="http-codes", kind="ContainerReady")} & set(bad)
    assert_never_ready_for(tl, "http-codes", duration=5)
