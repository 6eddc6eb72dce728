"""Faults from outside the app (``probes_faults``) on apps that are not our target app.

Each app is a stock program run from the target image with its own command — Python's
``http.server``, a shell loop — with no flag files and no help from inside. The windows come from
the timing math, with the fault's moment as the failure's start.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_probes import (
    ContainerTiming,
    Timeline,
    assert_condition_within,
    assert_endpoint_added_within,
    assert_endpoint_removed_after,
    assert_restarts_within,
    assert_terminated,
)
from pytest_probes.cluster import default_cache_dir
from pytest_probes.deploy import Deployer
from pytest_probes.faults import before_probe
from pytest_probes.outside import OutsideFaults
from pytest_probes.podlogs import log_line_record
from pytest_probes.timing import Window, endpoints_follow

CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder

HTTP_SERVER = ["python3", "-m", "http.server", "8080"]
RUNS_BEFORE_FAULT = 15.0
"""Seconds from a container's start to the fault of the kill and freeze tests: a span the
spec sets, against which the kubelet's delays (a relist, the CRI calls) weigh little in
returned / earliest (the kill came about 2 s after the start before, measuring 1.5-1.7)."""


def _pod(name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "probes-target", **container}],
                     **spec}}


def _service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def _started(tl: Timeline, pod: str) -> Any:
    return tl.wait_first(pod=pod, kind="ContainerStarted", timeout=60)


def _requests(api: Any, namespace: str, pod: str, line: str) -> list[datetime]:
    """When the app logged each request whose log line holds ``line``: the container runtime's
    time of each line (``timestamps=true``), to the nanosecond, though ``http.server`` itself
    writes whole seconds."""
    from kubernetes import client

    text = client.CoreV1Api(api).read_namespaced_pod_log(pod, namespace, timestamps=True) or ""
    records = (log_line_record(namespace, pod, "app", entry) for entry in text.splitlines())
    return [r.time for r in records if r is not None and line in r.message]


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def _back_in_the_endpoints(tl: Timeline, name: str, timing: ContainerTiming, started: Any,
                           removed: Any, undone: Any) -> None:
    """The address is added again within the readiness gain after the fault was undone."""
    undone_from = (undone - started.time).total_seconds()
    removed_at = (removed.time - started.time).total_seconds()
    gain = timing.readiness_gain(ready_from=undone_from, synced_at=removed_at)
    # Counted from the removal: the address's first addition can share the fault's second.
    assert_endpoint_added_within(tl, name, since=removed,
                                 within=endpoints_follow(gain.shifted(-removed_at)))


@pytest.mark.probes
def test_a_frozen_http_server_is_killed_by_its_liveness_probe_within_its_grace_period(
    probes_deploy: Deployer, probes_timeline: Timeline, probes_faults: OutsideFaults,
    _probes_api: Any,
) -> None:
    """Every process stopped (SIGSTOP): the probes time out, the kubelet kills the container;
    SIGTERM cannot reach a stopped process, the SIGKILL at the end of the grace period does.

    A probe of a stopped server fails when its ``timeoutSeconds`` run out, never sooner: the
    kernel still completes the TCP handshake for the listening socket (or, with its backlog
    full, drops the SYN), and nothing answers (``pkg/probe/http``: the client's ``Timeout``).
    The server runs :data:`RUNS_BEFORE_FAULT` first, so the kubelet's own delays are a small
    share of the time the test measures from the container's start."""
    tl = probes_timeline
    name = "frozen"
    pod = _pod(name, {"command": HTTP_SERVER, "ports": [{"containerPort": 8080}],
                      "livenessProbe": {"httpGet": {"path": "/", "port": 8080},
                                        "periodSeconds": 2, "failureThreshold": 2}},
               terminationGracePeriodSeconds=3)
    timing = ContainerTiming.from_pod_spec(pod)
    probes_deploy([pod], wait="running")
    started = _started(tl, name)
    _sleep_until(started.time + timedelta(seconds=RUNS_BEFORE_FAULT))
    # Frozen just before a probe (the server logs each request), so the window's earliest is
    # not diluted by where in the period the freeze fell.
    assert timing.liveness is not None
    ticks = _requests(_probes_api, tl.namespace, name, '"GET / HTTP/1.1" 200')
    assert ticks, "http.server logged no probe request"
    _sleep_until(before_probe(ticks, timing.liveness.period))
    frozen = probes_faults.freeze(name)
    fail_from = (frozen - started.time).total_seconds()
    timed_out = Window.at(timing.liveness.timeout)
    # A stopped app neither answers nor exits on SIGTERM: killed when the grace period ends.
    dying = timing.kill_duration(exits_on_sigterm_after=None)
    schedule = timing.restart_schedule(1, fail_from=fail_from, kill_duration=dying,
                                       probe_response=timed_out)
    assert_restarts_within(tl, name, restarts=1, since=started, within=schedule[0])
    kill = timing.first_liveness_kill(fail_from=fail_from, probe_response=timed_out)
    assert_terminated(tl, name, since=frozen, exit_code=137,
                      within=kill.shifted(-fail_from) + dying)


@pytest.mark.probes
def test_a_killed_shell_loop_exits_137_and_restarts_at_once(
    probes_deploy: Deployer, probes_timeline: Timeline, probes_faults: OutsideFaults
) -> None:
    """SIGKILL to the main process: a crash (exit 137); the first crash restarts without
    back-off. Killed :data:`RUNS_BEFORE_FAULT` after its start, so the restart's own delays (the
    relist that sees the exit, the create and start calls) are a small share of what the test
    measures from the start."""
    tl = probes_timeline
    name = "killed"
    pod = _pod(name, {"command": ["sh", "-c", "while true; do sleep 1; done"]},
               terminationGracePeriodSeconds=1)
    timing = ContainerTiming.from_pod_spec(pod)
    probes_deploy([pod], wait="running")
    started = _started(tl, name)
    _sleep_until(started.time + timedelta(seconds=RUNS_BEFORE_FAULT))
    killed = probes_faults.kill(name)
    run = (killed - started.time).total_seconds()
    assert_terminated(tl, name, since=killed, exit_code=137,
                      within=Window(0.0, timing.status_lag))
    schedule = timing.restart_schedule(1, crash=True, run_until_kill=run)
    assert_restarts_within(tl, name, restarts=1, since=started, within=schedule[0])


@pytest.mark.probes
def test_a_blocked_port_takes_the_pod_out_of_the_endpoints_and_back_when_unblocked(
    probes_deploy: Deployer, probes_timeline: Timeline, probes_faults: OutsideFaults
) -> None:
    """TCP to the port dropped in the pod's own network namespace: the readiness probe times
    out, the address leaves the Service; after ``for_s`` it is back."""
    tl = probes_timeline
    name = "blocked"
    pod = _pod(name, {"command": HTTP_SERVER, "ports": [{"containerPort": 8080}],
                      "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2,
                                         "failureThreshold": 2}})
    timing = ContainerTiming.from_pod_spec(pod)
    probes_deploy([pod, _service(name)], wait="ready")
    started = _started(tl, name)
    assert_endpoint_added_within(tl, name, since=started,
                                 within=endpoints_follow(timing.readiness_gain()))
    blocked_for = 10.0
    blocked = probes_faults.block_port(name, 8080, for_s=blocked_for)
    fail_from = (blocked - started.time).total_seconds()
    loss = timing.readiness_loss(fail_from=fail_from).shifted(-fail_from)
    assert loss.latest < blocked_for  # the removal comes while the port is blocked
    # Any pod condition by name: ContainersReady follows the one container's readiness.
    assert_condition_within(tl, name, "ContainersReady", status="False", since=blocked,
                            within=loss)
    removed = assert_endpoint_removed_after(tl, name, after=blocked, since=blocked,
                                            within=endpoints_follow(loss))
    _back_in_the_endpoints(tl, name, timing, started, removed,
                           probes_faults.wait_undone(f"unblock port 8080 of {name}"))


WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: probes-target
        command: [python3, -m, http.server, "8080"]
        ports: [{containerPort: 8080, name: http}]
        livenessProbe: {httpGet: {path: /, port: http}, periodSeconds: 2, failureThreshold: 2}
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2, failureThreshold: 2}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.mark.selftest
def test_the_tests_explain_emits_pass_on_a_real_cluster(
    pytester: pytest.Pytester, probes_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pytest-probes explain --emit-test``: the file it writes runs and passes as it is."""
    from pytest_probes import cli

    manifest = pytester.path / "web.yaml"
    manifest.write_text(WEB)
    emitted = pytester.path / "test_emitted.py"
    assert cli.main(["explain", str(manifest), "--emit-test", str(emitted)]) == 0
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    for key in [k for k in os.environ if k.startswith("PYTEST_XDIST")]:
        monkeypatch.delenv(key)  # when this test itself runs in an xdist worker
    result = pytester.runpytest_subprocess(
        str(emitted), "-v", "-m", "probes", "--probes-provider", probes_cluster.provider,
        "--probes-cluster-name", probes_cluster.name, "-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=2)


@pytest.mark.probes
def test_answers_held_past_timeout_seconds_take_the_pod_out_and_back_when_undone(
    probes_deploy: Deployer, probes_timeline: Timeline, probes_faults: OutsideFaults
) -> None:
    """``delay``: the HTTP server's answers come 2.5 s late, past the readiness probe's
    ``timeoutSeconds`` of 1: each probe times out, the address leaves the Service; once the delay
    is undone the probes pass again and it comes back."""
    tl = probes_timeline
    name = "delayed"
    pod = _pod(name, {"command": HTTP_SERVER, "ports": [{"containerPort": 8080}],
                      "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                         "timeoutSeconds": 1, "periodSeconds": 2,
                                         "failureThreshold": 2}})
    timing = ContainerTiming.from_pod_spec(pod)
    probes_deploy([pod, _service(name)], wait="ready")
    started = _started(tl, name)
    delayed_for = 12.0
    delayed = probes_faults.delay(name, 8080, 2500, for_s=delayed_for)
    fail_from = (delayed - started.time).total_seconds()
    loss = timing.readiness_loss(fail_from=fail_from).shifted(-fail_from)
    assert loss.latest < delayed_for  # the removal comes while the answers are late
    removed = assert_endpoint_removed_after(tl, name, after=delayed, since=delayed,
                                            within=endpoints_follow(loss))
    # The cause must be the timeout. The kubelet's recorder writes its Events on its own
    # goroutine, behind the status the endpoints follow: a CI run on a loaded 2-core node had
    # the address removed before the watch had this Event (it was 3.6-8.5 s behind its stamp
    # there). So wait for it; its stamp, not its arrival, must be after the delay. (A failed
    # test's timeline is in the report.)
    tl.wait_first(pod=name, source="event", kind="Unhealthy", since=delayed,
                  message="Client.Timeout", timeout=60)
    _back_in_the_endpoints(tl, name, timing, started, removed,
                           probes_faults.wait_undone(f"undelay port 8080 of {name}"))
